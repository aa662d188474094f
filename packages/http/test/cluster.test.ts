// HTTP on every shard of an IoCluster (runPerCore): each shard makes its member of the
// cluster's listener an HTTP one (io.httpServe) and answers with its id.
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import { IoCluster, runPerCore } from '@zero-io/core';
import '@zero-io/http';
import { expect, it } from 'vitest';

const handler = fileURLToPath(new URL('./fixtures/cluster-http-shard.mjs', import.meta.url));

/** One request on a new connection (agent: false), the body as text. */
function get(port: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    }).on('error', reject);
  });
}

it('serves HTTP from every shard of a cluster: 80 requests on new connections, all answered, both shards used', async () => {
  const cluster = new IoCluster({ shardCount: 2, cpuAffinity: false });
  const web = cluster.tcpListen('127.0.0.1:0', { name: 'web' });
  const running = await runPerCore(cluster, handler);
  try {
    const seen = new Map<string, number>();
    for (let round = 0; round < 8; round++) {
      const answers = await Promise.all(Array.from({ length: 10 }, () => get(web.address.port)));
      for (const a of answers) {
        expect(a.status).toBe(200);
        expect(a.body).toMatch(/^shard [01]$/);
        seen.set(a.body, (seen.get(a.body) ?? 0) + 1);
      }
    }
    expect([...seen.values()].reduce((a, b) => a + b, 0)).toBe(80);
    // Kernel hashing of 80 source ports over 2 members: both get some (the odds of one
    // member taking all 80 are 2^-79).
    expect(seen.size).toBe(2);
  } finally {
    await running.shutdown({ timeoutMs: 1000 });
  }
});

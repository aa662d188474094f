import { spawnSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
// @ts-expect-error: plain JS tooling module
import { extractExample, runReadmeExample } from '../../../tooling/readme-example.mjs';

it('the README example runs: 8 MiB written then ended come back whole from the zero-io echo', () => {
  const r = runReadmeExample(fileURLToPath(new URL('..', import.meta.url)));
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  expect(r.stdout).toBe('echoed all 8388608 bytes\n');
});

it("the root README's ten lines echo any size: 8 MiB written then ended come back whole", () => {
  // The block as printed, on a free port instead of 7001, with a node:net client appended.
  const code = extractExample(fileURLToPath(new URL('../../../README.md', import.meta.url)), 'Ten lines')
    .replace("io.tcpListen('0.0.0.0:7001');", "const ep = io.tcpListen('127.0.0.1:0');");
  expect(code).toContain("const ep = io.tcpListen('127.0.0.1:0');");
  const client = `
import net from 'node:net';
const sent = Buffer.alloc(8 << 20, 'ten lines ');
const got = [];
const c = net.connect(io.localAddress(ep).port, '127.0.0.1', () => c.end(sent));
c.on('data', (d) => got.push(d));
c.on('end', () => { process.stdout.write(Buffer.concat(got).equals(sent) ? 'all back\\n' : 'LOST BYTES\\n'); process.exit(0); });
`;
  const dir = fileURLToPath(new URL('..', import.meta.url));
  const file = join(dir, `.readme-ten-lines-${process.pid}.mjs`);
  writeFileSync(file, code + client);
  try {
    const r = spawnSync(process.execPath, [file], { encoding: 'utf8', timeout: 20_000, cwd: dir });
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/all back\n$/);
  } finally {
    rmSync(file, { force: true });
  }
});

it('the README TLS example runs: a TLS echo answers a node:tls client, reports version and ALPN', () => {
  const r = runReadmeExample(fileURLToPath(new URL('..', import.meta.url)), 20000, 'Example: TLS');
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  expect(r.stdout).toBe('tls: TLSv1.3, alpn echo\necho: hello over TLS\ncertificate generation 1\n');
});

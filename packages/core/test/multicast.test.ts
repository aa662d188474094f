// Multicast across two network namespaces joined by a veth pair, created and removed here.
// The sender namespace owns two source addresses; the receiver (our Io, in a child process in
// the other namespace) holds a source-specific membership (RFC 4607) for one of them and an
// any-source membership (RFC 1112) for a second group. Needs root and iproute2 (the test
// command installs iproute2; CI runs as root).
import { execFileSync, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const tag = `${process.pid % 100000}`;
const nsTx = `zio-mctx-${tag}`;
const nsRx = `zio-mcrx-${tag}`;
const ifTx = `zmt${tag}`;
const ifRx = `zmr${tag}`;
const GOOD = '10.77.0.2';
const BAD = '10.77.0.3';
const SSM_GROUP = '232.1.1.1';
const ASM_GROUP = '239.1.1.1';
const PORT = 30000 + (process.pid % 20000);

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

beforeAll(() => {
  ip('netns', 'add', nsTx);
  ip('netns', 'add', nsRx);
  ip('link', 'add', ifTx, 'type', 'veth', 'peer', 'name', ifRx);
  ip('link', 'set', ifTx, 'netns', nsTx);
  ip('link', 'set', ifRx, 'netns', nsRx);
  ip('-n', nsTx, 'addr', 'add', `${GOOD}/24`, 'dev', ifTx);
  ip('-n', nsTx, 'addr', 'add', `${BAD}/24`, 'dev', ifTx);
  ip('-n', nsRx, 'addr', 'add', '10.77.0.1/24', 'dev', ifRx);
  for (const [ns, dev] of [[nsTx, ifTx], [nsRx, ifRx]]) {
    ip('-n', ns, 'link', 'set', 'lo', 'up');
    ip('-n', ns, 'link', 'set', dev, 'up');
    ip('-n', ns, 'route', 'add', '224.0.0.0/4', 'dev', dev);
  }
});

afterAll(() => {
  for (const ns of [nsTx, nsRx]) {
    try { ip('netns', 'del', ns); } catch { /* already gone */ }
  }
});

/** Sends `text` from `source` to group:PORT from inside the sender namespace (node:dgram). */
function sendFrom(source: string, group: string, text: string): void {
  const code = `
    const s = require('node:dgram').createSocket('udp4');
    s.bind(0, ${JSON.stringify(source)}, () => {
      s.setMulticastInterface(${JSON.stringify(source)});
      s.send(${JSON.stringify(text)}, ${PORT}, ${JSON.stringify(group)}, () => s.close());
    });`;
  execFileSync('ip', ['netns', 'exec', nsTx, process.execPath, '-e', code], { stdio: 'pipe', timeout: 10_000 });
}

describe('multicast across network namespaces', () => {
  it('source-specific receives only the chosen source; any-source receives every source', async () => {
    const fixture = fileURLToPath(new URL('./fixtures/mc-recv.mjs', import.meta.url));
    const child = spawn('ip', ['netns', 'exec', nsRx, process.execPath, fixture, ifRx, String(PORT), GOOD, SSM_GROUP, ASM_GROUP],
      { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { err += d; });
    const until = async (cond: () => boolean, what: string): Promise<void> => {
      const deadline = Date.now() + 10_000;
      while (!cond()) {
        if (Date.now() > deadline || child.exitCode !== null) throw new Error(`${what}; child stdout=${out} stderr=${err}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    };
    try {
      await until(() => out.startsWith('ready\n'), 'receiver did not start');
      for (let round = 0; round < 3; round++) {
        sendFrom(GOOD, SSM_GROUP, `ssm-good-${round}`);
        sendFrom(BAD, SSM_GROUP, `ssm-bad-${round}`);
        sendFrom(GOOD, ASM_GROUP, `asm-good-${round}`);
        sendFrom(BAD, ASM_GROUP, `asm-bad-${round}`);
      }
      // The last datagram sent (asm-bad-2) has arrived: everything before it has too.
      await until(() => out.includes('asm-bad-2'), 'multicast datagrams did not arrive');
      await new Promise((r) => setTimeout(r, 100));
      const lines = out.trim().split('\n').slice(1).map((l) => JSON.parse(l) as { ep: string; from: string; data: string });
      const ssm = lines.filter((l) => l.ep === 'ssm');
      const asm = lines.filter((l) => l.ep === 'asm');
      expect(ssm.map((l) => l.data)).toEqual(['ssm-good-0', 'ssm-good-1', 'ssm-good-2']);
      expect(ssm.every((l) => l.from === GOOD)).toBe(true);
      expect(asm.map((l) => l.data).sort()).toEqual(['asm-bad-0', 'asm-bad-1', 'asm-bad-2', 'asm-good-0', 'asm-good-1', 'asm-good-2']);
      expect(new Set(asm.map((l) => l.from))).toEqual(new Set([GOOD, BAD]));
    } finally {
      child.stdin.end();
      await new Promise((r) => { if (child.exitCode !== null) r(null); else child.on('exit', r); });
    }
    expect(child.exitCode).toBe(0);
  }, 30_000);
});

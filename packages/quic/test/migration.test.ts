// QUIC Interop Runner cases BP and BA with aioquic as the client: the client's port (BP) or
// address (BA: 127.0.0.1 -> 127.0.0.2) changes mid-transfer behind a UDP relay that rebinds;
// our server validates the new path (PathMigration) and every stream arrives intact.
// A loaded machine must not make the link lossy at the moment of the move (docs/architecture/
// 0021, decision 21): the relay and the aioquic script use 4 MiB socket buffers.
import { afterAll, describe, expect, it } from 'vitest';
import '@zero-io/quic';
import { aioquicClient, echoServer, listener, makePki, needAioquic, rebindingRelay } from './helpers.js';

const pki = makePki();
needAioquic();

describe('interop: aioquic client -> our server across a rebinding', () => {
  const handles: { shutdown(): Promise<void> }[] = [];
  afterAll(async () => {
    for (const h of handles) await h.shutdown();
  });
  const client = (port: number, extra: string[]) => aioquicClient(pki, port, extra);

  for (const [name, address] of [['BP: its source port', '127.0.0.1'], ['BA: its address (127.0.0.2)', '127.0.0.2']] as const) {
    it(`${name} changes mid-transfer (a relay rebinds): the server validates the new path, every stream intact`, async () => {
      const { io, port } = listener(pki, { alpn: ['zero-echo'] });
      const moves: string[] = [];
      const echo = echoServer(io, new Set());
      handles.push(io.runSync((ev) => {
        if (ev.type === 'PathMigration') moves.push(`${ev.newPeer.address}:${ev.newPeer.port}`);
        echo(ev);
      }, { onError: (e) => { throw e; } }));
      const relay = await rebindingRelay(port, 300, address);
      const r = await client(relay.port, ['--streams', '8', '--size', '1000000']);
      relay.close();
      expect(r.res, JSON.stringify(r.res) + r.err.slice(-2000)).toMatchObject({ ok: true, streams: 8 });
      expect(relay.forwarded()).toBeGreaterThan(300);
      expect(moves).toEqual([`${relay.after.address}:${relay.after.port}`]);
    }, 60_000);
  }

});

// messageDelivery: 'pieces' — very large messages streamed as their bytes arrive: a 40 MiB
// message (larger than the whole pool) hashed piece by piece, fragmented messages with pings
// between, small messages as single final pieces, and a burst of more pieces than the event ring
// holds; with held input (a cut header) in between.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { ConnId } from '@zero-io/core';
import '@zero-io/websocket';
import { RawWs, frame, startWs, until } from './helpers.js';

interface Streamed { conn: ConnId; kind: string; bytes: number; hash: string; pieces: number }

/** A server that hashes each message as its pieces come, recording whole messages. */
function hashingServer(extra: object = {}) {
  const done: Streamed[] = [];
  const open = new Map<ConnId, { kind: string; h: ReturnType<typeof createHash>; bytes: number; pieces: number }>();
  const s = startWs({ messageDelivery: 'pieces', maxMessageSize: 1 << 30, ...extra }, (ev) => {
    if (ev.type !== 'StreamFrame') return;
    let m = open.get(ev.conn);
    if (!m) open.set(ev.conn, m = { kind: ev.kind, h: createHash('sha256'), bytes: 0, pieces: 0 });
    m.h.update(ev.data);
    m.bytes += ev.length;
    m.pieces++;
    if (ev.final) {
      done.push({ conn: ev.conn, kind: m.kind, bytes: m.bytes, hash: m.h.digest('hex'), pieces: m.pieces });
      open.delete(ev.conn);
    }
    return true;  // no echo
  });
  return { s, done };
}

describe("messageDelivery: 'pieces'", () => {
  it('a 40 MiB message (larger than the pool) arrives in pieces, every byte once, in order', async () => {
    const { s, done } = hashingServer();
    const ws = new WebSocket(`ws://127.0.0.1:${s.port}/`);
    await new Promise((r) => ws.once('open', r));
    const big = Buffer.alloc(40 << 20);
    for (let i = 0; i < big.length; i += 4096) big.writeUInt32LE(i, i);
    ws.send(big);
    ws.send('small one');
    await until(() => done.length === 2, 30_000, 'both messages');
    expect(done[0]).toMatchObject({ kind: 'WsBinary', bytes: big.length, hash: createHash('sha256').update(big).digest('hex') });
    expect(done[0].pieces).toBeGreaterThan(100);
    expect(done[1]).toMatchObject({ kind: 'WsText', bytes: 9, pieces: 1 });
    ws.close(1000);
  });

  it('fragments with pings between, an empty message, and 3,000 one-frame messages in one write', async () => {
    const { s, done } = hashingServer();
    const c = await RawWs.open(s.port);
    c.send(Buffer.concat([frame(1, 'part one, ', { fin: false }), frame(9, 'p'), frame(0, 'part two')]));
    c.send(frame(2, Buffer.alloc(0)));
    c.send(Buffer.concat(Array.from({ length: 3000 }, (_, i) => frame(2, Buffer.from(`m${i}`)))));
    await until(() => done.length === 3002, 20_000, 'every message');
    expect(done[0]).toMatchObject({ kind: 'WsText', bytes: 18, hash: createHash('sha256').update('part one, part two').digest('hex') });
    expect(done[1]).toMatchObject({ bytes: 0, pieces: 1 });
    // (A frame cut by a read boundary arrives as two pieces: pieces follow the reads.)
    const sha = (t: string) => createHash('sha256').update(t).digest('hex');
    expect(done.slice(2).every((d, i) => d.bytes === `m${i}`.length && d.hash === sha(`m${i}`))).toBe(true);
    expect(c.frames.filter((f) => f.opcode === 10)).toHaveLength(1);
  });

  it('a message cut inside its header across reads (held input) still streams whole', async () => {
    const { s, done } = hashingServer();
    const c = await RawWs.open(s.port);
    const body = Buffer.alloc(100_000, 0x42);
    const f = frame(2, body);
    c.send(f.subarray(0, 3));  // inside the 64-bit length
    await new Promise((r) => setTimeout(r, 20));
    c.send(f.subarray(3, 5000));
    await new Promise((r) => setTimeout(r, 20));
    c.send(f.subarray(5000));
    await until(() => done.length === 1);
    expect(done[0]).toMatchObject({ bytes: body.length, hash: createHash('sha256').update(body).digest('hex') });
  });

  it('maxMessageSize still bounds a message delivered in pieces (1009)', async () => {
    const { s } = hashingServer({ maxMessageSize: 10_000 });
    const c = await RawWs.open(s.port);
    c.send(frame(2, Buffer.alloc(10_001)));
    await until(() => c.closeFrame() !== null);
    expect(c.closeFrame()!.code).toBe(1009);
  });
});

// Stateless resets (RFC 9000 section 10.3) with a server that really loses its state: it runs in
// a child process that is killed (SIGKILL: no CONNECTION_CLOSE) and started again on the same
// port. With the same statelessResetKey the client learns at once that its connection is gone;
// with another key the reset's token does not match and the client ignores it (the token is
// checked, not just the shape); with statelessReset: false nothing is sent.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { Io, type ConnId } from '@zero-io/core';
import '@zero-io/quic';
import { makePki, until } from './helpers.js';

const pki = makePki();
const script = fileURLToPath(new URL('./fixtures/reset-server.mjs', import.meta.url));
const children: ChildProcess[] = [];
afterEach(() => { for (const c of children.splice(0)) c.kill('SIGKILL'); });

/** Starts the server; resolves once it listens, with its port and its latest "resets" count. */
async function server(port: number, resetKey: string) {
  const p = spawn(process.execPath, [script, String(port), pki.path('server.crt'), pki.path('server.key'), resetKey], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(p);
  let out = '', err = '';
  p.stdout!.on('data', (d) => (out += d));
  p.stderr!.on('data', (d) => (err += d));
  await until(() => /ready (\d+)/.test(out) || p.exitCode !== null, 10_000, 'the server to listen');
  if (!/ready (\d+)/.test(out)) throw new Error(`the server did not start: ${err}`);
  const last = (re: RegExp) => Number([...out.matchAll(re)].at(-1)?.[1] ?? 0);
  return { proc: p, port: Number(/ready (\d+)/.exec(out)![1]), resets: () => last(/resets (\d+)/g), unknown: () => last(/unknown (\d+)/g) };
}

/** Our client, echoing one message once connected; `ask()` sends another on a new stream. */
function client(port: number) {
  const io = new Io();
  const got: string[] = [];
  let end: { code: number; origin: string; reason: string; reset: boolean; at: number } | null = null;
  let conn = -1 as ConnId;
  let connected = false;
  const h = io.runSync((ev) => {
    if (ev.type === 'Connected') connected = true;
    if (ev.type === 'StreamFrame') got.push(Buffer.from(ev.data).toString());
    if (ev.type === 'Disconnected') end = { code: ev.errorCode, origin: ev.origin, reason: ev.reason, reset: io.quicCloseInfo(ev.conn)?.statelessReset ?? false, at: Date.now() };
  });
  conn = io.quicConnectWith({ host: '127.0.0.1', port, alpn: ['zero-echo'], idleTimeoutMs: 30_000, tls: { ca: pki.ca, servername: 'localhost' } });
  const ask = (text: string) => {
    const s = io.openStream(conn);
    io.streamWrite(conn, s, Buffer.from(text));
    io.streamEnd(conn, s);
  };
  return { io, got, ask, connected: () => connected, end: () => end, conn: () => conn, close: async () => { if (!end) io.quicClose(conn); await h.shutdown(); } };
}

/** A client connected to a server that echoed once, then was killed and started again on its port with `secondKey`. */
async function restarted(firstKey: string, secondKey: string) {
  const first = await server(0, firstKey);
  const c = client(first.port);
  await until(c.connected, 10_000, 'the handshake');
  c.ask('before');
  await until(() => c.got.includes('before'), 10_000, 'the first echo');
  first.proc.kill('SIGKILL');
  await new Promise((r) => first.proc.once('exit', r));
  return { c, again: await server(first.port, secondKey) };
}

describe('stateless reset after a server restart', () => {
  it('the same key: the client is told at once (ECONNRESET, origin peer, statelessReset), not at its 30 s idle timeout', async () => {
    const key = randomBytes(32).toString('hex');
    const { c, again } = await restarted(key, key);
    try {
      const asked = Date.now();
      c.ask('after the restart');
      await until(() => c.end() !== null, 5_000, 'the reset to end the connection');
      const end = c.end()!;
      expect(end).toMatchObject({ code: 104, origin: 'peer', reset: true });
      expect(end.reason).toContain('stateless reset');
      expect(end.at - asked).toBeLessThan(5_000);  // the idle timeout is 30 s
      expect(c.got).not.toContain('after the restart');
      await until(() => again.resets() >= 1, 2_000, 'the server to count its reset');
    } finally {
      await c.close();
    }
  }, 30_000);

  it('another key: the reset is sent but its token does not match, so the client keeps waiting', async () => {
    const { c, again } = await restarted(randomBytes(32).toString('hex'), randomBytes(32).toString('hex'));
    try {
      c.ask('after the restart');
      await until(() => again.resets() >= 1, 5_000, 'the new server to answer with a reset');
      await new Promise((r) => setTimeout(r, 500));
      expect(c.end()).toBeNull();  // not recognised: only the idle timeout would end it
    } finally {
      await c.close();
    }
  }, 30_000);

  it('statelessReset: false: packets for unknown ids are dropped without an answer', async () => {
    const { c, again } = await restarted('none', 'off');
    try {
      c.ask('after the restart');
      await until(() => again.unknown() >= 1, 5_000, 'the new server to see the packets');
      await new Promise((r) => setTimeout(r, 300));
      expect(again.resets()).toBe(0);
      expect(c.end()).toBeNull();
    } finally {
      await c.close();
    }
  }, 30_000);
});

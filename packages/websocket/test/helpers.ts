// Shared helpers for the @zero-io/websocket tests:
//   - startWs(): a zero-io WebSocket server on 127.0.0.1:0 driven by runSync (handler errors fail
//     the test) that records what it sees (copied: events are borrowed) and echoes by default;
//   - RawWs: a node:net client that speaks frames byte by byte, for hostile input and for
//     peers that misbehave (never answer a ping, never read);
//   - frame(): one client frame (masked unless told otherwise), with any flags.
// Every wait is bounded and event-driven; no timing is asserted.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { afterEach } from 'vitest';
import { Io, type Config, type ConnId, type EndpointId, type Event, type ShutdownHandle } from '@zero-io/core';
import type { WsListenConfig } from '@zero-io/websocket';
import { checkHandlerErrors, onError } from '../../core/test/handler-errors.js';

export { checkHandlerErrors };

import { until } from '../../http/test/helpers.js';

export { until };

/** A Python `websockets` echo server (Debian python3-websockets) on 127.0.0.1:0: its port, and how to stop it. */
export async function pythonEchoServer(): Promise<{ port: number; stop: () => void }> {
  const script = `
import asyncio, websockets
async def echo(ws, *_):
    async for m in ws:
        await ws.send(m)
async def main():
    async with websockets.serve(echo, "127.0.0.1", 0, max_size=None) as server:
        print(server.sockets[0].getsockname()[1], flush=True)
        await asyncio.Future()
asyncio.run(main())
`;
  const py = spawn(process.env.ZIO_TEST_PYTHON ?? '/usr/bin/python3', ['-c', script]);
  const port = await new Promise<number>((resolve, reject) => {
    py.stdout.once('data', (d) => resolve(Number(String(d).trim())));
    py.once('exit', (code) => reject(new Error(`python exited ${code}`)));
  });
  return { port, stop: () => { py.kill('SIGKILL'); } };
}

export interface Seen {
  opens: { conn: ConnId; path: string; query: string; subprotocol: string | null; origin: string | null }[];
  messages: { conn: ConnId; kind: string; data: Buffer }[];
  closes: { conn: ConnId; code: number; reason: string; origin: string }[];
  writable: ConnId[];
}

export interface WsServer {
  io: Io;
  ep: EndpointId;
  port: number;
  seen: Seen;
  stop(): void;
}

const running: { io: Io; handle: ShutdownHandle }[] = [];
afterEach(async () => {
  for (const r of running.splice(0)) {
    await r.handle.shutdown({ timeoutMs: 1000 });
    r.io.shutdown();
  }
});

/**
 * A server; `onEvent` runs for every event after it was recorded (return true to skip the echo
 * of a StreamFrame).
 */
export function startWs(config: Omit<WsListenConfig, 'port'> = {}, onEvent?: (ev: Event, io: Io) => boolean | void,
  ioConfig: Partial<Config> = {}, listen?: (io: Io) => EndpointId): WsServer {
  const io = new Io(ioConfig);
  const ep = listen ? listen(io) : io.wsListenWith({ host: '127.0.0.1', port: 0, ...config });
  const port = io.localAddress(ep)!.port;
  const seen: Seen = { opens: [], messages: [], closes: [], writable: [] };
  const handle = io.runSync((ev) => {
    if (ev.type === 'WsOpen') seen.opens.push({ conn: ev.conn, path: ev.path, query: ev.query, subprotocol: ev.subprotocol, origin: ev.header('origin') });
    if (ev.type === 'StreamFrame') seen.messages.push({ conn: ev.conn, kind: ev.kind, data: Buffer.from(ev.data) });
    if (ev.type === 'Disconnected') seen.closes.push({ conn: ev.conn, code: ev.errorCode, reason: ev.reason, origin: ev.origin });
    if (ev.type === 'Writable') seen.writable.push(ev.conn);
    const skip = onEvent?.(ev, io);
    if (!skip && ev.type === 'StreamFrame' && (ev.kind === 'WsText' || ev.kind === 'WsBinary')) {
      io.wsSend(ev.conn, ev.data, ev.kind === 'WsText');
    }
  }, { onError });
  running.push({ io, handle });
  return { io, ep, port, seen, stop: () => void handle.shutdown({ timeoutMs: 1000 }) };
}

/** One frame as a client sends it: masked (unless `mask: false`), FIN unless `fin: false`. */
export function frame(opcode: number, payload: Buffer | string, o: { fin?: boolean; mask?: boolean; rsv?: number; lengthBytes?: 2 | 8 } = {}): Buffer {
  const p = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const mask = o.mask ?? true;
  const head: number[] = [((o.fin ?? true) ? 0x80 : 0) | ((o.rsv ?? 0) << 4) | opcode];
  const m = mask ? 0x80 : 0;
  if (p.length < 126 && o.lengthBytes === undefined) head.push(m | p.length);
  else if (p.length <= 0xffff && o.lengthBytes !== 8) head.push(m | 126, p.length >> 8, p.length & 0xff);
  else {
    head.push(m | 127);
    const n = BigInt(p.length);
    for (let i = 7; i >= 0; i--) head.push(Number((n >> BigInt(8 * i)) & 0xffn));
  }
  if (!mask) return Buffer.concat([Buffer.from(head), p]);
  const key = randomBytes(4);
  const body = Buffer.allocUnsafe(p.length);
  for (let i = 0; i < p.length; i++) body[i] = p[i] ^ key[i & 3];
  return Buffer.concat([Buffer.from(head), key, body]);
}

/** A frame the server sent, parsed. */
export interface ServerFrame { fin: boolean; opcode: number; payload: Buffer }

/**
 * A raw client: the opening handshake by hand, then frames in and out as bytes. Server frames
 * are parsed as they come (`frames`); `readPaused` stops reading (a slow peer).
 */
export class RawWs {
  sock!: net.Socket;
  status = 0;
  head = '';
  frames: ServerFrame[] = [];
  ended = false;
  closed = false;
  #buf = Buffer.alloc(0);
  #handshook = false;

  static async open(port: number, path = '/', extra = '', opts: { read?: boolean } = {}): Promise<RawWs> {
    const c = new RawWs();
    c.sock = net.connect(port, '127.0.0.1');
    c.sock.on('data', (d) => c.#onData(d));
    c.sock.on('end', () => { c.ended = true; });
    c.sock.on('close', () => { c.closed = true; });
    c.sock.on('error', () => {});
    await new Promise<void>((r) => c.sock.once('connect', () => r()));
    c.sock.write(`GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
      `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\n${extra}\r\n`);
    await until(() => c.#handshook || c.closed, 10_000, 'the handshake answer');
    if (opts.read === false) c.sock.pause();
    return c;
  }

  #onData(d: Buffer): void {
    this.#buf = Buffer.concat([this.#buf, d]);
    if (!this.#handshook) {
      const end = this.#buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      this.head = this.#buf.subarray(0, end).toString('latin1');
      this.status = Number(this.head.split(' ')[1]);
      this.#buf = this.#buf.subarray(end + 4);
      this.#handshook = true;
      if (this.status !== 101) return;
    }
    for (;;) {
      const b = this.#buf;
      if (b.length < 2) return;
      let len = b[1] & 0x7f, at = 2;
      if (b[1] & 0x80) throw new Error('a masked frame from the server');
      if (len === 126) { if (b.length < 4) return; len = b.readUInt16BE(2); at = 4; }
      else if (len === 127) { if (b.length < 10) return; len = Number(b.readBigUInt64BE(2)); at = 10; }
      if (b.length < at + len) return;
      this.frames.push({ fin: (b[0] & 0x80) !== 0, opcode: b[0] & 0x0f, payload: Buffer.from(b.subarray(at, at + len)) });
      this.#buf = b.subarray(at + len);
    }
  }

  send(b: Buffer): void {
    this.sock.write(b);
  }

  /** The close frame the server sent: its code and reason. */
  closeFrame(): { code: number; reason: string } | null {
    const f = this.frames.find((x) => x.opcode === 8);
    if (!f) return null;
    return f.payload.length >= 2 ? { code: f.payload.readUInt16BE(0), reason: f.payload.subarray(2).toString() } : { code: 1005, reason: '' };
  }

  destroy(): void {
    this.sock.destroy();
  }
}

// Half-close (the peer's FIN): nothing the application writes in answer is lost, PeerEnded comes
// after every byte and before Disconnected, and allowHalfOpen keeps the connection writable.
// node:net is the reference behaviour.
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { Io, StreamWriter, type ConnId, type EndpointId, type Event } from '@zero-io/core';
import '@zero-io/tcp';
import { echoHandler, listenLocal, onError, randomPayload, until } from './helpers.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

/** A zero-io server on 127.0.0.1:0 driven by runSync; handler errors fail the test (onError). */
function serve(handler: (ev: Event, io: Io) => void, listen: { allowHalfOpen?: boolean } = {}) {
  const io = new Io({ poolSlotCount: 1024 });
  const ep = io.tcpListenWith({ host: '127.0.0.1', port: 0, ...listen });
  const h = io.runSync((ev) => handler(ev, io), { onError });
  cleanups.push(async () => {
    await h.shutdown({ timeoutMs: 500 });
    io.shutdown();
  });
  return { io, ep, port: io.localAddress(ep).port };
}

/** Writes `payload`, calls end() at once, and resolves with every byte read until the server's FIN. */
function writeThenEnd(port: number, payload: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    s.on('connect', () => { s.write(payload); s.end(); });
    s.on('data', (d) => chunks.push(d));
    s.on('end', () => resolve(Buffer.concat(chunks)));
    s.on('error', reject);
  });
}

describe('the peer half-closes (write then end() at once)', () => {
  for (const size of [1 << 20, 8 << 20]) {
    const mib = size >> 20;
    it(`node:net (reference) returns all ${mib} MiB`, async () => {
      const server = net.createServer((s) => s.pipe(s));
      const port = await listenLocal(server);
      cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
      const p = randomPayload(size, mib);
      expect((await writeThenEnd(port, p)).equals(p)).toBe(true);
    });

    it(`an echo that keeps the refused rest until Writable returns all ${mib} MiB`, async () => {
      const echo = echoHandler();
      const { port } = serve((ev, io) => echo(ev, io));
      const p = randomPayload(size, mib + 10);
      const got = await writeThenEnd(port, p);
      expect(got.length).toBe(size);
      expect(got.equals(p)).toBe(true);
    });

    it(`StreamWriter (the README's echo) returns all ${mib} MiB`, async () => {
      let out: StreamWriter | undefined;
      const { port } = serve((ev, io) => {
        out ??= new StreamWriter(io);
        out.handle(ev);
        if (ev.type === 'StreamFrame') out.write(ev.conn, ev.data);
      });
      const p = randomPayload(size, mib + 20);
      const got = await writeThenEnd(port, p);
      expect(got.length).toBe(size);
      expect(got.equals(p)).toBe(true);
    });
  }
});

describe('PeerEnded', () => {
  it('comes after every byte the peer sent and before Disconnected, with the listener id', async () => {
    const log: { type: string; bytes: number; endpoint: EndpointId | null; origin?: string }[] = [];
    let bytes = 0;
    const { ep, port } = serve((ev) => {
      if (ev.type === 'StreamFrame') bytes += ev.length;
      else if (ev.type === 'PeerEnded') log.push({ type: ev.type, bytes, endpoint: ev.endpoint });
      else if (ev.type === 'Disconnected') log.push({ type: ev.type, bytes, endpoint: ev.endpoint, origin: ev.origin });
    });
    const p = randomPayload(300_000, 7);
    await writeThenEnd(port, p);
    await until(() => log.length === 2, 5000, 'PeerEnded and Disconnected');
    expect(log).toEqual([
      { type: 'PeerEnded', bytes: p.length, endpoint: ep },
      { type: 'Disconnected', bytes: p.length, endpoint: ep, origin: 'peer' },
    ]);
  });

  it('without allowHalfOpen a connection that answers nothing closes right after it', async () => {
    const order: string[] = [];
    const { port } = serve((ev) => {
      if (ev.type === 'PeerEnded' || ev.type === 'Disconnected') order.push(ev.type);
    });
    expect((await writeThenEnd(port, Buffer.from('ping'))).length).toBe(0);
    await until(() => order.length === 2, 5000, 'Disconnected');
    expect(order).toEqual(['PeerEnded', 'Disconnected']);
  });
});

describe('allowHalfOpen', () => {
  it('server: an answer written after the FIN (from a timer) reaches the client', async () => {
    let late: unknown = null;
    const { port } = serve((ev, io) => {
      if (ev.type !== 'PeerEnded') return;
      const conn = ev.conn;
      setTimeout(() => {
        try {
          io.streamWrite(conn, Buffer.from('late answer'));
          io.closeGraceful(conn);
        } catch (e) { late = e; }
      }, 50);
    }, { allowHalfOpen: true });
    const got = await writeThenEnd(port, Buffer.from('request'));
    expect(late).toBeNull();
    expect(got.toString()).toBe('late answer');
  });

  it('server without it: the same late write finds the connection gone (InvalidConnId)', async () => {
    let late: unknown = null;
    const { port } = serve((ev, io) => {
      if (ev.type !== 'PeerEnded') return;
      const conn = ev.conn;
      setTimeout(() => {
        try { io.streamWrite(conn, Buffer.from('late answer')); } catch (e) { late = e; }
      }, 50);
    });
    const got = await writeThenEnd(port, Buffer.from('request'));
    expect(got.length).toBe(0);
    await until(() => late !== null, 5000, 'the late write');
    expect(late).toMatchObject({ kind: 'InvalidConnId' });
  });

  it('client: after the server ends, tcpConnectWith({ allowHalfOpen }) still sends its reply', async () => {
    let serverGot = '';
    const serverEnded = new Promise<void>((resolve) => {
      const server = net.createServer({ allowHalfOpen: true }, (s) => {
        s.end('hello');
        s.on('data', (d) => { serverGot += d.toString(); });
        s.on('end', () => resolve());
      });
      cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
      void listenLocal(server).then((port) => {
        const io = new Io({ poolSlotCount: 256 });
        let received = '';
        const conn: ConnId = io.tcpConnectWith({ host: '127.0.0.1', port, allowHalfOpen: true });
        const h = io.runSync((ev) => {
          if (ev.type === 'StreamFrame') received += Buffer.from(ev.data).toString();
          if (ev.type === 'PeerEnded') {
            expect(ev.endpoint).toBeNull();
            setTimeout(() => { io.streamWrite(conn, Buffer.from(`bye after ${received}`)); io.closeGraceful(conn); }, 20);
          }
        }, { onError });
        cleanups.push(async () => { await h.shutdown({ timeoutMs: 500 }); io.shutdown(); });
      });
    });
    await serverEnded;
    expect(serverGot).toBe('bye after hello');
  });

  it('client default: data, PeerEnded, then Disconnected (origin peer)', async () => {
    const server = net.createServer((s) => s.end('x'.repeat(100_000)));
    const port = await listenLocal(server);
    cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
    const io = new Io({ poolSlotCount: 256 });
    const seen: string[] = [];
    let bytes = 0;
    io.tcpConnect(`127.0.0.1:${port}`);
    const h = io.runSync((ev) => {
      if (ev.type === 'StreamFrame') bytes += ev.length;
      else if (ev.type === 'PeerEnded') seen.push(`PeerEnded@${bytes}`);
      else if (ev.type === 'Disconnected') seen.push(`Disconnected:${ev.origin}`);
    }, { onError });
    cleanups.push(async () => { await h.shutdown({ timeoutMs: 500 }); io.shutdown(); });
    await until(() => seen.length === 2, 5000, 'the close');
    expect(seen).toEqual(['PeerEnded@100000', 'Disconnected:peer']);
  });
});

describe('end() (our side first, as socket.end())', () => {
  it('a proxy-like client passes its FIN on and still reads the answer the backend sends after it', async () => {
    // The backend answers only once it has seen the FIN (a request/response over half-close).
    const backend = net.createServer({ allowHalfOpen: true }, (s) => {
      const got: Buffer[] = [];
      s.on('data', (d) => got.push(d));
      s.on('end', () => s.end(`answer: got ${Buffer.concat(got).length} bytes`));
    });
    const port = await listenLocal(backend);
    cleanups.push(() => new Promise<void>((r) => backend.close(() => r())));
    const io = new Io({ poolSlotCount: 256 });
    let answer = '';
    const seen: string[] = [];
    const conn = io.tcpConnect(`127.0.0.1:${port}`);
    const h = io.runSync((ev) => {
      if (ev.type === 'Connected') {
        io.streamWrite(ev.conn, Buffer.from('request'));
        io.end(ev.conn);
        expect(io.streamWrite(ev.conn, Buffer.from('too late'))).toBe(0);  // nothing after end()
      } else if (ev.type === 'StreamFrame') answer += Buffer.from(ev.data).toString();
      else if (ev.type === 'PeerEnded' || ev.type === 'Disconnected') seen.push(ev.type);
    }, { onError });
    cleanups.push(async () => { await h.shutdown({ timeoutMs: 200 }); io.shutdown(); });
    await until(() => seen.includes('Disconnected'), 5000, 'the close');
    expect(answer).toBe('answer: got 7 bytes');
    expect(seen).toEqual(['PeerEnded', 'Disconnected']);
    expect(() => io.end(conn)).toThrow(expect.objectContaining({ kind: 'InvalidConnId' }));
  });
});

describe('pauseRecv before Connected', () => {
  it('an outbound connection paused while connecting reads nothing until resumed', async () => {
    const server = net.createServer((s) => s.end('data'));
    const port = await listenLocal(server);
    cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
    const io = new Io({ poolSlotCount: 256 });
    const log: string[] = [];
    const conn = io.tcpConnect(`127.0.0.1:${port}`);
    io.pauseRecv(conn);
    const h = io.runSync((ev) => { if (ev.type !== 'PoolPressure') log.push(ev.type); }, { onError });
    cleanups.push(async () => { await h.shutdown({ timeoutMs: 200 }); io.shutdown(); });
    await until(() => log.length > 0, 5000, 'Connected');
    // The server's data and FIN are waiting in the kernel; nothing reaches us while paused.
    const server2 = net.createServer();  // a full round trip of the event loop and the kernel
    await listenLocal(server2);
    await new Promise<void>((r) => server2.close(() => r()));
    expect(log).toEqual(['Connected']);
    io.resumeRecv(conn);
    await until(() => log.includes('Disconnected'), 5000, 'the data and the close');
    expect(log).toEqual(['Connected', 'StreamFrame', 'PeerEnded', 'Disconnected']);
  });
});

describe('shutdown while a host name is resolving', () => {
  it('drops the pending connect quietly (no uncaught error from the lookup)', async () => {
    const io = new Io({ poolSlotCount: 64 });
    io.tcpConnect('localhost:9');
    io.shutdown();
    // The lookup answers on a later turn of the event loop; an uncaught error there fails the run.
    await new Promise((r) => setTimeout(r, 200));
    expect(io.closed).toBe(true);
  });
});

describe('end() before Connected, and StreamWriter.end', () => {
  it('writes made while connecting, then end(): the data goes out once connected, then the FIN', async () => {
    let got = '';
    const ended = new Promise<void>((resolve) => {
      const backend = net.createServer({ allowHalfOpen: true }, (s) => {
        s.on('data', (d) => { got += d.toString(); });
        s.on('end', () => { s.end(); resolve(); });
      });
      cleanups.push(() => new Promise<void>((r) => backend.close(() => r())));
      void listenLocal(backend).then((port) => {
        const io = new Io({ poolSlotCount: 256 });
        const conn = io.tcpConnect(`127.0.0.1:${port}`);
        expect(io.streamWrite(conn, Buffer.from('hello'))).toBe(5);
        io.end(conn);
        const h = io.runSync(() => {}, { onError });
        cleanups.push(async () => { await h.shutdown({ timeoutMs: 200 }); io.shutdown(); });
      });
    });
    await ended;
    expect(got).toBe('hello');
  });

  it('StreamWriter.end waits for what StreamWriter still holds (io.end alone would not)', async () => {
    const payload = randomPayload(2 << 20, 77);
    let out: StreamWriter | undefined;
    const { port } = serve((ev, io) => {
      out ??= new StreamWriter(io);
      out.handle(ev);
      if (ev.type === 'Connected') {
        out.write(ev.conn, payload);     // far more than the write queue takes at once
        expect(out.pending(ev.conn)).toBeGreaterThan(0);
        out.end(ev.conn);
      }
    }, { allowHalfOpen: true });
    const got = await new Promise<Buffer>((resolve, reject) => {
      const c = net.connect(port, '127.0.0.1');
      const parts: Buffer[] = [];
      c.on('data', (d) => parts.push(d));
      c.on('end', () => { c.end(); resolve(Buffer.concat(parts)); });
      c.on('error', reject);
    });
    expect(got.length).toBe(payload.length);
    expect(got.equals(payload)).toBe(true);
  });
});

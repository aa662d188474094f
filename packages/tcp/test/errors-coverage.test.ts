// docs/errors.md, kind by kind and code by code, for the entries no other test produced:
// DriverRunning, TableFull (connect and listen), FeatureMissing (requireFeature, and at import
// in a child process whose engine lacks the gate), HandleRejected -1005 / -1006, Disconnected
// EPIPE (32), and the TLS codes -1010 / -1011 / -1012 on Disconnected.errorCode.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import { Io, IoError, features, isIoError, requireFeature, type ConnId, type EndpointId, type SendBuffer } from '@zero-io/core';
import { loadAddon } from '@zero-io/core/internal';
import '@zero-io/tcp';
import { entries, onError, until } from './helpers.js';
import { makePki, recorder } from './tls-helpers.js';
import { thrown } from '../../core/test/thrown.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

describe('DriverRunning', () => {
  it('a second runSync() and poll() while runSync() drives the Io', async () => {
    const io = new Io({ poolSlotCount: 64 });
    const h = io.runSync(() => {}, { onError });
    cleanups.push(async () => { await h.shutdown({ timeoutMs: 200 }); io.shutdown(); });
    const second = thrown(() => io.runSync(() => {}, { onError }));
    expect(second.kind).toBe('DriverRunning');
    expect(second.code).toBe('ZIO_DriverRunning');
    expect(second.message).toMatch(/already driving/);
    const polled = thrown(() => io.poll(0));
    expect(polled.kind).toBe('DriverRunning');
    // After stop() the Io may be polled again.
    h.stop();
    expect(io.poll(0)).toBeGreaterThanOrEqual(0);
  });
});

describe('TableFull', () => {
  it('connecting with maxConnections open: TableFull with the address', async () => {
    const server = net.createServer((s) => s.on('error', () => {}));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as net.AddressInfo).port;
    cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
    const io = new Io({ poolSlotCount: 64, maxConnections: 2 });
    let up = 0;
    const h = io.runSync((ev) => { if (ev.type === 'Connected') up++; }, { onError });
    cleanups.push(async () => { await h.shutdown({ timeoutMs: 200 }); io.shutdown(); });
    io.tcpConnect(`127.0.0.1:${port}`);
    io.tcpConnect(`127.0.0.1:${port}`);
    await until(() => up === 2, 5000, 'two connections');
    const e = thrown(() => io.tcpConnect(`127.0.0.1:${port}`));
    expect(e.kind).toBe('TableFull');
    expect(e.message).toMatch(/maxConnections=2/);
    expect(e.address).toBe(`127.0.0.1:${port}`);
  });

  it('listening with maxEndpoints endpoints open: TableFull with the address', () => {
    const io = new Io({ poolSlotCount: 64, maxEndpoints: 2 });
    cleanups.push(() => io.shutdown());
    io.tcpListen('127.0.0.1:0');
    io.tcpListen('127.0.0.1:0');
    const e = thrown(() => io.tcpListen('127.0.0.1:0'));
    expect(e.kind).toBe('TableFull');
    expect(e.message).toMatch(/maxEndpoints/);
    expect(e.address).toBe('127.0.0.1:0');
  });
});

describe('FeatureMissing', () => {
  it('requireFeature() with a gate the engine lacks names the gate and the rebuild', () => {
    expect(features()).toContain('tcp');
    expect(() => requireFeature('tcp', '@zero-io/tcp')).not.toThrow();
    const e = thrown(() => requireFeature('no-such-gate', '@zero-io/fake'));
    expect(e.kind).toBe('FeatureMissing');
    expect(e.feature).toBe('no-such-gate');
    expect(e.message).toContain("@zero-io/fake needs the engine feature 'no-such-gate'");
    expect(e.message).toMatch(/ZERO_IO_FEATURES=.*tcp.*,no-such-gate node tooling\/build-native\.mjs/);
  });

  it('importing @zero-io/tcp on an engine without the tcp gate throws FeatureMissing at import', () => {
    // ZERO_IO_ADDON (the suite's stand-in hook) points at a module: the engine this run uses, but features() without 'tcp'.
    const dir = mkdtempSync(join(tmpdir(), 'zio-nogate-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const real = process.env.ZERO_IO_NATIVE_PATH || join(entries.core, '..', '..', 'prebuilds', `linux-${process.arch}`, 'zero_io.node');
    writeFileSync(join(dir, 'addon.cjs'), `
      const real = require(${JSON.stringify(real)});
      const out = {};
      for (let o = real; o && o !== Object.prototype; o = Object.getPrototypeOf(o)) {
        for (const k of Object.getOwnPropertyNames(o)) {
          if (k === 'constructor' || k in out) continue;
          const v = real[k];
          out[k] = typeof v === 'function' ? v.bind(real) : v;
        }
      }
      out.features = () => real.features().filter((f) => f !== 'tcp');
      module.exports = out;`);
    writeFileSync(join(dir, 'main.mjs'), `
      const core = await import(${JSON.stringify(entries.core)});
      console.log(JSON.stringify({ features: core.features() }));
      try {
        await import(${JSON.stringify(entries.tcp)});
        console.log(JSON.stringify({ imported: true }));
      } catch (e) {
        console.log(JSON.stringify({ kind: e.kind, feature: e.feature, isIoError: core.isIoError(e), message: e.message }));
      }`);
    const r = spawnSync(process.execPath, [join(dir, 'main.mjs')], { encoding: 'utf8', timeout: 30_000, env: { ...process.env, ZERO_IO_ADDON: join(dir, 'addon.cjs') } });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const [first, second] = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(first.features).not.toContain('tcp');
    expect(second).toMatchObject({ kind: 'FeatureMissing', feature: 'tcp', isIoError: true });
    expect(second.message).toMatch(/@zero-io\/tcp needs the engine feature 'tcp'.*ZERO_IO_FEATURES=.*tcp node tooling\/build-native\.mjs/);
  });
});

describe('HandleRejected -1005 / -1006', () => {
  async function connected(config: ConstructorParameters<typeof Io>[0]) {
    const io = new Io(config);
    const ep = io.tcpListen('127.0.0.1:0');
    const port = io.localAddress(ep).port;
    let conn: ConnId | null = null;
    const rejected: { op: string; length: number; errorCode: number; reason: string; conn: ConnId }[] = [];
    const h = io.runSync((ev) => {
      if (ev.type === 'Connected') conn = ev.conn;
      if (ev.type === 'HandleRejected') rejected.push({ op: ev.op, length: ev.length, errorCode: ev.errorCode, reason: ev.reason, conn: ev.conn });
    }, { onError });
    cleanups.push(async () => { await h.shutdown({ timeoutMs: 200 }); io.shutdown(); });
    const client = net.connect(port, '127.0.0.1');
    const got: Buffer[] = [];
    client.on('data', (d) => got.push(d));
    client.on('error', () => {});
    cleanups.push(() => { client.destroy(); });
    await until(() => conn !== null, 5000, 'Connected');
    return { io, conn: conn as unknown as ConnId, rejected, got };
  }

  it('-1005: a copying IoHandle write when the pool has no free slot', async () => {
    const { io, conn, rejected, got } = await connected({ poolSlotCount: 64 });
    const handle = io.handle();
    const held: SendBuffer[] = [];
    cleanups.push(() => { for (const b of held) b.release(); });
    for (;;) {
      try { held.push(io.sendBuffer()); } catch (e) { expect(isIoError(e) && e.kind).toBe('PoolExhausted'); break; }
    }
    handle.streamWrite(conn, Buffer.alloc(5000, 1));
    await until(() => rejected.length === 1, 5000, 'HandleRejected');
    expect(rejected[0]).toMatchObject({ op: 'streamWrite', length: 5000, errorCode: -1005, conn });
    expect(rejected[0].reason).toMatch(/free slots/);  // 'the pool has no free slots for the write'
    // All-or-nothing: nothing of it was sent; with the slots back, the same write goes through.
    for (const b of held.splice(0)) b.release();
    handle.streamWrite(conn, Buffer.alloc(5000, 2));
    await until(() => got.reduce((n, b) => n + b.length, 0) === 5000, 5000, 'the second write');
    expect(Buffer.concat(got).equals(Buffer.alloc(5000, 2))).toBe(true);
    expect(rejected.length).toBe(1);
  });

  it('-1006: a streamWriteBuffer whose slot is not checked out when the shard takes it', async () => {
    const { io, conn, rejected, got } = await connected({ poolSlotCount: 256 });
    const handle = io.handle({ sendBuffers: 4 });
    // Through the public API a release travels behind the writes queued before it (FIFO), so
    // a buffer released right after its write is still sent whole:
    let buf: SendBuffer | null = null;
    await until(() => { try { buf = handle.sendBuffer(); return true; } catch { return false; } }, 5000, 'a reservoir slot');
    buf!.write(Buffer.from('sent before the release'));
    handle.streamWriteBuffer(conn, buf!);
    buf!.release();
    await until(() => Buffer.concat(got).toString() === 'sent before the release', 5000, 'the buffer write');
    expect(rejected).toEqual([]);
    // The engine's -1006 path: a write of a slot nobody holds (pushed as the handle would).
    const spare = io.sendBuffer();
    const slot = spare._slot;
    spare.release();
    const native = loadAddon() as unknown as { handleAttach(id: number): unknown; handlePush(q: unknown, op: number, conn: number, arg: number, data?: Uint8Array, count?: number): number };
    const WRITE_SLOT = 5;  // OP.WRITE_SLOT in packages/core/src/addon.ts (native/shard/handle.h kHandleWriteSlot)
    expect(native.handlePush(native.handleAttach(handle.id), WRITE_SLOT, conn, slot, undefined, 100)).toBe(0);
    await until(() => rejected.length === 1, 5000, 'HandleRejected');
    expect(rejected[0]).toEqual({ op: 'streamWriteBuffer', length: 100, errorCode: -1006, reason: 'the SendBuffer was released before the shard took it', conn });
  });
});

describe('Disconnected EPIPE (32)', () => {
  it('a write to a Unix socket whose peer has gone (reading paused, so the EOF is not seen first)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'zio-epipe-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const io = new Io({ poolSlotCount: 256 });
    const ep: EndpointId = io.udsListen(join(dir, 's'));
    let conn: ConnId | null = null;
    const ends: { errorCode: number; reason: string; origin: string }[] = [];
    const h = io.runSync((ev) => {
      if (ev.type === 'Connected') { conn = ev.conn; io.pauseRecv(ev.conn); }
      if (ev.type === 'Disconnected') ends.push({ errorCode: ev.errorCode, reason: ev.reason, origin: ev.origin });
    }, { onError });
    cleanups.push(async () => { await h.shutdown({ timeoutMs: 200 }); io.shutdown(); });
    expect(ep).toBeDefined();
    const c = net.connect(join(dir, 's'));
    await until(() => conn !== null, 5000, 'Connected');
    await new Promise<void>((r) => { c.on('close', () => r()); c.destroy(); });
    expect(io.streamWrite(conn as unknown as ConnId, Buffer.from('to nobody'))).toBe(9);
    await until(() => ends.length === 1, 5000, 'Disconnected');
    expect(ends[0]).toMatchObject({ errorCode: 32, origin: 'error' });
    expect(ends[0].reason).toMatch(/^EPIPE: broken pipe( \(peer .*\))?$/);
  });
});

describe('TLS codes on Disconnected.errorCode', () => {
  const pki = makePki();
  function tlsServer(extra: object = {}) {
    const r = recorder((ev, io) => { if (ev.type === 'StreamFrame') io.streamWrite(ev.conn, ev.data); });
    const ep = r.io.tcpListenWith({ host: '127.0.0.1', port: 0, tls: { cert: pki.serverCert, key: pki.serverKey, ...extra } });
    cleanups.push(r.close);
    return { ...r, port: r.io.localAddress(ep).port };
  }
  const disconnected = (log: ReturnType<typeof recorder>['log']) => log.filter((e) => e.type === 'Disconnected');

  it('-1010: a failed handshake (a plaintext HTTP request), TlsHandshakeFailed', async () => {
    const s = tlsServer();
    const c = net.connect(s.port, '127.0.0.1', () => c.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    c.on('error', () => {});
    cleanups.push(() => { c.destroy(); });
    await until(() => disconnected(s.log).length === 1, 5000, 'Disconnected');
    expect(disconnected(s.log)[0]).toMatchObject({ errorCode: -1010, kind: 'TlsHandshakeFailed', error: expect.stringMatching(/^TLS handshake failed: /) });
  });

  it('-1011: a TLS error after the handshake (renegotiation), TlsProtocolError', async () => {
    const s = tlsServer();
    const sock = await new Promise<tls.TLSSocket>((r) => {
      const x = tls.connect({ host: '127.0.0.1', port: s.port, ca: pki.ca, servername: 'localhost', maxVersion: 'TLSv1.2' }, () => r(x));
    });
    sock.on('error', () => {});
    cleanups.push(() => { sock.destroy(); });
    sock.renegotiate({}, () => {});
    await until(() => disconnected(s.log).length === 1, 5000, 'Disconnected');
    expect(disconnected(s.log)[0]).toMatchObject({ errorCode: -1011, kind: 'TlsProtocolError', origin: 'error', error: expect.stringMatching(/^TLS error: /) });
  });

  it('-1012: a handshake that does not finish in handshakeTimeoutMs, origin timeout', async () => {
    const s = tlsServer({ handshakeTimeoutMs: 200 });
    const c = net.connect(s.port, '127.0.0.1');  // says nothing
    c.on('error', () => {});
    cleanups.push(() => { c.destroy(); });
    await until(() => disconnected(s.log).length === 1, 5000, 'Disconnected');
    expect(disconnected(s.log)[0]).toMatchObject({ errorCode: -1012, kind: 'TlsHandshakeFailed', origin: 'timeout', error: 'TLS handshake timed out (handshakeTimeoutMs)' });
  });
});

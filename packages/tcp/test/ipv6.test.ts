// TCP over IPv6 loopback: zero-io listens on [::1]:0 for node:net clients, and connects to
// [::1]:port of a node:net server; addresses read as node:net reports them (family 'IPv6',
// address '::1', no brackets).
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { Io, type ConnId, type SocketAddress } from '@zero-io/core';
import '@zero-io/tcp';
import { echoHandler, onError, randomPayload, until } from './helpers.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

describe('TCP over IPv6', () => {
  it('listens on [::1]:0: a node:net client echoes byte-exact; local and peer addresses are IPv6 ::1', async () => {
    const io = new Io({ poolSlotCount: 1024 });
    const ep = io.tcpListen('[::1]:0');
    const local = io.localAddress(ep);
    expect(local.family).toBe('IPv6');
    expect(local.address).toBe('::1');
    expect(local.port).toBeGreaterThan(0);
    const echo = echoHandler();
    const seen: { type: string; conn: ConnId; peer: SocketAddress | null; endpoint: unknown; lookedUp?: SocketAddress | null }[] = [];
    const h = io.runSync((ev) => {
      if (ev.type === 'Connected') seen.push({ type: ev.type, conn: ev.conn, peer: ev.peer, endpoint: ev.endpoint, lookedUp: io.peerAddress(ev.conn) });
      if (ev.type === 'Disconnected') seen.push({ type: ev.type, conn: ev.conn, peer: ev.peer, endpoint: ev.endpoint });
      echo(ev, io);
    }, { onError });
    cleanups.push(async () => { await h.shutdown({ timeoutMs: 500 }); io.shutdown(); });

    const s = net.connect({ host: '::1', port: local.port });
    await new Promise<void>((res, rej) => { s.once('connect', res); s.once('error', rej); });
    expect(s.remoteFamily).toBe('IPv6');
    const payload = randomPayload(300_000, 6);
    const chunks: Buffer[] = [];
    let got = 0;
    const echoed = new Promise<void>((res) => s.on('data', (d) => { chunks.push(d); got += d.length; if (got >= payload.length) res(); }));
    s.write(payload);
    await echoed;
    expect(Buffer.concat(chunks).equals(payload)).toBe(true);

    const clientAddr = { family: 'IPv6', address: '::1', port: s.localPort };
    const c = seen.find((e) => e.type === 'Connected')!;
    expect(c.endpoint).toBe(ep);
    expect(c.peer).toEqual(clientAddr);
    expect(c.lookedUp).toEqual(clientAddr);
    s.end();
    await until(() => seen.some((e) => e.type === 'Disconnected'), 5000, 'Disconnected');
    const d = seen.find((e) => e.type === 'Disconnected')!;
    expect(d.conn).toBe(c.conn);
    expect(d.peer).toEqual(clientAddr);
  });

  it('connects to [::1]:port of a node:net server (tcpConnect and tcpConnectWith): echo, peer formatting', async () => {
    const server = net.createServer((sock) => {
      sock.on('data', (d) => sock.write(d));
      sock.on('error', () => {});
    });
    const remotes: { address?: string; family?: string; port?: number }[] = [];
    server.on('connection', (sock) => remotes.push({ address: sock.remoteAddress, family: sock.remoteFamily, port: sock.remotePort }));
    await new Promise<void>((res) => server.listen(0, '::1', () => res()));
    const port = (server.address() as net.AddressInfo).port;
    cleanups.push(() => new Promise<void>((res) => server.close(() => res())));

    const io = new Io({ poolSlotCount: 1024 });
    const connected = new Map<ConnId, { peer: SocketAddress | null; endpoint: unknown }>();
    const bytes = new Map<ConnId, Buffer[]>();
    const disconnected: { conn: ConnId; reason: string }[] = [];
    const h = io.runSync((ev) => {
      if (ev.type === 'Connected') {
        connected.set(ev.conn, { peer: ev.peer, endpoint: ev.endpoint });
        io.streamWrite(ev.conn, Buffer.from(`hello over v6 from ${ev.conn}`));
      } else if (ev.type === 'StreamFrame') {
        const l = bytes.get(ev.conn) ?? [];
        l.push(Buffer.from(ev.data));
        bytes.set(ev.conn, l);
      } else if (ev.type === 'Disconnected') disconnected.push({ conn: ev.conn, reason: ev.reason });
    }, { onError });
    cleanups.push(async () => { await h.shutdown({ timeoutMs: 500 }); io.shutdown(); });

    const a = io.tcpConnect(`[::1]:${port}`);
    const b = io.tcpConnectWith({ host: '::1', port });
    const text = (c: ConnId) => Buffer.concat(bytes.get(c) ?? []).toString();
    await until(() => text(a) === `hello over v6 from ${a}` && text(b) === `hello over v6 from ${b}`, 5000, 'both echoes');
    expect(disconnected).toEqual([]);
    for (const c of [a, b]) {
      expect(connected.get(c)).toEqual({ peer: { family: 'IPv6', address: '::1', port }, endpoint: null });
      expect(io.peerAddress(c)).toEqual({ family: 'IPv6', address: '::1', port });
    }
    // The server saw two IPv6 clients from ::1.
    expect(remotes.length).toBe(2);
    for (const r of remotes) {
      expect(r.family).toBe('IPv6');
      expect(r.address).toBe('::1');
    }
    io.close(a);
    io.close(b);
    await until(() => disconnected.length === 2, 5000, 'both Disconnected');
  });

  it('a refused [::1] connect names the IPv6 address, bracketed, in its reason', async () => {
    // A port with nothing listening: bind one, read it, close it.
    const probe = net.createServer();
    await new Promise<void>((res) => probe.listen(0, '::1', () => res()));
    const port = (probe.address() as net.AddressInfo).port;
    await new Promise<void>((res) => probe.close(() => res()));
    const io = new Io({ poolSlotCount: 256 });
    const ends: { errorCode: number; reason: string; peer: SocketAddress | null }[] = [];
    const h = io.runSync((ev) => {
      if (ev.type === 'Disconnected') ends.push({ errorCode: ev.errorCode, reason: ev.reason, peer: ev.peer });
    }, { onError });
    cleanups.push(async () => { await h.shutdown({ timeoutMs: 500 }); io.shutdown(); });
    io.tcpConnect(`[::1]:${port}`);
    await until(() => ends.length === 1, 5000, 'Disconnected');
    expect(ends[0].errorCode).toBe(111);
    expect(ends[0].reason).toContain(`[::1]:${port}`);
    expect(ends[0].peer).toEqual({ family: 'IPv6', address: '::1', port });
  });
});

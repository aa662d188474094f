// 0-RTT from our client: a session ticket kept from one connection resumes the next, whose
// first bytes go before the handshake finishes (earlyDataSend); servers that accept, refuse or
// cannot read the ticket; nothing is lost when the early data is refused.
import { afterAll, describe, expect, it } from 'vitest';
import { Io, type ConnId, type EndpointId } from '@zero-io/core';
import '@zero-io/quic';
import { echoServer, listener, makePki, until } from './helpers.js';

const pki = makePki();
const tls = { ca: pki.ca, servername: 'localhost' };

/** One connection to `port` that waits for the server's ticket, then closes; the ticket. */
async function fetchTicket(io: Io, port: number, clients: Set<ConnId>, state: { onConnected?: (c: ConnId) => void }): Promise<Uint8Array> {
  let connected = false;
  const c = io.quicConnectWith({ host: '127.0.0.1', port, tls });
  clients.add(c);
  state.onConnected = (conn) => { if (conn === c) connected = true; };
  await until(() => connected && io.sessionTicket(c) !== null, 5000, 'a session ticket');
  const t = io.sessionTicket(c)!;
  io.quicClose(c);
  return t;
}

describe('QUIC 0-RTT from our client', () => {
  const handles: { shutdown(): Promise<void> }[] = [];
  afterAll(async () => {
    for (const h of handles) await h.shutdown();
  });

  function serve(extra: Record<string, unknown>, closeAfterAnswer = false) {
    const { io, ep, port } = listener(pki, extra);
    const clients = new Set<ConnId>();
    const echo = echoServer(io, clients);
    const state: { onConnected?: (c: ConnId) => void } = {};
    const serverEarly: boolean[] = [];
    const echoed = new Map<ConnId, string>();
    const ended = new Map<ConnId, { code: number; origin: string }>();
    const h = io.runSync((ev) => {
      if (ev.type === 'Connected' && !clients.has(ev.conn)) serverEarly.push(io.quicEarlyData(ev.conn).earlyData);
      if (echo(ev)) {
        // The answer is queued (echo ends the stream after the request's FIN): close gracefully.
        if (closeAfterAnswer && ev.type === 'StreamFrame' && ev.fin) io.closeGraceful(ev.conn);
        return;
      }
      if (ev.type === 'Connected') state.onConnected?.(ev.conn);
      if (ev.type === 'StreamFrame') echoed.set(ev.conn, (echoed.get(ev.conn) ?? '') + Buffer.from(ev.data).toString());
      if (ev.type === 'Disconnected') ended.set(ev.conn, { code: ev.errorCode, origin: ev.origin });
    }, { onError: (e) => { throw e; } });
    handles.push(h);
    return { io, ep: ep as EndpointId, port, clients, state, serverEarly, echoed, ended };
  }

  it('a ticket from the first connection: the second sends before Connected and the server accepts it', async () => {
    const s = serve({ earlyData: true });
    const ticket = await fetchTicket(s.io, s.port, s.clients, s.state);
    expect(ticket.length).toBeGreaterThan(32);
    const c = s.io.quicConnectWith({ host: '127.0.0.1', port: s.port, tls, sessionTicket: ticket });
    s.clients.add(c);
    expect(s.io.quicEarlyData(c)).toEqual({ earlyData: true, reason: 'in early data' });
    expect(s.io.earlyDataSend(c, 0, Buffer.from('hello before the handshake'), true)).toBe(26);
    expect(s.io.openStream(c)).toBe(4);  // 0 is taken by the early write
    await until(() => s.echoed.get(c) === 'hello before the handshake', 5000, 'the echo of the early data');
    expect(s.io.quicEarlyData(c)).toEqual({ earlyData: true, reason: 'accepted' });
    expect(s.io.tlsInfo(c)).toMatchObject({ state: 'open', resumed: true, version: 'TLSv1.3' });  // a resumption
    expect(s.serverEarly).toEqual([false, true]);  // the second connection was served from its 0-RTT
    s.io.quicClose(c);
  });

  it('a server that answers a 0-RTT request and closes gracefully at once: the answer arrives, then code 0', async () => {
    const s = serve({ earlyData: true }, true);
    const ticket = await fetchTicket(s.io, s.port, s.clients, s.state);
    const c = s.io.quicConnectWith({ host: '127.0.0.1', port: s.port, tls, sessionTicket: ticket });
    s.clients.add(c);
    expect(s.io.earlyDataSend(c, 0, Buffer.from('early request'), true)).toBe(13);
    await until(() => s.ended.has(c), 5000, 'the server to close');
    expect(s.echoed.get(c)).toBe('early request');
    expect(s.ended.get(c)).toEqual({ code: 0, origin: 'peer' });
    expect(s.serverEarly.at(-1)).toBe(true);
  });

  it('a server without earlyData: its ticket resumes but allows no early data (earlyDataSend says so)', async () => {
    const s = serve({});
    const ticket = await fetchTicket(s.io, s.port, s.clients, s.state);
    const c = s.io.quicConnectWith({ host: '127.0.0.1', port: s.port, tls, sessionTicket: ticket });
    s.clients.add(c);
    expect(s.io.quicEarlyData(c)).toEqual({ earlyData: false, reason: expect.stringMatching(/the session ticket allows no early data/) });
    expect(() => s.io.earlyDataSend(c, 0, Buffer.from('x'))).toThrow(/0-RTT is not possible/);
    let connected = false;
    s.state.onConnected = (conn) => { if (conn === c) connected = true; };
    await until(() => connected, 5000, 'the resumed handshake');
    expect(s.io.earlyDataSend(c, 0, Buffer.from('after'), true)).toBe(5);  // an ordinary write now
    await until(() => s.echoed.get(c) === 'after', 5000, 'the echo');
    s.io.quicClose(c);
  });

  it('a host name: no 0-RTT while its addresses are resolved and raced (quicEarlyData and earlyDataSend say why); the ticket still resumes', async () => {
    const s = serve({ earlyData: true });
    const ticket = await fetchTicket(s.io, s.port, s.clients, s.state);
    const c = s.io.quicConnectWith({ host: 'localhost', family: 4, port: s.port, tls, sessionTicket: ticket });
    s.clients.add(c);
    const why = /the host name's addresses are still being resolved and raced — to send early data, resolve the name first and connect to an address/;
    expect(s.io.quicEarlyData(c)).toEqual({ earlyData: false, reason: expect.stringMatching(why) });
    expect(() => s.io.earlyDataSend(c, 0, Buffer.from('x'))).toThrow(why);
    expect(() => s.io.openStream(c)).toThrow(/the handshake has not finished \(wait for Connected\)/);
    let connected = false;
    s.state.onConnected = (conn) => { if (conn === c) connected = true; };
    await until(() => connected, 5000, 'the handshake');
    expect(s.io.tlsInfo(c)!.resumed).toBe(true);
    s.io.quicClose(c);
  });

  it('a server that cannot read the ticket refuses the early data: quiche sends it again, nothing is lost', async () => {
    const a = serve({ earlyData: true });
    const ticket = await fetchTicket(a.io, a.port, a.clients, a.state);
    const b = serve({ earlyData: true });  // other ticket keys
    const c = b.io.quicConnectWith({ host: '127.0.0.1', port: b.port, tls, sessionTicket: ticket });
    b.clients.add(c);
    expect(b.io.earlyDataSend(c, 0, Buffer.from('sent early, refused'), true)).toBe(19);
    await until(() => b.echoed.get(c) === 'sent early, refused', 5000, 'the echo of the resent bytes');
    expect(b.io.quicEarlyData(c).earlyData).toBe(false);
    expect(b.io.quicEarlyData(c).reason).not.toBe('accepted');
    b.io.quicClose(c);
  });

  it('setSessionTicket works before the first packet and refuses after; bad tickets fall back to a full handshake', async () => {
    const s = serve({ earlyData: true });
    const ticket = await fetchTicket(s.io, s.port, s.clients, s.state);
    const up = new Set<ConnId>();
    s.state.onConnected = (conn) => { up.add(conn); };
    const late = s.io.quicConnectWith({ host: '127.0.0.1', port: s.port, tls });
    s.clients.add(late);
    await until(() => s.io.connStats(late).bytesSent > 0, 5000, 'the first packet');
    expect(() => s.io.setSessionTicket(late, ticket)).toThrow(/first packet/);
    const junk = s.io.quicConnectWith({ host: '127.0.0.1', port: s.port, tls, sessionTicket: new Uint8Array([1, 2, 3]) });
    s.clients.add(junk);
    expect(s.io.quicEarlyData(junk)).toEqual({ earlyData: false, reason: 'no 0-RTT: the session ticket was refused (malformed)' });
    await until(() => up.has(late) && up.has(junk), 5000, 'both handshakes');
    expect(() => s.io.quicConnectWith({ host: '127.0.0.1', port: s.port, tls, sessionTicket: 'x' as never })).toThrow(/sessionTicket must be a Uint8Array/);
    s.io.quicClose(late);
    s.io.quicClose(junk);
  });
});

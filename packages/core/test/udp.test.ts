import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { Io, IoError, MulticastGroup, UdpAddress, type EndpointId, type Event } from '@zero-io/core';
import { setUdpGsoForTesting } from '@zero-io/core/internal';
import { onError } from './handler-errors.js';

const live: Io[] = [];
const sockets: dgram.Socket[] = [];
afterEach(() => {
  for (const s of sockets.splice(0)) { try { s.close(); } catch { /* closed */ } }
  for (const io of live.splice(0)) io.shutdown();
});

function newIo(config: ConstructorParameters<typeof Io>[0] = {}): Io {
  const io = new Io(config);
  live.push(io);
  return io;
}

async function peer(type: 'udp4' | 'udp6' = 'udp4', host = type === 'udp4' ? '127.0.0.1' : '::1'): Promise<dgram.Socket> {
  const s = dgram.createSocket(type);
  sockets.push(s);
  s.bind(0, host);
  await once(s, 'listening');
  return s;
}

/** Polls the Io (poll mode) until `done()` or the deadline, handing each event to `on`. */
async function pump(io: Io, on: (ev: Event) => void, done: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!done()) {
    if (Date.now() > deadline) throw new Error('timed out waiting for datagrams');
    const n = io.poll(0);
    for (let i = 0; i < n; i++) on(io.nextEvent()!);
    if (n === 0) await new Promise((r) => setImmediate(r));
  }
}

/** Starts an echo endpoint driven by runSync that replies to each datagram's sender. */
function echo(io: Io, addr = '127.0.0.1:0'): { ep: EndpointId; port: number } {
  const ep = io.udpBind(addr);
  io.runSync((ev) => {
    if (ev.type === 'UdpRecv') io.udpSendBytes(ev.endpoint, ev, io.poolBytes, ev.offset, ev.length);
  }, { onError });
  return { ep, port: io.localAddress(ep).port };
}

describe('UDP', () => {
  it('echoes datagrams of random sizes byte-exact to a node:dgram peer', async () => {
    const io = newIo();
    const { port } = echo(io);
    const c = await peer();
    const sent = Array.from({ length: 200 }, (_, i) => randomBytes(i === 0 ? 0 : 1 + Math.floor(Math.random() * 2000)));
    const got: Buffer[] = [];
    c.on('message', (m) => got.push(m));
    for (const d of sent) {
      c.send(d, port, '127.0.0.1');
      await new Promise((r) => setImmediate(r));
    }
    const deadline = Date.now() + 5000;
    while (got.length < sent.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    expect(got.length).toBe(sent.length);
    // UDP on loopback keeps order for one sender.
    for (let i = 0; i < sent.length; i++) expect(got[i].equals(sent[i])).toBe(true);
    const s = io.udpStats(io.udpBind('127.0.0.1:0'));
    expect(s.maxReceive).toBe(2048 - 44);
  });

  it('reports the sender: IPv4, IPv6, and IPv4-mapped on a dual-stack socket', async () => {
    const io = newIo();
    const ep = io.udpBind('[::]:0');
    const port = io.localAddress(ep).port;
    const c4 = await peer('udp4');
    const c6 = await peer('udp6');
    c4.send('four', port, '127.0.0.1');
    c6.send('six', port, '::1');
    const from = new Map<string, UdpAddress>();
    await pump(io, (ev) => {
      if (ev.type === 'UdpRecv') from.set(Buffer.from(ev.data).toString(), ev.from);
    }, () => from.size === 2);
    expect(from.get('four')!.address).toBe('::ffff:127.0.0.1');
    expect(from.get('four')!.port).toBe(c4.address().port);
    expect(from.get('six')!.address).toBe('::1');
    expect(from.get('six')!.family).toBe('IPv6');
    expect(String(from.get('six'))).toBe(`[::1]:${c6.address().port}`);
    // The copy outlives the poll and is a valid destination.
    const back = once(c6, 'message');
    io.udpSendBytes(ep, from.get('six')!, Buffer.from('reply'));
    io.poll(0);
    expect((await back)[0].toString()).toBe('reply');
  });

  it('sends to { address, port } and UdpAddress.of, IPv4 and IPv6', async () => {
    const io = newIo();
    const ep4 = io.udpBind('127.0.0.1:0');
    const ep6 = io.udpBind('[::1]:0');
    const c4 = await peer('udp4');
    const c6 = await peer('udp6');
    const m4 = once(c4, 'message');
    const m6 = once(c6, 'message');
    io.udpSendBytes(ep4, { address: '127.0.0.1', port: c4.address().port }, Buffer.from('a'));
    io.udpSendBytes(ep6, UdpAddress.of('::1', c6.address().port), Buffer.from('xbcx'), 1, 2);
    io.poll(0);
    const [d4, r4] = await m4;
    const [d6, r6] = await m6;
    expect(d4.toString()).toBe('a');
    expect(r4.port).toBe(io.localAddress(ep4).port);
    expect(d6.toString()).toBe('bc');
    expect(r6.address).toBe('::1');
    await pump(io, () => {}, () => io.udpStats(ep4).datagramsSent === 1 && io.udpStats(ep6).datagramsSent === 1);
  });

  it('marks and counts datagrams longer than a slot as truncated', async () => {
    const io = newIo({ poolSlotSize: 1200 });
    const ep = io.udpBind('127.0.0.1:0');
    const c = await peer();
    c.send(Buffer.alloc(3000, 7), io.localAddress(ep).port, '127.0.0.1');
    let seen: { length: number; truncated: boolean } | undefined;
    await pump(io, (ev) => {
      if (ev.type === 'UdpRecv') seen = { length: ev.length, truncated: ev.truncated };
    }, () => seen !== undefined);
    expect(seen).toEqual({ length: 1200 - 44, truncated: true });
    expect(io.udpStats(ep).datagramsTruncated).toBe(1);
    expect(io.poolStats().counters.udpRxTruncated).toBe(1);
  });

  for (const path of ['GSO', 'one send per segment (no GSO)'] as const) {
    it(`segments a train into datagrams the peer receives one by one: ${path}`, async () => {
      if (path === 'GSO') expect(Io.probe().udpGso).toBe(true);  // Linux >= 4.18 has it
      setUdpGsoForTesting(path === 'GSO' ? undefined : false);
      try {
        const io = newIo();
        const ep = io.udpBind('127.0.0.1:0');
        const c = await peer();
        const got: Buffer[] = [];
        c.on('message', (m) => got.push(m));
        const data = randomBytes(10 * 1000 + 321);
        io.udpSendSegments(ep, { address: '127.0.0.1', port: c.address().port }, data, 1000);
        io.poll(0);
        const deadline = Date.now() + 3000;
        while (got.length < 11 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
        expect(got.map((g) => g.length)).toEqual([...new Array(10).fill(1000), 321]);
        expect(Buffer.concat(got).equals(data)).toBe(true);
        // GSO: the train is one sendmsg (one completion for 11 datagrams); without: 11.
        const want = path === 'GSO' ? 1 : 11;
        await pump(io, () => {}, () => io.udpStats(ep).datagramsSent >= want);
        expect(io.udpStats(ep).datagramsSent).toBe(want);
      } finally {
        setUdpGsoForTesting(undefined);
      }
    });
  }

  it('survives RX buffer exhaustion: parks on ENOBUFS, re-arms, loses nothing the kernel kept', async () => {
    const io = newIo({ poolSlotCount: 16, maxEventsPerPoll: 4 });  // 8 RX slots
    const ep = io.udpBindWith({ host: '127.0.0.1', port: 0, recvBufferSize: 1 << 20 });
    const c = await peer();
    const n = 60;
    for (let i = 0; i < n; i++) c.send(Buffer.from(`d${i}`), io.localAddress(ep).port, '127.0.0.1');
    await new Promise((r) => setTimeout(r, 100));
    const got: string[] = [];
    await pump(io, (ev) => {
      if (ev.type === 'UdpRecv') got.push(Buffer.from(ev.data).toString());
    }, () => got.length === n);
    expect(got).toEqual(Array.from({ length: n }, (_, i) => `d${i}`));
    expect(io.poolStats().counters.rxEnobufs).toBeGreaterThan(0);
  });

  it('refuses sends beyond the send queue with PoolExhausted, and recovers after a poll', async () => {
    const io = newIo();
    const ep = io.udpBindWith({ host: '127.0.0.1', port: 0, sendQueue: 4 });
    const c = await peer();
    const to = { address: '127.0.0.1', port: c.address().port };
    for (let i = 0; i < 4; i++) io.udpSendBytes(ep, to, Buffer.from('x'));
    let err: unknown;
    try { io.udpSendBytes(ep, to, Buffer.from('x')); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(IoError);
    expect((err as IoError).kind).toBe('PoolExhausted');
    expect((err as IoError).pool).toBe('TxRing');
    await pump(io, () => {}, () => io.udpStats(ep).sendQueued === 0);
    io.udpSendBytes(ep, to, Buffer.from('x'));
    expect(io.poolStats().counters.udpTxRefused).toBe(1);
  });

  it('refuses sends when the pool has no free slot (PoolExhausted FreeStack)', async () => {
    const io = newIo({ poolSlotCount: 16, poolSlotSize: 1200 });  // 8 free-stack slots
    const ep = io.udpBind('127.0.0.1:0');
    const c = await peer();
    const to = { address: '127.0.0.1', port: c.address().port };
    let err: IoError | undefined;
    let sent = 0;
    try {
      for (let i = 0; i < 20; i++) { io.udpSendBytes(ep, to, Buffer.alloc(1000)); sent++; }
    } catch (e) { err = e as IoError; }
    expect(sent).toBe(8);
    expect(err?.kind).toBe('PoolExhausted');
    expect(err?.pool).toBe('FreeStack');
    await pump(io, () => {}, () => io.poolStats().freeStack.current === 0);
  });

  it('counts asynchronous send failures (EACCES: broadcast without SO_BROADCAST)', async () => {
    const io = newIo();
    const ep = io.udpBind('0.0.0.0:0');
    io.udpSendBytes(ep, { address: '255.255.255.255', port: 9 }, Buffer.from('x'));
    await pump(io, () => {}, () => io.udpStats(ep).sendErrors === 1);
    expect(io.udpStats(ep).lastSendErrno).toBe(13);
    expect(io.udpStats(ep).datagramsSent).toBe(0);
  });

  it('gives clear errors for misuse', async () => {
    const io = newIo();
    const ep = io.udpBind('127.0.0.1:0');
    const to = { address: '127.0.0.1', port: 9 };
    const kind = (f: () => unknown): string | undefined => {
      try { f(); } catch (e) { return (e as IoError).kind; }
      return undefined;
    };
    expect(kind(() => io.udpSendBytes(ep, to, Buffer.alloc(70000)))).toBe('InvalidArgument');
    expect(kind(() => io.udpSendBytes(ep, { address: 'example.com', port: 9 }, Buffer.alloc(1)))).toBe('InvalidAddress');
    expect(kind(() => io.udpSendBytes(ep, to, Buffer.alloc(4), 2, 9))).toBe('InvalidArgument');
    expect(kind(() => io.udpBindWith({ port: 0, bogus: 1 } as never))).toBe('InvalidConfig');
    expect(kind(() => io.udpBind('example.com:1'))).toBe('InvalidAddress');
    expect(kind(() => io.multicastJoin(ep, MulticastGroup.anySource('10.0.0.1')))).toBe('InvalidAddress');
    expect(kind(() => io.multicastJoin(ep, MulticastGroup.anySource('239.1.2.3', 'no-such-if0')))).toBe('InvalidAddress');
    const taken = io.udpBind('127.0.0.1:0');
    let inUse: IoError | undefined;
    try { io.udpBind(`127.0.0.1:${io.localAddress(taken).port}`); } catch (e) { inUse = e as IoError; }
    expect(inUse?.kind).toBe('SyscallFailed');
    expect(inUse?.code).toBe('EADDRINUSE');
    io.closeEndpoint(ep);
    await pump(io, () => {}, () => kind(() => io.udpStats(ep)) === 'InvalidConnId');
    expect(kind(() => io.udpSendBytes(ep, to, Buffer.alloc(1)))).toBe('InvalidConnId');
  });

  it('closes an endpoint cleanly: the port is free again', async () => {
    const io = newIo();
    const ep = io.udpBind('127.0.0.1:0');
    const port = io.localAddress(ep).port;
    io.closeEndpoint(ep);
    const gone = (f: () => unknown): boolean => { try { f(); return false; } catch (e) { return (e as IoError).kind === 'InvalidConnId'; } };
    expect(gone(() => io.localAddress(ep))).toBe(true);  // the id is dead at once
    // The socket itself closes on a later tick (after queued datagrams); udpStats answers until then.
    await pump(io, () => {}, () => gone(() => io.udpStats(ep)));
    const again = io.udpBind(`127.0.0.1:${port}`);
    expect(io.localAddress(again).port).toBe(port);
  });

  it('joins an any-source group on loopback and receives our own multicast', async () => {
    const io = newIo();
    const rx = io.udpBindWith({ host: '0.0.0.0', port: 0, reuseAddr: true });
    const port = io.localAddress(rx).port;
    const tx = io.udpBindWith({ host: '127.0.0.1', port: 0, multicastInterface: 'lo', multicastLoopback: true });
    io.multicastJoin(rx, MulticastGroup.anySource('239.255.7.7', 'lo'));
    io.udpSendBytes(tx, { address: '239.255.7.7', port }, Buffer.from('mc'));
    let got = '';
    await pump(io, (ev) => { if (ev.type === 'UdpRecv') got = Buffer.from(ev.data).toString(); }, () => got !== '');
    expect(got).toBe('mc');
    io.multicastLeave(rx, MulticastGroup.anySource('239.255.7.7', 'lo'));
  });
});

describe('UdpAddress', () => {
  it('parses and prints IPv4 and IPv6 (RFC 5952) forms', () => {
    const cases: [string, string][] = [
      ['1.2.3.4', '1.2.3.4'],
      ['::', '::'],
      ['::1', '::1'],
      ['2001:db8:0:0:0:0:2:1', '2001:db8::2:1'],
      ['2001:db8::1:0:0:1', '2001:db8::1:0:0:1'],
      ['2001:0:0:1:0:0:0:1', '2001:0:0:1::1'],
      ['FE80::ABCD', 'fe80::abcd'],
      ['::ffff:10.0.0.1', '::ffff:10.0.0.1'],
      ['1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8'],
    ];
    for (const [input, want] of cases) expect(UdpAddress.of(input, 80).address).toBe(want);
    const a = UdpAddress.of('::1', 443);
    expect(a.equals(UdpAddress.of('0:0:0:0:0:0:0:1', 443))).toBe(true);
    expect(a.equals(UdpAddress.of('::1', 444))).toBe(false);
    expect(JSON.stringify(UdpAddress.of('1.2.3.4', 5))).toBe('{"address":"1.2.3.4","port":5,"family":"IPv4"}');
    expect(() => UdpAddress.of('1.2.3.4', 70000)).toThrowError(/port/);
  });
});

describe('UDP GRO', () => {
  it('receives a GSO train as one event with segmentSize, a lone datagram with 0, and a 65507-byte datagram whole', async () => {
    const rx = newIo();
    const ep = rx.udpBindWith({ host: '127.0.0.1', port: 0, gro: true });
    expect(rx.udpStats(ep)).toMatchObject({ gro: true, maxReceive: 68 * 1024 - 24 - 48 });
    const to = { address: '127.0.0.1', port: rx.localAddress(ep).port };
    const tx = newIo();
    const src = tx.udpBind('127.0.0.1:0');
    const train = randomBytes(10 * 1000 + 500);  // ten 1000-byte segments and a 500-byte tail
    tx.udpSendSegments(src, to, train, 1000);
    const big = randomBytes(65507);
    const lone = await peer();
    const got: { seg: number; data: Buffer; from: number }[] = [];
    let sentRest = false;
    for (let i = 0; i < 3; i++) tx.poll(0);  // poll mode: the send goes out with the sender's tick
    await pump(rx, (ev) => {
      if (ev.type !== 'UdpRecv') return;
      got.push({ seg: ev.segmentSize, data: Buffer.from(ev.data), from: ev.from.port });
      if (!sentRest) {
        sentRest = true;
        lone.send(Buffer.from('lone'), to.port, '127.0.0.1');
        lone.send(big, to.port, '127.0.0.1');
      }
    }, () => got.length >= 3);
    expect(got[0].seg).toBe(1000);
    expect(got[0].data.equals(train)).toBe(true);
    expect(got[0].from).toBe(tx.localAddress(src).port);
    expect(got[1]).toMatchObject({ seg: 0, from: lone.address().port });
    expect(got[1].data.toString()).toBe('lone');
    expect(got[2].seg).toBe(0);
    expect(got[2].data.equals(big)).toBe(true);
    const c = rx.poolStats().counters;
    expect([c.udpRxGroTrains, c.udpRxGroSegments, c.udpRxTruncated]).toEqual([1, 11, 0]);
  });

  it('keeps receiving when every GRO buffer is lent out (ENOBUFS parks the endpoint, buffers return, nothing lost)', async () => {
    const rx = newIo({ udpGroBuffers: 2 });
    const ep = rx.udpBindWith({ host: '127.0.0.1', port: 0, gro: true });
    const s = await peer();
    const port = rx.localAddress(ep).port;
    for (let i = 0; i < 40; i++) s.send(Buffer.from(`d${i}`), port, '127.0.0.1');
    const seen: string[] = [];
    await pump(rx, (ev) => { if (ev.type === 'UdpRecv') seen.push(Buffer.from(ev.data).toString()); }, () => seen.length >= 40);
    expect(seen).toEqual(Array.from({ length: 40 }, (_, i) => `d${i}`));
    expect(rx.poolStats().counters.rxEnobufs).toBeGreaterThan(0);  // the path under test was taken
  });

  it('validates udpGroBuffers and refuses gro without GRO buffers', () => {
    expect(() => new Io({ udpGroBuffers: 3 })).toThrow(/udpGroBuffers must be a power of two/);
    const io = newIo({ udpGroBuffers: 0 });
    expect(() => io.udpBindWith({ port: 0, gro: true })).toThrow(/Config\.udpGroBuffers is 0/);
  });
});

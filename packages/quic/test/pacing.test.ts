// Pacing: quiche's BBRv2 gives each packet a send time (send_info.at); with pacing 'wheel' a
// packet due later waits in its connection and leaves from the shard's timer wheel, so a
// maxPacingRate caps the rate on the wire; 'off' sends at once; 'txtime' hands the time to the
// kernel where the fq qdisc keeps it and otherwise falls back to the wheel, saying why.
import { afterAll, describe, expect, it } from 'vitest';
import type { ConnId } from '@zero-io/core';
import '@zero-io/quic';
import type { QuicListenConfig } from '@zero-io/quic';
import { listener, makePki, pattern, sha256, until } from './helpers.js';

const pki = makePki();
const tls = { ca: pki.ca, servername: 'localhost' };
const SIZE = 3 << 20;
const RATE = 2 << 20;  // bytes per second (quiche allows 1.25x of it)

/** A download of SIZE bytes from a listener with `opts`; the time it took and the listener's stats. */
async function download(opts: Partial<QuicListenConfig>, handles: { shutdown(): Promise<void> }[]) {
  const { io, ep, port } = listener(pki, opts);
  const payload = pattern(SIZE, 17);
  const sent = new Map<ConnId, number>();
  const pump = (conn: ConnId) => {
    let at = sent.get(conn)!;
    while (at < SIZE) {
      const n = io.streamWrite(conn, 1, payload.subarray(at));
      if (n === 0) break;
      at += n;
    }
    sent.set(conn, at);
    if (at === SIZE) { io.streamEnd(conn, 1); sent.delete(conn); }
  };
  const got: Buffer[] = [];
  let done = false, t0 = 0;
  let client = 0 as ConnId;
  const h = io.runSync((ev) => {
    if (ev.conn === client) {
      if (ev.type === 'StreamFrame') { got.push(Buffer.from(ev.data)); if (ev.fin) done = true; }
      return;
    }
    if (ev.type === 'Connected') { t0 = Date.now(); sent.set(ev.conn, 0); pump(ev.conn); }
    if (ev.type === 'Writable' && sent.has(ev.conn)) pump(ev.conn);
  }, { onError: (e) => { throw e; } });
  handles.push(h);
  client = io.quicConnectWith({ host: '127.0.0.1', port, tls });
  await until(() => done, 30_000, 'the download');
  const ms = Date.now() - t0;
  expect(sha256(Buffer.concat(got))).toBe(sha256(payload));
  io.close(client);
  return { ms, stats: io.quicStats(ep)! };
}

describe('QUIC pacing', () => {
  const handles: { shutdown(): Promise<void> }[] = [];
  afterAll(async () => {
    for (const h of handles) await h.shutdown();
  });

  it("'wheel' keeps quiche's send times: BBRv2 with maxPacingRate 2 MiB/s takes its time on the wire", async () => {
    const { ms, stats } = await download({ congestionControl: 'bbr2', maxPacingRate: RATE, pacing: 'wheel' }, handles);
    expect(stats.pacing).toBe('wheel');
    expect(stats.pacedWaits).toBeGreaterThan(10);
    // 3 MiB at no more than 1.25 x 2 MiB/s: at least 1.2 s (a lower bound a slow machine cannot break).
    expect(ms).toBeGreaterThanOrEqual(1000);
  });

  it("'off' sends every packet when quiche makes it (no waits), the same bytes", async () => {
    const { stats } = await download({ congestionControl: 'bbr2', maxPacingRate: RATE, pacing: 'off' }, handles);
    expect(stats.pacing).toBe('off');
    expect(stats.pacedWaits).toBe(0);
  });

  it("'txtime' is used where a qdisc keeps send times, and falls back to the wheel (saying why) where none does", async () => {
    const { stats, ms } = await download({ congestionControl: 'bbr2', maxPacingRate: RATE, pacing: 'txtime' }, handles);
    if (stats.pacingNote === '') {
      expect(stats.pacing).toBe('txtime');
    } else {
      // This kernel has no sch_fq (CONFIG_NET_SCH_FQ not set).
      expect(stats.pacing).toBe('wheel');
      expect(stats.pacingNote).toMatch(/not every interface has the fq qdisc at its root/);
      expect(stats.pacedWaits).toBeGreaterThan(10);
      expect(ms).toBeGreaterThanOrEqual(1000);
    }
  });

  it('refuses an unknown pacing mode', () => {
    const { io } = listener(pki);
    expect(() => io.quicListenWith({ addr: '127.0.0.1:0', tls: { cert: pki.serverCert, key: pki.serverKey }, pacing: 'fast' as 'off' }))
      .toThrow(/pacing is 'wheel', 'txtime' or 'off'/);
    io.shutdown();
  });
});

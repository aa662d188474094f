import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { Io, IoError, type ConnId } from '@zero-io/core';
import '@zero-io/tcp';
import { onError, until } from './helpers.js';

describe('connStats', () => {
  it('reports TCP_INFO and byte counters of a live connection, and refuses stale ids', async () => {
    const io = new Io();
    const ep = io.tcpListen('127.0.0.1:0');
    let conn: ConnId | undefined;
    let echoed = 0;
    const h = io.runSync((ev) => {
      if (ev.type === 'Connected') conn = ev.conn;
      if (ev.type === 'StreamFrame') echoed += io.streamWrite(ev.conn, ev.data);
    }, { onError });
    try {
      const client = net.connect(io.localAddress(ep).port, '127.0.0.1');
      let back = 0;
      client.on('data', (d) => { back += d.length; });
      client.write(Buffer.alloc(100_000, 1));
      await until(() => back === 100_000, 5000, 'echo');
      const s = io.connStats(conn!);
      expect(s.bytesIn).toBe(100_000);
      expect(s.bytesOut).toBe(echoed);
      expect(s.bytesReceived).toBeGreaterThanOrEqual(100_000);
      expect(s.bytesAcked).toBeGreaterThan(0);
      expect(s.rttUs).toBeGreaterThan(0);
      expect(s.cwnd).toBeGreaterThan(0);
      expect(s.mss).toBeGreaterThan(0);
      // Loopback under a loaded CI host can retransmit (a tail-loss probe): the count is the
      // kernel's, so only its shape is checked, not a value.
      expect(Number.isInteger(s.retransmits) && s.retransmits >= 0).toBe(true);
      expect(s.bytesRetrans).toBeLessThanOrEqual(s.bytesSent);
      expect(s.bytesSent).toBeGreaterThanOrEqual(echoed);
      expect(s.kTls).toBe(false);
      client.destroy();
      await until(() => { try { io.connStats(conn!); return false; } catch (e) { return (e as IoError).kind === 'InvalidConnId'; } }, 5000, 'stale');
    } finally {
      h.stop();
      io.shutdown();
    }
  });
});

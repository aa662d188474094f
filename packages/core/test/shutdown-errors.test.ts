// Calls after io.shutdown() and UDP destination errors: IoErrors that say what to do, once.
import { describe, expect, it } from 'vitest';
import { Io, type EndpointId } from '@zero-io/core';
import { thrown } from './thrown.js';

describe('after shutdown', () => {
  it('every method throws ShardClosed with the fix', () => {
    const io = new Io({ poolSlotCount: 256 });
    const ep = io.udpBind('127.0.0.1:0');
    const buf = io.sendBuffer();
    io.shutdown();
    const calls: [string, () => unknown][] = [
      ['sendBuffer', () => io.sendBuffer()],
      ['streamWriteBuffer', () => io.streamWriteBuffer(1 as never, buf)],
      ['udpStats', () => io.udpStats(ep)],
      ['udpSendBytes', () => io.udpSendBytes(ep, { address: '127.0.0.1', port: 9 }, new Uint8Array(4))],
      ['udpBind', () => io.udpBind('127.0.0.1:0')],
      ['handle', () => io.handle()],
      ['resetPeaks', () => io.resetPeaks()],
      ['localAddress', () => io.localAddress(ep)],
    ];
    for (const [name, call] of calls) {
      const e = thrown(call);
      expect(e.kind, name).toBe('ShardClosed');
      expect(e.message, name).toMatch(/(shut down|closed); create a new Io/);
    }
  });
});

describe('UDP destinations', () => {
  it('a host name gets the resolve-first hint, prefixed once', () => {
    const io = new Io({ poolSlotCount: 256 });
    try {
      const ep: EndpointId = io.udpBind('127.0.0.1:0');
      for (const what of ['udpSendBytes', 'udpSendSegments'] as const) {
        const e = thrown(() => what === 'udpSendBytes'
          ? io.udpSendBytes(ep, { address: 'localhost', port: 9 }, new Uint8Array(4))
          : io.udpSendSegments(ep, { address: 'localhost', port: 9 }, new Uint8Array(4000), 1000));
        expect(e.kind).toBe('InvalidAddress');
        expect(e.address).toBe('localhost');
        expect(e.message).toMatch(new RegExp(`^${what}: the destination "localhost" is not an IP address; .*resolve the name first`));
        expect(e.message).not.toMatch(/udpSend:/);
      }
      const e = thrown(() => io.udpSendBytes(ep, { address: 1 as unknown as string, port: 9 }, new Uint8Array(4)));
      expect(e.message).toMatch(/^udpSendBytes: 'to' must be/);
    } finally {
      io.shutdown();
    }
  });
});

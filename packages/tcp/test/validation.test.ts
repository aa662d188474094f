// Wrong arguments and option values are IoErrors that name the key and what was given (found
// by a new user's trial: these were accepted silently, or threw plain errors).
import { afterEach, describe, expect, it } from 'vitest';
import { Io, StreamWriter, isIoError, type ConnId } from '@zero-io/core';
import '@zero-io/tcp';
import { thrown } from '../../core/test/thrown.js';

let io: Io | undefined;
afterEach(() => { io?.shutdown(); io = undefined; });

describe('option and argument validation', () => {
  it('connect and listen options', () => {
    io = new Io({ poolSlotCount: 64 });
    const bad: [() => unknown, string, RegExp][] = [
      [() => io!.tcpConnectWith({ host: '127.0.0.1', port: 1, family: 5 as 4 }), 'family', /family must be 0 \(both\), 4 or 6, got 5/],
      [() => io!.tcpConnectWith({ host: '127.0.0.1', port: 1, attemptDelayMs: -1 }), 'attemptDelayMs', /attemptDelayMs must be an integer from 0 to 60000, got -1/],
      [() => io!.tcpConnectWith({ host: '127.0.0.1', port: 1, connectTimeoutMs: '100' as unknown as number }), 'connectTimeoutMs', /got "100" \(a string\)/],
      [() => io!.tcpConnectWith({ host: '127.0.0.1', port: 1, allowHalfOpen: 'yes' as unknown as boolean }), 'allowHalfOpen', /allowHalfOpen must be true or false, got "yes" \(a string\)/],
      [() => io!.tcpListenWith({ host: '127.0.0.1', port: 0, backlog: -3 }), 'backlog', /backlog must be an integer from 0 to 65535, got -3/],
      [() => io!.tcpListenWith({ host: '127.0.0.1', port: 0, allowHalfOpen: 1 as unknown as boolean }), 'allowHalfOpen', /must be true or false/],
    ];
    for (const [f, key, msg] of bad) {
      const e = thrown(f);
      expect(e.kind).toBe('InvalidConfig');
      expect(e.key).toBe(key);
      expect(e.message).toMatch(msg);
    }
  });

  it('StreamWriter, closeGraceful, runSync and ids of the wrong type', () => {
    io = new Io({ poolSlotCount: 64 });
    const i = io;
    expect(thrown(() => new StreamWriter(i, { pauseReadings: false } as never)).message).toMatch(/pauseReadings.*did you mean "pauseReading"/);
    const w = new StreamWriter(i);
    expect(thrown(() => w.write(1 as ConnId, 'text' as unknown as Uint8Array)).kind).toBe('InvalidArgument');
    expect(thrown(() => i.closeGraceful(1 as ConnId, 'soon' as unknown as number)).kind).toBe('InvalidArgument');
    expect(thrown(() => i.runSync(42 as never)).kind).toBe('InvalidArgument');
    const e = thrown(() => i.streamWrite('1' as unknown as ConnId, Buffer.from('x')));
    expect(e.kind).toBe('InvalidConnId');
    expect(e.message).toMatch(/not a connection id .*not a number/);
    for (const f of [() => i.close('1' as never), () => i.pauseRecv(undefined as never), () => i.localAddress('1' as never)]) {
      expect(thrown(f).kind).toBe('InvalidConnId');
    }
    i.shutdown();
    expect(thrown(() => w.write(1 as ConnId, Buffer.from('x'))).kind).toBe('ShardClosed');
    expect(isIoError(thrown(() => i.end(1 as ConnId)))).toBe(true);
  });
});

describe('endpoint ids and connection ids never stand for each other', () => {
  it('a listener id given to streamWrite, or a connection id to localAddress, is refused (nothing is sent)', async () => {
    io = new Io({ poolSlotCount: 64 });
    const i = io;
    const ep = i.tcpListen('127.0.0.1:0');
    const { port } = i.localAddress(ep);
    const net = await import('node:net');
    const got: Buffer[] = [];
    const c = net.connect(port, '127.0.0.1');
    c.on('data', (d) => got.push(d));
    let conn: ConnId | null = null;
    for (let k = 0; k < 400 && conn === null; k++) {
      i.poll(0);
      for (let ev = i.nextEvent(); ev; ev = i.nextEvent()) if (ev.type === 'Connected') conn = ev.conn;
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(conn).not.toBeNull();
    expect(thrown(() => i.streamWrite(ep as unknown as ConnId, Buffer.from('oops'))).kind).toBe('InvalidConnId');
    expect(thrown(() => i.localAddress(conn as never)).kind).toBe('InvalidConnId');
    expect(thrown(() => i.closeEndpoint(conn as never)).kind).toBe('InvalidConnId');
    i.poll(0);
    await new Promise((r) => setTimeout(r, 50));
    expect(Buffer.concat(got).length).toBe(0);
    c.destroy();
  });
});

// Argument validation of listen / connect: what was received, its type, and the fix.
import dns from 'node:dns';
import { syncBuiltinESMExports } from 'node:module';
import { afterEach, describe, expect, it } from 'vitest';
import { Io, type ConnId } from '@zero-io/core';
import type { TcpConnectConfig, TcpListenConfig } from '@zero-io/tcp';
import { makePki } from './tls-helpers.js';
import { until } from './helpers.js';
import { thrown } from '../../core/test/thrown.js';

let io: Io | undefined;
afterEach(() => { io?.shutdown(); io = undefined; });

/** Polls `io` until `conn` is Connected or Disconnected; returns which (with the reason). */
async function outcome(io: Io, conn: ConnId): Promise<string> {
  let result = '';
  await until(() => {
    io.poll(0);
    for (let ev = io.nextEvent(); ev; ev = io.nextEvent()) {
      if (ev.type === 'Connected' && ev.conn === conn) result = 'Connected';
      if (ev.type === 'Disconnected' && ev.conn === conn) result = `Disconnected: ${ev.reason}`;
    }
    return result !== '';
  }, 5000, 'the connect outcome');
  return result;
}

/** Records the host names node:dns is asked for while `fn` runs (tcp resolves through it). */
async function lookups<T>(fn: () => Promise<T>): Promise<{ names: string[]; result: T }> {
  const orig = dns.lookup;
  const names: string[] = [];
  dns.lookup = function (this: unknown, host: string, ...rest: unknown[]) {
    names.push(host);
    return (orig as (...a: unknown[]) => unknown).call(this, host, ...rest);
  } as typeof dns.lookup;
  syncBuiltinESMExports();
  try {
    return { names, result: await fn() };
  } finally {
    dns.lookup = orig;
    syncBuiltinESMExports();
  }
}

describe('connect targets', () => {
  it('tcpConnectWith without host connects to localhost (as node:net), with no warning', async () => {
    io = new Io({ poolSlotCount: 256 });
    const port = io.localAddress(io.tcpListen('127.0.0.1:0')).port;
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.message);
    process.on('warning', onWarning);
    try {
      const { names, result } = await lookups(() => outcome(io!, io!.tcpConnectWith({ port })));
      expect(result).toBe('Connected');
      expect(names).toEqual(['localhost']);
    } finally {
      process.off('warning', onWarning);
    }
    expect(warnings).toEqual([]);
  });

  it('tcpConnect(port) connects to localhost, as net.connect(port)', async () => {
    io = new Io({ poolSlotCount: 256 });
    const port = io.localAddress(io.tcpListen('127.0.0.1:0')).port;
    const { names, result } = await lookups(() => outcome(io!, io!.tcpConnect(port)));
    expect(result).toBe('Connected');
    expect(names).toEqual(['localhost']);
  });

  it('refuses a host that is not a non-empty string, saying what it got', () => {
    io = new Io({ poolSlotCount: 256 });
    let e = thrown(() => io!.tcpConnectWith({ host: 42, port: 1 } as unknown as TcpConnectConfig));
    expect(e.kind).toBe('InvalidAddress');
    expect(e.message).toMatch(/^tcpConnectWith: host must be an IP address or a host name, got 42/);
    e = thrown(() => io!.tcpConnectWith({ host: '', port: 1 }));
    expect(e.message).toMatch(/got "" \(a string\)/);
    expect(io.poolStats().connections).toBe(0);  // nothing reserved
  });
});

describe('listen arguments', () => {
  it('names the type of a port given as a string', () => {
    io = new Io({ poolSlotCount: 256 });
    const e = thrown(() => io!.tcpListenWith({ port: '0' } as unknown as TcpListenConfig));
    expect(e.kind).toBe('InvalidAddress');
    expect(e.message).toBe('tcpListenWith: port must be an integer in [0, 65535], got "0" (a string)');
  });

  it('suggests the nearest option for a misspelt key, and refuses null as options', () => {
    io = new Io({ poolSlotCount: 256 });
    let e = thrown(() => io!.tcpListenWith({ prot: 0 } as unknown as TcpListenConfig));
    expect(e.kind).toBe('InvalidConfig');
    expect(e.message).toMatch(/^tcpListenWith: unknown option prot; did you mean "port"\?; known: host, port/);
    e = thrown(() => io!.tcpConnectWith({ port: 1, attemptDelay: 10 } as unknown as TcpConnectConfig));
    expect(e.message).toMatch(/did you mean "attemptDelayMs"\?/);
    e = thrown(() => io!.tcpListenWith(null as unknown as TcpListenConfig));
    expect(e.kind).toBe('InvalidConfig');
    expect(e.message).toBe('tcpListenWith: options must be an object, got null');
  });

  it('says an invalid TLS option once, with its key', () => {
    io = new Io({ poolSlotCount: 256 });
    const pki = makePki();
    const e = thrown(() => io!.tcpListenWith({
      host: '127.0.0.1', port: 0, tls: { cert: pki.serverCert, key: pki.serverKey, minVersion: 'TLSv1.1' as 'TLSv1.2' },
    }));
    expect(e.kind).toBe('InvalidConfig');
    expect(e.key).toBe('minVersion');
    expect(e.message).toMatch(/^tcpListenWith: minVersion must be/);
    expect(e.message).not.toMatch(/tcpListenWith: tcpListenWith:/);
  });
});

describe('after shutdown', () => {
  it('tcpListen / tcpConnect / udsListen say the Io was shut down and what to do', () => {
    const dead = new Io({ poolSlotCount: 256 });
    dead.shutdown();
    for (const call of [() => dead.tcpListen('127.0.0.1:0'), () => dead.tcpConnect('127.0.0.1:1'), () => dead.udsListen('/tmp/x.sock')]) {
      const e = thrown(call);
      expect(e.kind).toBe('ShardClosed');
      expect(e.message).toMatch(/shut down.*create a new Io/);
    }
  });
});

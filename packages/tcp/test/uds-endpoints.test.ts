// Unix-socket paths (empty, abstract, in use) and endpoint ids after closeEndpoint.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Io } from '@zero-io/core';
import '@zero-io/tcp';
import { until } from './helpers.js';
import { thrown } from '../../core/test/thrown.js';

let io: Io | undefined;
afterEach(() => { io?.shutdown(); io = undefined; });

describe('Unix socket paths', () => {
  it('refuses an empty path instead of binding an abstract name', () => {
    io = new Io({ poolSlotCount: 256 });
    const e = thrown(() => io!.udsListen(''));
    expect(e.kind).toBe('InvalidAddress');
    expect(e.message).toMatch(/^udsListen: expected a socket file path .*got an empty string/);
    expect(thrown(() => io!.udsConnect('')).kind).toBe('InvalidAddress');
  });

  it('shows an abstract name as @name and connects to it', async () => {
    io = new Io({ poolSlotCount: 256 });
    const name = `zio-abstract-${process.pid}-${Math.random().toString(36).slice(2)}`;
    const ep = io.udsListen(`\0${name}`);
    expect(io.localAddress(ep)).toEqual({ family: 'unix', address: `@${name}`, port: 0 });
    const conn = io.udsConnect(`\0${name}`);
    const seen: string[] = [];
    await until(() => {
      io!.poll(0);
      for (let ev = io!.nextEvent(); ev; ev = io!.nextEvent()) {
        if (ev.type === 'Connected') seen.push(ev.conn === conn ? 'client' : `server@${ev.endpoint}`);
        if (ev.type === 'Disconnected') seen.push(`Disconnected: ${ev.reason}`);
      }
      return seen.length >= 2;
    }, 5000, 'both ends connected');
    expect(seen.sort()).toEqual(['client', `server@${ep}`]);
    // An independent client reaches the same name (socat uses the exact length, as ss and
    // libuv >= 1.48 do).
    const r = spawnSync('socat', ['-u', 'OPEN:/dev/null', `ABSTRACT-CONNECT:${name}`], { encoding: 'utf8', timeout: 10_000 });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    io.closeEndpoint(ep);
  });

  it('gives Unix-socket advice for a path in use, not port advice', () => {
    io = new Io({ poolSlotCount: 256 });
    const path = join(mkdtempSync(join(tmpdir(), 'zio-uds-')), 'stale.sock');
    writeFileSync(path, '');  // what a crashed server leaves behind
    const e = thrown(() => io!.udsListen(path));
    expect(e.kind).toBe('SyscallFailed');
    expect(e.code).toBe('EADDRINUSE');
    expect(e.message).toContain(path);
    expect(e.message).toMatch(/remove it .*else choose another path/);
    expect(e.message).not.toMatch(/port/);
  });
});

describe('endpoint ids after closeEndpoint', () => {
  it('closing twice in one tick throws, with an endpoint message', () => {
    io = new Io({ poolSlotCount: 256 });
    const ep = io.tcpListen('127.0.0.1:0');
    io.closeEndpoint(ep);
    const e = thrown(() => io!.closeEndpoint(ep));
    expect(e.kind).toBe('InvalidConnId');
    expect(e.message).toMatch(/^closeEndpoint: endpoint \d+ is closed/);
    expect(e.message).not.toMatch(/Disconnected/);
  });

  it('localAddress throws from the closeEndpoint call on, and later the same way', async () => {
    io = new Io({ poolSlotCount: 256 });
    const ep = io.tcpListen('127.0.0.1:0');
    expect(io.localAddress(ep).port).toBeGreaterThan(0);
    io.closeEndpoint(ep);
    expect(thrown(() => io!.localAddress(ep)).kind).toBe('InvalidConnId');
    // Once the engine has finished the close (a few ticks), both calls still refuse the id.
    const other = io.tcpListen('127.0.0.1:0');
    for (let i = 0; i < 20; i++) io.poll(1);
    for (const call of [() => io!.localAddress(ep), () => io!.closeEndpoint(ep)]) {
      const e = thrown(call);
      expect(e.kind).toBe('InvalidConnId');
      expect(e.message).toMatch(/endpoint \d+ is closed \(closeEndpoint was called\) or was never opened/);
    }
    expect(io.localAddress(other).port).toBeGreaterThan(0);  // other endpoints are unaffected
  });
});

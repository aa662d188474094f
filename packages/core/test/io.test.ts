import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { Io, IoError, features } from '@zero-io/core';
import { internalsOf } from '@zero-io/core/internal';

const coreEntry = fileURLToPath(new URL('../dist/index.js', import.meta.url));

function runChild(code: string, prefix: string[] = []): { status: number | null; stdout: string; stderr: string } {
  const [cmd, ...args] = [...prefix, process.execPath, '--input-type=module', '-e', code];
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 20_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('Io', () => {
  it('creates a shard with the default config and reports the pool', () => {
    const io = new Io();
    try {
      const s = io.poolStats();
      expect(io.backend).toBe(process.env.ZERO_IO_BACKEND === 'epoll' ? 'epoll' : 'io_uring');
      expect(s.backend).toBe(io.backend);
      expect(s.perConn).toEqual({ current: 0, peak: 0, capacity: 1024 });
      // 60% of 4096 slots rounded down to a power of two go to the RX buffer ring.
      expect(s.fillRing.capacity).toBe(2048);
      expect(s.freeStack.capacity).toBe(2048);
      expect(['hugetlb', 'thp', 'normal']).toContain(s.backing);
      expect(io.poll(0)).toBe(0);
      expect(io.nextEvent()).toBeNull();
    } finally {
      io.shutdown();
    }
  });

  it('reports its engine features', () => {
    expect(features()).toContain('tcp');
    expect(Io.features()).toEqual(features());
  });

  it('refuses use after shutdown with ShardClosed', () => {
    const io = new Io({ poolSlotCount: 64 });
    io.shutdown();
    io.shutdown(); // idempotent
    expect(() => io.poll(0)).toThrowError(IoError);
    expect(() => io.streamWrite(1 as never, new Uint8Array(1))).toThrowError(/this Io was closed/);
    expect(() => io.close(1 as never)).toThrowError(IoError);
    expect(() => io.poll(0)).toThrowError(expect.objectContaining({ kind: 'ShardClosed' }));
  });

  it('delivers events through one reused flyweight without allocating per event', () => {
    const io = new Io({ poolSlotCount: 64, maxEventsPerPoll: 256 });
    try {
      const { native, shard } = internalsOf(io);
      const n = native.benchFillEvents(shard, 256);
      expect(n).toBe(256);
      const first = drain(io, n);
      expect(first.count).toBe(256);
      expect(first.sameObject).toBe(true);
      expect(first.lengths).toBe(256 * 32);
    } finally {
      io.shutdown();
    }
  });

  it('throws NotSupportedOnPlatform on a non-Linux platform, without crashing', () => {
    const r = runChild(`
      Object.defineProperty(process, 'platform', { value: 'darwin' });
      const { Io } = await import(${JSON.stringify(coreEntry)});
      try { new Io(); console.log('no error'); } catch (e) { console.log(e.kind, '|', e.platform, '|', e.message); }
    `);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^NotSupportedOnPlatform \| darwin-x64 \| zero-io runs on Linux \(x86-64 and arm64\); this is darwin-x64/);
  });

  it('throws KernelTooOld { required, found } on a kernel older than 6.0', () => {
    // setarch --uname-2.6 makes uname(2) report a 2.6 kernel to the child: a real old-kernel view.
    const r = runChild(`
      const { Io } = await import(${JSON.stringify(coreEntry)});
      try { new Io({ backend: 'io_uring' }); console.log('no error'); } catch (e) { console.log(e.kind, '|', e.required, '|', e.found, '|', e.message); }
    `, ['setarch', 'x86_64', '--uname-2.6']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^KernelTooOld \| 6\.0 \| 2\.6\.\d+ \| .*needs Linux >= 6\.0, found 2\.6/);
  });

  it("falls back to epoll with backend 'auto' on a kernel older than 6.0, and says why", () => {
    const r = runChild(`
      const { Io } = await import(${JSON.stringify(coreEntry)});
      const io = new Io({ backend: 'auto' });
      console.log(io.backend, '|', io.poolStats().backend, '|', io.backendReason);
      io.shutdown();
    `, ['setarch', 'x86_64', '--uname-2.6']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^epoll \| epoll \| .*needs Linux >= 6\.0/);
  });

  it('rejects an unknown backend, also from ZERO_IO_BACKEND', () => {
    expect(() => new Io({ backend: 'kqueue' as never })).toThrow(/config\.backend must be 'auto', 'io_uring' or 'epoll', got "kqueue" \(a string\)$/);
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', `
      const { Io } = await import(${JSON.stringify(coreEntry)});
      try { new Io(); } catch (e) { console.log(e.kind, '|', e.message); }
    `], { encoding: 'utf8', env: { ...process.env, ZERO_IO_BACKEND: 'uring' } });
    expect(r.stdout).toMatch(/^InvalidConfig \| .*got "uring" \(from ZERO_IO_BACKEND\)/);
  });
});

/** Drains `n` synthetic events written by benchFillEvents through nextEvent(). */
function drain(io: Io, n: number): { count: number; sameObject: boolean; lengths: number } {
  let count = 0;
  let lengths = 0;
  let first: unknown = null;
  let sameObject = true;
  setBatch(io, n);
  for (let ev = io.nextEvent(); ev; ev = io.nextEvent()) {
    if (first === null) first = ev;
    else if (first !== ev) sameObject = false;
    if (ev.type === 'StreamFrame') lengths += ev.length;
    count++;
  }
  return { count, sameObject, lengths };
}

function setBatch(io: Io, n: number): void {
  (io as unknown as { _setBatchForBench(n: number): void })._setBatchForBench(n);
}

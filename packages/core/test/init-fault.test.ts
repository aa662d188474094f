import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Io, isIoError } from '@zero-io/core';

// Shard creation fails cleanly at each of its steps: an IoError of the documented kind, never a
// crash, and the process goes on creating shards. ZERO_IO_FAULT_INIT fails one step (the native
// side reads the process environment at creation).
const steps: [string, string][] = [
  ['pool', 'PoolSetup'], ['ring', 'NotSupportedOnBackend'], ['bufring', 'NotSupportedOnBackend'],
  ['eventfd', 'NotSupportedOnBackend'], ['handle', 'NotSupportedOnBackend'], ['tables', 'PoolSetup'],
];

function creationError(config: ConstructorParameters<typeof Io>[0]): unknown {
  try {
    new Io(config).shutdown();
  } catch (e) {
    return e;
  }
  throw new Error('new Io() was expected to throw');
}

describe('shard creation failures', () => {
  it.each(steps)('step %s fails with %s and leaves the process healthy', (step, kind) => {
    process.env.ZERO_IO_FAULT_INIT = step;
    let err: unknown;
    try {
      err = creationError({ poolSlotCount: 256 });
    } finally {
      delete process.env.ZERO_IO_FAULT_INIT;
    }
    expect(isIoError(err)).toBe(true);
    expect((err as { kind: string }).kind).toBe(kind);
    expect((err as Error).message).toMatch(new RegExp(`${step}|memory`));
    const io = new Io({ poolSlotCount: 256 });
    io.shutdown();
  });

  it("hugePages: 'on' without reserved huge pages throws PoolSetup (no crash)", () => {
    const reserved = Number(readFileSync('/proc/sys/vm/nr_hugepages', 'utf8').trim());
    let err: unknown = null;
    try {
      new Io({ hugePages: 'on', poolSlotCount: 256 }).shutdown();
    } catch (e) {
      err = e;
    }
    if (reserved > 0) {
      // A machine with reserved huge pages may map the pool on them: then it must work.
      expect(err).toBeNull();
    } else {
      expect(isIoError(err)).toBe(true);
      expect((err as { kind: string }).kind).toBe('PoolSetup');
      expect((err as Error).message).toMatch(/MAP_HUGETLB.*vm\.nr_hugepages/);
    }
  });
});

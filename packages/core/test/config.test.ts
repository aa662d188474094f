import { describe, expect, it } from 'vitest';
import { IoError, isIoError, resolveConfig } from '@zero-io/core';

describe('resolveConfig', () => {
  it('applies the seed defaults', () => {
    const c = resolveConfig();
    expect(c).toMatchObject({
      poolSlotCount: 4096, poolSlotSize: 2048, hugePages: 'auto', maxConnections: 1024,
      maxEventsPerPoll: 256, poolPressurePct: 80, compressionThreshold: 128,
    });
    expect(c.uring).toEqual({ sqEntries: 1024, deferTaskrun: true });
    expect(c.debug).toEqual({ log: false, checkBorrows: false });
    expect(Object.isFrozen(c)).toBe(true);
  });

  it('rejects unknown keys by name', () => {
    expect(() => resolveConfig({ poolSlotCont: 8 } as never)).toThrowError(/unknown option poolSlotCont/);
    expect(() => resolveConfig({ uring: { sqEntires: 8 } } as never)).toThrowError(/unknown option uring\.sqEntires/);
    let err: unknown;
    try {
      resolveConfig({ bogus: 1 } as never);
    } catch (e) {
      err = e;
    }
    expect(isIoError(err)).toBe(true);  // also fails if nothing was thrown
    expect((err as IoError).kind).toBe('InvalidConfig');
    expect((err as IoError).key).toBe('bogus');
  });

  it('validates ranges, including the RFC 9000 minimum slot size', () => {
    expect(() => resolveConfig({ poolSlotSize: 1199 })).toThrowError(/poolSlotSize must be an integer in \[1200/);
    expect(() => resolveConfig({ maxConnections: 0 })).toThrowError(/maxConnections/);
    expect(() => resolveConfig({ hugePages: 'maybe' as never })).toThrowError(/hugePages/);
    expect(() => resolveConfig({ noDelay: 'yes' as never })).toThrowError(/noDelay must be a boolean/);
    expect(() => resolveConfig({ poolSlotCount: 1 << 20, poolSlotSize: 1 << 20 })).toThrowError(/4 GiB/);
  });
});

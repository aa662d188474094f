import { describe, expect, it } from 'vitest';
import { resolveConfig, type Config } from '@zero-io/core';
import { thrown } from './thrown.js';

describe('resolveConfig edge values', () => {
  it('treats an explicit undefined as absent (the default applies)', () => {
    const c = resolveConfig({ poolSlotCount: undefined, noDelay: undefined, uring: undefined, debug: { log: undefined } });
    expect(c.poolSlotCount).toBe(4096);
    expect(c.noDelay).toBe(true);
    expect(c.uring).toEqual({ sqEntries: 1024, deferTaskrun: true });
    expect(c.debug).toEqual({ log: false, checkBorrows: false });
    expect(resolveConfig({ uring: { sqEntries: undefined, deferTaskrun: false } }).uring).toEqual({ sqEntries: 1024, deferTaskrun: false });
  });

  it('rejects null where an object is expected, and an array as the config', () => {
    let e = thrown(() => resolveConfig({ uring: null } as unknown as Config));
    expect(e.kind).toBe('InvalidConfig');
    expect(e.key).toBe('uring');
    expect(e.message).toMatch(/config\.uring must be an object .*got null/);
    e = thrown(() => resolveConfig({ debug: [] } as unknown as Config));
    expect(e.message).toMatch(/config\.debug must be an object .*got an array/);
    e = thrown(() => resolveConfig([] as unknown as Config));
    expect(e.kind).toBe('InvalidConfig');
    expect(e.message).toMatch(/config must be an object .*got an array/);
    e = thrown(() => resolveConfig(null as unknown as Config));
    expect(e.message).toMatch(/got null/);
  });

  it('says what was given and its type', () => {
    const e = thrown(() => resolveConfig({ poolSlotCount: '8' as unknown as number }));
    expect(e.message).toBe('config.poolSlotCount must be an integer in [2, 1048576], got "8" (a string)');
    expect(thrown(() => resolveConfig({ noDelay: 'true' as unknown as boolean })).message).toMatch(/got "true" \(a string\)/);
  });

  it('suggests the nearest known key', () => {
    let e = thrown(() => resolveConfig({ poolSlotCont: 8 } as unknown as Config));
    expect(e.message).toMatch(/unknown option poolSlotCont; did you mean "poolSlotCount"\?; known options: /);
    e = thrown(() => resolveConfig({ uring: { sqentries: 8 } } as unknown as Config));
    expect(e.message).toMatch(/unknown option uring\.sqentries; did you mean "sqEntries"\?/);
    expect(e.key).toBe('uring.sqentries');
    e = thrown(() => resolveConfig({ completelyUnrelated: 1 } as unknown as Config));
    expect(e.message).not.toMatch(/did you mean/);
  });
});

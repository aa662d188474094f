import { describe, expect, it } from 'vitest';
import { IoError, errnoDescription, errnoName, isIoError } from '@zero-io/core';

describe('IoError', () => {
  it('carries kind, typed fields and a stable code', () => {
    const e = new IoError('KernelTooOld', 'needs 6.0', { required: '6.0', found: '5.10.0' });
    expect(e).toBeInstanceOf(Error);
    expect(e.kind).toBe('KernelTooOld');
    expect(e.code).toBe('ZIO_KernelTooOld');
    expect(e.found).toBe('5.10.0');
  });

  it('is recognised across package copies through a Symbol.for marker', () => {
    const foreign = Object.create(Error.prototype, {
      [Symbol.for('zero-io.IoError')]: { value: true },
      kind: { value: 'PoolExhausted' },
    });
    expect(isIoError(foreign)).toBe(true);
    expect(isIoError(new Error('x'))).toBe(false);
    expect(isIoError(null)).toBe(false);
  });

  it('names and describes errno values', () => {
    expect(errnoName(104)).toBe('ECONNRESET');
    expect(errnoDescription(111)).toBe('ECONNREFUSED: connection refused');
    expect(errnoName(99999)).toBe('errno 99999');
  });
});

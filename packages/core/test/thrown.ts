// The IoError a call throws, as a value to assert on (the test fails when it throws nothing,
// or something that is not an IoError).
import { expect } from 'vitest';
import { IoError } from '@zero-io/core';

export function thrown(fn: () => unknown): IoError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(IoError);
    return e as IoError;
  }
  throw new Error('expected an IoError, nothing was thrown');
}

// Handler errors as test failures, in the spirit of Node's test/common `mustCall`.
//
// runSync() catches what its handler throws and only prints it (one bad event must not stop the
// driver), so an expect() inside a handler could never fail a test: it printed a line and the test
// passed. Rules for the tests:
//   - every io.runSync(handler) in a test passes `{ onError }` from this module;
//   - importing this module registers an afterEach that throws the first error recorded during
//     the test, so a failing handler-side assertion fails the test that made it;
//   - waits (`until` in packages/tcp/test/helpers.ts) call `checkHandlerErrors()` on each turn,
//     so the test stops at the assertion, not at a timeout that hides it.
import { afterEach } from 'vitest';
import type { Event } from '@zero-io/core';

const recorded: unknown[] = [];

/**
 * runSync's `onError` for tests: records what the handler threw. The message gains the event it
 * threw on (read now: the event is a flyweight, valid only during the call).
 */
export function onError(err: unknown, ev: Event): void {
  const where = `handler threw on ${ev.type} (conn ${(ev as { conn?: number }).conn})`;
  if (err instanceof Error) err.message = `${where}: ${err.message}`;
  recorded.push(err instanceof Error ? err : new Error(`${where}: ${String(err)}`));
}

/** Throws the first handler error recorded since the last check; forgets all of them. */
export function checkHandlerErrors(): void {
  if (recorded.length === 0) return;
  const [first, ...rest] = recorded.splice(0);
  if (rest.length > 0 && first instanceof Error) first.message += ` (and ${rest.length} more handler error${rest.length > 1 ? 's' : ''})`;
  throw first;
}

afterEach(checkHandlerErrors);

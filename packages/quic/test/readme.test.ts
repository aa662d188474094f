import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
// @ts-expect-error: plain JS tooling module
import { runReadmeExample } from '../../../tooling/readme-example.mjs';

const pkg = fileURLToPath(new URL('..', import.meta.url));

it('the README example runs: a QUIC echo server answers its client', () => {
  const r = runReadmeExample(pkg);
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  expect(r.stdout).toBe('hello, quic\n');
});

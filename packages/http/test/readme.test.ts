import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
// @ts-expect-error: plain JS tooling module
import { runReadmeExample } from '../../../tooling/readme-example.mjs';

const pkg = fileURLToPath(new URL('..', import.meta.url));

it('the README example runs: a ten-line server answers fetch', () => {
  const r = runReadmeExample(pkg);
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  expect(r.stdout).toBe('200 hello, world\n');
});

it('the README runAsync example runs: a JSON POST is summed, a bad body gets 400', () => {
  const r = runReadmeExample(pkg, 20_000, 'Example: runAsync');
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  expect(r.stdout).toBe('200 { sum: 42 }\n400\n');
});

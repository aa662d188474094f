import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
// @ts-expect-error: plain JS tooling module
import { runReadmeExample } from '../../../tooling/readme-example.mjs';

it('the README example runs: a zero-io echo server answers a node:net client, then shuts down', () => {
  const r = runReadmeExample(fileURLToPath(new URL('..', import.meta.url)));
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  expect(r.stdout).toBe('echo: hello zero-io\n');
});

it('the README TLS example runs: a TLS echo answers a node:tls client, reports version and ALPN', () => {
  const r = runReadmeExample(fileURLToPath(new URL('..', import.meta.url)), 20000, 'Example: TLS');
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  expect(r.stdout).toBe('tls: TLSv1.3, alpn echo\necho: hello over TLS\ncertificate generation 1\n');
});

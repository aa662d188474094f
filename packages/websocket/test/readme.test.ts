import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
// @ts-expect-error: plain JS tooling module
import { runReadmeExample } from '../../../tooling/readme-example.mjs';

const pkg = fileURLToPath(new URL('..', import.meta.url));

it('the README example runs: an echo server answers a client', () => {
  const r = runReadmeExample(pkg);
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  expect(r.stdout).toBe('hello, websocket\n');
});

it('the README client example runs: wsConnect to an echo server', () => {
  const r = runReadmeExample(pkg, 20_000, 'Client');
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  expect(r.stdout).toBe('WsText subscribe AAPL\nclosed 1000\n');
});

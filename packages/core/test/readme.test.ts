import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
// @ts-expect-error: plain JS tooling module
import { runReadmeExample } from '../../../tooling/readme-example.mjs';

it('the README example runs and prints what it claims', () => {
  const r = runReadmeExample(fileURLToPath(new URL('..', import.meta.url)));
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  expect(r.stdout).toMatch(/^backend (io_uring|epoll), pool backing (hugetlb|thp|normal), 512 RX slots \+ 512 TX slots\n/);
  expect(r.stdout).toMatch(/InvalidConfig: unknown option poolSlotSise; did you mean "poolSlotSize"\?; known options: poolSlotCount, poolSlotSize/);
  expect(r.stdout).toMatch(/events this tick: 0\n$/);
});

it('the README UDP example echoes a datagram from node:dgram', () => {
  const r = runReadmeExample(fileURLToPath(new URL('..', import.meta.url)), 20_000, 'Example: UDP');
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  expect(r.stdout).toBe('got 4 bytes from IPv4 127.0.0.1\nechoed: ping\n');
});

it('the README IoCluster example starts two pinned shards and gets a greeting from one', () => {
  const r = runReadmeExample(fileURLToPath(new URL('..', import.meta.url)), 30_000, 'Example: IoCluster');
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  expect(r.stdout).toMatch(/^shard 0 on CPUs \[\d+\], shard 1 on CPUs \[\d+\]\nhello from shard [01]\n$/);
});

// Backend selection under a real seccomp sandbox: tooling/seccomp/deny-io-uring (our launcher,
// compiled here with the system C compiler) makes io_uring_setup/enter/register fail the way
// Docker's default profile does; backend 'auto' must fall back to epoll and serve real peers,
// and backend 'io_uring' must fail with an actionable error.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const fixture = fileURLToPath(new URL('./fixtures/fallback-echo.mjs', import.meta.url));
let launcher = '';

beforeAll(() => {
  launcher = join(mkdtempSync(join(tmpdir(), 'zio-seccomp-')), 'deny-io-uring');
  execFileSync('cc', ['-O2', '-Wall', '-Werror', '-o', launcher, join(root, 'tooling/seccomp/deny-io-uring.c')]);
});

interface Report {
  backend?: string; reason?: string; statsBackend?: string; tcpEcho?: boolean; udpEcho?: boolean;
  probe?: { available: boolean; setupErrno: number };
  error?: string; message?: string;
}

function run(cfg: object, errno?: number, sandboxed = true): Report {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    ZIO_CORE: join(root, 'packages/core/dist/index.js'),
    ZIO_TCP: join(root, 'packages/tcp/dist/index.js'),
  };
  delete env.ZERO_IO_BACKEND;  // this test chooses the backend itself
  const cmd = [process.execPath, fixture, JSON.stringify(cfg)];
  const args = sandboxed ? [...(errno ? ['--errno', String(errno)] : []), '--', ...cmd] : cmd.slice(1);
  const r = spawnSync(sandboxed ? launcher : process.execPath, args, { encoding: 'utf8', env, timeout: 30_000 });
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  return JSON.parse(r.stdout) as Report;
}

describe('backend selection', () => {
  it("'auto' under a seccomp filter denying io_uring (EPERM) runs on epoll and echoes TCP and UDP", () => {
    const r = run({});
    expect(r.probe).toMatchObject({ available: false, setupErrno: 1 });
    expect(r.backend).toBe('epoll');
    expect(r.statsBackend).toBe('epoll');
    expect(r.reason).toMatch(/^io_uring_setup failed: Operation not permitted/);
    expect(r.tcpEcho).toBe(true);
    expect(r.udpEcho).toBe(true);
  });

  it("'auto' falls back the same way when io_uring_setup is ENOSYS (kernel without io_uring)", () => {
    const r = run({ backend: 'auto' }, 38);
    expect(r.backend).toBe('epoll');
    expect(r.reason).toMatch(/^io_uring_setup failed: Function not implemented/);
    expect(r.tcpEcho && r.udpEcho).toBe(true);
  });

  it("'io_uring' in the same sandbox fails with NotSupportedOnBackend and says how to fix it", () => {
    const r = run({ backend: 'io_uring' });
    expect(r.error).toBe('NotSupportedOnBackend');
    expect(r.message).toMatch(/EPERM.*seccomp.*backend: 'auto'/);
  });

  it("'auto' outside the sandbox picks io_uring; 'epoll' is honoured there too", () => {
    expect(run({}, undefined, false)).toMatchObject({ backend: 'io_uring', reason: '', tcpEcho: true, udpEcho: true });
    expect(run({ backend: 'epoll' }, undefined, false)).toMatchObject({ backend: 'epoll', reason: '', tcpEcho: true, udpEcho: true });
  });
});

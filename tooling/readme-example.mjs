// Extracts the first ```js block under "## Example" (or another "## <heading>") of a package README, runs it with node from
// inside the package directory (so its bare imports resolve as a user's would), and returns
// { status, stdout, stderr }. Used by each package's readme test.
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export function extractExample(readmePath, heading = 'Example') {
  const md = readFileSync(readmePath, 'utf8');
  const at = md.indexOf(`\n## ${heading}\n`);
  if (at < 0) throw new Error(`${readmePath} has no "## ${heading}" section`);
  const m = /```js\n([\s\S]*?)```/.exec(md.slice(at));
  if (!m) throw new Error(`${readmePath}: no \`\`\`js block under "## Example"`);
  return m[1];
}

export function runReadmeExample(pkgDir, timeoutMs = 20_000, heading = 'Example') {
  const file = join(pkgDir, `.readme-example-${process.pid}.mjs`);
  writeFileSync(file, extractExample(join(pkgDir, 'README.md'), heading));
  try {
    const r = spawnSync(process.execPath, [file], { encoding: 'utf8', timeout: timeoutMs, cwd: pkgDir });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr, signal: r.signal };
  } finally {
    rmSync(file, { force: true });
  }
}

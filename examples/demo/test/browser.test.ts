// The demo's live chart in a real browser: headless Chromium (Debian package `chromium`, driven
// by playwright-core) loads http://.../live, whose page opens two WebSockets to the demo — the
// ticker draws and counts the ticks, and the echo box gets its text back. Chromium offers
// permessage-deflate, which the demo accepts: the ticks it receives are compressed ones.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { chromium, type Browser } from 'playwright-core';

const server = fileURLToPath(new URL('../server.mjs', import.meta.url));
const CHROMIUM = process.env.ZIO_TEST_CHROMIUM ?? '/usr/bin/chromium';
let child: ChildProcess | undefined;
let browser: Browser | undefined;
afterEach(async () => {
  await browser?.close();
  browser = undefined;
  child?.kill('SIGKILL');
  child = undefined;
});

function startDemo(): Promise<{ chart: string; http: string }> {
  child = spawn(process.execPath, [server], {
    env: { ...process.env, ZIO_DEMO_ECHO_PORT: '0', ZIO_DEMO_CHAT_PORT: '0', ZIO_DEMO_UDP_PORT: '0', ZIO_DEMO_TLS_PORT: '0',
      ZIO_DEMO_HTTP_PORT: '0', ZIO_DEMO_HTTPS_PORT: '0', ZIO_DEMO_WS_PORT: '0', ZIO_DEMO_STATS_MS: '0' },
  });
  let buf = '';
  return new Promise((resolve, reject) => {
    child!.on('exit', (code) => reject(new Error(`demo exited with ${code}: ${buf}`)));
    child!.stdout!.on('data', (d) => {
      buf += d;
      const chart = /^chart (\S+)$/m.exec(buf);
      const http = /^http  (\S+)$/m.exec(buf);
      if (chart && http) resolve({ chart: chart[1], http: http[1] });
    });
  });
}

describe('the demo page in headless Chromium', () => {
  it('draws the live ticker and echoes over WebSocket (compressed)', async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: this test needs Debian's chromium package (tooling/bootstrap.sh installs it)`);
    const { chart, http } = await startDemo();
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'] });
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(chart);
    await page.waitForFunction(() => Number(document.getElementById('n')?.textContent) >= 30, undefined, { timeout: 15_000 });
    const price = await page.textContent('#px');
    expect(Number(price)).toBeGreaterThan(0);
    // The chart canvas has been drawn on (some pixel is not blank).
    const drawn = await page.evaluate(() => {
      const c = document.getElementById('c') as HTMLCanvasElement;
      const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
      for (let i = 3; i < d.length; i += 4) if (d[i] !== 0) return true;
      return false;
    });
    expect(drawn).toBe(true);
    // A text long enough to be compressed (the threshold is 128 bytes) both ways.
    const text = 'hello from chromium, '.repeat(20);
    await page.fill('#in', text);
    await page.click('#send');
    await page.waitForFunction((t) => document.getElementById('echo')?.textContent === `echoed: ${t}`, text, { timeout: 10_000 });
    const stats = await (await fetch(`${http}/stats.json`)).json() as { websocket: { deflateConnections: number; compressedOut: number } };
    // (the ticks themselves, about 60 bytes, are under the threshold and go as they are)
    expect(stats.websocket.deflateConnections).toBe(2);  // Chromium offered permessage-deflate on both sockets
    expect(stats.websocket.compressedOut).toBeGreaterThan(0);
    expect(errors).toEqual([]);
  });
});

import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { once } from 'node:events';
import https from 'node:https';
import net from 'node:net';
import { homedir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';

const server = fileURLToPath(new URL('../server.mjs', import.meta.url));
let child: ChildProcess | undefined;
afterEach(() => { child?.kill('SIGKILL'); child = undefined; });

function start(): Promise<{ echo: number; chat: number; udp: number; tls: number; http: number; https: number; ws: string; ticker: string; quic: number; lines: string[] }> {
  child = spawn(process.execPath, [server], {
    env: { ...process.env, ZIO_DEMO_ECHO_PORT: '0', ZIO_DEMO_CHAT_PORT: '0', ZIO_DEMO_UDP_PORT: '0', ZIO_DEMO_TLS_PORT: '0', ZIO_DEMO_HTTP_PORT: '0', ZIO_DEMO_HTTPS_PORT: '0', ZIO_DEMO_WS_PORT: '0', ZIO_DEMO_QUIC_PORT: '0', ZIO_DEMO_STATS_MS: '200' },
  });
  const lines: string[] = [];
  let buf = '';
  return new Promise((resolve, reject) => {
    child!.on('exit', (code) => reject(new Error(`demo exited early with ${code}: ${lines.join('\n')}`)));
    child!.stderr!.on('data', (d) => lines.push(String(d)));
    child!.stdout!.on('data', (d) => {
      buf += d;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) { lines.push(buf.slice(0, nl)); buf = buf.slice(nl + 1); }
      const echo = lines.find((l) => l.startsWith('echo  tcp://'));
      const chat = lines.find((l) => l.startsWith('chat  tcp://'));
      const udp = lines.find((l) => l.startsWith('udp   udp://'));
      const tlsLine = lines.find((l) => l.startsWith('tls   tls://'));
      const httpLine = lines.find((l) => l.startsWith('http  http://'));
      const httpsLine = lines.find((l) => l.startsWith('https https://'));
      const wsLine = lines.find((l) => l.startsWith('ws    ws://'));
      const tickerLine = lines.find((l) => l.startsWith('ticker ws://'));
      const chartLine = lines.find((l) => l.startsWith('chart http://'));
      const quicLine = lines.find((l) => /^quic  quic:\/\/[\d.]+:\d+ \(ALPN zero-echo\)$/.test(l));
      if (echo && chat && udp && tlsLine && httpLine && httpsLine && wsLine && tickerLine && chartLine && quicLine) {
        resolve({
          echo: Number(echo.split(':').pop()), chat: Number(chat.split(':').pop()), udp: Number(udp.split(':').pop()),
          tls: Number(tlsLine.split(':').pop()), http: Number(httpLine.split(':').pop()), https: Number(httpsLine.split(':').pop()),
          ws: wsLine.split(/\s+/)[1], ticker: tickerLine.split(/\s+/)[1], quic: Number(/:(\d+) /.exec(quicLine)![1]), lines,
        });
      }
    });
  });
}

function lineClient(port: number) {
  const s = net.connect(port, '127.0.0.1');
  let buf = '';
  const waiters: { re: RegExp; resolve: (l: string) => void }[] = [];
  s.on('data', (d) => {
    buf += d;
    for (const w of [...waiters]) {
      const m = buf.split('\n').find((l) => w.re.test(l));
      if (m) { waiters.splice(waiters.indexOf(w), 1); w.resolve(m); }
    }
  });
  return {
    s,
    send: (t: string) => s.write(t),
    waitFor: (re: RegExp) => new Promise<string>((resolve) => { waiters.push({ re, resolve }); s.emit('data', Buffer.alloc(0)); }),
  };
}

describe('demo server (the README main command)', () => {
  it('prints endpoint URLs, echoes, relays chat lines, and prints stats every interval', async () => {
    const { echo, chat, udp, tls: tlsPort, http: httpPort, https: httpsPort, ws: wsUrl, ticker: tickerUrl, quic: quicPort, lines } = await start();
    // QUIC: aioquic (the interop peer, installed by bootstrap) echoes 3 streams and datagrams through the demo
    const py = join(process.env.ZERO_IO_CACHE ?? join(homedir(), '.cache', 'zero-io'), 'venv-aioquic', 'bin', 'python');
    const quicOut = execFileSync(py, [fileURLToPath(new URL('../../../packages/quic/test/peers/aioquic_client.py', import.meta.url)),
      '--host', '127.0.0.1', '--port', String(quicPort), '--insecure', '--alpn', 'zero-echo', '--streams', '3', '--size', '50000',
      '--datagrams', '3', '--datagram-loss', '1'], { timeout: 30_000 }).toString().trim().split('\n').pop()!;
    expect(JSON.parse(quicOut)).toMatchObject({ ok: true, streams: 3, alpn: 'zero-echo' });
    // WebSocket: echo, and the ticker's ticks in order; the chart page that draws them
    expect(wsUrl).toMatch(/^ws:\/\/127\.0\.0\.1:\d+\/echo$/);
    const wsEcho = new WebSocket(wsUrl);
    await once(wsEcho, 'open');
    wsEcho.send('ws-ping');
    expect(String((await once(wsEcho, 'message'))[0])).toBe('ws-ping');
    const ticker = new WebSocket(tickerUrl);
    const seqs: number[] = [];
    ticker.on('message', (d) => seqs.push((JSON.parse(String(d)) as { seq: number; price: number }).seq));
    const t1 = Date.now();
    while (seqs.length < 5 && Date.now() - t1 < 5000) await new Promise((r) => setTimeout(r, 20));
    expect(seqs.length).toBeGreaterThanOrEqual(5);
    for (let i = 1; i < seqs.length; i++) expect(seqs[i]).toBe(seqs[i - 1] + 1);
    const livePage = await (await fetch(`http://127.0.0.1:${httpPort}/live`)).text();
    expect(livePage).toContain('<canvas');
    expect(livePage).toContain(`:${tickerUrl.split(':')[2].split('/')[0]}`);
    wsEcho.close();
    ticker.close();
    // HTTP: the status page and its JSON (fetch is undici), HTTPS with node:https
    const pageRes = await fetch(`http://127.0.0.1:${httpPort}/`);
    expect(pageRes.status).toBe(200);
    expect(pageRes.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(await pageRes.text()).toContain('<h1>zero-io demo</h1>');
    const stats = await (await fetch(`http://127.0.0.1:${httpPort}/stats.json`)).json() as { http: { requests: number }; backend: string };
    expect(stats.http.requests).toBeGreaterThanOrEqual(2);
    expect((await fetch(`http://127.0.0.1:${httpPort}/missing`)).status).toBe(404);
    const viaTls = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      https.get({ host: '127.0.0.1', port: httpsPort, path: '/stats.json', rejectUnauthorized: false }, (res) => {
        let body = '';
        res.on('data', (d) => { body += d; });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      }).on('error', reject);
    });
    expect(viaTls.status).toBe(200);
    expect(JSON.parse(viaTls.body).backend).toBe(stats.backend);
    // TLS echo (self-signed: the client pins the certificate it is shown)
    const t = tls.connect({ host: '127.0.0.1', port: tlsPort, rejectUnauthorized: false });
    await once(t, 'secureConnect');
    expect(t.getPeerCertificate().subject.CN).toBe('localhost');
    t.write('tls-ping');
    expect(String((await once(t, 'data'))[0])).toBe('tls-ping');
    t.destroy();
    // UDP echo, with node:dgram as the peer
    const u = dgram.createSocket('udp4');
    const reply = once(u, 'message');
    u.send('udp-ping', udp, '127.0.0.1');
    expect(String((await reply)[0])).toBe('udp-ping');
    u.close();
    // echo
    const e = lineClient(echo);
    e.send('ping\n');
    expect(await e.waitFor(/^ping$/)).toBe('ping');
    // chat: two members
    const a = lineClient(chat);
    await a.waitFor(/welcome guest1/);
    const b = lineClient(chat);
    await b.waitFor(/welcome guest2/);
    await a.waitFor(/guest2 joined/);
    a.send('/nick alice\n');
    await b.waitFor(/guest1 is now alice/);
    a.send('hello everyone\n');
    expect(await b.waitFor(/^alice: /)).toBe('alice: hello everyone');
    // stats line
    const t0 = Date.now();
    while (!lines.some((l) => /^stats conns=[3-9] chat=2 ws=\d+ wsDropped=\d+ in=[\d.]+KiB\/s out=[\d.]+KiB\/s pool=[\d.]+% /.test(l)) && Date.now() - t0 < 3000) {
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(lines.some((l) => /^stats conns=[3-9] chat=2 /.test(l))).toBe(true);
    [e, a, b].forEach((c) => c.s.destroy());
    // graceful stop on SIGTERM
    const exited = new Promise<number | null>((r) => child!.removeAllListeners('exit').on('exit', (code) => r(code)));
    child!.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(lines).toContain('demo: stopped');
  });
});

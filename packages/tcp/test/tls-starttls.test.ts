// STARTTLS both ways, against openssl s_client -starttls smtp / ftp and node:tls, with the
// minimal line protocol below; and the plaintext-injection class (CVE-2011-0411).
import { spawn } from 'node:child_process';
import net from 'node:net';
import tls from 'node:tls';
import { afterAll, describe, expect, it } from 'vitest';
import '@zero-io/tcp';
import { until } from './helpers.js';
import { makePki, recorder } from './tls-helpers.js';

const pki = makePki();
const closers: (() => Promise<void>)[] = [];
afterAll(async () => { for (const c of closers) await c(); });

/**
 * A tiny SMTP/FTP-like server: greets, answers EHLO with STARTTLS, and upgrades on "STARTTLS"
 * (220) or "AUTH TLS" (234). The line buffer is discarded at the upgrade (RFC 3207 section
 * 4.2: the server MUST discard any knowledge obtained before TLS). After TLS it echoes.
 */
function lineServer(greeting: string) {
  const lines = new Map<number, string>();
  const upgraded = new Set<number>();
  const afterUpgrade: string[] = [];
  const r = recorder((ev, io) => {
    if (ev.type === 'Connected') { io.streamWrite(ev.conn, Buffer.from(greeting)); lines.set(ev.conn, ''); return; }
    if (ev.type !== 'StreamFrame') return;
    const text = Buffer.from(ev.data).toString('latin1');
    if (upgraded.has(ev.conn)) { afterUpgrade.push(text); io.streamWrite(ev.conn, ev.data); return; }
    let buf = (lines.get(ev.conn) ?? '') + text;
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i).replace(/\r$/, '');
      buf = buf.slice(i + 1);
      const cmd = line.toUpperCase();
      if (cmd.startsWith('EHLO')) io.streamWrite(ev.conn, Buffer.from('250-zero-io\r\n250 STARTTLS\r\n'));
      else if (cmd === 'STARTTLS' || cmd === 'AUTH TLS') {
        io.streamWrite(ev.conn, Buffer.from(cmd === 'STARTTLS' ? '220 Ready to start TLS\r\n' : '234 AUTH TLS OK\r\n'));
        io.tlsAcceptUpgrade(ev.conn, serverTls);
        upgraded.add(ev.conn);
        buf = '';  // anything pipelined behind the command is not trusted
        break;
      } else io.streamWrite(ev.conn, Buffer.from('500 unknown\r\n'));
    }
    lines.set(ev.conn, buf);
  });
  closers.push(r.close);
  const ep = r.io.tcpListenWith({ host: '127.0.0.1', port: 0 });
  return { ...r, port: r.io.localAddress(ep)!.port, afterUpgrade };
}
const serverTls = { cert: pki.serverCert, key: pki.serverKey };

function sClient(args: string[], input: string, waitFor: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn('openssl', ['s_client', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    const t = setTimeout(() => { p.kill(); reject(new Error(`s_client timed out:\n${err}\n${out}`)); }, 8000);
    p.stdout.on('data', (d) => { out += d; if (out.includes(waitFor)) { clearTimeout(t); p.kill(); resolve(out); } });
    p.stderr.on('data', (d) => { err += d; });
    p.on('exit', () => { clearTimeout(t); resolve(out + err); });
    // s_client reads stdin only after its handshake: give it the line then.
    setTimeout(() => p.stdin.write(input), 300);
  });
}

describe('STARTTLS, server side (tlsAcceptUpgrade)', () => {
  it('upgrades for openssl s_client -starttls smtp, then echoes over TLS', async () => {
    const s = lineServer('220 zero-io ESMTP\r\n');
    const out = await sClient(['-connect', `127.0.0.1:${s.port}`, '-starttls', 'smtp', '-CAfile', pki.path('ca.crt'), '-verify_return_error', '-quiet'], 'over tls smtp\n', 'over tls smtp');
    expect(out).toContain('over tls smtp');
    expect(s.log.filter((e) => e.type === 'TlsReady').length).toBe(1);
  });

  it('upgrades for openssl s_client -starttls ftp (AUTH TLS), then echoes over TLS', async () => {
    const s = lineServer('220 zero-io FTP\r\n');
    const out = await sClient(['-connect', `127.0.0.1:${s.port}`, '-starttls', 'ftp', '-CAfile', pki.path('ca.crt'), '-verify_return_error', '-quiet'], 'over tls ftp\n', 'over tls ftp');
    expect(out).toContain('over tls ftp');
  });

  it('never takes plaintext pipelined behind STARTTLS as protected data: it is dropped and the upgrade succeeds', async () => {
    const s = lineServer('220 zero-io ESMTP\r\n');
    const rounds = 3;
    for (let round = 0; round < rounds; round++) {
      const sock = net.connect(s.port, '127.0.0.1');
      await new Promise((r) => sock.once('data', r));  // greeting
      // The attacker's bytes ride behind the command in the same segment (one write), so the
      // server has them before it upgrades.
      sock.write('STARTTLS\r\nRCPT TO:<injected-1@evil>\r\nRCPT TO:<injected-2@evil>\r\n');
      const reply = await new Promise<Buffer>((r) => sock.once('data', r));
      expect(reply.toString()).toMatch(/^220 /);
      // A real client now starts TLS on the same socket: the handshake must succeed.
      const t = tls.connect({ socket: sock, ca: pki.ca, servername: 'localhost' });
      await new Promise<void>((res, rej) => { t.once('secureConnect', res); t.once('error', rej); });
      t.write('after\n');
      expect((await new Promise<Buffer>((r) => t.once('data', r))).toString()).toBe('after\n');
      t.destroy();
    }
    await until(() => s.log.filter((e) => e.type === 'Disconnected').length >= rounds, 5000, 'every connection closed');
    // The injected lines did reach the server, as plaintext in the command's frame ...
    const frames = s.log.filter((e) => e.type === 'StreamFrame').map((e) => e.bytes!.toString('latin1'));
    expect(frames.filter((f) => f.startsWith('STARTTLS\r\n') && f.includes('injected-2'))).toHaveLength(rounds);
    // ... and only the client's own line came through TLS, once per connection.
    expect(s.afterUpgrade.join('')).toBe('after\n'.repeat(rounds));
    expect(s.log.filter((e) => e.type === 'TlsReady')).toHaveLength(rounds);
  });

  it('plaintext injected after the 220 reply fails the handshake and never reaches the application', async () => {
    const s = lineServer('220 zero-io ESMTP\r\n');
    const sock = net.connect(s.port, '127.0.0.1');
    await new Promise((r) => sock.once('data', r));  // greeting
    sock.write('STARTTLS\r\n');
    const reply = await new Promise<Buffer>((r) => sock.once('data', r));
    expect(reply.toString()).toMatch(/^220 /);  // sent in the batch that upgraded: TLS is expected now
    sock.write('RCPT TO:<injected-3@evil>\r\n');  // lands where the ClientHello should be
    const t = tls.connect({ socket: sock, ca: pki.ca, servername: 'localhost' });
    const outcome = await new Promise<string>((res) => { t.once('secureConnect', () => res('secure')); t.once('error', () => res('error')); });
    t.destroy();
    expect(outcome).toBe('error');
    await until(() => s.log.some((e) => e.type === 'Disconnected'), 5000, 'Disconnected');
    expect(s.log.find((e) => e.type === 'Disconnected')!.kind).toBe('TlsHandshakeFailed');
    expect(s.log.some((e) => e.type === 'TlsReady')).toBe(false);
    expect(s.afterUpgrade).toEqual([]);
  });
});

describe('STARTTLS, client side (tlsUpgrade)', () => {
  it('upgrades against a node:tls STARTTLS server and exchanges data over TLS', async () => {
    const server = net.createServer((sock) => {
      sock.write('220 hi\r\n');
      sock.once('data', (d) => {
        expect(d.toString()).toBe('STARTTLS\r\n');
        sock.write('220 go ahead\r\n', () => {
          const t = new tls.TLSSocket(sock, { isServer: true, cert: pki.serverCert, key: pki.serverKey });
          t.on('data', (x) => t.write(Buffer.concat([Buffer.from('tls:'), x])));
          t.on('error', () => {});
        });
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    let stage = 0;
    let got = '';
    const c = recorder((ev, io) => {
      if (ev.type !== 'StreamFrame' && ev.type !== 'TlsReady') return;
      if (ev.type === 'TlsReady') { io.streamWrite(ev.conn, Buffer.from('secret')); return; }
      const s = Buffer.from(ev.data).toString();
      if (stage === 0 && s.startsWith('220 hi')) { stage = 1; io.streamWrite(ev.conn, Buffer.from('STARTTLS\r\n')); } else if (stage === 1 && s.startsWith('220 go')) {
        stage = 2;
        io.tlsUpgrade(ev.conn, { ca: pki.ca, servername: 'localhost' });
      } else if (stage === 2) got += s;
    });
    closers.push(c.close);
    const conn = c.io.tcpConnect(`127.0.0.1:${(server.address() as net.AddressInfo).port}`);
    await until(() => got === 'tls:secret', 5000, 'echo over TLS');
    expect(c.io.tlsInfo(conn)).toMatchObject({ side: 'client', peerVerified: true, state: 'open' });
    expect(() => c.io.tlsUpgrade(conn, { ca: pki.ca })).toThrow(/TLS already/);
    server.close();
  });
});


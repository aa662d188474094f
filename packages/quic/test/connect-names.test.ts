// quicConnect to host names: resolved through the system resolver (a private /etc/hosts in a
// mount namespace), the addresses raced as RFC 8305 says — an address nobody answers on is
// overtaken after the attempt delay, the attempt that lost leaves no trace — and names that do
// not resolve or never answer fail with clear reasons.
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { runWithHosts } from '../../tcp/test/helpers.js';
import { makePki } from './helpers.js';

const pki = makePki();
const entries = {
  core: fileURLToPath(new URL('../../core/dist/index.js', import.meta.url)),
  quic: fileURLToPath(new URL('../dist/index.js', import.meta.url)),
};

/**
 * A child script: a QUIC echo listener, a client to `name`, one echoed stream. The listener sits
 * on the resolver's `listenAt`-th address of the name (the system orders them, RFC 6724), or on
 * `listenOn` when given.
 */
function script(name: string, where: { listenAt?: number; listenOn?: string }, extra = ''): string {
  return `
    import { lookup } from 'node:dns/promises';
    const { Io } = await import(${JSON.stringify(entries.core)});
    await import(${JSON.stringify(entries.quic)});
    let listenOn = ${JSON.stringify(where.listenOn ?? null)};
    if (listenOn === null) {
      const order = (await lookup(${JSON.stringify(name)}, { all: true, order: 'verbatim' })).map((a) => a.address);
      const a = order[${where.listenAt ?? 0}];
      listenOn = a.includes(':') ? '[' + a + ']:0' : a + ':0';
    }
    const pki = ${JSON.stringify({ ca: pki.ca, cert: pki.serverCert, key: pki.serverKey })};
    const io = new Io({ poolSlotCount: 256 });
    const ep = io.quicListenWith({ addr: listenOn, tls: { cert: pki.cert, key: pki.key } });
    const port = io.localAddress(ep).port;
    const known = new Set();
    const t0 = Date.now();
    let client = io.quicConnectWith({ host: ${JSON.stringify(name)}, port, tls: { ca: pki.ca, servername: 'localhost' }${extra} });
    known.add(client);
    const before = io.poolStats().connections;
    const h = io.runSync((ev) => {
      if (ev.type === 'Connected') known.add(ev.conn);
      if (ev.type === 'Connected' && ev.conn === client) {
        // Attempts made: each is a connection of its own in the engine's counters.
        console.log('connected', io.peerAddress(client).address, Date.now() - t0 >= 240 ? 'after the attempt delay' : 'early',
          'attempts', io.poolStats().counters.connsConnected);
        io.streamWrite(client, 0, Buffer.from('ping'));
        io.streamEnd(client, 0);
      } else if (ev.type === 'StreamFrame' && ev.conn !== client) {
        io.streamWrite(ev.conn, ev.stream, Buffer.from(ev.data));
        if (ev.fin) io.streamEnd(ev.conn, ev.stream);
      } else if (ev.type === 'StreamFrame' && ev.fin) {
        console.log('echo', Buffer.from(ev.data).toString(), 'connections', io.poolStats().connections);
        io.quicClose(client);
      } else if (ev.type === 'Disconnected') {
        if (!known.has(ev.conn)) console.log('an event for an unknown id', ev.conn);
        if (ev.conn === client) {
          if (ev.reason.includes('QUIC closed locally')) console.log('closed');
          else console.log('failed', ev.errorCode, ev.reason);
          h.stop();
          io.shutdown();
        }
      }
    }, { onError: (err) => { console.error(err); process.exit(1); } });
  `;
}

describe('quicConnect to host names (Happy Eyeballs, RFC 8305)', () => {
  it('a name on ::1 and 127.0.0.1 with the server on its second address: the first goes unanswered, the second wins after the delay', () => {
    const r = runWithHosts('::1 multi.zio.test\n127.0.0.1 multi.zio.test\n', script('multi.zio.test', { listenAt: 1 }));
    expect(r.stderr).toBe('');
    // Two connections in the table at the end: the server's and the client's (the unanswered attempt is gone).
    expect(r.stdout).toMatch(/^connected (127\.0\.0\.1|::1) after the attempt delay attempts 2\necho ping connections 2\nclosed\n$/);
  });

  it('the first address answering wins: the second is never tried (IPv4 and IPv6 names)', () => {
    // An attempt delay longer than the connect timeout: a second attempt could only start if
    // the first one had failed.
    const a = runWithHosts('127.0.0.1 both.zio.test\n::1 both.zio.test\n', script('both.zio.test', { listenAt: 0 }, ', attemptDelayMs: 60000'));
    expect(a.stderr).toBe('');
    expect(a.stdout).toMatch(/^connected (127\.0\.0\.1|::1) (early|after the attempt delay) attempts 1\necho ping connections 2\nclosed\n$/);
    const b = runWithHosts('::1 six.zio.test\n', script('six.zio.test', { listenAt: 0 }));
    expect(b.stderr).toBe('');
    expect(b.stdout).toMatch(/^connected ::1 (early|after the attempt delay) attempts 1\necho ping connections 2\nclosed\n$/);
  });

  it('a name that does not resolve, and one where nobody answers (connectTimeoutMs), fail with their reasons', () => {
    const a = runWithHosts('127.0.0.1 other.zio.test\n', script('no-such-host.invalid', { listenOn: '127.0.0.1:0' }));
    expect(a.stderr).toBe('');
    expect(a.stdout).toMatch(/^failed -?\d+ ENOTFOUND: name resolution failed for no-such-host\.invalid\n$/);
    // The server listens on 127.0.0.1; the name points at 127.0.0.2 and ::1 only.
    const b = runWithHosts('127.0.0.2 void.zio.test\n::1 void.zio.test\n', script('void.zio.test', { listenOn: '127.0.0.1:0' }, ', connectTimeoutMs: 700'));
    expect(b.stderr).toBe('');
    expect(b.stdout).toMatch(/^failed -1014 .*(timed out|ConnectTimeout)/i);
  });
});

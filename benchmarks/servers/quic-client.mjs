// The client of benchmarks/quic.mjs (zero-io's own client, QUIC or TLS over TCP):
//   node quic-client.mjs <port> <bulk|download|handshake|h3download> <quic|tls> <seconds> [concurrency]
// download: asks for 4 GiB per second of <seconds> (more than any run moves) and stops after
// <seconds>, printing {"rate": bytes per second received}.
// bulk: one connection, one stream (one TCP connection), 64 KiB writes for <seconds>, then the
// end; prints {"rate": bytes per second the server counted}. handshake: connections opened and
// closed back to back, <concurrency> at a time; prints {"rate": handshakes per second}.
// h3download (quic only, ALPN h3; ngtcp2's and aioquic's HTTP/3 servers): a minimal HTTP/3 client
// on one connection — the control stream with an empty SETTINGS (no QPACK dynamic table, so no
// encoder/decoder streams), then GET /20971520 on <concurrency> (default 2) request streams at a
// time, a new one as each ends; counts the DATA frames' payload (each response must bring all
// 20 MiB) and prints {"rate": payload bytes per second}.
import { Io } from '@zero-io/core';
import '@zero-io/tcp';
import '@zero-io/quic';
import { CONTROL_STREAM, FrameWalker, get } from '../../packages/quic/test/peers/h3.mjs';

const [port, mode, proto, secs] = [Number(process.argv[2]), process.argv[3], process.argv[4], Number(process.argv[5])];
const conc = Number(process.argv[6] ?? (mode === 'h3download' ? 2 : 8));
const io = new Io({ poolSlotCount: 8192 });
const tls = { rejectUnauthorized: false, servername: 'localhost' };
const connect = () => proto === 'tls'
  ? io.tcpConnectWith({ host: '127.0.0.1', port, tls })
  : io.quicConnectWith({ host: '127.0.0.1', port, alpn: [mode === 'h3download' ? 'h3' : 'bench'], tls, initialMaxData: 64 << 20, initialMaxStreamData: 32 << 20 });
const chunk = Buffer.alloc(65536, 7);
let t0 = 0, sent = 0, done = false, handshakes = 0, reply = '';
const until = () => Date.now() - t0 >= secs * 1000;
function pump(conn) {
  while (!done) {
    if (until()) {
      done = true;
      if (proto === 'tls') io.end(conn); else io.streamEnd(conn, 0);
      return;
    }
    const n = proto === 'tls' ? io.streamWrite(conn, chunk) : io.streamWrite(conn, 0, chunk);
    sent += n;
    if (n < chunk.length) return;  // Writable follows
  }
}

// HTTP/3 (RFC 9114) and QPACK (RFC 9204), just what a GET needs: the pieces the interop tests
// use too (packages/quic/test/peers/h3.mjs).
const H3_SIZE = 20 << 20;  // per GET: gtlsserver's default --max-dyn-length
const GET = get(`/${H3_SIZE}`, 'localhost');  // HEADERS frame: static :method GET, :scheme https; literal :authority, :path
const requests = new Map();  // request stream -> its response's FrameWalker (DATA payload counted into `sent`)
function request(conn) {
  let s;
  try { s = io.openStream(conn); } catch { return false; }  // stream limit: a Writable with stream -1 follows
  requests.set(s, new FrameWalker((b) => { sent += b.length; }));
  if (io.streamWrite(conn, s, GET) !== GET.length) throw new Error('h3download: the request did not fit the stream window');
  io.streamEnd(conn, s);
  return true;
}
function fail(msg) { process.stderr.write(`h3download: ${msg}\n`); process.exit(1); }

const h = io.runSync((ev) => {
  if (mode === 'h3download') {
    if (ev.type === 'Connected') {
      t0 = Date.now();
      process.stderr.write('start\n');
      io.streamWrite(ev.conn, io.openStream(ev.conn, 'uni'), CONTROL_STREAM);  // control stream: SETTINGS, empty
      for (let i = 0; i < conc; i++) request(ev.conn);
      setTimeout(() => {
        process.stdout.write(JSON.stringify({ rate: sent / ((Date.now() - t0) / 1000) }) + '\n');
        process.exit(0);
      }, secs * 1000);
    } else if (ev.type === 'StreamFrame' && requests.has(ev.stream)) {
      const w = requests.get(ev.stream);
      w.push(ev.data, ev.length);
      if (ev.fin) {
        if (w.body !== H3_SIZE || !w.complete) fail(`stream ${ev.stream} ended after ${w.body} of ${H3_SIZE} body bytes (not a 200 with the whole body?)`);
        requests.delete(ev.stream);
        request(ev.conn);
      }
    } else if (ev.type === 'Writable' && ev.stream === -1) {
      while (requests.size < conc && request(ev.conn));
    } else if (ev.type === 'StreamReset') fail(`the server reset stream ${ev.stream} (code ${ev.errorCode})`);
    else if (ev.type === 'Disconnected') fail(`disconnected: ${ev.errorCode} ${ev.reason ?? ''}`);
    return;  // (the server's control and QPACK streams are not read)
  }
  if (mode === 'handshake') {
    if (ev.type === 'Connected') {
      handshakes++;
      io.close(ev.conn);
    } else if (ev.type === 'Disconnected' && !until()) connect();
    return;
  }
  if (mode === 'download') {
    if (ev.type === 'Connected') {
      t0 = Date.now();
      process.stderr.write('start\n');
      const ask = Buffer.from(`D${4096 * 1048576 * secs}`);
      if (proto === 'tls') io.streamWrite(ev.conn, ask); else { io.streamWrite(ev.conn, 0, ask); io.streamEnd(ev.conn, 0); }
      setTimeout(() => {
        process.stdout.write(JSON.stringify({ rate: sent / ((Date.now() - t0) / 1000) }) + '\n');
        process.exit(0);
      }, secs * 1000);
    }
    if (ev.type === 'StreamFrame') sent += ev.length;
    return;
  }
  if (ev.type === 'Connected') { t0 = Date.now(); process.stderr.write('start\n'); pump(ev.conn); }
  if (ev.type === 'Writable') pump(ev.conn);
  if (ev.type === 'StreamFrame') reply += Buffer.from(ev.data).toString();
  if (ev.type === 'StreamFrame' && (proto === 'tls' || ev.fin)) {
    const ms = Date.now() - t0;
    process.stdout.write(JSON.stringify({ rate: Number(reply) / (ms / 1000) }) + '\n');
    h.shutdown().then(() => process.exit(0));
  }
});
if (mode === 'handshake') {
  t0 = Date.now();
  process.stderr.write('start\n');
  for (let i = 0; i < conc; i++) connect();
  setTimeout(() => { process.stdout.write(JSON.stringify({ rate: handshakes / secs }) + '\n'); process.exit(0); }, secs * 1000);
} else connect();

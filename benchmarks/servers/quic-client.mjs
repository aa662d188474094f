// The client of benchmarks/quic.mjs (zero-io's own client, QUIC or TLS over TCP):
//   node quic-client.mjs <port> <bulk|download|handshake> <quic|tls> <seconds> [concurrency]
// download: asks for 4 GiB per second of <seconds> (more than any run moves) and stops after
// <seconds>, printing {"rate": bytes per second received}.
// bulk: one connection, one stream (one TCP connection), 64 KiB writes for <seconds>, then the
// end; prints {"rate": bytes per second the server counted}. handshake: connections opened and
// closed back to back, <concurrency> at a time; prints {"rate": handshakes per second}.
import { Io } from '@zero-io/core';
import '@zero-io/tcp';
import '@zero-io/quic';

const [port, mode, proto, secs, conc] = [Number(process.argv[2]), process.argv[3], process.argv[4], Number(process.argv[5]), Number(process.argv[6] ?? 8)];
const io = new Io({ poolSlotCount: 8192 });
const tls = { rejectUnauthorized: false, servername: 'localhost' };
const connect = () => proto === 'tls'
  ? io.tcpConnectWith({ host: '127.0.0.1', port, tls })
  : io.quicConnectWith({ host: '127.0.0.1', port, alpn: ['bench'], tls, initialMaxData: 64 << 20, initialMaxStreamData: 32 << 20 });
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
const h = io.runSync((ev) => {
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

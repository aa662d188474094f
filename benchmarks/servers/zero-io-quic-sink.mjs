// The server of benchmarks/quic.mjs: QUIC (quic, quic-nogso, quic-bbr2, quic-bbr2-nopace) or TLS over TCP (tls).
// Upload: counts what arrives and answers the count when the client ends. Download: a first
// message "D<bytes>" asks for that many bytes, sent as fast as flow control takes them (Writable
// honoured), then the end. Prints "ready".
//   node zero-io-quic-sink.mjs <port> <certdir> <quic|quic-nogso|quic-bbr2|quic-bbr2-nopace|tls>
import { join } from 'node:path';
import { Io } from '@zero-io/core';
import '@zero-io/tcp';
import '@zero-io/quic';

const [port, dir, mode] = [Number(process.argv[2]), process.argv[3], process.argv[4]];
const tls = { cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem') };
const io = new Io({ poolSlotCount: 8192 });
const counts = new Map();
if (mode === 'tls') io.tcpListenWith({ host: '127.0.0.1', port, tls });
else {
  io.quicListenWith({ addr: `127.0.0.1:${port}`, tls, alpn: ['bench'], initialMaxData: 64 << 20, initialMaxStreamData: 32 << 20,
    maxStreamsBidi: 1000, gso: mode !== 'quic-nogso', congestionControl: mode.startsWith('quic-bbr2') ? 'bbr2' : 'cubic', pacing: mode === 'quic-bbr2-nopace' ? 'off' : 'wheel' });
}
const chunk = Buffer.alloc(65536, 9);
const downloads = new Map();  // conn -> { stream, left }
function send(conn) {
  const d = downloads.get(conn);
  while (d && d.left > 0) {
    const part = d.left < chunk.length ? chunk.subarray(0, d.left) : chunk;
    const n = mode === 'tls' ? io.streamWrite(conn, part) : io.streamWrite(conn, d.stream, part);
    d.left -= n;
    if (n < part.length) return;  // Writable follows
  }
  if (d) {
    downloads.delete(conn);
    if (mode === 'tls') io.end(conn); else io.streamEnd(conn, d.stream);
  }
}
io.runSync((ev) => {
  if (ev.type === 'StreamFrame' && !counts.has(ev.conn) && ev.length > 1 && ev.data[0] === 0x44 /* D */) {
    downloads.set(ev.conn, { stream: ev.stream, left: Number(Buffer.from(ev.data.subarray(1)).toString()) });
    counts.set(ev.conn, 0);
    send(ev.conn);
  } else if (ev.type === 'Writable') {
    send(ev.conn);
  } else if (ev.type === 'StreamFrame' && downloads.has(ev.conn)) {
    // (the client's end of its request)
  } else if (ev.type === 'StreamFrame') {
    counts.set(ev.conn, (counts.get(ev.conn) ?? 0) + ev.length);
    if (ev.fin) { io.streamWrite(ev.conn, ev.stream, Buffer.from(String(counts.get(ev.conn)))); io.streamEnd(ev.conn, ev.stream); }
  } else if (ev.type === 'PeerEnded') {
    if (!downloads.has(ev.conn)) io.streamWrite(ev.conn, Buffer.from(String(counts.get(ev.conn) ?? 0)));
  } else if (ev.type === 'Disconnected') { counts.delete(ev.conn); downloads.delete(ev.conn); }
});
process.stderr.write('ready\n');

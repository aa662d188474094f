// The one TLS load client of benchmarks/tls.mjs (node:tls), used against every server.
//   handshake <conns>: new TLS 1.3 connections in a loop (no resumption), counts handshakes
//   bulk <conns>: counts bytes received;  echo <conns> <size>: ping-pong, counts messages
// Prints "start" on stderr when the measured window opens and one JSON line at its end.
import tls from 'node:tls';

const [port, mode, conns, size, seconds] = [Number(process.argv[2]), process.argv[3], Number(process.argv[4]), Number(process.argv[5] ?? 1024), Number(process.argv[6] ?? 5)];
let count = 0;
let measuring = false;
const opts = { host: '127.0.0.1', port, rejectUnauthorized: false, minVersion: 'TLSv1.3', session: undefined };
function handshakeLoop() {
  const s = tls.connect(opts, () => { if (measuring) count++; s.destroy(); handshakeLoop(); });
  s.on('error', () => handshakeLoop());
}
function bulk() {
  const s = tls.connect(opts);
  s.on('data', (d) => { if (measuring) count += d.length; });
  s.on('error', () => {});
}
function echo() {
  const msg = Buffer.alloc(size, 1);
  const s = tls.connect(opts, () => s.write(msg));
  s.setNoDelay(true);
  let got = 0;
  s.on('data', (d) => { got += d.length; while (got >= size) { got -= size; if (measuring) count++; s.write(msg); } });
  s.on('error', () => {});
}
for (let i = 0; i < conns; i++) (mode === 'handshake' ? handshakeLoop : mode === 'bulk' ? bulk : echo)();
setTimeout(() => {
  measuring = true;
  process.stderr.write('start\n');
  const t0 = process.hrtime.bigint();
  setTimeout(() => {
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    process.stdout.write(JSON.stringify({ rate: count / s }) + '\n');
    process.exit(0);
  }, seconds * 1000);
}, 1000);

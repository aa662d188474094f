// zero-io broadcast server. Usage: node zero-io-broadcast.mjs PORT SIZE   (env ZIO_BCAST=fanout|copy)
// Each byte received from any connection triggers one broadcast of a SIZE-byte message (its
// bytes follow the pattern the load generator checks) to every connection:
//   fanout: one SendBuffer queued on every connection (refcounted, no copy)
//   copy:   streamWrite of the same bytes to every connection (one copy each)
// Prints "listening <port>" on stdout when ready.
import { Io } from '@zero-io/core';
import '@zero-io/tcp';

const port = Number(process.argv[2] ?? 0);
const size = Number(process.argv[3] ?? 256);
const mode = process.env.ZIO_BCAST ?? 'fanout';
const io = new Io({ maxConnections: 4096 });
io.tcpListen(`127.0.0.1:${port}`);
const conns = [];
const msg = new Uint8Array(size);
let index = 0;
function broadcast() {
  for (let i = 0; i < size; i++) msg[i] = (index * 13 + i) & 0xff;
  index++;
  if (mode === 'fanout') {
    const buf = io.sendBuffer(size);
    buf.bytes.set(msg);
    buf.length = size;
    for (let i = 0; i < conns.length; i++) io.streamWriteBuffer(conns[i], buf);
    buf.release();
  } else {
    for (let i = 0; i < conns.length; i++) io.streamWrite(conns[i], msg);
  }
}
io.runSync((ev) => {
  switch (ev.type) {
    case 'Connected': conns.push(ev.conn); break;
    case 'StreamFrame': for (let i = 0; i < ev.length; i++) broadcast(); break;
    case 'Disconnected': { const k = conns.indexOf(ev.conn); if (k >= 0) conns.splice(k, 1); break; }
  }
});
process.once('SIGTERM', () => process.exit(0));
process.once('SIGINT', () => process.exit(0));
console.log(`listening ${port}`);

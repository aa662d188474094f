// zero-io UDP echo server. Usage: node zero-io-udp-echo.mjs PORT
// Replies to each datagram's sender straight from the pool: no JS allocation per datagram.
// Prints "listening <port>" on stdout when ready.
import { Io } from '@zero-io/core';

const port = Number(process.argv[2] ?? 0);
const io = new Io();
const ep = io.udpBindWith({ host: '127.0.0.1', port, recvBufferSize: 4 << 20 });
const pool = io.poolBytes;
io.runSync((ev) => {
  if (ev.type === 'UdpRecv') {
    try {
      io.udpSendBytes(ep, ev, pool, ev.offset, ev.length);
    } catch {
      // PoolExhausted: drop, as a UDP server under overload does
    }
  }
});
process.once('SIGTERM', () => process.exit(0));
process.once('SIGINT', () => process.exit(0));
console.log(`listening ${port}`);

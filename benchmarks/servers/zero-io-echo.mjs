// zero-io echo server. Usage: node zero-io-echo.mjs PORT   (env ZIO_ECHO_MODE=view|offset)
// Prints "listening <port>" on stdout when ready.
import { installHeapReport } from './heap-report.mjs';

const port = Number(process.argv[2] ?? 0);
let frames = 0;
const heap = installHeapReport(() => frames, 'zero-io');

let Io;
try {
  ({ Io } = await import('@zero-io/core'));
  await import('@zero-io/tcp'); // adds io.tcpListen etc. to Io.prototype
} catch (err) {
  console.error(`zero-io-echo: cannot load @zero-io/core / @zero-io/tcp (not installed or not built?): ${err.message}`);
  process.exit(1);
}

// ZIO_DEFER_TASKRUN=0 selects IORING_SETUP_COOP_TASKRUN instead of DEFER_TASKRUN (A/B runs).
// maxConnections 4096: headroom over the c=1000 scenario (the table limit is the only accept limit).
const io = new Io({ maxConnections: 4096, uring: { deferTaskrun: process.env.ZIO_DEFER_TASKRUN !== '0' } });
io.tcpListen(`127.0.0.1:${port}`);
if (!heap) {
  process.once('SIGTERM', () => process.exit(0));
  process.once('SIGINT', () => process.exit(0));
}
console.log(`listening ${port}`);
// ZIO_ECHO_MODE=offset forwards through io.poolBytes + ev.offset (no view object per message).
const pool = io.poolBytes;
if (process.env.ZIO_ECHO_MODE === 'offset') {
  io.runSync((ev) => {
    if (ev.type === 'StreamFrame') {
      frames++;
      io.streamWrite(ev.conn, pool, ev.offset, ev.length);
    }
  });
} else {
  io.runSync((ev) => {
    if (ev.type === 'StreamFrame') {
      frames++;
      io.streamWrite(ev.conn, ev.data); // ev.data is a borrowed Uint8Array view
    }
  });
}

// zero-io WebSocket broadcast server. Usage: node zero-io-ws-broadcast.mjs PORT SIZE
// Every connection subscribes to one topic; each message received triggers one wsPublish of a
// SIZE-byte binary message (the pattern the load generator checks): one frame, queued by
// reference on every subscriber. Prints "listening <port>" on stdout when ready.
import { Io } from '@zero-io/core';
import '@zero-io/websocket';

const port = Number(process.argv[2] ?? 0);
const size = Number(process.argv[3] ?? 256);
const io = new Io({ maxConnections: 4096 });
io.wsListenWith({ host: '127.0.0.1', port, pingIntervalMs: 0, maxBufferedBytes: 16 << 20 });
const msg = new Uint8Array(size);
let index = 0;
io.runSync((ev) => {
  if (ev.type === 'WsOpen') io.wsSubscribe(ev.conn, 'b');
  else if (ev.type === 'StreamFrame') {
    for (let i = 0; i < size; i++) msg[i] = (index * 13 + i) & 0xff;
    index++;
    io.wsPublish('b', msg);
  }
});
process.once('SIGTERM', () => process.exit(0));
process.once('SIGINT', () => process.exit(0));
console.log(`listening ${port}`);

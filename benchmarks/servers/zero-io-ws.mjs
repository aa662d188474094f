// zero-io WebSocket echo server. Usage: node zero-io-ws.mjs PORT
// Prints "listening <port>" on stdout when ready. Every message is echoed with io.wsSend (the
// frame is built natively; ev.data is a borrowed view of the message in the pool).
const port = Number(process.argv[2] ?? 0);
let Io;
try {
  ({ Io } = await import('@zero-io/core'));
  await import('@zero-io/websocket');
} catch (err) {
  console.error(`zero-io-ws: cannot load @zero-io/core / @zero-io/websocket (not installed or not built?): ${err.message}`);
  process.exit(1);
}
const io = new Io({ maxConnections: 4096 });
// No pings during a benchmark run (both competitors have them off by default too).
io.wsListenWith({ host: '127.0.0.1', port, pingIntervalMs: 0, maxBufferedBytes: 16 << 20 });
process.once('SIGTERM', () => process.exit(0));
process.once('SIGINT', () => process.exit(0));
console.log(`listening ${port}`);
io.runSync((ev) => {
  if (ev.type === 'StreamFrame') io.wsSend(ev.conn, ev.data, ev.kind === 'WsText');
});

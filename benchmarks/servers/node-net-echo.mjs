// node:net echo server. Usage: node node-net-echo.mjs PORT
// Prints "listening <port>" on stdout when ready.
import net from 'node:net';
import { installHeapReport } from './heap-report.mjs';

const port = Number(process.argv[2] ?? 0);
let frames = 0;
const heap = installHeapReport(() => frames, 'node:net');

const server = net.createServer({ noDelay: true }, (socket) => {
  socket.setNoDelay(true);
  socket.on('data', (chunk) => {
    frames++;
    socket.write(chunk);
  });
  socket.on('error', () => socket.destroy());
});
server.on('error', (err) => {
  console.error(`node-net-echo: ${err.message}`);
  process.exit(1);
});
server.listen({ host: '127.0.0.1', port, backlog: 4096 }, () => {
  console.log(`listening ${server.address().port}`);
});
if (!heap) {
  process.once('SIGTERM', () => process.exit(0));
  process.once('SIGINT', () => process.exit(0));
}

// node:dgram UDP echo server. Usage: node node-dgram-echo.mjs PORT
// Prints "listening <port>" on stdout when ready.
import dgram from 'node:dgram';

const port = Number(process.argv[2] ?? 0);
const s = dgram.createSocket({ type: 'udp4', recvBufferSize: 4 << 20 });
s.on('message', (msg, rinfo) => s.send(msg, rinfo.port, rinfo.address));
s.on('error', (err) => {
  console.error(`node-dgram-echo: ${err.message}`);
  process.exit(1);
});
s.bind(port, '127.0.0.1', () => console.log(`listening ${s.address().port}`));
process.once('SIGTERM', () => process.exit(0));
process.once('SIGINT', () => process.exit(0));

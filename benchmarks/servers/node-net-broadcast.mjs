// node:net broadcast server (same protocol as zero-io-broadcast.mjs). Usage: node node-net-broadcast.mjs PORT SIZE
import net from 'node:net';

const port = Number(process.argv[2] ?? 0);
const size = Number(process.argv[3] ?? 256);
const sockets = new Set();
let index = 0;
function broadcast() {
  const msg = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i++) msg[i] = (index * 13 + i) & 0xff;
  index++;
  for (const s of sockets) s.write(msg);
}
const server = net.createServer({ noDelay: true }, (s) => {
  sockets.add(s);
  s.on('data', (d) => { for (let i = 0; i < d.length; i++) broadcast(); });
  s.on('close', () => sockets.delete(s));
  s.on('error', () => s.destroy());
});
server.listen({ host: '127.0.0.1', port, backlog: 4096 }, () => console.log(`listening ${server.address().port}`));
process.once('SIGTERM', () => process.exit(0));
process.once('SIGINT', () => process.exit(0));

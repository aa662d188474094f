// ws (npm) broadcast server. Usage: node node-ws-broadcast.mjs PORT SIZE
// Each message received triggers one SIZE-byte binary message to every client (the loop the ws
// README shows for broadcasting). Prints "listening <port>" on stdout when ready.
import { WebSocketServer, WebSocket } from 'ws';

const port = Number(process.argv[2] ?? 0);
const size = Number(process.argv[3] ?? 256);
const wss = new WebSocketServer({ host: '127.0.0.1', port, perMessageDeflate: false });
const msg = Buffer.alloc(size);
let index = 0;
wss.on('connection', (ws) => {
  ws.on('message', () => {
    for (let i = 0; i < size; i++) msg[i] = (index * 13 + i) & 0xff;
    index++;
    for (const c of wss.clients) if (c.readyState === WebSocket.OPEN) c.send(msg, { binary: true });
  });
});
wss.on('listening', () => console.log(`listening ${port}`));
process.once('SIGTERM', () => process.exit(0));
process.once('SIGINT', () => process.exit(0));

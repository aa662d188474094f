// Bun WebSocket broadcast server (Bun.serve, server.publish: uWebSockets' pub/sub).
// Usage: bun bun-ws-broadcast.ts PORT SIZE. Prints "listening <port>" on stdout when ready.
const port = Number(process.argv[2] ?? 0);
const size = Number(process.argv[3] ?? 256);
const msg = new Uint8Array(size);
let index = 0;
const server = Bun.serve({
  hostname: '127.0.0.1',
  port,
  fetch(req, srv) {
    if (srv.upgrade(req)) return undefined;
    return new Response('WebSocket only', { status: 426 });
  },
  websocket: {
    perMessageDeflate: false,
    idleTimeout: 0,
    sendPings: false,
    maxPayloadLength: 1 << 20,
    backpressureLimit: 16 << 20,
    open(ws) { ws.subscribe('b'); },
    message() {
      for (let i = 0; i < size; i++) msg[i] = (index * 13 + i) & 0xff;
      index++;
      server.publish('b', msg);
    },
  },
});
console.log(`listening ${port}`);

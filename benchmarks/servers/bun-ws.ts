// Bun WebSocket echo server (Bun.serve's websocket handler: uWebSockets inside).
// Usage: bun bun-ws.ts PORT. Prints "listening <port>" on stdout when ready.
const port = Number(process.argv[2] ?? 0);
Bun.serve({
  hostname: '127.0.0.1',
  port,
  fetch(req, server) {
    if (server.upgrade(req)) return undefined;
    return new Response('WebSocket only', { status: 426 });
  },
  websocket: {
    perMessageDeflate: false,
    maxPayloadLength: 16 << 20,
    idleTimeout: 0,
    sendPings: false,
    message(ws, message) {
      ws.send(message);
    },
  },
});
console.log(`listening ${port}`);

// Bun.serve server. Usage: bun bun-http.ts PORT [hello|json]
// PORT 0 binds a free port; prints "listening <port>" when ready.
// The fetch handler runs JS per request, like the other servers' handlers; Bun's static
// `routes` responses would answer without entering JS and measure something else.
import { makePayload } from './http-payload.mjs';

const port = Number(process.argv[2] ?? 0);
const mode = process.argv[3] ?? 'hello';
const textType = { 'content-type': 'text/plain; charset=utf-8' };

const server = Bun.serve({
  hostname: '127.0.0.1',
  port,
  fetch: mode === 'json' ? () => Response.json(makePayload()) : () => new Response('Hello, World!', { headers: textType }),
});

console.log(`listening ${server.port}`);
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));

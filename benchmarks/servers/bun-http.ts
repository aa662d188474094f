// Bun.serve server. Usage: bun bun-http.ts PORT [hello|json|jsonasync|upload|jsongz]
// (jsongz: Bun.gzipSync at level 5 when the request accepts gzip, as a handler would)
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
  maxRequestBodySize: 2 << 20,
  fetch:
    mode === 'upload'
      ? async (req: Request) => {
          let n = 0;
          for await (const chunk of req.body as unknown as AsyncIterable<Uint8Array>) n += chunk.length;
          return new Response(String(n), { headers: textType });
        }
      : mode === 'jsongz'
      ? (req: Request) => {
          const body = JSON.stringify(makePayload());
          if (/\bgzip\b/.test(req.headers.get('accept-encoding') ?? ''))
            return new Response(Bun.gzipSync(body, { level: 5 }), {
              headers: { 'content-type': 'application/json', 'content-encoding': 'gzip', vary: 'Accept-Encoding' },
            });
          return new Response(body, { headers: { 'content-type': 'application/json', vary: 'Accept-Encoding' } });
        }
      : mode === 'json' || mode === 'jsonasync'
        ? () => Response.json(makePayload())
        : () => new Response('Hello, World!', { headers: textType }),
});

console.log(`listening ${server.port}`);
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));

// node:http2 server, cleartext HTTP/2 with prior knowledge (h2c): what h2load speaks to an
// http:// URL. Usage: node node-http2.mjs PORT [hello|json]   (modes as in zero-io-http.mjs)
// PORT 0 binds a free port; prints "listening <port>" when ready.
import http2 from 'node:http2';
import { installHeapReport } from './heap-report.mjs';
import { makePayload } from './http-payload.mjs';

const port = Number(process.argv[2] ?? 0);
const mode = process.argv[3] ?? 'hello';
let requests = 0;
const heap = installHeapReport(() => requests, 'node:http2');

// The core 'stream' API, not the compatibility (req, res) layer: it is node:http2's fastest path,
// so the competitor is not slowed down by an adapter. hello: body and header object made once.
const hello = Buffer.from('Hello, World!');
const helloHeaders = { ':status': 200, 'content-type': 'text/plain; charset=utf-8', 'content-length': hello.length };
const onStream =
  mode === 'json'
    ? (stream) => {
        requests++;
        const body = JSON.stringify(makePayload());
        stream.respond({ ':status': 200, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
        stream.end(body);
      }
    : (stream) => {
        requests++;
        stream.respond(helloHeaders);
        stream.end(hello);
      };
const server = http2.createServer();
server.on('stream', onStream);
// A client that resets or drops a stream (h2load stopping at the end of its window) must not
// take the server down.
server.on('sessionError', () => {});
server.on('error', (err) => {
  console.error(`node-http2: ${err.message}`);
  process.exit(1);
});
server.listen({ host: '127.0.0.1', port, backlog: 4096 }, () => console.log(`listening ${server.address().port}`));
if (!heap) {
  process.once('SIGTERM', () => process.exit(0));
  process.once('SIGINT', () => process.exit(0));
}

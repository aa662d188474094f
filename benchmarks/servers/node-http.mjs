// node:http server. Usage: node node-http.mjs PORT [hello|json]   (modes as in zero-io-http.mjs)
// PORT 0 binds a free port; prints "listening <port>" when ready.
import http from 'node:http';
import { installHeapReport } from './heap-report.mjs';
import { makePayload } from './http-payload.mjs';

const port = Number(process.argv[2] ?? 0);
const mode = process.argv[3] ?? 'hello';
let requests = 0;
const heap = installHeapReport(() => requests, 'node:http');

// hello: the body and the header object are made once, as close to a reused response as
// node:http gets; the headers match what zero-io sends (Date and Connection node adds itself).
const hello = Buffer.from('Hello, World!');
const helloHeaders = { 'content-type': 'text/plain; charset=utf-8', 'content-length': hello.length };
const handler =
  mode === 'json'
    ? (req, res) => {
        requests++;
        const body = JSON.stringify(makePayload());
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
        res.end(body);
      }
    : (req, res) => {
        requests++;
        res.writeHead(200, helloHeaders);
        res.end(hello);
      };
const server = http.createServer({ noDelay: true }, handler);
server.on('error', (err) => {
  console.error(`node-http: ${err.message}`);
  process.exit(1);
});
server.listen({ host: '127.0.0.1', port, backlog: 4096 }, () => console.log(`listening ${server.address().port}`));
if (!heap) {
  process.once('SIGTERM', () => process.exit(0));
  process.once('SIGINT', () => process.exit(0));
}

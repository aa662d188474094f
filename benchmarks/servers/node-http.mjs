// node:http server. Usage: node node-http.mjs PORT [hello|json|jsongz]   (modes as in zero-io-http.mjs;
// jsongz: zlib.gzipSync at level 5 when the request accepts gzip, as a handler would)
// PORT 0 binds a free port; prints "listening <port>" when ready.
import http from 'node:http';
import zlib from 'node:zlib';
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
  mode === 'upload'
    ? (req, res) => {
        requests++;
        let n = 0;
        req.on('data', (c) => (n += c.length));
        req.on('end', () => {
          const body = String(n);
          res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'content-length': body.length });
          res.end(body);
        });
      }
    : mode === 'jsongz'
    ? (req, res) => {
        requests++;
        const body = JSON.stringify(makePayload());
        if (/\bgzip\b/.test(req.headers['accept-encoding'] ?? '')) {
          const gz = zlib.gzipSync(body, { level: 5 });
          res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip', vary: 'Accept-Encoding', 'content-length': gz.length });
          res.end(gz);
        } else {
          res.writeHead(200, { 'content-type': 'application/json', vary: 'Accept-Encoding', 'content-length': Buffer.byteLength(body) });
          res.end(body);
        }
      }
    : mode === 'json' || mode === 'jsonasync'
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

// zero-io HTTP/1.1 server. Usage: node zero-io-http.mjs PORT [hello|json]
//   hello: one ZeroResponse built (and serialised natively) once, reused for every request
//   json:  ZeroResponse.ok().json(makePayload()) per request (~1 KiB built and serialised each time)
//   jsongz: the same; the engine compresses it for a client that accepts gzip (level 5)
// PORT 0 binds a free port; prints "listening <port>" (the bound port, read back) when ready.
import { installHeapReport } from './heap-report.mjs';
import { makePayload } from './http-payload.mjs';

const port = Number(process.argv[2] ?? 0);
const mode = process.argv[3] ?? 'hello';
let requests = 0;
const heap = installHeapReport(() => requests, 'zero-io');

let Io;
let ZeroResponse;
try {
  ({ Io } = await import('@zero-io/core'));
  ({ ZeroResponse } = await import('@zero-io/http')); // adds io.httpListen etc. to Io.prototype
} catch (err) {
  console.error(`zero-io-http: cannot load @zero-io/core / @zero-io/http (not installed or not built?): ${err.message}`);
  process.exit(1);
}

const io = new Io();
const ep = io.httpListen(`127.0.0.1:${port}`);
if (!heap) {
  process.once('SIGTERM', () => process.exit(0));
  process.once('SIGINT', () => process.exit(0));
}
if (mode === 'json' || mode === 'jsongz') {
  io.runSync((ev) => {
    if (ev.type === 'HttpRequest') {
      requests++;
      io.httpRespond(ev.conn, ev.requestId, ZeroResponse.ok().json(makePayload()));
    }
  });
} else {
  const hello = ZeroResponse.ok().text('Hello, World!');
  io.runSync((ev) => {
    if (ev.type === 'HttpRequest') {
      requests++;
      io.httpRespond(ev.conn, ev.requestId, hello);
    }
  });
}
console.log(`listening ${io.localAddress(ep).port}`);

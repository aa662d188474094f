// zero-io HTTP/1.1 server. Usage: node zero-io-http.mjs PORT [hello|json|jsonasync|upload|jsongz]
//   hello: one ZeroResponse built (and serialised natively) once, reused for every request
//   json:  ZeroResponse.ok().json(makePayload()) per request (~1 KiB built and serialised each time)
//   jsongz: the same; the engine compresses it for a client that accepts gzip (level 5)
//   jsonasync: the same JSON from runAsync (an async handler; each request detached)
//   upload: runAsync; the body read with req.bodyStream() and counted; answers the count
// PORT 0 binds a free port; prints "listening <port>" (the bound port, read back) when ready.
import { installHeapReport } from './heap-report.mjs';
import { makePayload } from './http-payload.mjs';

const port = Number(process.argv[2] ?? 0);
const mode = process.argv[3] ?? 'hello';
const kind = mode.replace(/:16k$/, '');
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

// MODE:16k: 16 KiB pool slots (1,024 of them: the default pool's 8 MiB... x2), so each receive
// completion carries up to 16 KiB of a body instead of 2 KiB (the upload scenario shows both).
const io = new Io(mode.endsWith(':16k') ? { poolSlotSize: 16384, poolSlotCount: 1024 } : {});
const ep = io.httpListen(`127.0.0.1:${port}`);
if (!heap) {
  process.once('SIGTERM', () => process.exit(0));
  process.once('SIGINT', () => process.exit(0));
}
if (kind === 'jsonasync') {
  io.runAsync(async () => {
    requests++;
    return ZeroResponse.ok().json(makePayload());
  });
} else if (kind === 'upload') {
  io.runAsync(async (req) => {
    requests++;
    let n = 0;
    for await (const chunk of req.bodyStream()) n += chunk.length;
    return ZeroResponse.ok().text(String(n));
  });
} else if (kind === 'json' || kind === 'jsongz') {
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

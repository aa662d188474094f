// Request smuggling and malformed requests against the zero-io HTTP/1.1 server, from published
// research: CL.TE / TE.CL / TE.TE (Watchfire 2005; J. Kettle, "HTTP Desync Attacks", 2019),
// header-name and line-ending tricks (A. Klein, "HTTP Request Smuggling in 2020"), chunk-size and
// chunk-extension tricks ("funky chunks", 2025), plus the limits (RFC 9112 sections 2.2, 3, 5, 6, 7).
//
// Each vector goes on its own raw connection and must get exactly one response: the status given,
// with Connection: close, followed by the server's FIN (a lingering close: the response is never
// lost to a reset), and the handler must not see the bad request. A keep-alive connection opened
// before the attacks is checked after each one: other connections are unaffected.
// docs/architecture/0013-http1-parser.md lists the strictness choices these vectors pin down.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ConnId } from '@zero-io/core';
import { ZeroResponse } from '@zero-io/http';
import { RawClient, excerpt, get, startServer, until, type HttpServer, type RequestCopy } from './helpers.js';

interface Vector {
  name: string;
  wire: string;
  status: number;
  /**
   * 'head': refused while parsing the head: the handler sees nothing. 'body': the head is fine
   * and the body's framing is not: the handler may have seen the head (a streamed request) but
   * never the body's end, and the answer is still the error status.
   */
  level: 'head' | 'body';
  /** The server with maxBodySize 1000 instead of the default. */
  small?: boolean;
}

const H = 'POST / HTTP/1.1\r\nHost: h\r\n';
const TE = `${H}Transfer-Encoding: chunked\r\n\r\n`;

function head(name: string, wire: string, status = 400): Vector { return { name, wire, status, level: 'head' }; }
function body(name: string, wire: string, status = 400, small = false): Vector { return { name, wire, status, level: 'body', small }; }

const vectors: Vector[] = [
  // ---- CL.TE and TE.CL: both framings in one request (RFC 9112 section 6.3: refuse, never guess).
  head('CL.TE: Content-Length then Transfer-Encoding', `${H}Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG`),
  head('TE.CL: Transfer-Encoding then Content-Length', `${H}Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n8\r\nSMUGGLED\r\n0\r\n\r\n`),
  head('CL.0 with TE: Content-Length 0 and Transfer-Encoding', `${H}Content-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nGPOST\r\n0\r\n\r\n`),
  head('TE.CL with an obfuscated TE (space before the colon) and a CL', `${H}Transfer-Encoding : chunked\r\nContent-Length: 4\r\n\r\n5c\r\nGPOST / HTTP/1.1\r\n\r\n0\r\n\r\n`),
  // ---- TE.TE: obfuscated Transfer-Encoding fields.
  head('TE.TE: space before the colon (RFC 9112 section 5.1)', `${H}Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n`),
  head('TE.TE: tab before the colon', `${H}Transfer-Encoding\t: chunked\r\n\r\n0\r\n\r\n`),
  head('TE.TE: xchunked', `${H}Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n`),
  head('TE.TE: chunked, identity (chunked not last)', `${H}Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n`),
  head('TE.TE: identity alone', `${H}Transfer-Encoding: identity\r\n\r\n0\r\n\r\n`),
  head('TE.TE: two Transfer-Encoding fields', `${H}Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`),
  head('TE.TE: a second field in another case says identity', `${H}Transfer-Encoding: chunked\r\ntransfer-encoding: identity\r\n\r\n0\r\n\r\n`),
  head('TE.TE: chunked, chunked', `${H}Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n`),
  head('TE.TE: an empty list element before chunked', `${H}Transfer-Encoding: , chunked\r\n\r\n0\r\n\r\n`),
  head('TE.TE: quoted "chunked"', `${H}Transfer-Encoding: "chunked"\r\n\r\n0\r\n\r\n`),
  head('TE.TE: vertical tab after chunked', `${H}Transfer-Encoding: chunked\x0b\r\n\r\n0\r\n\r\n`),
  head('TE.TE: form feed instead of the space', `${H}Transfer-Encoding:\x0cchunked\r\n\r\n0\r\n\r\n`),
  head('TE.TE: NUL after chunked', `${H}Transfer-Encoding: chunked\0\r\n\r\n0\r\n\r\n`),
  head('TE.TE: obs-fold of the value (Transfer-Encoding:CRLF SP chunked)', `${H}Transfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n`),
  head('TE.TE: Transfer-Encoding hidden in an obs-fold continuation of another field', `${H}X-Fold: a\r\n Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n`),
  head('TE: gzip, chunked (a transfer coding not implemented)', `${H}Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n`, 501),
  head('TE: identity, chunked (a transfer coding not implemented)', `${H}Transfer-Encoding: identity, chunked\r\n\r\n0\r\n\r\n`, 501),
  head('TE in an HTTP/1.0 request (RFC 9112 section 6.1)', 'POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'),
  // ---- Content-Length tricks.
  head('CL: two identical fields', `${H}Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello`),
  head('CL: two different fields', `${H}Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!`),
  head('CL: a list "5, 5"', `${H}Content-Length: 5, 5\r\n\r\nhello`),
  head('CL: plus sign', `${H}Content-Length: +5\r\n\r\nhello`),
  head('CL: negative', `${H}Content-Length: -1\r\n\r\n`),
  head('CL: hexadecimal 0x5', `${H}Content-Length: 0x5\r\n\r\nhello`),
  head('CL: trailing garbage 5x', `${H}Content-Length: 5x\r\n\r\nhello`),
  head('CL: leading garbage a5', `${H}Content-Length: a5\r\n\r\nhello`),
  head('CL: decimal point 5.0', `${H}Content-Length: 5.0\r\n\r\nhello`),
  head('CL: a space inside the digits', `${H}Content-Length: 1 0\r\n\r\n0123456789`),
  head('CL: overflowing 64 bits', `${H}Content-Length: 99999999999999999999999\r\n\r\n`),
  head('CL: empty value', `${H}Content-Length:\r\n\r\n`),
  head('CL: space before the colon', `${H}Content-Length : 5\r\n\r\nhello`),
  // ---- Line endings and control characters.
  head('bare LF line endings throughout', 'POST / HTTP/1.1\nHost: h\nContent-Length: 5\n\nhello'),
  head('bare LF ending one field line', `${H}Content-Length: 5\n\r\nhello`),
  head('bare CR ending the request line', 'GET / HTTP/1.1\rHost: h\r\n\r\n'),
  head('bare CR inside a field value', `${H}X-A: a\rb\r\n\r\n`),
  head('bare CR before CRLF', `${H}X-A: a\r\r\n\r\n`),
  head('NUL in a field value', `${H}X-A: a\0b\r\n\r\n`),
  head('NUL in a field name', `${H}X\0Y: 1\r\n\r\n`),
  head('DEL in a field value', `${H}X-A: a\x7f\r\n\r\n`),
  head('obs-fold continuation line (RFC 9112 section 5.2)', `${H}X-A: a\r\n\tb\r\n\r\n`),
  head('whitespace before the first field line', 'GET / HTTP/1.1\r\n Host: h\r\n\r\n'),
  // ---- The request line.
  head('NUL in the target', 'GET /a\0b HTTP/1.1\r\nHost: h\r\n\r\n'),
  head('a space in the target', 'GET /a b HTTP/1.1\r\nHost: h\r\n\r\n'),
  head('a control character in the target', 'GET /a\x01 HTTP/1.1\r\nHost: h\r\n\r\n'),
  head('DEL in the target', 'GET /a\x7f HTTP/1.1\r\nHost: h\r\n\r\n'),
  head('raw UTF-8 in the target', 'GET /caf\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n'),
  head('a method with a separator character', 'G(ET / HTTP/1.1\r\nHost: h\r\n\r\n'),
  head('NUL in the method', 'G\0ET / HTTP/1.1\r\nHost: h\r\n\r\n'),
  head('a space inside the method', 'GE T / HTTP/1.1\r\nHost: h\r\n\r\n'),
  head('two spaces after the method', 'GET  / HTTP/1.1\r\nHost: h\r\n\r\n'),
  head('a tab as the separator', 'GET\t/ HTTP/1.1\r\nHost: h\r\n\r\n'),
  head('a space before the method', ' GET / HTTP/1.1\r\nHost: h\r\n\r\n'),
  head('a method longer than 32 bytes', `${'GET'.repeat(20)} / HTTP/1.1\r\nHost: h\r\n\r\n`),
  head('a lowercase version', 'GET / http/1.1\r\nHost: h\r\n\r\n'),
  head('a space after the version', 'GET / HTTP/1.1 \r\nHost: h\r\n\r\n'),
  head('an HTTP/0.9-style request line (no version)', 'GET /\r\n\r\n'),
  head('a two-digit minor version HTTP/1.10', 'GET / HTTP/1.10\r\nHost: h\r\n\r\n'),
  // ---- Versions other than 1.0 and 1.1.
  head('HTTP/1.2', 'GET / HTTP/1.2\r\nHost: h\r\n\r\n', 505),
  head('HTTP/2.0 on an HTTP/1 request line', 'GET / HTTP/2.0\r\nHost: h\r\n\r\n', 505),
  head('HTTP/3.0', 'GET / HTTP/3.0\r\nHost: h\r\n\r\n', 505),
  head('HTTP/0.9 with a version', 'GET / HTTP/0.9\r\nHost: h\r\n\r\n', 505),
  // ---- Host (RFC 9112 section 3.2).
  head('no Host in an HTTP/1.1 request', 'GET / HTTP/1.1\r\n\r\n'),
  head('two Host fields', 'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n'),
  head('two Host fields in different cases', 'GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n'),
  // ---- Field names.
  head('a space inside a field name', `${H}Bad Name: 1\r\n\r\n`),
  head('an empty field name', `${H}: value\r\n\r\n`),
  head('a field line "::"', `${H}::\r\n\r\n`),
  head('a separator (/) in a field name', `${H}X/Y: 1\r\n\r\n`),
  head('a field line without a colon', `${H}NoColonHere\r\n\r\n`),
  // ---- Expectations (RFC 9110 section 10.1.1).
  head('an expectation other than 100-continue', `${H}Expect: 200-ok\r\n\r\n`, 417),
  // ---- Limits.
  head('an absurdly long target (10 KiB)', `GET /${'a'.repeat(10 * 1024)} HTTP/1.1\r\nHost: h\r\n\r\n`, 414),
  head('101 header fields', `GET / HTTP/1.1\r\nHost: h\r\n${Array.from({ length: 100 }, (_, i) => `X-${i}: v\r\n`).join('')}\r\n`, 431),
  head('a head larger than the limit (one 20000-byte field)', `GET / HTTP/1.1\r\nHost: h\r\nX-Big: ${'v'.repeat(20000)}\r\n\r\n`, 431),
  head('a declared body over maxBodySize (16 MiB + 1)', `${H}Content-Length: ${16 * 1024 * 1024 + 1}\r\n\r\n`, 413),
  // ---- Chunked framing (the head parses; the body does not).
  // 18 hex digits: the size passes maxBodySize long before it could wrap 64 bits: 413.
  body('chunk size ffffffffffffffffff (18 hex digits)', `${TE}ffffffffffffffffff\r\nhello\r\n0\r\n\r\n`, 413),
  // 20 digits of a small value: more digits than 64 bits hold is refused whatever the value.
  body('chunk size with 20 digits (00000000000000000005)', `${TE}00000000000000000005\r\nhello\r\n0\r\n\r\n`),
  body('chunk size 0x5', `${TE}0x5\r\nhello\r\n0\r\n\r\n`),
  body('chunk size -5', `${TE}-5\r\nhello\r\n0\r\n\r\n`),
  body('chunk size +5', `${TE}+5\r\nhello\r\n0\r\n\r\n`),
  body('chunk size with a leading space', `${TE} 5\r\nhello\r\n0\r\n\r\n`),
  body('chunk size with a trailing space', `${TE}5 \r\nhello\r\n0\r\n\r\n`),
  body('an empty chunk size line', `${TE}\r\nhello\r\n0\r\n\r\n`),
  body('a chunk size line ended by a bare LF', `${TE}5\nhello\r\n0\r\n\r\n`),
  body('chunk data longer than its size', `${TE}3\r\nhello\r\n0\r\n\r\n`),
  body('chunk data not followed by CRLF', `${TE}5\r\nhelloX0\r\n\r\n`),
  body('a chunk extension longer than 1024 bytes', `${TE}5;${'x'.repeat(2000)}\r\nhello\r\n0\r\n\r\n`),
  body('a control character in a chunk extension', `${TE}5;a\x01b\r\nhello\r\n0\r\n\r\n`),
  body('obs-fold in the trailer section', `${TE}0\r\nX-T: a\r\n b\r\n\r\n`),
  body('a bare LF ends the chunked body', `${TE}0\r\n\n`),
  body('a decoded chunked body over maxBodySize (1000)', `${TE}258\r\n${'a'.repeat(600)}\r\n258\r\n${'b'.repeat(600)}\r\n0\r\n\r\n`, 413, true),
];

/** Legal per RFC 9112 (OWS after the colon, case-insensitive codings, leading empty lines ...): accepted. */
const legal: { name: string; wire: string; body: string }[] = [
  { name: 'Transfer-Encoding:<TAB>chunked (OWS after the colon may be a tab)', wire: `${H}Transfer-Encoding:\tchunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`, body: 'hello' },
  { name: 'Transfer-Encoding:chunked (no OWS)', wire: `${H}Transfer-Encoding:chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`, body: 'hello' },
  { name: 'Transfer-Encoding: Chunked (codings are case-insensitive)', wire: `${H}Transfer-Encoding: Chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`, body: 'hello' },
  { name: 'Transfer-Encoding: chunked with trailing OWS', wire: `${H}Transfer-Encoding: chunked \t \r\n\r\n5\r\nhello\r\n0\r\n\r\n`, body: 'hello' },
  { name: 'Content-Length:<TAB>5<SP> (OWS both sides)', wire: `${H}Content-Length:\t5 \r\n\r\nhello`, body: 'hello' },
  { name: 'Content-Length: 005 (leading zeros are digits)', wire: `${H}Content-Length: 005\r\n\r\nhello`, body: 'hello' },
  { name: 'upper-case hex chunk sizes, extensions (quoted too), trailers', wire: `${TE.replace('\r\n\r\n', '\r\nTrailer: X-T\r\n\r\n')}A;a=1;b="q v"\r\n0123456789\r\n1;x\r\n!\r\n0;end\r\nX-T: done\r\n\r\n`, body: '0123456789!' },
  { name: 'a chunk extension of 1000 bytes (under the limit)', wire: `${TE}5;${'e'.repeat(1000)}\r\nhello\r\n0\r\n\r\n`, body: 'hello' },
  { name: 'empty lines before the request line (RFC 9112 section 2.2)', wire: `\r\n\r\n${H}Content-Length: 2\r\n\r\nok`, body: 'ok' },
  { name: 'obs-text (bytes >= 0x80) and an empty value in fields', wire: `${H}X-Latin: caf\xe9\r\nX-Empty:\r\nContent-Length: 2\r\n\r\nok`, body: 'ok' },
];

let srv: HttpServer;
let small: HttpServer;
let healthy: RawClient;
let healthyConn: ConnId;
let healthyChecks = 0;

/** The keep-alive connection opened before the attacks still answers correctly. */
async function checkHealthy(): Promise<void> {
  const n = ++healthyChecks;
  const res = await healthy.request(get(`/healthy/${n}`));
  expect(res.status).toBe(200);
  expect(res.body.toString()).toBe(`/healthy/${n}`);
  expect(healthy.closed).toBe(false);
}

function answer(req: RequestCopy): ZeroResponse {
  return ZeroResponse.ok().text(req.method === 'GET' ? req.target : `body=${req.fullBody().toString('latin1')}`);
}

beforeAll(async () => {
  // No idle time-out: the healthy connection must outlive every attack however slow the host.
  srv = startServer({ persistent: true, listen: { keepAliveTimeoutMs: 0 }, onRequest: answer });
  small = startServer({ persistent: true, listen: { keepAliveTimeoutMs: 0, maxBodySize: 1000, maxBodyInline: 512 }, onRequest: answer });
  healthy = await RawClient.connect(srv.port, { persistent: true });
  healthyConn = await srv.connOf(healthy);
  await checkHealthy();
});

afterAll(async () => {
  healthy?.destroy();
  await srv?.close();
  await small?.close();
});

describe('request smuggling and malformed requests: the status, Connection: close, a close, the handler untouched', () => {
  it(`has at least 40 vectors (${vectors.length}), all with distinct names`, () => {
    expect(vectors.length).toBeGreaterThanOrEqual(40);
    expect(new Set(vectors.map((v) => v.name)).size).toBe(vectors.length);
  });

  for (const v of vectors) {
    it(`${v.name} -> ${v.status}`, async () => {
      const server = v.small ? small : srv;
      const c = await RawClient.connect(server.port);
      const conn = await server.connOf(c);
      c.write(Buffer.from(v.wire, 'latin1'));
      await c.waitClose(15_000);
      const what = `${v.name}: received ${excerpt(c.raw)}`;
      expect(c.parseError, what).toBeNull();
      expect(c.responses, what).toHaveLength(1);
      const res = c.responses[0];
      expect(res.statusLine, what).toMatch(new RegExp(`^HTTP/1\\.1 ${v.status}( |$)`));
      expect(res.status).toBe(v.status);
      expect(res.header('connection')?.toLowerCase(), what).toBe('close');
      expect(c.leftover.length, what).toBe(0);
      // The server ended the connection with a FIN after the response (lingering close).
      expect(c.ended, what).toBe(true);
      await until(() => server.disconnected.has(conn), 15_000, `the server to drop the connection (${v.name})`);
      const seen = server.requestsOn(conn);
      if (v.level === 'head') {
        expect(seen, `the handler saw the bad request: ${v.name}`).toHaveLength(0);
      } else {
        // At most the head of a streamed request; never its body's end (nor an answer of ours).
        expect(seen.length).toBeLessThanOrEqual(1);
        expect(seen.every((r) => r.streamed && !r.ended)).toBe(true);
      }
      await checkHealthy();
    });
  }
});

describe('legal variations are accepted (strict, but not stricter than RFC 9112)', () => {
  for (const l of legal) {
    it(l.name, async () => {
      const c = await RawClient.connect(srv.port);
      const conn = await srv.connOf(c);
      const res = await c.request(Buffer.from(l.wire, 'latin1'));
      expect(res.status, excerpt(c.raw)).toBe(200);
      expect(res.body.toString('latin1')).toBe(`body=${l.body}`);
      expect(res.header('connection')).toBeNull();
      expect(srv.requestsOn(conn)).toHaveLength(1);
      // Still open and in step: a second request on it is answered.
      const again = await c.request(get('/again'));
      expect(again.body.toString()).toBe('/again');
      c.destroy();
    });
  }

  it('obs-text reaches the handler as latin1 bytes, the empty field as ""', async () => {
    const c = await RawClient.connect(srv.port);
    const conn = await srv.connOf(c);
    await c.request(Buffer.from(`${H}X-Latin: caf\xe9\r\nX-Empty:\r\nContent-Length: 0\r\n\r\n`, 'latin1'));
    const [req] = srv.requestsOn(conn);
    expect(req.headers.find(([n]) => n === 'X-Empty')?.[1]).toBe('');
    expect(req.headers.find(([n]) => n === 'X-Latin')?.[1]).toMatch(/^caf./);
  });
});

describe('after the attacks', () => {
  it('the keep-alive connection opened before them served every check on the same connection', async () => {
    await checkHealthy();
    const seen = srv.requestsOn(healthyConn);
    expect(seen).toHaveLength(healthyChecks);
    expect(seen.map((r) => r.target)).toEqual(Array.from({ length: healthyChecks }, (_, i) => `/healthy/${i + 1}`));
    expect(srv.disconnected.has(healthyConn)).toBe(false);
  });

  it('new connections are served normally (20 at once, 3 requests each)', async () => {
    const clients = await Promise.all(Array.from({ length: 20 }, () => RawClient.connect(srv.port)));
    await Promise.all(clients.map(async (c, i) => {
      for (let k = 0; k < 3; k++) {
        const res = await c.request(get(`/after/${i}/${k}`));
        expect(res.body.toString()).toBe(`/after/${i}/${k}`);
      }
    }));
    for (const c of clients) c.destroy();
  });
});

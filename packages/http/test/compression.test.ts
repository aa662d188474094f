// Response compression (the `compression` / `compressionThreshold` options): negotiation by
// Accept-Encoding with q-values, Vary, the types and answers left alone, templates compressed
// once, HEAD, out-of-order answers, HTTP/2, and real decoders: node:zlib (gzip, br) and curl
// --compressed (gzip, br, zstd; Debian's curl links libz, libbrotli and libzstd).
import http2 from 'node:http2';
import zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { ZeroResponse, type HttpListenConfig } from '@zero-io/http';
import { exchange, get, run, startServer, type HttpServer, type ParsedResponse, type RequestCopy } from './helpers.js';

const CURL = 'Debian package curl';

// ~12 KiB of JSON-like text: compresses well, and differs per request where asked.
function text(seed: number): string {
  const rows: string[] = [];
  for (let i = 0; i < 200; i++) rows.push(`{"symbol":"SYM${(i * 7 + seed) % 97}","bid":${100 + ((i * seed) % 13)},"ask":${101 + (i % 17)}}`);
  return `[${rows.join(',\n')}]`;
}
const BIG = text(3);
const stored = ZeroResponse.ok().header('Content-Type', 'text/plain; charset=utf-8').text(BIG);
const png = Buffer.alloc(4096, 7);

function route(req: RequestCopy): ZeroResponse {
  switch (req.path) {
    case '/text': return ZeroResponse.ok().text(text(Number(req.query) || 1));
    case '/json': return ZeroResponse.ok().json(JSON.parse(BIG));
    case '/stored': return stored;
    case '/small': return ZeroResponse.ok().text('tiny answer');
    case '/png': return ZeroResponse.ok().header('Content-Type', 'image/png').bytes(png);
    case '/octets': return ZeroResponse.ok().bytes(Buffer.from(BIG));
    case '/encoded': return ZeroResponse.ok().header('Content-Type', 'text/plain').header('Content-Encoding', 'gzip')
      .bytes(zlib.gzipSync(BIG));
    case '/no-transform': return ZeroResponse.ok().header('Cache-Control', 'public, no-transform').text(BIG);
    case '/etag': return ZeroResponse.ok().header('ETag', '"v1"').text(BIG);
    case '/weak-etag': return ZeroResponse.ok().header('ETag', 'W/"v1"').text(BIG);
    case '/vary': return ZeroResponse.ok().header('Vary', 'Accept-Encoding, Origin').text(BIG);
    case '/vary-origin': return ZeroResponse.ok().header('Vary', 'Origin').text(BIG);
    case '/missing': return ZeroResponse.notFound().text(BIG);
    case '/empty': return ZeroResponse.noContent();
    default: return ZeroResponse.ok().text(req.target);
  }
}

function serve(listen: Partial<HttpListenConfig> = {}): HttpServer {
  return startServer({ onRequest: route, listen });
}

async function one(srv: HttpServer, target: string, acceptEncoding: string | null, method = 'GET'): Promise<ParsedResponse> {
  const c = await exchange(srv.port, get(target, acceptEncoding === null ? [] : [`Accept-Encoding: ${acceptEncoding}`], method),
    { until: 1, head: method === 'HEAD' ? [0] : [] });
  return c.responses[0];
}

function decoded(r: ParsedResponse): string {
  const ce = r.header('content-encoding');
  if (ce === null) return r.body.toString();
  if (ce === 'gzip') return zlib.gunzipSync(r.body).toString();
  if (ce === 'br') return zlib.brotliDecompressSync(r.body).toString();
  throw new Error(`no decoder here for ${ce}`);
}

describe('negotiation', () => {
  it('gzip, br by Accept-Encoding; the decoded body is the answer; Content-Length is the encoded size; Vary', async () => {
    const srv = serve();
    for (const [ae, want] of [['gzip', 'gzip'], ['br', 'br'], ['gzip, deflate, br', 'br'], ['x-gzip', 'gzip']] as const) {
      const r = await one(srv, '/text?5', ae);
      expect(r.status).toBe(200);
      expect(r.header('content-encoding'), ae).toBe(want);
      expect(r.header('vary')).toBe('Accept-Encoding');
      expect(Number(r.header('content-length'))).toBe(r.body.length);
      expect(r.body.length).toBeLessThan(BIG.length / 3);
      expect(decoded(r)).toBe(text(5));
    }
    const st = srv.io.httpStats(srv.ep)!;
    expect(st.compressed).toBe(4);
    expect(st.compressSaved).toBeGreaterThan(4 * (text(5).length / 2));
  });

  it('q-values choose; q=0 refuses; identity when nothing we have is acceptable (still Vary)', async () => {
    const srv = serve();
    // Equal q: the listener's order (zstd, br, gzip by default) decides.
    expect((await one(srv, '/text', 'gzip, deflate, br, zstd')).header('content-encoding')).toBe('zstd');
    expect((await one(srv, '/text', 'gzip;q=0.9, br;q=0.5')).header('content-encoding')).toBe('gzip');
    expect((await one(srv, '/text', 'br;q=0.1, gzip;q=0.2')).header('content-encoding')).toBe('gzip');
    expect((await one(srv, '/text', '*;q=0.3, br;q=0')).header('content-encoding')).toBe('zstd');
    for (const ae of ['gzip;q=0', 'deflate', 'identity', '', 'gzip;q=7', 'compress, *;q=0']) {
      const r = await one(srv, '/text?2', ae);
      expect(r.header('content-encoding'), ae).toBeNull();
      expect(r.header('vary'), ae).toBe('Accept-Encoding');
      expect(r.body.toString()).toBe(text(2));
    }
    const none = await one(srv, '/text?2', null);
    expect(none.header('content-encoding')).toBeNull();
    expect(none.header('vary')).toBe('Accept-Encoding');
    // Two Accept-Encoding field lines are one list.
    const c = await exchange(srv.port, get('/text', ['Accept-Encoding: br;q=0.4', 'Accept-Encoding: gzip;q=0.8']), { until: 1 });
    expect(c.responses[0].header('content-encoding')).toBe('gzip');
  });

  it('the server order decides between equals: compression: [\'gzip\', \'br\'] prefers gzip and never sends zstd', async () => {
    const srv = serve({ compression: ['gzip', 'br'] });
    expect((await one(srv, '/text', 'br, gzip, zstd')).header('content-encoding')).toBe('gzip');
    expect((await one(srv, '/text', 'zstd')).header('content-encoding')).toBeNull();
    expect((await one(srv, '/text', 'br;q=1, gzip;q=0.5')).header('content-encoding')).toBe('br');
  });

  it('compression: false sends every answer as given, without Vary', async () => {
    const srv = serve({ compression: false });
    const r = await one(srv, '/text?4', 'gzip, br, zstd');
    expect(r.header('content-encoding')).toBeNull();
    expect(r.header('vary')).toBeNull();
    expect(r.body.toString()).toBe(text(4));
  });

  it('compressionThreshold: smaller bodies go as they are, without Vary; larger are compressed', async () => {
    const srv = serve();
    const small = await one(srv, '/small', 'gzip');
    expect(small.header('content-encoding')).toBeNull();
    expect(small.header('vary')).toBeNull();
    expect(small.body.toString()).toBe('tiny answer');
    const low = serve({ compressionThreshold: 4 });
    const r = await one(low, '/small', 'gzip');
    // 11 bytes do not shrink under gzip's 18 bytes of framing: identity, but it could have been.
    expect(r.header('content-encoding')).toBeNull();
    expect(r.header('vary')).toBe('Accept-Encoding');
    const high = serve({ compressionThreshold: BIG.length + 1 });
    expect((await one(high, '/stored', 'gzip')).header('content-encoding')).toBeNull();
  });

  it('bad options are refused with the key named', () => {
    expect(() => serve({ compression: ['gzip', 'deflate'] as never })).toThrow(/compression must be/);
    expect(() => serve({ compression: ['gzip', 'gzip'] })).toThrow(/compression must be/);
    expect(() => serve({ compressionThreshold: -1 })).toThrow(/compressionThreshold/);
  });
});

describe('what is left alone', () => {
  it('images, octet streams, already-encoded bodies, no-transform and bodiless statuses', async () => {
    const srv = serve();
    const p = await one(srv, '/png', 'gzip, br');
    expect(p.header('content-encoding')).toBeNull();
    expect(p.header('vary')).toBeNull();
    expect(p.body.equals(png)).toBe(true);
    expect((await one(srv, '/octets', 'gzip')).header('content-encoding')).toBeNull();
    const enc = await one(srv, '/encoded', 'gzip, br');
    expect(enc.header('content-encoding')).toBe('gzip');
    expect(zlib.gunzipSync(enc.body).toString()).toBe(BIG);  // once, not twice
    const nt = await one(srv, '/no-transform', 'gzip');
    expect(nt.header('content-encoding')).toBeNull();
    expect(nt.body.toString()).toBe(BIG);
    const e = await one(srv, '/empty', 'gzip');
    expect(e.status).toBe(204);
    expect(e.header('content-encoding')).toBeNull();
  });

  it('error statuses with a text body are compressed too', async () => {
    const srv = serve();
    const r = await one(srv, '/missing', 'br');
    expect(r.status).toBe(404);
    expect(r.header('content-encoding')).toBe('br');
    expect(decoded(r)).toBe(BIG);
  });
});

describe('fields', () => {
  it('a strong ETag becomes weak when the body is encoded; a weak one stays; identity keeps it strong', async () => {
    const srv = serve();
    expect((await one(srv, '/etag', 'gzip')).header('etag')).toBe('W/"v1"');
    expect((await one(srv, '/etag', null)).header('etag')).toBe('"v1"');
    expect((await one(srv, '/weak-etag', 'gzip')).header('etag')).toBe('W/"v1"');
  });

  it('an application Vary naming Accept-Encoding is not repeated; another Vary gets ours beside it', async () => {
    const srv = serve();
    const v = await one(srv, '/vary', 'gzip');
    expect(v.headerAll('vary')).toEqual(['Accept-Encoding, Origin']);
    expect(v.header('content-encoding')).toBe('gzip');
    const o = await one(srv, '/vary-origin', 'gzip');
    expect(o.headerAll('vary')).toEqual(['Origin', 'Accept-Encoding']);
  });

  it('HEAD gets the GET answer\'s fields (the encoded Content-Length) and no body', async () => {
    const srv = serve();
    const g = await one(srv, '/stored', 'br');
    const h = await one(srv, '/stored', 'br', 'HEAD');
    expect(h.header('content-encoding')).toBe('br');
    expect(h.header('content-length')).toBe(g.header('content-length'));
    expect(h.body.length).toBe(0);
  });
});

describe('templates and ordering', () => {
  it('a reused ZeroResponse is compressed once per coding (same bytes every time), smaller than per-request compression', async () => {
    const srv = serve();
    const a = await one(srv, '/stored', 'br');
    const b = await one(srv, '/stored', 'br');
    expect(a.body.equals(b.body)).toBe(true);
    expect(decoded(a)).toBe(BIG);
    const g1 = await one(srv, '/stored', 'gzip');
    expect(decoded(g1)).toBe(BIG);
    // Quality 11 once vs quality 4 per request: the stored answer is no larger.
    const dyn = await one(srv, '/text?3', 'br');
    expect(decoded(dyn)).toBe(BIG);
    expect(a.body.length).toBeLessThanOrEqual(dyn.body.length);
    const none = await one(srv, '/stored', null);
    expect(none.body.toString()).toBe(BIG);
  });

  it('pipelined requests with different Accept-Encodings, answered out of order, each get their own coding', async () => {
    const held: RequestCopy[] = [];
    const srv = startServer({
      onRequest: (req) => { held.push(req); if (held.length === 4) queueMicrotask(answerAll); return null; },
    });
    function answerAll(): void {
      for (const r of [...held].reverse()) srv.io.httpRespond(r.conn, r.requestId, ZeroResponse.ok().text(text(r.requestId + 10)));
    }
    const aes = ['gzip', 'br', '', 'gzip;q=0, br;q=0'];
    const c = await exchange(srv.port, aes.map((ae) => get('/x', ae ? [`Accept-Encoding: ${ae}`] : [])), { until: 4 });
    const want = ['gzip', 'br', null, null];
    c.responses.forEach((r, i) => {
      expect(r.header('content-encoding'), `answer ${i}`).toBe(want[i]);
      expect(decoded(r)).toBe(text(held[i].requestId + 10));
    });
  });
});

describe('real clients', () => {
  it('curl --compressed decodes gzip, br and zstd to the same bytes', async () => {
    const srv = serve();
    for (const coding of ['gzip', 'br', 'zstd']) {
      for (const path of ['/stored', '/text?9', '/json']) {
        const r = await run('curl', ['-sS', '--max-time', '30', '--compressed', '-H', `Accept-Encoding: ${coding}`, '-D', '-',
          `http://127.0.0.1:${srv.port}${path}`], { installHint: CURL, timeoutMs: 45_000 });
        expect(r.code, r.stderr).toBe(0);
        const out = r.stdout.toString();
        const split = out.indexOf('\r\n\r\n');
        expect(out.slice(0, split).toLowerCase(), `${coding} ${path}`).toContain(`content-encoding: ${coding}`);
        const body = out.slice(split + 4);
        expect(body).toBe(path === '/stored' ? BIG : path === '/json' ? JSON.stringify(JSON.parse(BIG)) : text(9));
      }
    }
  });

  it('HTTP/2 (node:http2 client): the stream\'s Accept-Encoding picks the coding; content-length is the encoded size', async () => {
    const srv = serve();
    const session = http2.connect(`http://127.0.0.1:${srv.port}`);
    try {
      const get2 = (path: string, ae?: string) => new Promise<{ h: http2.IncomingHttpHeaders; body: Buffer }>((resolve, reject) => {
        const st = session.request({ ':path': path, ...(ae ? { 'accept-encoding': ae } : {}) });
        const parts: Buffer[] = [];
        let h: http2.IncomingHttpHeaders = {};
        st.on('response', (x) => { h = x; });
        st.on('data', (d: Buffer) => parts.push(d));
        st.on('end', () => resolve({ h, body: Buffer.concat(parts) }));
        st.on('error', reject);
        st.end();
      });
      const [br, gz, plain, stor] = await Promise.all([get2('/text?6', 'br'), get2('/text?6', 'gzip;q=1, br;q=0.5'),
        get2('/text?6'), get2('/stored', 'br')]);
      expect(br.h['content-encoding']).toBe('br');
      expect(zlib.brotliDecompressSync(br.body).toString()).toBe(text(6));
      expect(Number(br.h['content-length'])).toBe(br.body.length);
      expect(gz.h['content-encoding']).toBe('gzip');
      expect(zlib.gunzipSync(gz.body).toString()).toBe(text(6));
      expect(plain.h['content-encoding']).toBeUndefined();
      expect(plain.h.vary).toBe('Accept-Encoding');
      expect(plain.body.toString()).toBe(text(6));
      expect(zlib.brotliDecompressSync(stor.body).toString()).toBe(BIG);
    } finally {
      session.close();
    }
  });

  it('fetch (undici) sends its own Accept-Encoding and gets the decoded body', async () => {
    const srv = serve();
    const res = await fetch(`http://127.0.0.1:${srv.port}/json`);
    expect(res.headers.get('content-encoding')).not.toBeNull();
    expect(await res.json()).toEqual(JSON.parse(BIG));
  });
});

// HTTP/2 hostile input at the frame level, for what h2spec does not reach: floods and limits.
// A Python peer (fixtures/h2_attacks.py: h2 / hyperframe / hpack, the Debian package python3-h2)
// crafts the frames h2's own state machine would refuse to send and reports, as one JSON line,
// what the server answered (GOAWAY code, resets, responses, whether it closed). The defences
// and the code each one ends with are listed at the top of native/proto/http2/http2.h.
//
// Every test also runs a well-behaved node:http2 connection opened before the attack, with a
// request in flight while it runs and one after it, and a fresh connection after it: the attack
// must not reach them, and the server goes on.

import http2 from 'node:http2';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ZeroResponse } from '@zero-io/http';
import '@zero-io/tcp';
import { beforeAll, describe, expect, it } from 'vitest';
import { run, startServer, until, type HttpServer, type ServerOptions } from './helpers.js';

const SCRIPT = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'h2_attacks.py');

// HTTP/2 error codes (RFC 9113 section 7).
const PROTOCOL_ERROR = 0x1;
const REFUSED_STREAM = 0x7;
const ENHANCE_YOUR_CALM = 0xb;

/** What h2_attacks.py prints (the fields these tests read). */
interface Attack {
  scenario: string;
  goaway: number | null;
  goaway_name: string | null;
  goaway_debug: string | null;
  last_stream_id: number | null;
  resets: Record<string, number>;
  statuses: Record<string, number>;
  responses: number;
  data_bytes: number;
  closed: boolean;
  close_how: string | null;
  sent_all: boolean;
  send_error: string | null;
  sent_frames: number;
  frames: Record<string, number>;
  local_port: number;
  followup: number | null;
  alive: boolean | null;
  elapsed_ms: number;
  refused?: number;
  body?: string;
}

// The interpreter: `python3`, or Debian's own when `python3` is another one (pyenv, a venv)
// without the modules. Missing everywhere: the test fails and says what to install.
let python = '';
beforeAll(async () => {
  const tried: string[] = [];
  for (const cand of ['python3', '/usr/bin/python3']) {
    try {
      const r = await run(cand, ['-c', 'import h2, hyperframe, hpack'], { timeoutMs: 20_000, installHint: 'Debian package python3-h2' });
      if (r.code === 0) { python = cand; return; }
      tried.push(`${cand}: ${r.stderr.trim().split('\n').pop()}`);
    } catch (e) {
      tried.push(`${cand}: ${(e as Error).message}`);
    }
  }
  throw new Error(`these tests need python3 with the h2, hyperframe and hpack modules (Debian package python3-h2, ` +
    `installed by tooling/bootstrap.sh): ${tried.join('; ')}`);
});

/** Runs one scenario of h2_attacks.py against `port` and parses its report. */
async function attack(port: number, scenario: string, extra: string[] = []): Promise<Attack> {
  const r = await run(python, [SCRIPT, String(port), scenario, ...extra], { installHint: 'Debian package python3-h2', timeoutMs: 30_000 });
  const out = r.stdout.toString().trim();
  expect(r.code, `h2_attacks.py ${scenario} exited with ${r.code ?? r.signal}: ${r.stderr.slice(-2000)}`).toBe(0);
  const a = JSON.parse(out.split('\n').pop()!) as Attack;
  expect(a.scenario).toBe(scenario);
  return a;
}

/** A node:http2 GET, bounded; resolves with the status and the body. */
function get(session: http2.ClientHttp2Session, path: string, timeoutMs = 10_000): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = session.request({ ':path': path });
    let status = 0;
    let body = '';
    const t = setTimeout(() => { req.close(http2.constants.NGHTTP2_CANCEL); reject(new Error(`GET ${path}: no answer within ${timeoutMs} ms`)); }, timeoutMs);
    req.setEncoding('utf8');
    req.on('response', (h) => { status = Number(h[':status']); });
    req.on('data', (d: string) => { body += d; });
    req.on('end', () => { clearTimeout(t); resolve({ status, body }); });
    req.on('error', (e) => { clearTimeout(t); reject(e); });
    req.end();
  });
}

function connect(port: number): Promise<http2.ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const s = http2.connect(`http://127.0.0.1:${port}`);
    const t = setTimeout(() => { s.destroy(); reject(new Error('node:http2 connect timed out')); }, 10_000);
    s.once('connect', () => { clearTimeout(t); resolve(s); });
    s.once('error', (e) => { clearTimeout(t); reject(e); });
  });
}

/**
 * Runs `scenario` on a fresh server while a well-behaved connection (opened before) has a
 * request in flight; then that connection and a fresh one are served, and the server is up.
 */
async function underAttack(scenario: string, opts: ServerOptions = {}, extra: string[] = []): Promise<{ srv: HttpServer; a: Attack }> {
  const srv = startServer(opts);
  const good = await connect(srv.port);
  good.on('error', () => {});
  try {
    expect(await get(good, '/before')).toEqual({ status: 200, body: '/before' });
    const during = get(good, '/during', 30_000);
    const a = await attack(srv.port, scenario, extra);
    expect(await during).toEqual({ status: 200, body: '/during' });
    expect(await get(good, '/after')).toEqual({ status: 200, body: '/after' });
    const fresh = await connect(srv.port);
    fresh.on('error', () => {});
    try {
      expect(await get(fresh, '/fresh')).toEqual({ status: 200, body: '/fresh' });
    } finally {
      fresh.close();
    }
    expect(srv.io.closed).toBe(false);
    return { srv, a };
  } finally {
    good.close();
  }
}

/** The server's reason for closing the attacking connection (its Disconnected event). */
async function serverReason(srv: HttpServer, a: Attack): Promise<string> {
  const conn = await srv.connOf(a.local_port);
  await until(() => srv.disconnected.has(conn), 10_000, 'the server to close the attacking connection');
  return srv.disconnected.get(conn)!.reason;
}

const show = (a: Attack): string => JSON.stringify({ ...a, resets: Object.keys(a.resets).length > 12 ? `${Object.keys(a.resets).length} resets` : a.resets });

it('the harness: a GET made with h2\'s own state machine is answered', async () => {
  const srv = startServer();
  const a = await attack(srv.port, 'baseline');
  expect(a.statuses).toEqual({ 1: 200 });
  expect(a.body).toBe('/baseline');
});

describe('floods end the connection with GOAWAY ENHANCE_YOUR_CALM', () => {
  it('rapid reset (CVE-2023-44487): HEADERS then RST_STREAM, 3,000 times in one burst', async () => {
    const { srv, a } = await underAttack('rapid-reset');
    expect(a.goaway, show(a)).toBe(ENHANCE_YOUR_CALM);
    expect(a.closed, show(a)).toBe(true);
    expect(a.last_stream_id!, show(a)).toBeLessThan(2 * 3000 - 1);  // stopped before the burst ended
    expect(await serverReason(srv, a)).toMatch(/rapid reset/);
    await until(() => srv.io.httpStats(srv.ep)!.h2GoawayByCode.ENHANCE_YOUR_CALM === 1, 5000, 'the GOAWAY counted');
  });

  it('PRIORITY flood: 5,000 PRIORITY frames (the glitch limit)', async () => {
    const { a } = await underAttack('priority-flood');
    expect(a.goaway, show(a)).toBe(ENHANCE_YOUR_CALM);
    expect(a.closed, show(a)).toBe(true);
  });

  it('SETTINGS with 40 entries (more than 32 in one frame)', async () => {
    const { a } = await underAttack('settings-entries');
    expect(a.goaway, show(a)).toBe(ENHANCE_YOUR_CALM);
    expect(a.closed, show(a)).toBe(true);
  });

  it('CONTINUATION flood (CVE-2024-27316 class): the head never completes and is never delivered; the connection ends', async () => {
    const { srv, a } = await underAttack('continuation-flood');
    expect(a.goaway, show(a)).not.toBeNull();
    expect(a.closed, show(a)).toBe(true);
    expect(srv.requests.filter((r) => r.path === '/cont')).toEqual([]);
    expect(await serverReason(srv, a)).toMatch(/CONTINUATION/);
  });

  it('CONTINUATION flood: the GOAWAY says ENHANCE_YOUR_CALM', async () => {
    const { a } = await underAttack('continuation-flood');
    expect(a.goaway, show(a)).toBe(ENHANCE_YOUR_CALM);
  });

  // The flooder never reads while it sends (and keeps a 4 KB receive window): the ACKs back up in
  // the server until 1,000 are queued. The server stops it (its Disconnected event says so).
  for (const scenario of ['settings-flood', 'ping-flood']) {
    it(`${scenario}: unanswered ACKs pile up until the server ends the connection`, async () => {
      const { srv, a } = await underAttack(scenario);
      expect(a.closed, show(a)).toBe(true);
      expect(await serverReason(srv, a)).toMatch(/flooded/);
    });

    // The server lingers after its GOAWAY (our FIN, the flooder's input read and dropped until it
    // closes): closing with unread input would reset the connection and lose the GOAWAY.
    it(`${scenario}: the flooder receives GOAWAY ENHANCE_YOUR_CALM before the close`, async () => {
      const { a } = await underAttack(scenario);
      expect(a.goaway, show(a)).toBe(ENHANCE_YOUR_CALM);
    });
  }

  it('WINDOW_UPDATE flood: 20,000 one-byte increments on stream 0 and on an open stream do not reach other connections', async () => {
    const { a } = await underAttack('window-update-flood');
    expect(a.sent_all, show(a)).toBe(true);
  });

  // More WINDOW_UPDATEs than the DATA sent could need (2 per DATA frame and per stream, + 1,000).
  it('WINDOW_UPDATE flood: the connection ends with GOAWAY ENHANCE_YOUR_CALM', async () => {
    const { a } = await underAttack('window-update-flood');
    expect(a.goaway, show(a)).toBe(ENHANCE_YOUR_CALM);
    expect(a.closed, show(a)).toBe(true);
  });
});

describe('limits that stop one stream, not the connection', () => {
  // What is over maxHeaderListSize is decoded (HPACK's table must stay in step) but not kept, and
  // the request is answered 431 instead of being delivered (RFC 9113 10.5.1).
  it('HPACK bomb: a 16 KB head that decodes to 25 MB is answered 431, never delivered; the connection goes on', async () => {
    const { srv, a } = await underAttack('hpack-bomb');
    expect(a.goaway, show(a)).toBeNull();
    expect(a.statuses['1'], show(a)).toBe(200);      // the field that filled the table: served
    expect(a.statuses['3'], show(a)).toBe(431);      // the bomb
    expect(a.resets['3'] ?? 0, show(a)).toBe(0);    // at most RST_STREAM NO_ERROR after the answer (RFC 9113 8.1)
    expect(a.followup, show(a)).toBe(200);           // stream 5 on the same connection
    expect(srv.requests.filter((r) => r.path === '/bomb')).toEqual([]);
  });

  const limited: ServerOptions = { listen: { maxConcurrentStreams: 10 } };

  it('too many streams, sent before the server\'s SETTINGS is acknowledged: REFUSED_STREAM beyond 10, the connection goes on', async () => {
    const { srv, a } = await underAttack('too-many-streams-early', limited, ['--limit', '10']);
    expect(a.goaway, show(a)).toBeNull();
    expect(a.refused, show(a)).toBe(20);
    for (let i = 10; i < 30; i++) expect(a.resets[String(1 + 2 * i)], show(a)).toBe(REFUSED_STREAM);
    expect(a.statuses['1'], show(a)).toBe(200);  // ended after the refusals: answered
    expect(a.followup, show(a)).toBe(200);       // a new stream once there is room
    expect(srv.requests.filter((r) => /^\/s(1\d|2\d)$/.test(r.path))).toEqual([]);  // refused: never delivered
  });

  it('too many streams, after the SETTINGS exchange: none beyond the limit is delivered, other connections go on', async () => {
    const { srv, a } = await underAttack('too-many-streams', limited);
    expect(srv.requests.filter((r) => /^\/s(1\d|2\d)$/.test(r.path))).toEqual([]);
    expect(a.resets['1'] ?? 0, show(a)).not.toBe(REFUSED_STREAM);  // the streams within the limit were not refused
  });

  // Over the limit the client acknowledged, nghttp2 ends the connection: GOAWAY PROTOCOL_ERROR
  // (RFC 9113 5.1.2 names a stream error, and 5.4.1 lets an endpoint treat any stream error as a
  // connection error; a client that broke a limit it acknowledged is not kept).
  it('too many streams, after the SETTINGS exchange: GOAWAY PROTOCOL_ERROR, the streams within the limit were taken', async () => {
    const { a } = await underAttack('too-many-streams', limited);
    expect(a.goaway, show(a)).toBe(PROTOCOL_ERROR);
    expect(a.closed, show(a)).toBe(true);
  });
});

describe('a peer that never opens its flow-control window', () => {
  const big = ZeroResponse.ok().text('z'.repeat(1 << 20));
  const opts: ServerOptions = {
    // keepAliveTimeoutMs long: the well-behaved connection is idle meanwhile, and must stay.
    listen: { requestTimeoutMs: 1000, keepAliveTimeoutMs: 60_000 },
    onRequest: (req) => (req.target === '/big' ? big : ZeroResponse.ok().text(req.target)),
  };

  // RFC 9113 names no code for this; it is not a flow-control violation (FLOW_CONTROL_ERROR is
  // for a peer that breaks the rules, section 6.9), so section 10.5's ENHANCE_YOUR_CALM fits.
  // Without the stall defence the server sent SETTINGS, its ACK and the 200 HEADERS, then nothing
  // for as long as the peer waited, the 1 MiB answer held in the machine (up to
  // maxConcurrentStreams of them per connection).
  it('zero window: the head goes out, no DATA, then GOAWAY ENHANCE_YOUR_CALM after requestTimeoutMs; other connections are served', async () => {
    const { srv, a } = await underAttack('zero-window', opts, ['--wait', '6']);
    expect(a.statuses['1'], show(a)).toBe(200);
    expect(a.data_bytes, show(a)).toBe(0);
    expect(a.goaway, show(a)).toBe(ENHANCE_YOUR_CALM);
    expect(a.closed, show(a)).toBe(true);
    expect(await serverReason(srv, a)).toMatch(/stall/);
  }, 30_000);
});

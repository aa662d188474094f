#!/usr/bin/env node
// The zero-io demo: a TCP echo service and a line-based chat service on one shard, driven by
// runSync from Node's event loop, plus a UDP echo. Prints each endpoint's URL at start-up and a
// one-line stats summary every second. Try:  nc 127.0.0.1 7001   (echo)   nc 127.0.0.1 7002
// (chat),   nc -u 127.0.0.1 7003   (UDP echo)   and
// openssl s_client -connect 127.0.0.1:7004 -quiet   (TLS echo, self-signed certificate made at start)
// and a browser or curl on http://127.0.0.1:7080 / https://127.0.0.1:7443 (a status page with live
// numbers; /stats.json is the same as JSON; HTTP/1.1, and HTTP/2 by ALPN or with
// curl --http2-prior-knowledge)
//
// Options (env): ZIO_DEMO_HOST (127.0.0.1), ZIO_DEMO_ECHO_PORT (7001), ZIO_DEMO_CHAT_PORT (7002),
// ZIO_DEMO_UDP_PORT (7003), ZIO_DEMO_TLS_PORT (7004), ZIO_DEMO_HTTP_PORT (7080),
// ZIO_DEMO_HTTPS_PORT (7443), ZIO_DEMO_STATS_MS (1000; 0 disables).
// Port 0 picks a free port.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Io, StreamWriter } from '@zero-io/core';
import '@zero-io/tcp';
import { ZeroResponse } from '@zero-io/http';

const host = process.env.ZIO_DEMO_HOST ?? '127.0.0.1';
const echoPort = Number(process.env.ZIO_DEMO_ECHO_PORT ?? 7001);
const chatPort = Number(process.env.ZIO_DEMO_CHAT_PORT ?? 7002);
const udpPort = Number(process.env.ZIO_DEMO_UDP_PORT ?? 7003);
const tlsPort = Number(process.env.ZIO_DEMO_TLS_PORT ?? 7004);
const httpPort = Number(process.env.ZIO_DEMO_HTTP_PORT ?? 7080);
const httpsPort = Number(process.env.ZIO_DEMO_HTTPS_PORT ?? 7443);
const statsMs = Number(process.env.ZIO_DEMO_STATS_MS ?? 1000);
const MAX_LINE = 4096; // chat: longer lines are cut (limits on everything)

/** A self-signed ECDSA P-256 certificate for the TLS echo, made now with the openssl CLI. */
function selfSigned() {
  const dir = mkdtempSync(join(tmpdir(), 'zio-demo-'));
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
      '-days', '30', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
      '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' });
    return { cert: readFileSync(join(dir, 'cert.pem')), key: readFileSync(join(dir, 'key.pem')) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const io = new Io();
let echoEp, chatEp, udpEp, tlsEp, httpEp, httpsEp;
try {
  const cert = selfSigned();
  echoEp = io.tcpListen(`${host}:${echoPort}`);
  chatEp = io.tcpListen(`${host}:${chatPort}`);
  udpEp = io.udpBind(`${host}:${udpPort}`);
  tlsEp = io.tcpListenWith({ host, port: tlsPort, tls: cert });
  httpEp = io.httpListen(`${host}:${httpPort}`);
  httpsEp = io.httpListenWith({ host, port: httpsPort, tls: cert });
} catch (e) {
  console.error(`demo: ${e.message}`);
  process.exit(1);
}
const url = (ep, scheme = 'tcp') => { const a = io.localAddress(ep); return `${scheme}://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`; };
console.log(`echo  ${url(echoEp)}`);
console.log(`chat  ${url(chatEp)}`);
console.log(`udp   ${url(udpEp, 'udp')}`);
console.log(`tls   ${url(tlsEp, 'tls')}`);
console.log(`http  ${url(httpEp, 'http')}`);
console.log(`https ${url(httpsEp, 'https')}`);

/** chat members: conn -> { name, partial line bytes } */
const members = new Map();
const enc = new TextEncoder();
const dec = new TextDecoder();
let nextGuest = 1;
let bytesIn = 0;
let bytesOut = 0;

function send(conn, text) {
  const bytes = enc.encode(text);
  out.write(conn, bytes);  // whole, even to a member who reads slowly
  bytesOut += bytes.length;
}
function broadcast(from, text) {
  for (const conn of members.keys()) if (conn !== from) send(conn, text);
}

function onChatBytes(conn, data) {
  const m = members.get(conn);
  m.buf += dec.decode(data, { stream: true });
  let nl;
  while ((nl = m.buf.indexOf('\n')) >= 0) {
    const line = m.buf.slice(0, nl).replace(/\r$/, '').slice(0, MAX_LINE);
    m.buf = m.buf.slice(nl + 1);
    if (line.startsWith('/nick ')) {
      const old = m.name;
      m.name = line.slice(6).trim().slice(0, 32) || old;
      broadcast(null, `* ${old} is now ${m.name}\n`);
    } else if (line === '/who') {
      send(conn, `* ${[...members.values()].map((x) => x.name).join(', ')}\n`);
    } else if (line === '/quit') {
      io.closeGraceful(conn, 1000);
    } else if (line.length) {
      broadcast(conn, `${m.name}: ${line}\n`);
    }
  }
  if (m.buf.length > MAX_LINE) m.buf = m.buf.slice(-MAX_LINE); // no unbounded growth
}

// ---- the status page (HTTP and HTTPS) ----
const started = Date.now();
/** The live numbers the page and /stats.json show. */
function snapshot() {
  const s = io.poolStats();
  const h = io.httpStats(httpEp), hs = io.httpStats(httpsEp);
  return {
    uptimeS: Math.round((Date.now() - started) / 1000), backend: io.backend, connections: s.connections,
    chatMembers: members.size, bytesIn, bytesOut,
    pool: { freeStack: s.freeStack.current, freeStackCapacity: s.freeStack.capacity, fillRing: s.fillRing.current },
    http: { requests: h.requests + hs.requests, responses: h.responses + hs.responses, errors: h.parseErrors + hs.parseErrors + h.limitsHit + hs.limitsHit, active: h.activeConnections + hs.activeConnections },
  };
}
const page = ZeroResponse.ok().header('Content-Type', 'text/html; charset=utf-8').text(`<!doctype html>
<meta charset="utf-8"><title>zero-io demo</title>
<style>body{font:15px system-ui;margin:2em}td{padding:2px 12px}td:last-child{text-align:right;font-variant-numeric:tabular-nums}</style>
<h1>zero-io demo</h1><p>One shard serving TCP echo, chat, UDP echo, TLS echo, HTTP and HTTPS. Live numbers (from <a href="/stats.json">/stats.json</a>):</p>
<table id="t"></table>
<script>
const rows = (o, p = '') => Object.entries(o).flatMap(([k, v]) => typeof v === 'object' ? rows(v, p + k + '.') : [[p + k, v]]);
async function tick() {
  try {
    const s = await (await fetch('/stats.json')).json();
    document.getElementById('t').innerHTML = rows(s).map(([k, v]) => '<tr><td>' + k + '</td><td>' + v + '</td></tr>').join('');
  } catch {}
}
tick(); setInterval(tick, 1000);
</script>`);
const notFound = ZeroResponse.notFound().text('not found: try / or /stats.json\n');
function onHttp(ev) {
  const path = ev.path;
  if (path === '/' || path === '/index.html') io.httpRespond(ev.conn, ev.requestId, page);
  else if (path === '/stats.json') io.httpRespond(ev.conn, ev.requestId, ZeroResponse.ok().header('Cache-Control', 'no-store').json(snapshot()));
  else io.httpRespond(ev.conn, ev.requestId, notFound);
}

const out = new StreamWriter(io);  // echoes of any size: keeps what a full write queue refuses
const handle = io.runSync((ev) => {
  out.handle(ev);
  switch (ev.type) {
    case 'Connected':
      if (ev.endpoint === chatEp) {
        const name = `guest${nextGuest++}`;
        members.set(ev.conn, { name, buf: '' });
        send(ev.conn, `* welcome ${name}; /nick NAME, /who, /quit\n`);
        broadcast(ev.conn, `* ${name} joined\n`);
      }
      break;
    case 'StreamFrame':
      bytesIn += ev.length;
      if (members.has(ev.conn)) onChatBytes(ev.conn, ev.data);
      else {
        out.write(ev.conn, ev.data);  // echo
        bytesOut += ev.length;
      }
      break;
    case 'HttpRequest':
      onHttp(ev);
      break;
    case 'HttpBodyChunk':  // request bodies are not used by the status page: their end is answered
      if (ev.end) io.httpRespond(ev.conn, ev.requestId, notFound);
      break;
    case 'UdpRecv': // UDP echo: reply to the sender straight from the pool (no JS allocation)
      bytesIn += ev.length;
      try {
        io.udpSendBytes(ev.endpoint, ev, io.poolBytes, ev.offset, ev.length);
        bytesOut += ev.length;
      } catch {
        // PoolExhausted under a flood: UDP may drop, and this datagram is dropped
      }
      break;
    case 'Disconnected': {
      const m = members.get(ev.conn);
      if (m) {
        members.delete(ev.conn);
        broadcast(null, `* ${m.name} left\n`);
      }
      break;
    }
  }
});

let timer;
if (statsMs > 0) {
  let lastIn = 0, lastOut = 0, lastT = Date.now();
  timer = setInterval(() => {
    const s = io.poolStats();
    const now = Date.now();
    const dt = (now - lastT) / 1000;
    const rate = (n) => (n / dt / 1024).toFixed(1);
    const poolPct = ((s.freeStack.current + s.fillRing.current) / (s.freeStack.capacity + s.fillRing.capacity) * 100).toFixed(1);
    console.log(`stats conns=${s.connections} chat=${members.size} in=${rate(bytesIn - lastIn)}KiB/s out=${rate(bytesOut - lastOut)}KiB/s pool=${poolPct}% (tx ${s.freeStack.current}/${s.freeStack.capacity}, rx ${s.fillRing.current}/${s.fillRing.capacity}) rejected=${s.counters.connsRejected}`);
    lastIn = bytesIn; lastOut = bytesOut; lastT = now;
  }, statsMs);
}

let stopping = false;
async function stop(signal) {
  if (stopping) return;
  stopping = true;
  console.log(`demo: ${signal}, closing connections gracefully`);
  clearInterval(timer);
  await handle.shutdown({ timeoutMs: 2000 });
  io.shutdown();
  console.log('demo: stopped');
}
process.on('SIGINT', () => stop('SIGINT'));
process.on('SIGTERM', () => stop('SIGTERM'));

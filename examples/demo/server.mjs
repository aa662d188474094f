#!/usr/bin/env node
// The zero-io demo: a TCP echo service and a line-based chat service on one shard, driven by
// runSync from Node's event loop, plus a UDP echo. Prints each endpoint's URL at start-up and a
// one-line stats summary every second. Try:  nc 127.0.0.1 7001   (echo)   nc 127.0.0.1 7002
// (chat),   nc -u 127.0.0.1 7003   (UDP echo)   and
// openssl s_client -connect 127.0.0.1:7004 -quiet   (TLS echo, self-signed certificate made at start)
// and a browser or curl on http://127.0.0.1:7080 / https://127.0.0.1:7443 (a status page with live
// numbers; /stats.json is the same as JSON; HTTP/1.1, and HTTP/2 by ALPN or with
// curl --http2-prior-knowledge); WebSocket on ws://127.0.0.1:7081/echo (echo) and
// ws://127.0.0.1:7081/ticker (a synthetic price tick every 10 ms, published natively to every
// subscriber), drawn as a live chart by http://127.0.0.1:7080/live; QUIC on quic://127.0.0.1:7443
// (UDP, ALPN zero-echo: every stream and every datagram echoed).
//
// Options (env): ZIO_DEMO_HOST (127.0.0.1), ZIO_DEMO_ECHO_PORT (7001), ZIO_DEMO_CHAT_PORT (7002),
// ZIO_DEMO_UDP_PORT (7003), ZIO_DEMO_TLS_PORT (7004), ZIO_DEMO_HTTP_PORT (7080),
// ZIO_DEMO_HTTPS_PORT (7443), ZIO_DEMO_WS_PORT (7081), ZIO_DEMO_QUIC_PORT (7443, UDP), ZIO_DEMO_TICK_MS (10),
// ZIO_DEMO_STATS_MS (1000; 0 disables).
// Port 0 picks a free port.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Io, StreamWriter } from '@zero-io/core';
import '@zero-io/tcp';
import { ZeroResponse } from '@zero-io/http';
import '@zero-io/websocket';
import '@zero-io/quic';

const host = process.env.ZIO_DEMO_HOST ?? '127.0.0.1';
const echoPort = Number(process.env.ZIO_DEMO_ECHO_PORT ?? 7001);
const chatPort = Number(process.env.ZIO_DEMO_CHAT_PORT ?? 7002);
const udpPort = Number(process.env.ZIO_DEMO_UDP_PORT ?? 7003);
const tlsPort = Number(process.env.ZIO_DEMO_TLS_PORT ?? 7004);
const httpPort = Number(process.env.ZIO_DEMO_HTTP_PORT ?? 7080);
const httpsPort = Number(process.env.ZIO_DEMO_HTTPS_PORT ?? 7443);
const wsPort = Number(process.env.ZIO_DEMO_WS_PORT ?? 7081);
const quicPort = Number(process.env.ZIO_DEMO_QUIC_PORT ?? 7443);
const tickMs = Number(process.env.ZIO_DEMO_TICK_MS ?? 10);
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
let echoEp, chatEp, udpEp, tlsEp, httpEp, httpsEp, wsEp, quicEp;
try {
  const cert = selfSigned();
  echoEp = io.tcpListen(`${host}:${echoPort}`);
  chatEp = io.tcpListen(`${host}:${chatPort}`);
  udpEp = io.udpBind(`${host}:${udpPort}`);
  tlsEp = io.tcpListenWith({ host, port: tlsPort, tls: cert });
  httpEp = io.httpListen(`${host}:${httpPort}`);
  httpsEp = io.httpListenWith({ host, port: httpsPort, tls: cert });
  // WebSocket: /echo answers each message; /ticker subscribers get the synthetic price ticks.
  // A subscriber that reads too slowly loses ticks (counted in wsStats) instead of growing memory.
  // permessage-deflate for the clients that offer it (browsers do): the ticks are compressed once
  // per publish, for every compressing subscriber.
  wsEp = io.wsListenWith({ host, port: wsPort, paths: ['/echo', '/ticker'], maxBufferedBytes: 256 * 1024, compression: true });
  // QUIC (UDP: it may share its port number with HTTPS over TCP): stream and datagram echo.
  quicEp = io.quicListenWith({ addr: `${host}:${quicPort}`, tls: cert, alpn: ['zero-echo'] });
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
console.log(`ws    ${url(wsEp, 'ws')}/echo`);
console.log(`ticker ${url(wsEp, 'ws')}/ticker`);
console.log(`chart ${url(httpEp, 'http')}/live`);
console.log(`quic  ${url(quicEp, 'quic')} (ALPN zero-echo)`);

/** QUIC echo: what a stream could not take yet waits for its Writable (nothing is dropped). */
const quicConns = new Set();
const quicQueues = new Map();  // "conn/stream" -> { bufs, fin }
function quicPump(conn, stream) {
  const k = `${conn}/${stream}`;
  const q = quicQueues.get(k);
  if (!q) return;
  while (q.bufs.length) {
    const n = io.streamWrite(conn, stream, q.bufs[0]);
    bytesOut += n;
    if (n < q.bufs[0].length) { q.bufs[0] = q.bufs[0].subarray(n); return; }
    q.bufs.shift();
  }
  if (q.fin) { io.streamEnd(conn, stream); quicQueues.delete(k); }
}

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
    websocket: (({ open, messagesIn, messagesOut, dropped, published, deflateConnections, compressedOut }) =>
      ({ open, messagesIn, messagesOut, dropped, published, deflateConnections, compressedOut }))(io.wsStats(wsEp)),
  };
}
const page = ZeroResponse.ok().header('Content-Type', 'text/html; charset=utf-8').text(`<!doctype html>
<meta charset="utf-8"><title>zero-io demo</title>
<style>body{font:15px system-ui;margin:2em}td{padding:2px 12px}td:last-child{text-align:right;font-variant-numeric:tabular-nums}</style>
<h1>zero-io demo</h1><p>One shard serving TCP echo, chat, UDP echo, TLS echo, HTTP, HTTPS and WebSocket (<a href="/live">a live ticker chart</a>). Live numbers (from <a href="/stats.json">/stats.json</a>):</p>
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
// The live chart: one WebSocket to /ticker (a line chart on a canvas, the last 600 ticks) and
// one to /echo (what you type comes back). The WebSocket port is written into the page.
const live = ZeroResponse.ok().header('Content-Type', 'text/html; charset=utf-8').text(`<!doctype html>
<meta charset="utf-8"><title>zero-io live ticker</title>
<style>body{font:15px system-ui;margin:2em}canvas{border:1px solid #ccc;width:100%;max-width:900px;height:300px}</style>
<h1>zero-io live ticker</h1>
<p>Price <b id="px">-</b> &middot; <span id="n">0</span> ticks over ws://HOST:${io.localAddress(wsEp).port}/ticker</p>
<canvas id="c" width="900" height="300"></canvas>
<p>Echo over /echo: <input id="in" value="hello"> <button id="send">send</button> <span id="echo"></span></p>
<script>
const wsUrl = (p) => 'ws://' + location.hostname + ':${io.localAddress(wsEp).port}' + p;
const pts = []; let n = 0;
const c = document.getElementById('c'), g = c.getContext('2d');
function draw() {
  g.clearRect(0, 0, c.width, c.height);
  if (pts.length < 2) return;
  const lo = Math.min(...pts), hi = Math.max(...pts), span = hi - lo || 1;
  g.beginPath(); g.strokeStyle = '#1565c0'; g.lineWidth = 2;
  pts.forEach((v, i) => { const x = i * c.width / 599, y = c.height - 10 - (v - lo) / span * (c.height - 20); i ? g.lineTo(x, y) : g.moveTo(x, y); });
  g.stroke();
}
const ticker = new WebSocket(wsUrl('/ticker'));
ticker.onmessage = (m) => { const t = JSON.parse(m.data); pts.push(t.price); if (pts.length > 600) pts.shift(); n++; document.getElementById('px').textContent = t.price.toFixed(2); document.getElementById('n').textContent = n; };
(function frame() { draw(); requestAnimationFrame(frame); })();
const echo = new WebSocket(wsUrl('/echo'));
echo.onmessage = (m) => { document.getElementById('echo').textContent = 'echoed: ' + m.data; };
document.getElementById('send').onclick = () => echo.send(document.getElementById('in').value);
</script>`);
const notFound = ZeroResponse.notFound().text('not found: try /, /live or /stats.json\n');
function onHttp(ev) {
  const path = ev.path;
  if (path === '/' || path === '/index.html') io.httpRespond(ev.conn, ev.requestId, page);
  else if (path === '/live') io.httpRespond(ev.conn, ev.requestId, live);
  else if (path === '/stats.json') io.httpRespond(ev.conn, ev.requestId, ZeroResponse.ok().header('Cache-Control', 'no-store').json(snapshot()));
  else io.httpRespond(ev.conn, ev.requestId, notFound);
}

const out = new StreamWriter(io);  // echoes of any size: keeps what a full write queue refuses
const handle = io.runSync((ev) => {
  out.handle(ev);
  switch (ev.type) {
    case 'Connected':
      if (ev.protocol === 'quic') quicConns.add(ev.conn);
      if (ev.endpoint === chatEp) {
        const name = `guest${nextGuest++}`;
        members.set(ev.conn, { name, buf: '' });
        send(ev.conn, `* welcome ${name}; /nick NAME, /who, /quit\n`);
        broadcast(ev.conn, `* ${name} joined\n`);
      }
      break;
    case 'WsOpen':
      if (ev.path === '/ticker') io.wsSubscribe(ev.conn, 'ticker');
      break;
    case 'StreamFrame':
      bytesIn += ev.length;
      if (quicConns.has(ev.conn)) {
        const k = `${ev.conn}/${ev.stream}`;
        let q = quicQueues.get(k);
        if (!q) quicQueues.set(k, (q = { bufs: [], fin: false }));
        if (ev.length) q.bufs.push(Buffer.from(ev.data));
        if (ev.fin) q.fin = true;
        quicPump(ev.conn, ev.stream);
      } else if (ev.kind === 'WsText' || ev.kind === 'WsBinary') {  // /echo (ticker subscribers only listen)
        io.wsSend(ev.conn, ev.data, ev.kind === 'WsText');
        bytesOut += ev.length;
      } else if (members.has(ev.conn)) onChatBytes(ev.conn, ev.data);
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
    case 'Writable':
      if (quicConns.has(ev.conn)) quicPump(ev.conn, ev.stream);
      break;
    case 'Datagram':
      try {
        io.sendDatagram(ev.conn, ev.data);  // QUIC datagram echo (unreliable: a full queue drops it)
      } catch {
        // PoolExhausted: the datagram queue is full, and this echo is dropped
      }
      break;
    case 'Disconnected': {
      if (quicConns.delete(ev.conn)) for (const k of quicQueues.keys()) if (k.startsWith(`${ev.conn}/`)) quicQueues.delete(k);
      const m = members.get(ev.conn);
      if (m) {
        members.delete(ev.conn);
        broadcast(null, `* ${m.name} left\n`);
      }
      break;
    }
  }
});

// The synthetic ticker: a random walk, one JSON tick every tickMs to every /ticker subscriber
// (the frame is built once and queued by reference on each of them).
let price = 100, seq = 0;
const ticks = tickMs > 0 ? setInterval(() => {
  price = Math.max(1, price * (1 + (Math.random() - 0.5) * 0.002));
  if (io.wsSubscribers('ticker') > 0) io.wsPublish('ticker', JSON.stringify({ seq: seq++, t: Date.now(), price }));
}, tickMs) : undefined;

let timer;
if (statsMs > 0) {
  let lastIn = 0, lastOut = 0, lastT = Date.now();
  timer = setInterval(() => {
    const s = io.poolStats();
    const now = Date.now();
    const dt = (now - lastT) / 1000;
    const rate = (n) => (n / dt / 1024).toFixed(1);
    const poolPct = ((s.freeStack.current + s.fillRing.current) / (s.freeStack.capacity + s.fillRing.capacity) * 100).toFixed(1);
    const w = io.wsStats(wsEp);
    console.log(`stats conns=${s.connections} chat=${members.size} ws=${w.open} wsDropped=${w.dropped} in=${rate(bytesIn - lastIn)}KiB/s out=${rate(bytesOut - lastOut)}KiB/s pool=${poolPct}% (tx ${s.freeStack.current}/${s.freeStack.capacity}, rx ${s.fillRing.current}/${s.fillRing.capacity}) rejected=${s.counters.connsRejected}`);
    lastIn = bytesIn; lastOut = bytesOut; lastT = now;
  }, statsMs);
}

let stopping = false;
async function stop(signal) {
  if (stopping) return;
  stopping = true;
  console.log(`demo: ${signal}, closing connections gracefully`);
  clearInterval(timer);
  clearInterval(ticks);
  await handle.shutdown({ timeoutMs: 2000 });
  io.shutdown();
  console.log('demo: stopped');
}
process.on('SIGINT', () => stop('SIGINT'));
process.on('SIGTERM', () => stop('SIGTERM'));

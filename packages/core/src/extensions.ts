/**
 * What protocol packages register with core (through `@zero-io/core/internal`): the Disconnected
 * reason of their engine codes, the TLS stack of @zero-io/tcp for their listeners, and a cleanup
 * for an event whose runSync handler threw. The event types they add live with the event
 * flyweight (io.ts registerEventType).
 * @module
 */
import { formatHostPort } from './address.js';
import { ERR } from './addon.js';
import { IoError, fromNative } from './errors.js';
import type { ConnId, EndpointId, Event } from './events.js';
import type { Io } from './io.js';

/** Disconnected reasons for engine codes that belong to a protocol package (registerCloseReason). */
export const closeReasons = new Map<number, (io: Io, conn: ConnId) => string>();

/** @internal For protocol packages: the Disconnected reason of an engine code of theirs. */
export function registerCloseReason(code: number, reason: (io: Io, conn: ConnId) => string): void {
  closeReasons.set(code, reason);
}

/** Disconnected reasons for a range of codes (registerCloseReasonRange), tried after closeReasons. */
export const closeReasonRanges: { lo: number; hi: number; reason: (io: Io, conn: ConnId, code: number) => string }[] = [];

/**
 * @internal For protocol packages whose connections report their own close codes in
 * Disconnected.errorCode (WebSocket: 1000-4999): the reason of each code in [lo, hi].
 */
export function registerCloseReasonRange(lo: number, hi: number, reason: (io: Io, conn: ConnId, code: number) => string): void {
  closeReasonRanges.push({ lo, hi, reason });
}

/** Errors of engine codes that belong to a protocol package (registerEngineError), by code. */
export const engineErrors = new Map<number, (what: string) => IoError>();

/**
 * @internal For protocol packages: the IoError a call answered with one of their engine codes
 * throws (core's own calls too: `io.streamWrite(conn, stream, data)` on a QUIC stream).
 */
export function registerEngineError(code: number, make: (what: string) => IoError): void {
  engineErrors.set(code, make);
}

/** Disconnected reasons by transport (the native Protocol number): QUIC's codes are its own. */
const protocolReasons = new Map<number, (io: Io, conn: ConnId, code: number, origin: string) => string | undefined>();

/**
 * @internal For a transport package whose connections report their own error codes in
 * Disconnected.errorCode whatever their value (QUIC: transport or application codes): the reason
 * of every Disconnected of that protocol (its native Protocol number).
 */
export function registerProtocolCloseReason(proto: number, reason: (io: Io, conn: ConnId, code: number, origin: string) => string | undefined): void {
  protocolReasons.set(proto, reason);
}

/** The Disconnected reason a transport package gives its connection, if one does. */
export function protocolCloseReason(io: Io, conn: ConnId, proto: number, code: number, origin: string): string | undefined {
  return protocolReasons.get(proto)?.(io, conn, code, origin);
}

/**
 * TLS for handshakes that are not over TCP (QUIC): @zero-io/tcp, which owns the TLS
 * configuration (PEM files or text, SNI, CAs, passphrases, hot reload), registers how a config
 * becomes a native context.
 */
export interface TlsContexts {
  /** A server config's certificate slot id (cached per config object). */
  serverSlot(cfg: object, what: string): number;
  /** Registers a listener's slot for `io.enableCertHotReload(ep)`. */
  registerEndpoint(io: Io, ep: EndpointId, slot: number, cfg: object): void;
  /** A client config's context id for `host` (its session kept for resumption). */
  clientContext(cfg: object | true, host: string, what: string): number;
}
let tlsContexts: TlsContexts | null = null;
/** @internal @zero-io/tcp registers its TLS contexts. */
export function setTlsContexts(t: TlsContexts): void {
  tlsContexts = t;
}
/** @internal The TLS contexts of @zero-io/tcp, or null when it was not imported. */
export function getTlsContexts(): TlsContexts | null {
  return tlsContexts;
}

/** The Disconnected reason a protocol package gives `code`, if one does. */
export function packageCloseReason(io: Io, conn: ConnId, code: number): string | undefined {
  const own = closeReasons.get(code);
  if (own !== undefined) return own(io, conn);
  for (const r of closeReasonRanges) if (code >= r.lo && code <= r.hi) return r.reason(io, conn, code);
  return undefined;
}

// HTTP refusals end connections of every package that parses HTTP requests (@zero-io/http, and
// @zero-io/websocket's upgrade checks): their reasons live here, whichever of them is loaded.
closeReasons.set(ERR.HTTP_PROTOCOL, (io, conn) => {
  const why = io._native.httpError(io._shard, conn);
  return `HTTP protocol error: ${why || 'malformed request'}`;
});
closeReasons.set(ERR.HTTP_TIMEOUT, (io, conn) => {
  const why = io._native.httpError(io._shard, conn);
  return why.startsWith('HTTP/2') ? `HTTP timeout: ${why}` : `HTTP request timeout: ${why || 'the request did not arrive within requestTimeoutMs'}`;
});

/** A TLS server config attacher: registered by @zero-io/tcp (its TLS stack), used by protocol packages' listeners. */
type ServerTlsAttacher = (io: Io, ep: EndpointId, config: object) => void;
let serverTls: ServerTlsAttacher | null = null;
/** @internal @zero-io/tcp registers how a listener gets its TLS config. */
export function setServerTlsAttacher(f: ServerTlsAttacher): void {
  serverTls = f;
}
/** @internal The TLS attacher, or null when @zero-io/tcp was not imported. */
export function serverTlsAttacher(): ServerTlsAttacher | null {
  return serverTls;
}

/**
 * @internal Opens the TCP listener of a protocol package's listener (`call` names it in errors),
 * after checking that a `tls` config can be attached (`tlsUse`, e.g. 'HTTPS', names what needs
 * @zero-io/tcp). The caller enables its protocol on the endpoint, then attaches TLS with the
 * returned attacher, closing the endpoint if either fails.
 */
export function openListener(io: Io, a: { host: string; port: number; backlog: number; reusePort: boolean },
  tls: object | undefined, what: string, call: string, tlsUse: string): { ep: EndpointId; attachTls: ServerTlsAttacher | null } {
  if (tls !== undefined && serverTls === null) {
    throw new IoError('FeatureMissing',
      `${what}({ tls }): ${tlsUse} uses the TLS stack of @zero-io/tcp; install it and import '@zero-io/tcp' before listening`,
      { feature: 'tcp' });
  }
  try {
    return { ep: io._native.tcpListen(io._shard, a.host, a.port, a.backlog, a.reusePort) as EndpointId, attachTls: serverTls };
  } catch (e) {
    throw fromNative(e, call, formatHostPort(a.host, a.port));
  }
}

/** Cleanups for an event whose runSync handler threw (registerHandlerFailure), run before onError. */
export const failureHooks: ((io: Io, event: Event) => void)[] = [];

/**
 * @internal A protocol package's cleanup for an event whose runSync handler threw (HTTP answers
 * the request 500 instead of leaving its client waiting). Called before onError.
 */
export function registerHandlerFailure(hook: (io: Io, event: Event) => void): void {
  failureHooks.push(hook);
}

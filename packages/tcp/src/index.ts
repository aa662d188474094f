/**
 * @zero-io/tcp — TCP and Unix-domain-socket listen/connect for zero-io.
 *
 * Importing this package adds `tcpListen`, `tcpListenWith`, `tcpConnect`, `tcpConnectWith`,
 * `udsListen` and `udsConnect` to `Io` (`localAddress` and `closeEndpoint` are core's). RX is push-only:
 * bytes arrive as `StreamFrame { kind: 'Binary' }` events; `streamRead` throws StreamNotPullable.
 * @module
 */
import { lookup } from 'node:dns';
import { isIP } from 'node:net';
import {
  ERR_NAME_NOT_FOUND, Io, IoError, formatHostPort, parseHostPort, requireFeature,
  type ConnId, type EndpointId, type SocketAddress,
} from '@zero-io/core';
import {
  ERR, boolOption, checkPort, describeValue, fromNative, intOption, internalsOf, listenOptions, rejectUnknownKeys,
} from '@zero-io/core/internal';
import { attachServerTls, clientTls, type TlsClientConfig, type TlsServerConfig } from './tls.js';

export {
  CertReloadHandle, kTlsSupport, tlsLibrary,
  type Pem, type TlsCertificate, type TlsVersion, type TlsServerConfig, type TlsClientConfig,
} from './tls.js';
requireFeature('tcp', '@zero-io/tcp');

const PROTO_TCP = 1;
const PROTO_UDS = 2;

/** Options of {@link Io.tcpListenWith}. */
export interface TcpListenConfig {
  /** IP address to bind ('localhost' means 127.0.0.1; '::' also accepts IPv4). @default '0.0.0.0' */
  host?: string;
  /** Port; 0 picks a free one (read it back with `io.localAddress(ep)`). */
  port: number;
  /** listen() backlog. @default 511 */
  backlog?: number;
  /** SO_REUSEPORT, so several shards or processes can bind the same port. @default false */
  reusePort?: boolean;
  /**
   * Serve TLS: every accepted connection handshakes first; `Connected` (with `tls: true`)
   * follows the handshake, a failure arrives as `Disconnected` with TlsHandshakeFailed.
   */
  tls?: TlsServerConfig;
  /**
   * Keep the connection open for writing after the peer ends its side (its FIN: a `PeerEnded`
   * event), until you close it, as node:net's `allowHalfOpen`. When false, the connection
   * closes by itself once your answer to what the peer sent has gone out (see `PeerEnded`).
   * @default false
   */
  allowHalfOpen?: boolean;
}

/** Options of {@link Io.tcpConnectWith}. */
export interface TcpConnectConfig {
  /**
   * An IP address or a host name (resolved with the system resolver, then raced: RFC 8305).
   * @default 'localhost' (as node:net)
   */
  host?: string;
  port: number;
  /** Happy Eyeballs "Connection Attempt Delay" (RFC 8305 section 5). @default 250 */
  attemptDelayMs?: number;
  /** Only use this address family. @default 0 (both) */
  family?: 0 | 4 | 6;
  /**
   * Give up when no connection is established within this time, covering name resolution and
   * every Happy Eyeballs attempt (a TLS handshake has its own `tls.handshakeTimeoutMs`): the
   * connection ends with `Disconnected` (origin 'timeout', `error` a ConnectTimeout IoError).
   * 0: no bound (the kernel gives up after its SYN retries, about 2 minutes).
   * @default 10000
   */
  connectTimeoutMs?: number;
  /**
   * Speak TLS (`true`: the defaults — system CAs, SNI and verification against `host`).
   * `Connected` (with `tls: true`) follows the handshake.
   */
  tls?: TlsClientConfig | true;
  /**
   * Keep the connection open for writing after the peer ends its side (its FIN: a `PeerEnded`
   * event), until you close it, as node:net's `allowHalfOpen`. When false, the connection
   * closes by itself once your answer to what the peer sent has gone out (see `PeerEnded`).
   * @default false
   */
  allowHalfOpen?: boolean;
}

/** Options of {@link Io.udsListen}. */
export interface UdsListenConfig {
  /** listen() backlog. @default 511 */
  backlog?: number;
  /**
   * Keep the connection open for writing after the peer ends its side (its FIN: a `PeerEnded`
   * event), until you close it, as node:net's `allowHalfOpen`. When false, the connection
   * closes by itself once your answer to what the peer sent has gone out (see `PeerEnded`).
   * @default false
   */
  allowHalfOpen?: boolean;
}

/** Options of {@link Io.udsConnect}. */
export interface UdsConnectConfig {
  /**
   * Keep the connection open for writing after the peer ends its side (its FIN: a `PeerEnded`
   * event), until you close it, as node:net's `allowHalfOpen`. When false, the connection
   * closes by itself once your answer to what the peer sent has gone out (see `PeerEnded`).
   * @default false
   */
  allowHalfOpen?: boolean;
}

declare module '@zero-io/core' {
  interface Io {
    /** Listens on `"host:port"`, `"[v6]:port"` or a port number. Returns the endpoint id. */
    tcpListen(addr: string | number): EndpointId;
    /** Listens with options. */
    tcpListenWith(config: TcpListenConfig): EndpointId;
    /**
     * Connects to `"host:port"`. Returns the connection id at once; `Connected` or
     * `Disconnected` (with the errno, e.g. ECONNREFUSED) follows. A host name is resolved and
     * its addresses raced (Happy Eyeballs, RFC 8305). A port number alone connects to
     * 'localhost', as `net.connect(port)` does.
     */
    tcpConnect(addr: string | number): ConnId;
    /** Connects with options. */
    tcpConnectWith(config: TcpConnectConfig): ConnId;
    /**
     * Listens on a Unix socket path (removed again when the endpoint closes, like node:net).
     * A path that starts with a NUL byte (`'\0name'`) is a Linux abstract name: no file is
     * created, and `localAddress(ep).address` shows it as `'@name'` (`ss -x` notation). The name
     * is bound with its exact length, as ss, socat (`ABSTRACT-CONNECT:name`) and node:net from
     * Node 22 use it (Node 20's node:net pads the name to 108 bytes and does not reach it). An
     * empty path is refused (InvalidAddress).
     */
    udsListen(path: string, config?: UdsListenConfig): EndpointId;
    /** Connects to a Unix socket path (`'\0name'`: an abstract name, as for udsListen). */
    udsConnect(path: string, config?: UdsConnectConfig): ConnId;
  }
}

export { parseHostPort };

/**
 * Orders resolved addresses per RFC 8305 section 4: keep the resolver's preference for the
 * first address, then alternate families.
 */
export function interleaveFamilies(addrs: { address: string; family: number }[]): string[] {
  if (addrs.length === 0) return [];
  const first = addrs[0].family;
  const a = addrs.filter((x) => x.family === first).map((x) => x.address);
  const b = addrs.filter((x) => x.family !== first).map((x) => x.address);
  const out: string[] = [];
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if (i < a.length) out.push(a[i]);
    if (i < b.length) out.push(b[i]);
  }
  return out;
}

Io.prototype.tcpListenWith = function tcpListenWith(this: Io, config: TcpListenConfig): EndpointId {
  rejectUnknownKeys(config, ['host', 'port', 'backlog', 'reusePort', 'tls', 'allowHalfOpen'], 'tcpListenWith');
  const { host, port, backlog, reusePort } = listenOptions(config, 'tcpListenWith');
  boolOption(config.allowHalfOpen, false, 'allowHalfOpen', 'tcpListenWith');
  const { native, shard } = internalsOf(this);
  const display = formatHostPort(host, port);
  let ep: EndpointId;
  try {
    ep = native.tcpListen(shard, host, port, backlog, reusePort) as EndpointId;
  } catch (e) {
    throw fromNative(e, 'tcpListen', display);
  }
  if (config.allowHalfOpen) native.setHalfOpen(shard, ep, true, true);
  if (config.tls !== undefined) {
    try {
      attachServerTls(this, ep, config.tls);
    } catch (e) {
      this.closeEndpoint(ep);
      throw e;
    }
  }
  return ep;
};

Io.prototype.tcpListen = function tcpListen(this: Io, addr: string | number): EndpointId {
  const { host, port } = parseHostPort(addr, 'tcpListen');
  return this.tcpListenWith({ host, port });
};

Io.prototype.tcpConnectWith = function tcpConnectWith(this: Io, config: TcpConnectConfig): ConnId {
  rejectUnknownKeys(config, ['host', 'port', 'attemptDelayMs', 'family', 'tls', 'allowHalfOpen', 'connectTimeoutMs'], 'tcpConnectWith');
  const connectTimeout = timeoutOption(config.connectTimeoutMs, 'tcpConnectWith');
  const port = checkPort(config.port, 'tcpConnectWith');
  const delay = intOption(config.attemptDelayMs, 250, 0, 60_000, 'attemptDelayMs', 'tcpConnectWith');
  const family = config.family ?? 0;
  if (family !== 0 && family !== 4 && family !== 6) {
    throw new IoError('InvalidConfig', `tcpConnectWith: family must be 0 (both), 4 or 6, got ${describeValue(family)}`, { key: 'family' });
  }
  boolOption(config.allowHalfOpen, false, 'allowHalfOpen', 'tcpConnectWith');
  const internals = internalsOf(this);
  const { native, shard, check } = internals;
  const host = config.host ?? 'localhost';
  if (typeof host !== 'string' || host === '') {
    throw new IoError('InvalidAddress',
      `tcpConnectWith: host must be an IP address or a host name, got ${describeValue(host)}; leave it out for 'localhost'`,
      { address: String(host) });
  }
  // A bad TLS config throws before a connection is reserved (no Disconnected for an unseen id).
  const withTls = config.tls === undefined ? null : clientTls(this, config.tls, host);
  const conn = reserve(this, PROTO_TCP, 'tcpConnect', formatHostPort(host, port));
  if (config.allowHalfOpen) native.setHalfOpen(shard, conn, true, false);
  if (connectTimeout > 0) native.connSetConnectTimeout(shard, conn, connectTimeout);
  withTls?.(conn);
  if (isIP(host)) {
    check(native.connConnect(shard, conn, [host], port, delay), 'tcpConnect');
    return conn;
  }
  // A name: resolve (libuv's thread pool, off the event loop), then race the addresses.
  resolveThenConnect(this, conn, host, family, (ips) => native.connConnect(shard, conn, ips, port, delay));
  return conn;
};

/**
 * @internal Resolves `host` for a reserved connection (dns.lookup, every address, the system's
 * order) and hands `connect` the addresses in RFC 8305 order; a failure to resolve, or a
 * negative answer from `connect`, fails the connection (ENOTFOUND / the code) with its reason.
 * Shared by tcp and quic.
 */
export function resolveThenConnect(io: Io, conn: ConnId, host: string, family: 0 | 4 | 6, connect: (ips: string[]) => number): void {
  const internals = internalsOf(io);
  const { native, shard } = internals;
  lookup(host, { all: true, family, order: 'verbatim' }, (err, addrs) => {
    if (io.closed) return;  // shut down while resolving: nothing left to connect
    if (err || addrs.length === 0) {
      internals.noteFailedHost(conn, host);
      native.connFail(shard, conn, ERR_NAME_NOT_FOUND);
      return;
    }
    const r = connect(interleaveFamilies(addrs));
    if (r < 0) native.connFail(shard, conn, r);
  });
}

/** A connection-table entry for an outbound connect; TableFull names the target. */
function reserve(io: Io, proto: number, what: string, target: string): ConnId {
  const { native, shard, check } = internalsOf(io);
  const r = native.connReserve(shard, proto);
  if (r === ERR.TABLE_FULL) {
    throw new IoError('TableFull',
      `${what}(${target}): the connection table is full (maxConnections=${io.config.maxConnections}). Raise maxConnections or close idle connections.`,
      { address: target });
  }
  return check(r, what) as ConnId;
}

/** connectTimeoutMs: an integer from 0 (no bound) to 3,600,000 ms. */
function timeoutOption(v: number | undefined, what: string): number {
  return intOption(v, 10_000, 0, 3_600_000, 'connectTimeoutMs', what);
}



Io.prototype.tcpConnect = function tcpConnect(this: Io, addr: string | number): ConnId {
  // A bare port means localhost, as net.connect(port) (parseHostPort's 0.0.0.0 is for binding).
  const { host, port } = typeof addr === 'number' ? { host: 'localhost', port: checkPort(addr, 'tcpConnect') }
    : parseHostPort(addr, 'tcpConnect');
  return this.tcpConnectWith({ host, port });
};

/** Validates a Unix socket path; returns how it reads in messages ('\0name' as '@name'). */
function udsPath(path: unknown, what: string): string {
  if (typeof path !== 'string' || path === '') {
    throw new IoError('InvalidAddress',
      `${what}: expected a socket file path (or '\\0name' for an abstract name), got ${path === '' ? 'an empty string' : describeValue(path)}`,
      { address: String(path) });
  }
  return path.replace(/\0/g, '@');
}

/** The fixes a Unix-socket bind failure needs (the TCP ones speak of ports). */
function udsFixes(path: string): Record<string, string> {
  const abstract = path.startsWith('\0');
  return {
    EADDRINUSE: abstract
      ? 'another socket holds that abstract name; stop it or choose another name'
      : 'a file exists at that path: if no server uses it (a stale socket from a process that died), remove it (fs.rmSync(path)) and listen again; else choose another path',
    EACCES: 'no permission to create a file in that directory; choose a directory you can write to',
  };
}

Io.prototype.udsListen = function udsListen(this: Io, path: string, config: UdsListenConfig = {}): EndpointId {
  const display = udsPath(path, 'udsListen');
  rejectUnknownKeys(config, ['backlog', 'allowHalfOpen'], 'udsListen');
  boolOption(config.allowHalfOpen, false, 'allowHalfOpen', 'udsListen');
  const { native, shard } = internalsOf(this);
  let ep: EndpointId;
  try {
    ep = native.udsListen(shard, path, intOption(config.backlog, 511, 0, 65_535, 'backlog', 'udsListen')) as EndpointId;
  } catch (e) {
    throw fromNative(e, 'udsListen', display, udsFixes(path));
  }
  if (config.allowHalfOpen) native.setHalfOpen(shard, ep, true, true);
  return ep;
};

Io.prototype.udsConnect = function udsConnect(this: Io, path: string, config: UdsConnectConfig = {}): ConnId {
  udsPath(path, 'udsConnect');
  rejectUnknownKeys(config, ['allowHalfOpen'], 'udsConnect');
  boolOption(config.allowHalfOpen, false, 'allowHalfOpen', 'udsConnect');
  const { native, shard, check } = internalsOf(this);
  const conn = reserve(this, PROTO_UDS, 'udsConnect', path.replace(/\0/g, '@'));
  if (config.allowHalfOpen) native.setHalfOpen(shard, conn, true, false);
  const r = native.connConnectUds(shard, conn, path);
  if (r < 0) native.connFail(shard, conn, -r);
  return conn;
};

export { Io };

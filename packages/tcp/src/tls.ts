/**
 * TLS for TCP: options, STARTTLS and certificate hot reload. The handshake and the records run
 * in the native TLS machine (BoringSSL, linked into the addon with its symbols hidden, so it
 * lives beside `node:tls` in one process); kTLS takes over after the handshake where the kernel
 * has it. docs/architecture/0009-tls-stack.md.
 * @module
 */
import { createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Io, IoError, isIoError, type ConnId, type EndpointId } from '@zero-io/core';
import { ERR, describeValue, internalsOf, loadAddon, rejectUnknownKeys, setClusterTlsResolver, setServerTlsAttacher, setTlsContexts } from '@zero-io/core/internal';

/**
 * PEM: the text (a string holding `-----BEGIN ...`, or its bytes), or the path of a PEM file
 * (any other string), read when the config is used. Listen options, client options and
 * `CertReloadHandle` reloads all take either form.
 */
export type Pem = string | Uint8Array;

/** A certificate chain (leaf first) and its private key, PEM. */
export interface TlsCertificate {
  cert: Pem;
  key: Pem;
  /** Decrypts an encrypted private key (PKCS#8 or traditional PEM encryption). */
  passphrase?: string;
}

/** TLS versions offered: 1.2 and 1.3 only. */
export type TlsVersion = 'TLSv1.2' | 'TLSv1.3';

/** Server side: `tcpListenWith({ tls })`, `io.tlsAcceptUpgrade(conn, config)`. */
export interface TlsServerConfig {
  /** The certificate chain, leaf first (PEM text or a file path). Served when no SNI name matches. */
  cert: Pem;
  /** Its private key (PEM text or a file path; encrypted: give `passphrase`). */
  key: Pem;
  /** Decrypts an encrypted `key`. */
  passphrase?: string;
  /**
   * Per-name certificates chosen by the client's SNI: `{ 'api.example.com': { cert, key } }`.
   * A `*.example.com` key serves one label under example.com.
   */
  sni?: Record<string, TlsCertificate>;
  /** ALPN protocols in preference order, e.g. ['h2', 'http/1.1']. No overlap: the handshake fails (no_application_protocol). */
  alpn?: string[];
  /** @default 'TLSv1.2' */
  minVersion?: TlsVersion;
  /** @default 'TLSv1.3' */
  maxVersion?: TlsVersion;
  /** TLS 1.2 suites (OpenSSL syntax). @default ECDHE with AES-GCM or ChaCha20-Poly1305 only */
  ciphers?: string;
  /** Client certificates (mTLS): 'request' verifies one when sent, 'require' fails without one. @default 'none' */
  clientAuth?: 'none' | 'request' | 'require';
  /** The CAs client certificates must chain to (PEM, one or more). @default the system store */
  ca?: Pem | Pem[];
  /** Session resumption by ticket. @default true */
  sessionTickets?: boolean;
  /** A handshake not finished in this time closes the connection (TlsHandshakeFailed). @default 10000 */
  handshakeTimeoutMs?: number;
}

/** Client side: `tcpConnectWith({ tls })`, `io.tlsUpgrade(conn, config)`. */
export interface TlsClientConfig {
  /**
   * SNI and the name (or IP address) the server certificate must carry. With verification on,
   * an empty name is refused (InvalidConfig): it would accept any valid certificate.
   * @default the host connected to (`tlsUpgrade`: the peer's IP address)
   */
  servername?: string;
  alpn?: string[];
  /** @default 'TLSv1.2' */
  minVersion?: TlsVersion;
  /** @default 'TLSv1.3' */
  maxVersion?: TlsVersion;
  ciphers?: string;
  /** Trust anchors (PEM). @default the system store */
  ca?: Pem | Pem[];
  /** Verify the server certificate and its name. Turning it off is for tests only. @default true */
  rejectUnauthorized?: boolean;
  /** A client certificate (mTLS). */
  cert?: Pem;
  key?: Pem;
  /** Decrypts an encrypted client `key`. */
  passphrase?: string;
  /**
   * Resume sessions: the last session of this config object is offered on the next connect
   * made with the same object. @default true
   */
  resume?: boolean;
  /** @default 10000 */
  handshakeTimeoutMs?: number;
}

const SERVER_KEYS = ['cert', 'key', 'passphrase', 'sni', 'alpn', 'minVersion', 'maxVersion', 'ciphers', 'clientAuth', 'ca', 'sessionTickets', 'handshakeTimeoutMs'];
const CLIENT_KEYS = ['servername', 'alpn', 'minVersion', 'maxVersion', 'ciphers', 'ca', 'rejectUnauthorized', 'cert', 'key', 'passphrase', 'resume', 'handshakeTimeoutMs'];

/** PEM text from a Pem: the text itself, its bytes, or the file a path names. */
function text(p: Pem | undefined, what = 'tls'): string {
  if (p === undefined) return '';
  if (typeof p !== 'string') return Buffer.from(p.buffer, p.byteOffset, p.byteLength).toString('latin1');
  if (p.includes('-----BEGIN')) return p;
  try {
    return readFileSync(p, 'latin1');
  } catch (e) {
    throw new IoError('TlsInvalidCertificate',
      `${what}: ${JSON.stringify(p)} is neither PEM text (-----BEGIN ...) nor a readable file: ${(e as Error).message}`, {}, { cause: e });
  }
}
const pems = (p: Pem | Pem[] | undefined, what?: string): string => (Array.isArray(p) ? p.map((x) => text(x, what)).join('\n') : text(p, what));

/** The private key as unencrypted PKCS#8 PEM for the engine (decrypted with node:crypto when encrypted). */
function keyText(key: Pem | undefined, passphrase: string | undefined, what: string): string {
  const pem = text(key, what);
  const encrypted = /-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: 4,ENCRYPTED/.test(pem);
  if (!encrypted) return pem;
  if (passphrase === undefined) {
    throw new IoError('TlsInvalidCertificate', `${what}: the private key is encrypted: give its passphrase (passphrase: '...')`);
  }
  try {
    return createPrivateKey({ key: pem, format: 'pem', passphrase }).export({ format: 'pem', type: 'pkcs8' }) as string;
  } catch (e) {
    throw new IoError('TlsInvalidCertificate', `${what}: the private key could not be decrypted with the passphrase given (${(e as Error).message})`, {}, { cause: e });
  }
}

function alpnList(v: unknown, what: string): string[] {
  if (v === undefined) return [];
  if (!Array.isArray(v) || v.some((p) => typeof p !== 'string' || p === '' || p.length > 255)) {
    throw new IoError('InvalidConfig', `${what}: alpn must be an array of protocol names (e.g. ['h2', 'http/1.1']), got ${describeValue(v)}`, { key: 'alpn' });
  }
  return v;
}

function flag(v: unknown, key: string, what: string): void {
  if (v !== undefined && typeof v !== 'boolean') {
    throw new IoError('InvalidConfig', `${what}: ${key} must be true or false, got ${describeValue(v)}`, { key });
  }
}

function version(v: unknown, key: string, what: string): string {
  if (v === undefined) return '';
  if (v !== 'TLSv1.2' && v !== 'TLSv1.3') {
    throw new IoError('InvalidConfig', `${what}: ${key} must be 'TLSv1.2' or 'TLSv1.3' (older versions are not offered)`, { key });
  }
  return v;
}

function timeout(v: unknown, what: string): number {
  if (v === undefined) return 10000;
  if (!Number.isInteger(v) || (v as number) < 0 || (v as number) > 3_600_000) {
    throw new IoError('InvalidConfig', `${what}: handshakeTimeoutMs must be an integer from 0 (none) to 3600000`, { key: 'handshakeTimeoutMs' });
  }
  return v as number;
}

const native = () => loadAddon();
// Native contexts live until their JS owner is collected.
const released = new FinalizationRegistry<number>((id) => native().tlsRelease(id));

function certList(cfg: TlsServerConfig, what: string): { cert: string; key: string; names: string[] }[] {
  const list = [{ cert: text(cfg.cert, what), key: keyText(cfg.key, cfg.passphrase, what), names: [] as string[] }];
  for (const [name, ck] of Object.entries(cfg.sni ?? {})) {
    list.push({ cert: text(ck.cert, what), key: keyText(ck.key, ck.passphrase, `${what} (sni ${name})`), names: [name] });
  }
  return list;
}

/** @internal a server config's native certificate slot (cached per config object). */
const serverSlots = new WeakMap<TlsServerConfig, number>();
function serverSlot(cfg: TlsServerConfig, what: string): number {
  const cached = serverSlots.get(cfg);
  if (cached !== undefined) return cached;
  if (typeof cfg !== 'object' || cfg === null) throw new IoError('InvalidConfig', `${what}: tls must be an object ({ cert, key })`, { key: 'tls' });
  rejectUnknownKeys(cfg, SERVER_KEYS, `${what} tls`);
  if (cfg.cert === undefined || cfg.key === undefined) throw new IoError('InvalidConfig', `${what}: tls needs cert and key (PEM)`, { key: 'tls' });
  flag(cfg.sessionTickets, 'sessionTickets', what);
  const auth = cfg.clientAuth ?? 'none';
  if (!['none', 'request', 'require'].includes(auth)) throw new IoError('InvalidConfig', `${what}: clientAuth is 'none', 'request' or 'require'`, { key: 'clientAuth' });
  const id = wrap(() => native().tlsServerContext({
    certs: certList(cfg, what), alpn: alpnList(cfg.alpn, what), minVersion: version(cfg.minVersion, 'minVersion', what),
    maxVersion: version(cfg.maxVersion, 'maxVersion', what), ciphers: cfg.ciphers ?? '',
    clientAuth: auth === 'none' ? 0 : auth === 'request' ? 1 : 2, ca: pems(cfg.ca, what), tickets: cfg.sessionTickets ?? true,
  }), what);
  serverSlots.set(cfg, id);
  released.register(cfg, id);
  return id;
}

// A client config's native contexts, one per server name (each keeps that name's session for
// resumption), least recently used first; at most CLIENT_NAMES per config object, so a config
// used for many hosts (a crawler's `tls: true`) does not grow without bound.
const CLIENT_NAMES = 32;
const clientCtxs = new WeakMap<TlsClientConfig, Map<string, number>>();
const releasedAll = new FinalizationRegistry<Map<string, number>>((m) => {
  for (const id of m.values()) native().tlsRelease(id);
});
function clientCtx(cfg: TlsClientConfig, host: string, what: string): number {
  if (typeof cfg !== 'object' || cfg === null) throw new IoError('InvalidConfig', `${what}: tls must be an object (or true)`, { key: 'tls' });
  rejectUnknownKeys(cfg, CLIENT_KEYS, `${what} tls`);
  const servername = cfg.servername ?? host;
  let byName = clientCtxs.get(cfg);
  const hit = byName?.get(servername);
  if (hit !== undefined) {
    byName!.delete(servername);  // most recently used last
    byName!.set(servername, hit);
    return hit;
  }
  if (typeof servername !== 'string' || (servername === '' && cfg.rejectUnauthorized !== false)) {
    throw new IoError('InvalidConfig', `${what}: servername is needed to verify the server's certificate (set tls.servername, or rejectUnauthorized: false)`, { key: 'servername' });
  }
  if ((cfg.cert === undefined) !== (cfg.key === undefined)) throw new IoError('InvalidConfig', `${what}: a client certificate needs both cert and key`, { key: 'cert' });
  flag(cfg.rejectUnauthorized, 'rejectUnauthorized', what);
  flag(cfg.resume, 'resume', what);
  const id = wrap(() => native().tlsClientContext({
    servername, alpn: alpnList(cfg.alpn, what), minVersion: version(cfg.minVersion, 'minVersion', what),
    maxVersion: version(cfg.maxVersion, 'maxVersion', what), ciphers: cfg.ciphers ?? '', ca: pems(cfg.ca, what),
    verify: cfg.rejectUnauthorized ?? true, cert: text(cfg.cert, what), key: cfg.key === undefined ? '' : keyText(cfg.key, cfg.passphrase, what),
    resume: cfg.resume ?? true,
  }), what);
  if (!byName) {
    byName = new Map();
    clientCtxs.set(cfg, byName);
    releasedAll.register(cfg, byName);
  }
  if (byName.size >= CLIENT_NAMES) {  // connections using it keep it alive natively
    const [oldName, oldId] = byName.entries().next().value as [string, number];
    byName.delete(oldName);
    native().tlsRelease(oldId);
  }
  byName.set(servername, id);
  return id;
}

function wrap<T>(f: () => T, what: string): T {
  try {
    return f();
  } catch (e) {
    if (isIoError(e)) throw e;  // ours (a bad minVersion, ...): already says `what`
    const err = e as Error & { zioKind?: 'InvalidConfig' | 'TlsInvalidCertificate' | 'InvalidArgument' };
    const kind = err.zioKind ?? 'InvalidConfig';
    const fix = kind === 'TlsInvalidCertificate' ? ' (pass PEM text or a PEM file path: -----BEGIN CERTIFICATE----- ... and the -----BEGIN PRIVATE KEY----- that belongs to it; an encrypted key needs passphrase)' : '';
    throw new IoError(kind, `${what}: ${err.message}${fix}`, kind === 'InvalidConfig' ? { key: 'tls' } : {});
  }
}

// IoCluster.tcpListen(addr, { tls }): one certificate slot for every shard's member.
setClusterTlsResolver((cfg, what) => ({
  slot: serverSlot(cfg as TlsServerConfig, what),
  timeoutMs: timeout((cfg as TlsServerConfig).handshakeTimeoutMs, what),
}));

// Handshakes that are not over TCP (@zero-io/quic) take their TLS contexts from here too; a QUIC
// listener's slot reloads through the same CertReloadHandle.
setTlsContexts({
  serverSlot: (cfg, what) => serverSlot(cfg as TlsServerConfig, what),
  registerEndpoint: (io, ep, slot, cfg) => {
    let m = endpointSlots.get(io);
    if (!m) endpointSlots.set(io, (m = new Map()));
    m.set(ep, { slot, cfg: cfg as TlsServerConfig });
  },
  clientContext: (cfg, host, what) => clientCtx(cfg === true ? defaultClient : cfg as TlsClientConfig, host, what),
});

// Listeners of other packages (@zero-io/http's httpListenWith({ tls })) take TLS from here.
setServerTlsAttacher((io, ep, cfg) => attachServerTls(io, ep, cfg as TlsServerConfig));

/** @internal used by tcpListenWith / tcpConnectWith */
export function attachServerTls(io: Io, ep: EndpointId, cfg: TlsServerConfig): void {
  const slot = serverSlot(cfg, 'tcpListenWith');
  const { native: n, shard, check } = internalsOf(io);
  check(n.endpointSetTls(shard, ep, slot, timeout(cfg.handshakeTimeoutMs, 'tcpListenWith')), 'tcpListenWith');
  let m = endpointSlots.get(io);
  if (!m) endpointSlots.set(io, (m = new Map()));
  m.set(ep, { slot, cfg });
}

/**
 * @internal Validates a client TLS config and builds its context (throws before anything is
 * reserved); the returned function attaches it to the reserved connection.
 */
export function clientTls(io: Io, cfg: TlsClientConfig | true, host: string): (conn: ConnId) => void {
  const c = cfg === true ? defaultClient : cfg;
  const id = clientCtx(c, host, 'tcpConnectWith');
  const ms = timeout(c.handshakeTimeoutMs, 'tcpConnectWith');
  const { native: n, shard, check } = internalsOf(io);
  return (conn) => {
    // The id is the caller's already: a refusal (a session that cannot start) becomes its
    // Disconnected, with the reason in the error, rather than a throw that strands the id.
    const r = n.connSetTlsClient(shard, conn, id, ms);
    if (r === ERR.TLS_HANDSHAKE) n.connFail(shard, conn, r);
    else check(r, 'tcpConnectWith');
  };
}
const defaultClient: TlsClientConfig = {};

// Io -> endpoint -> its certificate slot (for enableCertHotReload); the config is kept alive
// with it, so the slot is not released while the listener may be reloaded.
const endpointSlots = new WeakMap<Io, Map<number, { slot: number; cfg: TlsServerConfig }>>();

/**
 * Swaps the certificate of a TLS listener, atomically: handshakes already under way finish on
 * the old certificate, the next ones get the new one. A bad certificate or a key that does
 * not match is refused with TlsInvalidCertificate and the old certificate stays in force.
 *
 * Usable from any thread: pass `handle.id` to a worker and rebuild it there with
 * `CertReloadHandle.from(id)`. Session tickets issued before a reload still resume after it.
 */
export class CertReloadHandle {
  /** The certificate slot's id (process-wide). */
  readonly id: number;
  private constructor(id: number) {
    this.id = id;
  }
  /** @internal */
  static _of(id: number): CertReloadHandle {
    return new CertReloadHandle(id);
  }
  /** Rebuilds a handle from its `id` (e.g. in a worker thread). */
  static from(id: number | { id: number }): CertReloadHandle {
    return new CertReloadHandle(typeof id === 'number' ? id : id.id);
  }
  /**
   * Reloads the certificate: `cert` (chain, leaf first) and `key`, each a PEM file path or PEM
   * text (as in the listen options); `sni` gives per-name certificates the same way (also as
   * `{ certPath, keyPath }`); `passphrase` decrypts an encrypted key. Returns the slot's new
   * generation (1 at start, +1 per reload).
   */
  reloadFromPem(cert: Pem, key: Pem, sni?: Record<string, TlsCertificate | { certPath: string; keyPath: string; passphrase?: string }>,
    passphrase?: string): number {
    const names: Record<string, TlsCertificate> = {};
    for (const [n, f] of Object.entries(sni ?? {})) {
      names[n] = 'certPath' in f ? { cert: f.certPath, key: f.keyPath, passphrase: f.passphrase } : f;
    }
    const certs = certList({ cert, key, passphrase, sni: names }, 'reloadFromPem');
    return wrap(() => native().tlsReload(this.id, certs), 'reloadFromPem');
  }
  /** Reloads from PEM text (strings or bytes; paths work too). Returns the new generation. */
  reloadFromBytes(cert: Pem, key: Pem, sni?: Record<string, TlsCertificate>, passphrase?: string): number {
    const certs = certList({ cert, key, sni, passphrase }, 'reload');
    return wrap(() => native().tlsReload(this.id, certs), 'reload');
  }
  /**
   * Reloads the certificate of a QUIC listener (`io.enableCertHotReload(ep)` on a
   * `quicListen` endpoint, @zero-io/quic): `cert` and `key` as in {@link reloadFromPem}. New
   * handshakes use it; connections already established keep theirs. Returns the new generation.
   * (A QUIC listener and a TCP one share the mechanism: the call works on either.)
   */
  reloadQuicFromPem(certPath: Pem, keyPath: Pem): number {
    const certs = certList({ cert: certPath, key: keyPath }, 'reloadQuicFromPem');
    return wrap(() => native().tlsReload(this.id, certs), 'reloadQuicFromPem');
  }
  /** The certificate generation in force (1 at start, +1 per successful reload). */
  get generation(): number {
    return native().tlsSlotGeneration(this.id);
  }
}

declare module '@zero-io/core' {
  interface Io {
    /**
     * STARTTLS, client side: starts a TLS handshake on an open plaintext connection (after the
     * server agreed, e.g. "220 Ready to start TLS"). A `TlsReady` event follows, or Disconnected
     * with TlsHandshakeFailed. Writes made meanwhile are held and sent encrypted afterwards.
     * Every byte received after this call belongs to TLS: plaintext the peer pipelined behind
     * its answer is never taken as protected data (it fails the handshake instead), and
     * StreamFrames of this connection still queued in the current batch are dropped.
     */
    tlsUpgrade(conn: ConnId, config?: TlsClientConfig): void;
    /** STARTTLS, server side: the same, answering the client's handshake. */
    tlsAcceptUpgrade(conn: ConnId, config: TlsServerConfig): void;
    /** A handle that swaps the certificate of a TLS listener (any thread). */
    enableCertHotReload(endpoint: EndpointId): CertReloadHandle;
  }
}

function upgrade(io: Io, conn: ConnId, id: number, ms: number, what: string): void {
  const { native: n, shard, check, dropFrames } = internalsOf(io);
  const r = n.connTlsUpgrade(shard, conn, id, ms);
  if (r === ERR.TLS_STATE) throw new IoError('InvalidArgument', `${what}: the connection is TLS already (or not TCP)`);
  check(r, what);
  dropFrames(conn);
}

Io.prototype.tlsUpgrade = function tlsUpgrade(this: Io, conn: ConnId, config: TlsClientConfig = {}): void {
  const peer = this.peerAddress(conn);
  const id = clientCtx(config, config.servername ?? peer?.address ?? '', 'tlsUpgrade');
  upgrade(this, conn, id, timeout(config.handshakeTimeoutMs, 'tlsUpgrade'), 'tlsUpgrade');
};

Io.prototype.tlsAcceptUpgrade = function tlsAcceptUpgrade(this: Io, conn: ConnId, config: TlsServerConfig): void {
  const id = serverSlot(config, 'tlsAcceptUpgrade');
  upgrade(this, conn, id, timeout(config.handshakeTimeoutMs, 'tlsAcceptUpgrade'), 'tlsAcceptUpgrade');
};

Io.prototype.enableCertHotReload = function enableCertHotReload(this: Io, endpoint: EndpointId): CertReloadHandle {
  const slot = endpointSlots.get(this)?.get(endpoint)?.slot;
  if (slot === undefined) throw new IoError('InvalidArgument', 'enableCertHotReload: not a TLS listener (listen with tcpListenWith({ tls }))');
  return CertReloadHandle._of(slot);
};

/** Whether this kernel can carry TLS records itself (kTLS), and why not when it cannot. */
export function kTlsSupport(): { available: boolean; reason: string | null } {
  const [available, reason] = native().ktlsAvailable();
  return { available, reason: available ? null : reason };
}

/**
 * The TLS library linked into the engine, as its version text: BoringSSL reports itself as
 * 'OpenSSL 1.1.1 (compatible; BoringSSL)'.
 */
export function tlsLibrary(): string {
  return native().tlsLibrary();
}

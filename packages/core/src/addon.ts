import type { Backend } from './config.js';
/**
 * The native engine's surface, and loading it once (resolution and its errors: loader.ts).
 * @internal
 * @module
 */
import { resolveEngine } from './loader.js';

/** The raw native surface. Ids are plain numbers; negative results are error codes. */
export interface NativeAddon {
  probe(): ProbeInfo;
  features(): string[];
  /** The engine's version (@zero-io/core's at build time). */
  version(): string;
  createShard(cfg: Record<string, unknown>): number;
  destroyShard(shard: number): void;
  buffers(shard: number): { pool: ArrayBuffer; events: ArrayBuffer; slotSize: number; slotCount: number; rxSlots: number; backing: string; setupFlags: number; backend: Backend; backendReason: string };
  poll(shard: number, timeoutMs: number): number;
  tcpListen(shard: number, ip: string, port: number, backlog: number, reusePort: boolean): number;
  udsListen(shard: number, path: string, backlog: number): number;
  endpointClose(shard: number, ep: number): number;
  udpBind(shard: number, ip: string, port: number, opts: Record<string, unknown>): number;
  udpSend(shard: number, ep: number, to: string | number | Uint8Array, port: number, data: Uint8Array, offset: number, length: number, gso: number): number;
  udpMulticast(shard: number, ep: number, join: boolean, group: string, source: string | null, ifindex: number): number;
  udpStats(shard: number, ep: number): Omit<import('./udp.js').UdpEndpointStats, 'local'> | null;
  ifIndex(name: string): number;
  udpSendSlot(shard: number, ep: number, to: string | number | Uint8Array, port: number, slot: number, off: number, len: number): number;
  slotAcquire(shard: number): number;
  handleId(shard: number): number;
  detachRx(shard: number, offset: number): number;
  ownedRelease(shard: number, slot: number): number;
  slotView(handle: number, offset: number, length: number): ArrayBuffer | null;
  handleAttach(id: number): unknown;
  handlePush(q: unknown, op: number, conn: number, arg: number, data?: Uint8Array, count?: number): number;
  slotRelease(shard: number, slot: number): number;
  writeSlot(shard: number, conn: number, slot: number, off: number, len: number): number;
  endpointAddress(shard: number, ep: number): [string, string, number] | null;
  connReserve(shard: number, proto: number): number;
  connConnect(shard: number, conn: number, ips: string[], port: number, attemptDelayMs: number): number;
  connConnectUds(shard: number, conn: number, path: string): number;
  connFail(shard: number, conn: number, errno: number): number;
  write(shard: number, conn: number, data: Uint8Array, offset?: number, length?: number): number;
  close(shard: number, conn: number): number;
  closeGraceful(shard: number, conn: number, timeoutMs: number): number;
  closeAll(shard: number, timeoutMs: number): void;
  setHalfOpen(shard: number, id: number, on: boolean, isEndpoint: boolean): number;
  pauseRecv(shard: number, conn: number, pause: boolean): number;
  connSetConnectTimeout(shard: number, conn: number, ms: number): number;
  connEndpoint(shard: number, conn: number): number;
  end(shard: number, conn: number): number;
  connPeer(shard: number, conn: number): [string, string, number] | null;
  connProto(shard: number, conn: number): number;
  // HTTP (binding/http.cc; used by @zero-io/http)
  httpEnable(shard: number, ep: number, cfg: Record<string, number | number[]>): number;
  httpTemplate(status: number, fields: string[], body: Uint8Array | string | null): number;
  httpTemplateFree(id: number): void;
  httpRespondTemplate(shard: number, conn: number, req: number, template: number): number;
  httpRespond(shard: number, conn: number, req: number, status: number, fields: string[] | null, body: Uint8Array | string | null): number;
  httpStats(shard: number, ep: number): Record<string, number> | null;
  httpError(shard: number, conn: number): string;
  httpStreamStart(shard: number, conn: number, req: number, status: number, fields: string[]): number;
  httpStreamWrite(shard: number, conn: number, req: number, data: Uint8Array | string): number;
  httpStreamEnd(shard: number, conn: number, req: number): number;
  // WebSocket (binding/ws.cc; used by @zero-io/websocket)
  wsEnable(shard: number, ep: number, cfg: Record<string, number | string[]>): number;
  wsSend(shard: number, conn: number, data: Uint8Array | string, text: boolean): number;
  wsClose(shard: number, conn: number, code: number, reason: string): number;
  wsAccept(shard: number, conn: number, protocol: number, fields: string[]): number;
  wsReject(shard: number, conn: number, status: number, reason: string): number;
  wsBuffered(shard: number, conn: number): number;
  wsCloseInfo(shard: number, conn: number): [number, string, number, boolean, number] | null;
  wsSubscribe(shard: number, conn: number, topic: string, on: boolean): number;
  wsPublish(shard: number, topic: string, data: Uint8Array | string, text: boolean, counts: Uint32Array): number;
  wsBroadcast(shard: number, ids: Float64Array, data: Uint8Array | string, text: boolean, counts: Uint32Array): number;
  wsTopicCount(shard: number, topic: string): number;
  wsStats(shard: number, ep: number): Record<string, number> | null;
  wsClientStart(shard: number, conn: number, cfg: Record<string, number | string[]>, host: string, path: string, extra: string): number;
  wsProtocol(shard: number, conn: number): string | null;
  // QUIC (binding/quic.cc; used by @zero-io/quic) and the stream form of streamWrite
  streamWriteTo(shard: number, conn: number, stream: number, fin: boolean, data: Uint8Array | null, offset?: number, length?: number): number;
  quicListen(shard: number, ip: string, port: number, tlsSlot: number, settings: Record<string, unknown>, udp: Record<string, unknown>): number;
  quicServe(shard: number, ep: number, tlsSlot: number, settings: Record<string, unknown>): number;
  quicConnect(shard: number, ip: string, port: number, tlsContext: number, settings: Record<string, unknown>): number;
  quicConnectRace(shard: number, conn: number, ips: string[], port: number, delayMs: number, tlsContext: number, settings: Record<string, unknown>): number;
  quicStreamShutdown(shard: number, conn: number, stream: number, read: boolean, code: number): number;
  quicOpenStream(shard: number, conn: number, uni: boolean): number;
  quicDatagram(shard: number, conn: number, data: Uint8Array): number;
  quicDatagramMax(shard: number, conn: number): number;
  quicClose(shard: number, conn: number, code: number, reason: string): number;
  quicAlpn(shard: number, conn: number): string | null;
  quicCloseInfo(shard: number, conn: number): [boolean, boolean, boolean, number, string, string, boolean] | null;
  quicStats(shard: number, ep: number): Record<string, number | string> | null;
  quicStreamPull(shard: number, conn: number, stream: number, on: boolean): number;
  streamReadFrom(shard: number, conn: number, stream: number, buf: Uint8Array): number | [number, number];
  quicMigration(shard: number, conn: number): [[string, string, number], [string, string, number]] | null;
  quicSetTicket(shard: number, conn: number, ticket: Uint8Array): number;
  quicTicket(shard: number, conn: number): Buffer | null | number;
  quicEarlyData(shard: number, conn: number): [boolean, string] | number;
  connStats(shard: number, conn: number): (Omit<import('./io.js').ConnStats, 'kTls' | 'tls'> & { tls: boolean; ktls: boolean }) | number;
  poolStats(shard: number): NativePoolStats;
  resetPeaks(shard: number): void;
  poolPressure(shard: number): {
    state: number; utilizationPct: number; leader: number; pools: number[]; enter: number[];
    budgetRx: number; budgetTxCritical: number; budgetTxBulk: number; budgetScratch: number;
    transitions: number; writesCapped: number; acceptsRefused: number;
  };
  startDriver(shard: number, onBatch: (count: number) => void): void;
  stopDriver(shard: number): void;
  reuseportGroup(kind: 'tcp' | 'udp', ip: string, port: number, count: number, backlog: number, udpOptions: object): { fds: number[]; address: [string, string, number] };
  attachSteering(fd: number, kind: 'cbpf' | 'ebpf' | 'dcid', count: number, pinned: [number, number][]): void;
  adoptListener(shard: number, fd: number, proto: number): number;
  adoptUdp(shard: number, fd: number, udpOptions: object): number;
  closeFd(fd: number): void;
  threadAffinity(cpus?: number[]): number[];
  currentCpu(): number;
  handleReservoir(shard: number, n: number): void;
  handleTakeSlot(q: unknown): [number, ArrayBuffer] | null;
  benchFillEvents(shard: number, n: number): number;
  tlsServerContext(opts: Record<string, unknown>): number;
  tlsClientContext(opts: Record<string, unknown>): number;
  tlsReload(slot: number, certs: { cert: string; key: string; names: string[] }[]): number;
  tlsRelease(id: number): void;
  tlsSlotGeneration(slot: number): number;
  endpointSetTls(shard: number, ep: number, slot: number, handshakeTimeoutMs: number): number;
  connSetTlsClient(shard: number, conn: number, ctx: number, handshakeTimeoutMs: number): number;
  connTlsUpgrade(shard: number, conn: number, ctx: number, handshakeTimeoutMs: number): number;
  connTlsInfo(shard: number, conn: number): NativeTlsInfo | null;
  ktlsAvailable(): [boolean, string];
  tlsLibrary(): string;
}

/** @internal connTlsInfo() */
export interface NativeTlsInfo {
  phase: 'idle' | 'handshake' | 'open' | 'closed' | 'failed';
  server: boolean; version: string; cipher: string; alpn: string; servername: string;
  resumed: boolean; peerSubject: string; peerVerified: boolean; ktls: boolean; ktlsReason: string;
  alert: number; alertReceived: boolean; reason: string;
}

/** What the running kernel offers io_uring-wise (see `probe()`). */
export interface ProbeInfo {
  kernel: string;
  available: boolean;
  setupErrno: number;
  ioUringDisabled: number;
  singleIssuer: boolean;
  deferTaskrun: boolean;
  coopTaskrun: boolean;
  bufRing: boolean;
  multishotAccept: boolean;
  multishotRecv: boolean;
  opsOk: boolean;
  /** UDP_SEGMENT (send-side segmentation) is available. */
  udpGso: boolean;
  /** UDP_GRO (receive-side coalescing) is available. */
  udpGro: boolean;
}

/** @internal */
export interface NativeGauge { current: number; peak: number; capacity: number }
/** @internal */
export interface NativePoolStats {
  freeStack: NativeGauge; fillRing: NativeGauge; rxRing: NativeGauge; txRing: NativeGauge;
  completionRing: NativeGauge; scratchPool: NativeGauge; perConn: NativeGauge;
  counters: Record<string, number>;
  backend: Backend;
  connections: number;
}

/** @internal Negative result codes of the native calls (native/shard/shard.h kErr*). */
export const ERR = {
  STALE: -1000, CLOSING: -1001, TABLE_FULL: -1002, NOT_CONNECTED: -1003,
  QUEUE_FULL: -1004, POOL_EXHAUSTED: -1005, WRONG_KIND: -1006,
  TLS_HANDSHAKE: -1010, TLS_PROTOCOL: -1011, TLS_TIMEOUT: -1012, TLS_STATE: -1013, CONNECT_TIMEOUT: -1014,
  HTTP_PROTOCOL: -1020, HTTP_TIMEOUT: -1021, NOT_HTTP: -1022, NOT_WS: -1023, WS_HANDSHAKE: -1024,
  NOT_QUIC: -1030, QUIC_STREAM_STATE: -1031, QUIC_STREAM_LIMIT: -1032, QUIC_STREAM_STOPPED: -1033, QUIC_NOT_READY: -1034,
  QUIC_DATAGRAM: -1035, QUIC_TLS: -1036, QUIC_STREAM_RESET: -1037, QUIC_NOT_PULLED: -1038, QUIC_TICKET: -1039,
} as const;

/** @internal IoHandle command ops (native/shard/handle.h HandleOp), by number. */
export const HANDLE_OPS = ['', 'streamWrite', 'close', 'closeGraceful', 'releaseSlot', 'streamWriteBuffer', 'pauseRecv', 'resumeRecv', 'httpRespond', 'wsPublish'] as const;
/** @internal */
export const OP = { WRITE: 1, CLOSE: 2, CLOSE_GRACEFUL: 3, RELEASE_SLOT: 4, WRITE_SLOT: 5, PAUSE_RECV: 6, RESUME_RECV: 7, HTTP_RESPOND: 8, WS_PUBLISH: 9 } as const;
/** @internal HandleQueue::push results (native/shard/handle.h). */
export const PUSH = { FULL: -1, GONE: -2, TOO_BIG: -3 } as const;

let cached: NativeAddon | undefined;

/** Loads (once) and returns the addon, or throws an actionable IoError (loader.ts says why). */
export function loadAddon(): NativeAddon {
  return (cached ??= resolveEngine<NativeAddon>());
}

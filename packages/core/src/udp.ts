/**
 * UDP for `Io`: `udpBind` / `udpBindWith`, `udpSendBytes`, `udpSendSegments` (UDP GSO),
 * `multicastJoin` / `multicastLeave` with a typed {@link MulticastGroup}, and `udpStats`.
 * Datagrams arrive as `UdpRecv` events (multishot recvmsg into pool slots).
 * @module
 */
import { networkInterfaces } from 'node:os';
import { ERR, type NativeAddon } from './addon.js';
import { UdpAddress, bindIp, checkPort, formatHostPort, parseHostPort, rejectUnknownKeys } from './address.js';
import { IoError, errnoDescription, fromNative, isIoError, shardClosed } from './errors.js';
import type { EndpointId, UdpRecvEvent } from './events.js';
import { Io } from './io.js';
import { SendBuffer } from './send-buffer.js';

/** Options of {@link Io.udpBindWith} (the seed's UdpEndpointConfig). */
export interface UdpEndpointConfig {
  /** Local IP to bind ('::' is dual-stack unless `ipv6Only`). @default '0.0.0.0' */
  host?: string;
  /** Local port; 0 picks a free one (read it back with `io.localAddress(ep)` or `io.udpStats(ep).local`). */
  port: number;
  /** SO_REUSEADDR: several sockets may bind the same multicast port. @default false */
  reuseAddr?: boolean;
  /** SO_REUSEPORT: the kernel spreads datagrams across the sockets bound to the port. @default false */
  reusePort?: boolean;
  /** IPV6_V6ONLY for '::' binds. @default system default (dual stack) */
  ipv6Only?: boolean;
  /** SO_BROADCAST. @default false */
  broadcast?: boolean;
  /** SO_RCVBUF in bytes. @default system default */
  recvBufferSize?: number;
  /** SO_SNDBUF in bytes. @default system default */
  sendBufferSize?: number;
  /** Unicast TTL / hop limit. @default system default (64) */
  ttl?: number;
  /** Multicast TTL / hop limit. @default 1 */
  multicastTtl?: number;
  /** Whether our own multicast datagrams loop back to local members. @default true */
  multicastLoopback?: boolean;
  /** Interface for outgoing multicast: a name ('eth0') or one of its local addresses. @default by route */
  multicastInterface?: string;
  /** Datagrams that may be queued or in flight on this endpoint; beyond it sends throw PoolExhausted. @default 1024 */
  sendQueue?: number;
  /**
   * UDP GRO (UDP_GRO, Linux >= 5.0): the kernel may coalesce a train of equal-size datagrams from
   * one sender (e.g. sent with GSO) into one `UdpRecv` event with `segmentSize` set, received
   * into one of the shard's GRO buffers (`Config.udpGroBuffers`, 68 KiB each): one completion
   * and one event for up to 64 datagrams. Such events cannot be detached (`detachEventData`
   * returns null): copy what must outlive the poll. @default false
   */
  gro?: boolean;
}

/**
 * A multicast group to join (typed, as the seed's MulticastGroup):
 * - `AnySource` (RFC 1112): every sender to `group`, e.g. mDNS 224.0.0.251.
 * - `SourceSpecific` (RFC 4607, IP_ADD_SOURCE_MEMBERSHIP): only `source` -> `group`, as exchange
 *   feeds (CME, Eurex) publish; datagrams from other sources are filtered by the kernel.
 * `interface` is a name ('eth0') or one of its local addresses; by default the route decides.
 */
export type MulticastGroup =
  | { readonly kind: 'AnySource'; readonly group: string; readonly interface?: string }
  | { readonly kind: 'SourceSpecific'; readonly group: string; readonly source: string; readonly interface?: string };

/** Constructors for {@link MulticastGroup}. */
export const MulticastGroup = {
  /** Any-source membership of `group` (RFC 1112). */
  anySource(group: string, iface?: string): MulticastGroup {
    return iface === undefined ? { kind: 'AnySource', group } : { kind: 'AnySource', group, interface: iface };
  },
  /** Source-specific membership: only `source` sending to `group` (RFC 4607). */
  sourceSpecific(source: string, group: string, iface?: string): MulticastGroup {
    return iface === undefined ? { kind: 'SourceSpecific', group, source } : { kind: 'SourceSpecific', group, source, interface: iface };
  },
} as const;

/** Where a datagram goes: a {@link UdpAddress}, `{ address, port }`, or a `UdpRecv` event (reply to its sender, no allocation). */
export type UdpTarget = UdpAddress | { readonly address: string; readonly port: number } | UdpRecvEvent;

/** Per-endpoint UDP counters (`io.udpStats(ep)`). */
export interface UdpEndpointStats {
  readonly datagramsReceived: number;
  /** Datagrams cut because they were longer than `maxReceive`. */
  readonly datagramsTruncated: number;
  readonly datagramsSent: number;
  /** Sends the kernel refused after queueing (e.g. ENETUNREACH); see `lastSendErrno`. */
  readonly sendErrors: number;
  readonly lastSendErrno: number;
  readonly sendQueued: number;
  readonly sendQueueCapacity: number;
  /** The largest datagram `udpSendBytes` takes (bounded by 16 pool slots and 65527 bytes). */
  readonly maxDatagram: number;
  /**
   * The largest datagram (or GRO train) received whole: `poolSlotSize - 44` (the receive slot
   * less the 16-byte recvmsg header and room for an IPv6 sender address); on a GRO endpoint
   * 69564 (a 68 KiB GRO buffer less the same and the 24-byte GRO control message).
   */
  readonly maxReceive: number;
  /** Whether this endpoint receives with UDP GRO. */
  readonly gro: boolean;
  /** The bound local address. */
  readonly local: { address: string; port: number; family: 'IPv4' | 'IPv6' };
}

const EMSGSIZE = 90;
/** UDP_MAX_SEGMENTS of the kernel (include/linux/udp.h) in its most conservative version. */
const GSO_MAX_SEGMENTS = 64;

let gso: boolean | undefined;

/** @internal Tests: pretend the kernel lacks UDP GSO (false), or probe again (undefined). */
export function setUdpGsoForTesting(on: boolean | undefined): void {
  gso = on;
}

function fail(io: Io, r: number, what: string, ep: EndpointId, len?: number): never {
  if (r === ERR.STALE) throw new IoError('InvalidConnId', `${what}: endpoint ${ep} is closed or was never opened`);
  if (r === ERR.CLOSING) throw new IoError('InvalidConnId', `${what}: endpoint ${ep} is closing`);
  if (r === ERR.WRONG_KIND) throw new IoError('InvalidArgument', `${what}: endpoint ${ep} is not a UDP endpoint`);
  if (r === ERR.QUEUE_FULL) {
    throw new IoError('PoolExhausted', `${what}: the endpoint's send queue is full (sendQueue datagrams in flight); ` +
      'wait for the next poll, send less, or raise sendQueue in udpBindWith', { pool: 'TxRing' });
  }
  if (r === ERR.POOL_EXHAUSTED) {
    throw new IoError('PoolExhausted', `${what}: no free pool slot for the datagram; wait for the next poll or raise poolSlotCount`, { pool: 'FreeStack' });
  }
  if (r === -EMSGSIZE) {
    throw new IoError('InvalidArgument', `${what}: a ${len}-byte datagram is larger than this Io sends (udpStats(ep).maxDatagram = ${maxDatagram(io)}); raise poolSlotSize`);
  }
  throw new IoError('SyscallFailed', `${what} failed: ${errnoDescription(-r)}`, { errno: -r });
}

function ifIndex(native: NativeAddon, iface: string | undefined, what: string): number {
  if (iface === undefined || iface === '') return 0;
  let name = iface;
  const nets = networkInterfaces();
  if (!(name in nets)) {
    const hit = Object.entries(nets).find(([, addrs]) => addrs?.some((a) => a.address === iface));
    if (!hit) throw new IoError('InvalidAddress', `${what}: no interface named or addressed '${iface}' (known: ${Object.keys(nets).join(', ')})`, { address: iface });
    name = hit[0];
  }
  const idx = native.ifIndex(name);
  if (!idx) throw new IoError('InvalidAddress', `${what}: interface '${name}' has no index (gone?)`, { address: iface });
  return idx;
}

const BIND_KEYS = ['host', 'port', 'gro', 'reuseAddr', 'reusePort', 'ipv6Only', 'broadcast', 'recvBufferSize', 'sendBufferSize',
  'ttl', 'multicastTtl', 'multicastLoopback', 'multicastInterface', 'sendQueue'] as const;

/**
 * @internal Validates a UdpEndpointConfig for `what` (udpBindWith, IoCluster.udpBind) on shards
 * with `groBuffers` GRO buffers; returns the bind address and the options for the engine.
 */
export function udpBindOptions(native: NativeAddon, config: UdpEndpointConfig, groBuffers: number, what: string):
  { host: string; port: number; opts: Record<string, unknown> } {
  rejectUnknownKeys(config, BIND_KEYS, what);
  const host = bindIp(config.host ?? '0.0.0.0', what);
  const port = checkPort(config.port, what);
  const sendQueue = config.sendQueue ?? 1024;
  if (!Number.isInteger(sendQueue) || sendQueue < 1 || sendQueue > 65536) {
    throw new IoError('InvalidConfig', `${what}: sendQueue must be an integer in [1, 65536], got ${sendQueue}`, { key: 'sendQueue' });
  }
  if (config.gro) {
    groProbe ??= native.probe().udpGro;
    if (!groProbe || groBuffers === 0) {
      throw new IoError('NotSupportedOnBackend', groProbe
        ? `${what}: gro needs GRO buffers; Config.udpGroBuffers is 0`
        : `${what}: gro needs UDP_GRO, which this kernel lacks (Linux >= 5.0); leave gro off`, { feature: 'UDP_GRO' });
    }
  }
  return { host, port, opts: { ...config, multicastInterface: ifIndex(native, config.multicastInterface, what), sendQueue } };
}

Io.prototype.udpBindWith = function udpBindWith(this: Io, config: UdpEndpointConfig): EndpointId {
  const { host, port, opts } = udpBindOptions(this._native, config, this.config.udpGroBuffers, 'udpBindWith');
  try {
    return this._native.udpBind(this._shard, host, port, opts) as EndpointId;
  } catch (e) {
    throw fromNative(e, 'udpBind', formatHostPort(host, port));
  }
};

let groProbe: boolean | undefined;

Io.prototype.udpBind = function udpBind(this: Io, addr: string | number): EndpointId {
  const { host, port } = parseHostPort(addr, 'udpBind');
  return this.udpBindWith({ host, port });
};

/** The port that goes with the last `dest()` result (0 when the address carries it). */
let destPort = 0;

/**
 * The native form of a destination: sockaddr bytes, a pool offset (a UdpRecv event: reply to
 * its sender), or an IP string with its port left in `destPort`. Allocates nothing: this is on
 * every send.
 */
function dest(to: UdpTarget, what: string): Uint8Array | number | string {
  destPort = 0;
  if (to instanceof UdpAddress) return to._raw;
  if ((to as UdpRecvEvent).type === 'UdpRecv') return (to as unknown as { _fromOffset: number })._fromOffset;
  const t = to as { address: string; port: number };
  if (typeof t.address !== 'string' || !Number.isInteger(t.port) || t.port < 0 || t.port > 65535) {
    throw new IoError('InvalidAddress', `${what}: 'to' must be a UdpAddress, a UdpRecv event or { address, port }`);
  }
  destPort = t.port;
  return t.address;
}

/**
 * What a failed send throws: the engine refuses a destination that is not an IP literal (a
 * host name): say so with the fix, once, in the caller's name.
 */
function sendError(e: unknown, what: string, to: UdpTarget): IoError {
  if (isIoError(e)) return e;
  if ((e as { zioKind?: string })?.zioKind === 'InvalidAddress') {
    const address = String((to as { address?: unknown }).address);
    return new IoError('InvalidAddress',
      `${what}: the destination ${JSON.stringify(address)} is not an IP address; UDP sends take IP literals: ` +
      'resolve the name first (dns.lookup) and send to the address it gives', { address }, { cause: e });
  }
  return fromNative(e, what);
}

function sendTo(io: Io, ep: EndpointId, to: UdpTarget, data: Uint8Array, offset: number, length: number, seg: number, what: string): number {
  const a = dest(to, what);
  return io._native.udpSend(io._shard, ep, a, destPort, data, offset, length, seg);
}

/** The largest datagram a send takes (mirrors Shard::udp_max_datagram: 16 gathered slots, 65527 B). */
function maxDatagram(io: Io): number {
  return Math.min(16 * io.config.poolSlotSize, 65527);
}

Io.prototype.udpSend = function udpSend(this: Io, ep: EndpointId, to: UdpTarget, buf: SendBuffer, length?: number): void {
  if (!(buf instanceof SendBuffer)) throw new IoError('InvalidArgument', 'udpSend expects a SendBuffer from io.sendBuffer() (udpSendBytes takes bytes)');
  const n = buf._check(this, 'udpSend', length);
  let r: number;
  try {
    const a = dest(to, 'udpSend');
    r = this._native.udpSendSlot(this._shard, ep, a, destPort, buf._slot, 0, n);
  } catch (e) {
    throw sendError(e, 'udpSend', to);
  }
  if (r < 0) {
    if (r === ERR.WRONG_KIND) throw new IoError('InvalidArgument', 'udpSend: the SendBuffer is not checked out (released?), or the endpoint is not UDP');
    fail(this, r, 'udpSend', ep, n);
  }
};

Io.prototype.udpSendBytes = function udpSendBytes(this: Io, ep: EndpointId, to: UdpTarget, data: Uint8Array,
  offset = 0, length = data.length - offset): void {
  let r: number;
  try {
    r = sendTo(this, ep, to, data, offset, length, 0, 'udpSendBytes');
  } catch (e) {
    throw sendError(e, 'udpSendBytes', to);
  }
  if (r < 0) fail(this, r, 'udpSendBytes', ep, length);
};

Io.prototype.udpSendSegments = function udpSendSegments(this: Io, ep: EndpointId, to: UdpTarget, data: Uint8Array,
  segmentSize: number): void {
  if (!Number.isInteger(segmentSize) || segmentSize < 1 || segmentSize > 65507) {
    throw new IoError('InvalidArgument', `udpSendSegments: segmentSize must be an integer in [1, 65507], got ${segmentSize}`);
  }
  gso ??= Io.probe().udpGso;
  const total = data.length;
  if (total <= segmentSize) return this.udpSendBytes(ep, to, data);
  const max = Math.min(maxDatagram(this), 65000);
  // GSO train: as many whole segments as the kernel's limits allow per sendmsg.
  const perTrain = gso ? Math.max(1, Math.min(GSO_MAX_SEGMENTS, Math.floor(max / segmentSize))) : 1;
  for (let off = 0; off < total; off += perTrain * segmentSize) {
    const len = Math.min(perTrain * segmentSize, total - off);
    let r: number;
    try {
      r = sendTo(this, ep, to, data, off, len, perTrain > 1 && len > segmentSize ? segmentSize : 0, 'udpSendSegments');
    } catch (e) {
      throw sendError(e, 'udpSendSegments', to);
    }
    if (r < 0) fail(this, r, 'udpSendSegments', ep, len);
  }
};

function membership(io: Io, join: boolean, ep: EndpointId, g: MulticastGroup): void {
  const what = join ? 'multicastJoin' : 'multicastLeave';
  if (!g || (g.kind !== 'AnySource' && g.kind !== 'SourceSpecific')) {
    throw new IoError('InvalidArgument', `${what}: group must be MulticastGroup.anySource(...) or MulticastGroup.sourceSpecific(...)`);
  }
  const isV4 = /^(22[4-9]|23\d)\./.test(g.group);
  const isV6 = /^ff/i.test(g.group);
  if (!isV4 && !isV6) {
    throw new IoError('InvalidAddress', `${what}: ${g.group} is not a multicast address (224.0.0.0/4 or ff00::/8)`, { address: g.group });
  }
  const source = g.kind === 'SourceSpecific' ? g.source : null;
  let r: number;
  try {
    r = io._native.udpMulticast(io._shard, ep, join, g.group, source, ifIndex(io._native, g.interface, what));
  } catch (e) {
    throw fromNative(e, what, source ? `${source} -> ${g.group}` : g.group);
  }
  if (r < 0) fail(io, r, what, ep);
}

Io.prototype.multicastJoin = function multicastJoin(this: Io, ep: EndpointId, group: MulticastGroup): void {
  membership(this, true, ep, group);
};

Io.prototype.multicastLeave = function multicastLeave(this: Io, ep: EndpointId, group: MulticastGroup): void {
  membership(this, false, ep, group);
};

Io.prototype.udpStats = function udpStats(this: Io, ep: EndpointId): UdpEndpointStats {
  if (this.closed) throw shardClosed('udpStats');
  const s = this._native.udpStats(this._shard, ep);
  if (!s) throw new IoError('InvalidConnId', `udpStats: endpoint ${ep} is not an open UDP endpoint`);
  const a = this._native.endpointAddress(this._shard, ep);
  return Object.freeze({ ...s, local: { family: a![0] as 'IPv4' | 'IPv6', address: a![1], port: a![2] } });
};

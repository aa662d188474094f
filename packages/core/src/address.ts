/**
 * UdpAddress: an IPv4/IPv6 address and port, kept in its kernel form (a sockaddr) so that
 * sending to it needs no parsing, and decoded to strings only when read.
 * @module
 */
import { isIP } from 'node:net';
import { IoError, describeValue, didYouMean } from './errors.js';
import type { SocketAddress } from './events.js';

/** Splits `"host:port"`, `"[v6]:port"` or `":port"`; a bare number is a port on 0.0.0.0. */
export function parseHostPort(addr: string | number, what: string): { host: string; port: number } {
  if (typeof addr === 'number') return { host: '0.0.0.0', port: checkPort(addr, what) };
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(addr) ?? /^([^:]*):(\d+)$/.exec(addr);
  if (!m) {
    throw new IoError('InvalidAddress', `${what}: expected "host:port" or "[ipv6]:port", got ${JSON.stringify(addr)}`, { address: addr });
  }
  return { host: m[1] || '0.0.0.0', port: checkPort(Number(m[2]), what) };
}

/** @internal Validates a port number (0..65535) or throws InvalidAddress. */
export function checkPort(port: number, what: string): number {
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new IoError('InvalidAddress', `${what}: port must be an integer in [0, 65535], got ${describeValue(port)}`, { address: String(port) });
  }
  return port;
}

/** @internal A local IP to bind ('localhost' means 127.0.0.1); names are refused with the fix. */
export function bindIp(host: string, what: string): string {
  if (host === 'localhost') return '127.0.0.1';
  if (isIP(host) === 0) {
    throw new IoError('InvalidAddress',
      `${what}: binding needs an IP address, got ${JSON.stringify(host)}; resolve the name first (dns.lookup) or use '0.0.0.0' / '::'`,
      { address: host });
  }
  return host;
}

/**
 * @internal Throws InvalidConfig when `options` is not a plain object (null, an array, a
 * primitive), or naming the first key that is not in `known` (with the nearest known key).
 */
export function rejectUnknownKeys(options: object, known: readonly string[], what: string): void {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new IoError('InvalidConfig', `${what}: options must be an object, got ${describeValue(options)}`);
  }
  for (const k of Object.keys(options)) {
    if (!known.includes(k)) {
      throw new IoError('InvalidConfig', `${what}: unknown option ${k}${didYouMean(k, known)}; known: ${known.join(', ')}`, { key: k });
    }
  }
}

/** `host:port` with IPv6 hosts bracketed. */
export function formatHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

const AF_INET = 2;
const AF_INET6 = 10;

/**
 * A datagram peer. `ev.from` of a `UdpRecv` event is one (a copy: it stays valid after the
 * poll); build your own with {@link UdpAddress.of}. Usable as `to` in `udpSendBytes` without
 * any string parsing.
 */
export class UdpAddress implements SocketAddress {
  /** @internal the sockaddr_in / sockaddr_in6 bytes */
  readonly _raw: Uint8Array;
  #address: string | undefined;

  /** @internal use {@link UdpAddress.of} or `ev.from` */
  constructor(raw: Uint8Array) {
    this._raw = raw;
  }

  /** Parses `address` (an IPv4 or IPv6 literal, no host names) and `port`. Throws InvalidAddress. */
  static of(address: string, port: number): UdpAddress {
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      throw new IoError('InvalidAddress', `port must be an integer 0..65535, got ${port}`, { address: `${address}:${port}` });
    }
    const v = isIP(address);
    if (v === 4) {
      const raw = new Uint8Array(16);
      raw[0] = AF_INET;
      raw[2] = port >> 8;
      raw[3] = port & 0xff;
      const p = address.split('.');
      for (let i = 0; i < 4; i++) raw[4 + i] = Number(p[i]);
      return new UdpAddress(raw);
    }
    if (v === 6) {
      const raw = new Uint8Array(28);
      raw[0] = AF_INET6;
      raw[2] = port >> 8;
      raw[3] = port & 0xff;
      raw.set(parseIPv6(address), 8);
      return new UdpAddress(raw);
    }
    throw new IoError('InvalidAddress', `not an IP address: '${address}' (UDP destinations take IP literals; resolve names with node:dns first)`, { address });
  }

  /** 'IPv4' or 'IPv6' (an IPv4 peer of a dual-stack socket is IPv6 '::ffff:a.b.c.d', as in node:dgram). */
  get family(): 'IPv4' | 'IPv6' {
    return this._raw[0] === AF_INET ? 'IPv4' : 'IPv6';
  }

  get port(): number {
    return (this._raw[2] << 8) | this._raw[3];
  }

  /** The address as text, e.g. '127.0.0.1' or '::1' (RFC 5952 form). */
  get address(): string {
    return (this.#address ??= this._raw[0] === AF_INET
      ? `${this._raw[4]}.${this._raw[5]}.${this._raw[6]}.${this._raw[7]}`
      : formatIPv6(this._raw.subarray(8, 24)));
  }

  /** True when both name the same address and port. */
  equals(other: UdpAddress): boolean {
    const a = this._raw;
    const b = other._raw;
    if (a[0] !== b[0] || a[2] !== b[2] || a[3] !== b[3]) return false;
    const from = a[0] === AF_INET ? 4 : 8;
    const to = a[0] === AF_INET ? 8 : 24;
    for (let i = from; i < to; i++) if (a[i] !== b[i]) return false;
    return true;
  }

  /** '127.0.0.1:9000' or '[::1]:9000'. */
  toString(): string {
    return this.family === 'IPv4' ? `${this.address}:${this.port}` : `[${this.address}]:${this.port}`;
  }

  toJSON(): SocketAddress {
    return { address: this.address, port: this.port, family: this.family };
  }
}

/** 16 bytes of an IPv6 literal (already validated by net.isIP). */
function parseIPv6(text: string): Uint8Array {
  const out = new Uint8Array(16);
  let s = text;
  const pct = s.indexOf('%');  // zone id: not part of the address bytes
  if (pct >= 0) s = s.slice(0, pct);
  let tail: number[] = [];
  const lastColon = s.lastIndexOf(':');
  if (s.indexOf('.', lastColon) >= 0) {  // embedded IPv4, e.g. ::ffff:1.2.3.4
    const v4 = s.slice(lastColon + 1).split('.').map(Number);
    tail = [(v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]];
    s = s.slice(0, lastColon + 1) + '0:0';
  }
  const [head, rest] = s.split('::');
  const h = head ? head.split(':') : [];
  const r = rest !== undefined ? (rest ? rest.split(':') : []) : [];
  let groups: number[];
  const hv = h.map((x) => parseInt(x, 16));
  const rv = r.map((x) => parseInt(x, 16));
  if (rest === undefined) groups = hv;
  else groups = [...hv, ...new Array(8 - hv.length - rv.length).fill(0), ...rv];
  if (tail.length) {
    groups[6] = tail[0];
    groups[7] = tail[1];
  }
  for (let i = 0; i < 8; i++) {
    out[i * 2] = groups[i] >> 8;
    out[i * 2 + 1] = groups[i] & 0xff;
  }
  return out;
}

/** RFC 5952 text form of 16 address bytes. */
function formatIPv6(b: Uint8Array): string {
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push((b[i * 2] << 8) | b[i * 2 + 1]);
  // IPv4-mapped: ::ffff:a.b.c.d
  if (g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff) {
    return `::ffff:${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
  }
  // The longest run (>= 2) of zero groups becomes '::' (the first one on a tie).
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) { best = i; bestLen = j - i; }
    i = j;
  }
  const hex = (a: number[]): string => a.map((x) => x.toString(16)).join(':');
  if (best < 0) return hex(g);
  return `${hex(g.slice(0, best))}::${hex(g.slice(best + bestLen))}`;
}

/**
 * Validating the options of protocol packages' calls (`@zero-io/core/internal`): numbers, flags,
 * the address part of a listener's config, and the arguments of `httpListenTls(addr, tls)` /
 * `wsListenTls(addr, tls)`.
 * Every failure is an InvalidConfig that names the call, the key and the value.
 * @internal
 * @module
 */
import { bindIp, checkPort, parseHostPort } from './address.js';
import { IoError, describeValue } from './errors.js';

/** An integer option in [min, max], or its default when absent. */
export function intOption(v: unknown, dflt: number, min: number, max: number, key: string, what: string): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new IoError('InvalidConfig', `${what}: ${key} must be an integer from ${min} to ${max}, got ${describeValue(v)}`, { key });
  }
  return v;
}

/** A boolean option, or its default when absent. */
export function boolOption(v: unknown, dflt: boolean, key: string, what: string): boolean {
  if (v === undefined) return dflt;
  if (typeof v !== 'boolean') throw new IoError('InvalidConfig', `${what}: ${key} must be true or false, got ${describeValue(v)}`, { key });
  return v;
}

/** The address part of a TCP listener's config, validated (host defaults to 0.0.0.0, backlog to 511). */
export function listenOptions(config: { host?: string; port: number; backlog?: number; reusePort?: boolean }, what: string):
  { host: string; port: number; backlog: number; reusePort: boolean } {
  return {
    host: bindIp(config.host ?? '0.0.0.0', what),
    port: checkPort(config.port, what),
    backlog: intOption(config.backlog, 511, 0, 65_535, 'backlog', what),
    reusePort: boolOption(config.reusePort, false, 'reusePort', what),
  };
}

/** The arguments of an `httpListenTls(addr, tls)` / `wsListenTls(addr, tls)` call: the address, and a TLS config object. */
export function listenTlsArgs<T>(addr: string | number, tls: T, what: string): { host: string; port: number; tls: T } {
  const { host, port } = parseHostPort(addr, what);
  if (tls === null || typeof tls !== 'object') {
    throw new IoError('InvalidConfig', `${what}: the second argument must be a TlsServerConfig ({ cert, key, ... }), got ${describeValue(tls)}`, { key: 'tls' });
  }
  return { host, port, tls };
}

/**
 * Structured errors. Every error the library raises is an {@link IoError} with a stable `kind`,
 * typed fields, and a message that says what happened and how to fix it. See docs/errors.md.
 * @module
 */
import { constants as osConstants } from 'node:os';

/**
 * Every kind of {@link IoError}, each documented in docs/errors.md. The reference API's
 * `DnsError` is named here so code can match on it, but nothing raises it yet: it arrives with
 * `@zero-io/dns`. `ConnectTimeout` is carried by `Disconnected.error` (tcpConnectWith's
 * `connectTimeoutMs`).
 */
export type IoErrorKind =
  | 'KernelTooOld'
  | 'NotSupportedOnPlatform'
  | 'NotSupportedOnBackend'
  | 'InvalidConfig'
  | 'InvalidArgument'
  | 'InvalidAddress'
  | 'InvalidConnId'
  | 'StreamNotPullable'
  | 'PoolSetup'
  | 'PoolExhausted'
  | 'TableFull'
  | 'SyscallFailed'
  | 'ShardClosed'
  | 'DriverRunning'
  | 'FeatureMissing'
  | 'DnsError'
  | 'ConnectTimeout'
  | 'ShardFailed'
  | 'TlsHandshakeFailed'
  | 'TlsProtocolError'
  | 'TlsInvalidCertificate';

/** Typed fields carried by some kinds. */
export interface IoErrorFields {
  /** KernelTooOld: the kernel version the feature needs, e.g. "6.0". */
  required?: string;
  /** KernelTooOld: the running kernel version. */
  found?: string;
  /** NotSupportedOnPlatform: `process.platform`-`process.arch`. */
  platform?: string;
  /** NotSupportedOnBackend: the backend, e.g. "io_uring". */
  backend?: string;
  /** NotSupportedOnBackend / FeatureMissing: the feature or gate. */
  feature?: string;
  /** StreamNotPullable: the connection's protocol. */
  protocol?: string;
  /** ShardFailed: the cluster shard that could not start. */
  shardId?: number;
  /** InvalidConfig: the offending option key. */
  key?: string;
  /** SyscallFailed: the syscall that failed. */
  syscall?: string;
  /** SyscallFailed: the positive errno value. */
  errno?: number;
  /** SyscallFailed: the errno name, e.g. "EADDRINUSE". */
  code?: string;
  /** PoolExhausted: which pool ran out ('FreeStack', 'TxRing', ...). */
  pool?: string;
  /** The address involved, when there is one. */
  address?: string;
  /** TlsHandshakeFailed / TlsProtocolError: the TLS alert number (RFC 8446 section 6), or -1. */
  alert?: number;
  /** TlsHandshakeFailed / TlsProtocolError: whether the peer sent the alert (else we did). */
  alertReceived?: boolean;
}

const MARK = Symbol.for('zero-io.IoError');

/** The typed fields (merged into the class below). */
export interface IoError extends IoErrorFields {}

/**
 * The one error class of zero-io. Recognise it with {@link isIoError} (works across duplicate
 * package copies) and switch on `kind`.
 */
export class IoError extends Error {
  /** The stable error kind. */
  readonly kind: IoErrorKind;

  constructor(kind: IoErrorKind, message: string, fields: IoErrorFields = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'IoError';
    this.kind = kind;
    Object.assign(this, fields);
    if (this.code === undefined) this.code = `ZIO_${kind}`;
  }

  /** @internal */
  get [MARK](): true {
    return true;
  }
}

/** True for any zero-io {@link IoError}, even one from another copy of this package. */
export function isIoError(e: unknown): e is IoError {
  return typeof e === 'object' && e !== null && (e as Record<symbol, unknown>)[MARK] === true;
}

const errnoNames: Record<number, string> = {};
for (const [name, num] of Object.entries(osConstants.errno)) errnoNames[num] ??= name;

const errnoText: Record<string, string> = {
  ECONNRESET: 'connection reset by peer',
  ECONNREFUSED: 'connection refused',
  ETIMEDOUT: 'timed out',
  EPIPE: 'broken pipe',
  EADDRINUSE: 'address already in use',
  EADDRNOTAVAIL: 'address not available',
  EACCES: 'permission denied',
  ENOENT: 'no such file or directory',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  EMFILE: 'too many open files',
  ENOBUFS: 'no buffer space available',
  EINVAL: 'invalid argument',
  ENAMETOOLONG: 'name too long',
  ECANCELED: 'operation canceled',
  ENOTFOUND: 'name not found',
};

/** `104` -> `"ECONNRESET"`; unknown numbers give `"errno 999"`. */
export function errnoName(errno: number): string {
  return errnoNames[errno] ?? `errno ${errno}`;
}

/** `104` -> `"ECONNRESET: connection reset by peer"`. */
export function errnoDescription(errno: number): string {
  const name = errnoName(errno);
  const text = errnoText[name];
  return text ? `${name}: ${text}` : name;
}

const syscallFix: Record<string, string> = {
  EADDRINUSE: 'another socket is bound there; stop it, choose another port, or pass port 0',
  EOPNOTSUPP: 'the kernel or this socket lacks the feature asked for (e.g. UDP_GRO); leave that option off',
  EACCES: 'ports below 1024 need CAP_NET_BIND_SERVICE; use a higher port',
  EADDRNOTAVAIL: 'that address is not assigned to an interface of this host',
  ENOENT: 'the parent directory does not exist',
  EMFILE: 'raise the descriptor limit (ulimit -n)',
  ENAMETOOLONG: 'Unix socket paths are limited to 107 bytes; use a shorter path',
};

/** @internal Converts an error thrown by the native addon into an IoError. */
export function fromNative(e: unknown, context: string, address?: string): IoError {
  if (isIoError(e)) return e;
  const err = e as Error & { zioKind?: IoErrorKind; errno?: number; syscall?: string; found?: string; required?: string; backend?: string; feature?: string };
  const kind: IoErrorKind = err?.zioKind ?? 'SyscallFailed';
  if (kind === 'SyscallFailed' && typeof err.errno === 'number') {
    const code = errnoName(err.errno);
    const fix = syscallFix[code] ?? 'see docs/errors.md#syscallfailed';
    const target = address ? `(${address})` : '()';
    return new IoError(kind, `${err.syscall || 'syscall'}${target} for ${context} failed: ${errnoDescription(err.errno)}. Fix: ${fix}`, {
      syscall: err.syscall, errno: err.errno, code, address,
    }, { cause: e });
  }
  if (kind === 'TableFull') {
    return new IoError(kind, `${context}: every endpoint slot is in use (maxEndpoints); close one or raise maxEndpoints`, { address }, { cause: e });
  }
  const fields: IoErrorFields = { address };
  for (const k of ['found', 'required', 'backend', 'feature', 'errno'] as const) {
    if (err[k] !== undefined) (fields as Record<string, unknown>)[k] = err[k];
  }
  return new IoError(kind, `${context}: ${err?.message ?? String(e)}`, fields, { cause: e });
}

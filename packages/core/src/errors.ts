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
  | 'TlsInvalidCertificate'
  | 'BorrowExpired'
  | 'BodyTooLarge'
  | 'RequestAborted';

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

/** @internal The error of a call on an Io after `io.shutdown()` (as Io's own methods throw it). */
export function shardClosed(what: string): IoError {
  return new IoError('ShardClosed', `${what}: this Io was shut down; create a new Io`);
}

/**
 * @internal How a received value reads in an error message: its text and, where the text could
 * mislead, its type (`"0" (a string)`, `null`, `an array`).
 */
export function describeValue(v: unknown): string {
  if (typeof v === 'string') return `${JSON.stringify(v)} (a string)`;
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return `${String(v)}${typeof v === 'bigint' ? ' (a bigint)' : ''}`;
  if (v === null || v === undefined) return String(v);
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'object' ? 'an object' : `a ${typeof v}`;
}

/** Edit distance (Levenshtein) of two short strings. */
function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length];
}

/**
 * @internal `'; did you mean "poolSlotCount"?'` for the known key nearest to `key` (case-insensitive
 * edit distance at most a third of its length, at least 2), else ''.
 */
export function didYouMean(key: string, known: readonly string[]): string {
  let best = '';
  let bestD = Infinity;
  for (const k of known) {
    const d = editDistance(key.toLowerCase(), k.toLowerCase());
    if (d < bestD) { best = k; bestD = d; }
  }
  return best && bestD <= Math.max(2, Math.floor(key.length / 3)) ? `; did you mean ${JSON.stringify(best)}?` : '';
}

/**
 * @internal Converts an error thrown by the native addon into an IoError. `fixes` overrides the
 * advice per errno name (a Unix socket's EADDRINUSE is not about ports).
 */
export function fromNative(e: unknown, context: string, address?: string, fixes?: Readonly<Record<string, string>>): IoError {
  if (isIoError(e)) return e;
  const err = e as Error & { zioKind?: IoErrorKind; errno?: number; syscall?: string; found?: string; required?: string; backend?: string; feature?: string };
  // Node-API's own type checks ("A number was expected", ...): an argument of the wrong type.
  if (err?.zioKind === undefined && /^An? \w+ was expected/.test(err?.message ?? '')) {
    return new IoError('InvalidArgument', `${context}: an argument has the wrong type (${err.message}); ids are the numbers the engine gave you`, {}, { cause: e });
  }
  const kind: IoErrorKind = err?.zioKind ?? 'SyscallFailed';
  if (kind === 'SyscallFailed' && typeof err.errno === 'number') {
    const code = errnoName(err.errno);
    const fix = fixes?.[code] ?? syscallFix[code] ?? 'see docs/errors.md#syscallfailed';
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

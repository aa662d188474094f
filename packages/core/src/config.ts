/**
 * Per-shard configuration: defaults from the reference API, resolved once, frozen; unknown keys
 * are rejected by name (with the nearest known key). A key given as `undefined` counts as absent.
 * @module
 */
import { IoError, describeValue, didYouMean } from './errors.js';

/** io_uring tuning. Defaults are chosen by probing the kernel. */
export interface UringConfig {
  /** Submission queue entries; the completion queue gets 8x. @default 1024 */
  sqEntries?: number;
  /** Use IORING_SETUP_DEFER_TASKRUN when the kernel has it (fewer interrupts). @default true */
  deferTaskrun?: boolean;
}

/** Debug switches. */
export interface DebugConfig {
  /** Log every set-up decision (backend, pool backing, ring flags) to stderr. @default false */
  log?: boolean;
  /**
   * Development aid against the flyweight trap: each event is handed out as its own guard
   * object that throws BorrowExpired, with the explanation, when it is read after its handler
   * call (kept in an array, read in a timer or a promise, or after `nextEvent()` moved on), and
   * `ev.data` is a copy that is emptied (detached) when the batch ends. Costs an allocation per
   * event: leave it off in production.
   * @default false
   */
  checkBorrows?: boolean;
}

/**
 * The I/O backend. `'io_uring'`: one ring per shard (the fast path; needs Linux >= 6.0 and
 * io_uring not blocked by seccomp or `kernel.io_uring_disabled`). `'epoll'`: readiness plus
 * non-blocking syscalls, same engine and same events, more syscalls per message. `'auto'`:
 * io_uring when the kernel offers it, else epoll; the choice is in {@link Io.backend}.
 */
export type Backend = 'auto' | 'io_uring' | 'epoll';

/** Per-shard knobs (the seed's `Config`). Every field is optional; see each default. */
export interface Config {
  /** Number of payload slots in the pool. @default 4096 */
  poolSlotCount?: number;
  /** Bytes per slot; at least 1200 (RFC 9000's minimum datagram). @default 2048 */
  poolSlotSize?: number;
  /** Back the pool with huge pages: 'auto' tries MAP_HUGETLB, then THP, then normal pages. @default 'auto' */
  hugePages?: 'auto' | 'on' | 'off';
  /**
   * Connection table size; beyond it new connections are closed at accept (counted in
   * `poolStats().counters.connsRejected`) and connects throw TableFull. The backpressure cascade
   * reports the table's use but does not act on it. @default 1024
   */
  maxConnections?: number;
  /** Most events delivered by one poll(). @default 256 */
  maxEventsPerPoll?: number;
  /**
   * Pool use (percent) at which the backpressure cascade enters Critical; Warning starts 20
   * points lower, Drain halfway to 100 (see `poolPressure()` and `PoolPressure` events).
   * @default 80
   */
  poolPressurePct?: number;
  /**
   * Payloads at least this large are eligible for compression. Used by protocols that compress
   * (permessage-deflate, HTTP); TCP ignores it. @default 128
   */
  compressionThreshold?: number;
  /**
   * Per-connection write queue limit in bytes (the WriteBufferPool bound). A streamWrite beyond it
   * is accepted partially and a `Writable` event follows when the queue drains. @default 262144
   */
  maxWriteQueueBytes?: number;
  /** Listening endpoints per shard. @default 64 */
  maxEndpoints?: number;
  /** Disable Nagle's algorithm on TCP connections. @default true */
  noDelay?: boolean;
  /**
   * Commands an {@link IoHandle} (other threads) may have queued for this shard; beyond it,
   * handle calls throw PoolExhausted. @default 4096
   */
  handleQueue?: number;
  /**
   * Receive buffers for UDP endpoints bound with `gro: true` (68 KiB each, mapped with the pool;
   * a power of two). 0 disables GRO. No memory is used for them when the kernel lacks UDP_GRO.
   * @default 8
   */
  udpGroBuffers?: number;
  /**
   * The I/O backend. The environment variable `ZERO_IO_BACKEND` (same values) overrides the
   * default, so a whole test suite or deployment can be switched without code changes.
   * @default 'auto'
   */
  backend?: Backend;
  /** io_uring tuning. @default auto-tuned */
  uring?: UringConfig;
  /** Debug output. @default disabled */
  debug?: DebugConfig;
}

/** A fully resolved, frozen config. */
export type ResolvedConfig = Readonly<Required<Omit<Config, 'uring' | 'debug'>>> & {
  readonly uring: Readonly<Required<UringConfig>>;
  readonly debug: Readonly<Required<DebugConfig>>;
};

const defaults = {
  poolSlotCount: 4096,
  poolSlotSize: 2048,
  hugePages: 'auto',
  maxConnections: 1024,
  maxEventsPerPoll: 256,
  poolPressurePct: 80,
  compressionThreshold: 128,
  maxWriteQueueBytes: 256 * 1024,
  maxEndpoints: 64,
  noDelay: true,
  handleQueue: 4096,
  udpGroBuffers: 8,
  backend: 'auto' as Backend,
} as const;
const uringDefaults = { sqEntries: 1024, deferTaskrun: true } as const;
const debugDefaults = { log: false, checkBorrows: false } as const;

function int(key: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new IoError('InvalidConfig', `config.${key} must be an integer in [${min}, ${max}], got ${describeValue(v)}`, { key });
  }
  return v;
}

function bool(key: string, v: unknown): boolean {
  if (typeof v !== 'boolean') throw new IoError('InvalidConfig', `config.${key} must be a boolean, got ${describeValue(v)}`, { key });
  return v;
}

function rejectUnknown(obj: object, known: object, prefix: string): void {
  const names = Object.keys(known);
  for (const k of Object.keys(obj)) {
    if (!(k in known)) {
      throw new IoError('InvalidConfig',
        `unknown option ${prefix}${k}${didYouMean(k, names)}; known options: ${names.join(', ')}`, { key: prefix + k });
    }
  }
}

/** The keys of `obj` whose value is not undefined (an explicit undefined means "use the default"). */
function present<T extends object>(obj: T): Partial<T> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(obj)) if (v !== undefined) out[k] = v;
  return out as Partial<T>;
}

/** A nested options object (`uring`, `debug`): absent, or a plain object. */
function section<T extends object>(key: string, v: unknown): Partial<T> {
  if (v === undefined) return {};
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new IoError('InvalidConfig', `config.${key} must be an object (or left out for the defaults), got ${describeValue(v)}`, { key });
  }
  return present(v as T);
}

/** Applies defaults, validates every field, rejects unknown keys, and freezes the result. */
export function resolveConfig(config: Config = {}): ResolvedConfig {
  if (typeof config !== 'object' || config === null || Array.isArray(config)) {
    throw new IoError('InvalidConfig', `config must be an object (or left out for the defaults), got ${describeValue(config)}`);
  }
  const cfg = present(config);
  rejectUnknown(cfg, { ...defaults, uring: 1, debug: 1 }, '');
  const uring = section<UringConfig>('uring', cfg.uring);
  const debug = section<DebugConfig>('debug', cfg.debug);
  rejectUnknown(uring, uringDefaults, 'uring.');
  rejectUnknown(debug, debugDefaults, 'debug.');
  const envBackend = process.env.ZERO_IO_BACKEND;
  const c = { ...defaults, ...(envBackend ? { backend: envBackend as Backend } : {}), ...cfg };
  const u = { ...uringDefaults, ...uring };
  const d = { ...debugDefaults, ...debug };
  int('poolSlotCount', c.poolSlotCount, 2, 1 << 20);
  int('poolSlotSize', c.poolSlotSize, 1200, 1 << 20);
  if (c.poolSlotCount * c.poolSlotSize > 0xffffffff) {
    throw new IoError('InvalidConfig', 'config.poolSlotCount * poolSlotSize must stay below 4 GiB', { key: 'poolSlotCount' });
  }
  if (!['auto', 'on', 'off'].includes(c.hugePages)) {
    throw new IoError('InvalidConfig', `config.hugePages must be 'auto', 'on' or 'off', got ${describeValue(c.hugePages)}`, { key: 'hugePages' });
  }
  int('maxConnections', c.maxConnections, 1, (1 << 20) - 1);
  int('maxEventsPerPoll', c.maxEventsPerPoll, 4, 1 << 16);
  int('poolPressurePct', c.poolPressurePct, 1, 100);
  int('compressionThreshold', c.compressionThreshold, 0, 1 << 30);
  int('maxWriteQueueBytes', c.maxWriteQueueBytes, c.poolSlotSize, 1 << 30);
  int('maxEndpoints', c.maxEndpoints, 1, 4096);
  bool('noDelay', c.noDelay);
  int('handleQueue', c.handleQueue, 2, 1 << 20);
  int('udpGroBuffers', c.udpGroBuffers, 0, 1024);
  if (c.udpGroBuffers & (c.udpGroBuffers - 1)) {
    throw new IoError('InvalidConfig', `config.udpGroBuffers must be a power of two (or 0), got ${c.udpGroBuffers}`, { key: 'udpGroBuffers' });
  }
  if (!['auto', 'io_uring', 'epoll'].includes(c.backend)) {
    const got = cfg.backend === undefined && envBackend ? `${JSON.stringify(envBackend)} (from ZERO_IO_BACKEND)` : describeValue(c.backend);
    throw new IoError('InvalidConfig', `config.backend must be 'auto', 'io_uring' or 'epoll', got ${got}`, { key: 'backend' });
  }
  int('uring.sqEntries', u.sqEntries, 8, 32768);
  bool('uring.deferTaskrun', u.deferTaskrun);
  bool('debug.log', d.log);
  bool('debug.checkBorrows', d.checkBorrows);
  return Object.freeze({ ...c, uring: Object.freeze(u), debug: Object.freeze(d) }) as ResolvedConfig;
}

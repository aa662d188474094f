/**
 * IoCluster: the production entry point for more than one shard (the seed's "IoCluster"). One
 * shard per worker thread, each pinned to a CPU, each with its own member of an SO_REUSEPORT
 * group per endpoint; a steering program attached to the group sends each new connection (or
 * datagram) to the shard pinned to the CPU that processed it.
 *
 * ```js
 * const cluster = new IoCluster({ shardCount: 4 });
 * cluster.tcpListen('0.0.0.0:8080');
 * const running = await runPerCore(cluster, new URL('./shard.js', import.meta.url));
 * process.once('SIGTERM', () => running.shutdown({ timeoutMs: 5000 }));
 * ```
 * @module
 */
import { EventEmitter } from 'node:events';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { loadAddon, type NativeAddon } from './addon.js';
import { bindIp, parseHostPort, rejectUnknownKeys } from './address.js';
import { resolveConfig, type Config } from './config.js';
import { IoError, fromNative } from './errors.js';
import type { EndpointId, SocketAddress } from './events.js';
import { Io, type PoolStats, type ShutdownHandle } from './io.js';
import { udpBindOptions, type UdpEndpointConfig } from './udp.js';
import type { ScidGenerator } from './scid.js';

/**
 * How new connections and datagrams are spread over the shards.
 * - `ReusePortCbpf`: one SO_REUSEPORT socket per shard, steered by a classic BPF program
 *   (SO_ATTACH_REUSEPORT_CBPF; no privileges needed). The default.
 * - `ReusePortEbpf`: the same policy as an eBPF program assembled by zero-io
 *   (SO_ATTACH_REUSEPORT_EBPF; needs CAP_BPF or `kernel.unprivileged_bpf_disabled=0`).
 * - `DcidDispatch`: for QUIC (`@zero-io/quic`'s `quicServe` on a cluster UDP endpoint): each
 *   datagram goes to the shard that issued its destination connection id (the shard bits of
 *   {@link ScidGenerator}, read by a reuseport BPF program in the kernel — no dispatcher thread,
 *   no hop between shards), so a connection stays on its shard when the client's address
 *   changes (NAT rebinding, migration). A client's first Initial goes by the kernel's flow
 *   hash. TCP endpoints are steered as with `ReusePortCbpf`. shardCount must be a power of two.
 */
export const RoutingStrategy = {
  ReusePortCbpf: 'ReusePortCbpf',
  ReusePortEbpf: 'ReusePortEbpf',
  DcidDispatch: 'DcidDispatch',
} as const;
export type RoutingStrategy = (typeof RoutingStrategy)[keyof typeof RoutingStrategy];

/** The protocols a cluster can serve today (checked against `expectedProtocols`). */
const KNOWN_PROTOCOLS = ['tcp', 'udp'] as const;

/** Options of {@link IoCluster} (the seed's ClusterConfig). */
export interface ClusterConfig {
  /** Shards (worker threads). @default the number of CPUs this process may run on */
  shardCount?: number;
  /** @default RoutingStrategy.ReusePortCbpf */
  routing?: RoutingStrategy;
  /**
   * `true`: shard i is pinned to the i-th CPU this process may use (wrapping around); `false`:
   * no pinning; an array: the CPU of each shard. @default true
   */
  cpuAffinity?: boolean | readonly number[];
  /** The protocols the shards will serve ('tcp', 'udp'); listening on another is refused. @default ['tcp', 'udp'] */
  expectedProtocols?: readonly string[];
  /** Each shard's {@link Config}. @default {} */
  config?: Config;
}

/** An endpoint declared on a cluster: one socket per shard, all on the same address. */
export interface ClusterEndpoint {
  /** Position in {@link ShardIo.endpoints}. */
  readonly index: number;
  readonly kind: 'tcp' | 'udp';
  /** The optional name given at declaration ({@link ShardIo.endpoint} finds it by name). */
  readonly name: string | null;
  /** The bound address (the real port when 0 was asked for). */
  readonly address: SocketAddress;
}

interface Declared {
  ep: ClusterEndpoint;
  fds: number[];
  udpOptions: object | null;
  /** A TLS listener: the process-wide certificate slot each shard's member serves. */
  tls: { slot: number; timeoutMs: number; config: object } | null;
}

/**
 * @internal @zero-io/tcp registers how a TLS server config becomes a certificate slot (core
 * knows no TLS): `IoCluster.tcpListen(addr, { tls })` works once @zero-io/tcp is imported.
 */
let clusterTls: ((config: object, what: string) => { slot: number; timeoutMs: number }) | null = null;
/** @internal */
export function setClusterTlsResolver(f: typeof clusterTls): void {
  clusterTls = f;
}

/**
 * A group of shards, declared in the main thread and started by {@link runPerCore}. Endpoints
 * are created at declaration (so their port is known at once) and handed to the shards when
 * they start.
 */
export class IoCluster {
  readonly shardCount: number;
  readonly routing: RoutingStrategy;
  /** The CPU each shard is pinned to (null: not pinned). */
  readonly cpus: readonly (number | null)[];
  readonly expectedProtocols: readonly string[];
  /** The per-shard config, validated once here. */
  readonly config: Config;
  /**
   * How the groups are steered: 'cpu' (a program maps each packet's CPU to the shard pinned
   * there), or 'kernel-hash' (the kernel's flow hash: used when shards are not pinned one per
   * CPU, where CPU steering would starve some of them).
   */
  readonly steering: 'cpu' | 'kernel-hash';
  #native: NativeAddon;
  #groBuffers: number;
  #declared: Declared[] = [];
  #started = false;
  #closed = false;

  constructor(cfg: ClusterConfig = {}) {
    rejectUnknownKeys(cfg, ['shardCount', 'routing', 'cpuAffinity', 'expectedProtocols', 'config'], 'IoCluster');
    this.#native = loadAddon();
    const allowed = this.#native.threadAffinity();
    const n = cfg.shardCount ?? allowed.length;
    if (!Number.isInteger(n) || n < 1 || n > 1024) {
      throw new IoError('InvalidConfig', `IoCluster: shardCount must be an integer in [1, 1024], got ${String(n)}`, { key: 'shardCount' });
    }
    this.shardCount = n;
    const routing = cfg.routing ?? RoutingStrategy.ReusePortCbpf;
    if (routing === RoutingStrategy.DcidDispatch && (n & (n - 1)) !== 0) {
      throw new IoError('InvalidConfig',
        `IoCluster: routing DcidDispatch needs a power-of-two shardCount (the shard id is the low bits of each QUIC connection id's slot), got ${n}`,
        { key: 'shardCount' });
    }
    if (routing !== RoutingStrategy.ReusePortCbpf && routing !== RoutingStrategy.ReusePortEbpf && routing !== RoutingStrategy.DcidDispatch) {
      throw new IoError('InvalidConfig', `IoCluster: routing must be one of ${Object.keys(RoutingStrategy).join(', ')}, got ${String(routing)}`, { key: 'routing' });
    }
    this.routing = routing;
    const aff = cfg.cpuAffinity ?? true;
    let cpus: (number | null)[];
    if (aff === true) cpus = Array.from({ length: n }, (_, i) => allowed[i % allowed.length]);
    else if (aff === false) cpus = Array.from({ length: n }, () => null);
    else if (Array.isArray(aff) && aff.length === n && aff.every((c) => allowed.includes(c))) cpus = [...aff];
    else {
      throw new IoError('InvalidConfig',
        `IoCluster: cpuAffinity must be true, false, or one CPU per shard (${n}) out of those this process may use [${allowed.join(', ')}], got ${JSON.stringify(aff)}`,
        { key: 'cpuAffinity' });
    }
    this.cpus = Object.freeze(cpus);
    const pinned = cpus.filter((c): c is number => c !== null);
    this.steering = pinned.length === n && new Set(pinned).size === n ? 'cpu' : 'kernel-hash';
    const protos = cfg.expectedProtocols ?? ['tcp', 'udp'];
    for (const p of protos) {
      if (!(KNOWN_PROTOCOLS as readonly string[]).includes(p)) {
        throw new IoError('InvalidConfig',
          `IoCluster: expectedProtocols has ${JSON.stringify(p)}, which a cluster cannot serve yet (it can: ${KNOWN_PROTOCOLS.join(', ')})`,
          { key: 'expectedProtocols' });
      }
    }
    this.expectedProtocols = Object.freeze([...protos]);
    this.#groBuffers = resolveConfig(cfg.config ?? {}).udpGroBuffers;  // InvalidConfig now, not in N workers later
    this.config = cfg.config ?? {};
  }

  /**
   * Declares a TCP listener: one SO_REUSEPORT socket per shard on `addr`. `tls`: a
   * `TlsServerConfig` of @zero-io/tcp (import it in the main thread): every shard's member
   * serves it (one certificate slot for all of them).
   */
  tcpListen(addr: string | number, options: { backlog?: number; name?: string; tls?: object } = {}): ClusterEndpoint {
    rejectUnknownKeys(options, ['backlog', 'name', 'tls'], 'IoCluster.tcpListen');
    const { host, port } = parseHostPort(addr, 'IoCluster.tcpListen');
    let tls: Declared['tls'] = null;
    if (options.tls !== undefined) {
      if (clusterTls === null) {
        throw new IoError('FeatureMissing', "IoCluster.tcpListen: tls needs @zero-io/tcp: import '@zero-io/tcp' in the main thread", { feature: 'tcp' });
      }
      tls = { ...clusterTls(options.tls, 'IoCluster.tcpListen'), config: options.tls };
    }
    return this.#declare('tcp', bindIp(host, 'IoCluster.tcpListen'), port, options.backlog ?? 511, null, options.name, tls);
  }

  /** Declares a UDP endpoint: one SO_REUSEPORT socket per shard (options as in `udpBindWith`). */
  udpBind(addr: string | number, options: Omit<UdpEndpointConfig, 'host' | 'port' | 'reusePort'> & { name?: string } = {}): ClusterEndpoint {
    const { host, port } = parseHostPort(addr, 'IoCluster.udpBind');
    const { name, ...udp } = options;
    if ('reusePort' in udp) throw new IoError('InvalidConfig', 'IoCluster.udpBind: reusePort is how a cluster works; leave it out', { key: 'reusePort' });
    const checked = udpBindOptions(this.#native, { ...udp, host, port }, this.#groBuffers, 'IoCluster.udpBind');
    return this.#declare('udp', checked.host, checked.port, 0, { ...checked.opts, reusePort: true }, name);
  }

  /** The declared endpoints, in order. */
  get endpoints(): readonly ClusterEndpoint[] {
    return this.#declared.map((d) => d.ep);
  }

  /** Closes the sockets of a cluster that was never started (a started one is shut down through its handle). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (!this.#started) for (const d of this.#declared) for (const fd of d.fds) this.#native.closeFd(fd);
  }

  #declare(kind: 'tcp' | 'udp', ip: string, port: number, backlog: number, udpOptions: object | null, name?: string,
    tls: Declared['tls'] = null): ClusterEndpoint {
    if (this.#started || this.#closed) throw new IoError('ShardClosed', 'IoCluster: endpoints are declared before runPerCore() and after close() none can be');
    if (!this.expectedProtocols.includes(kind)) {
      throw new IoError('InvalidConfig', `IoCluster: '${kind}' is not in expectedProtocols [${this.expectedProtocols.join(', ')}]`, { key: 'expectedProtocols' });
    }
    if (name !== undefined && (typeof name !== 'string' || this.#declared.some((d) => d.ep.name === name))) {
      throw new IoError('InvalidArgument', `IoCluster: endpoint name must be a unique string, got ${JSON.stringify(name)}`);
    }
    let g: { fds: number[]; address: [string, string, number] };
    try {
      g = this.#native.reuseportGroup(kind, ip, port, this.shardCount, backlog, udpOptions ?? {});
    } catch (e) {
      throw fromNative(e, kind === 'tcp' ? 'IoCluster.tcpListen' : 'IoCluster.udpBind', `${ip}:${port}`);
    }
    // DcidDispatch: UDP groups are steered by each datagram's QUIC destination id (the shard
    // that issued it), whatever address it comes from; TCP groups by CPU as with ReusePortCbpf.
    const dcid = this.routing === RoutingStrategy.DcidDispatch && kind === 'udp';
    if (this.steering === 'cpu' || dcid) {
      try {
        this.#native.attachSteering(g.fds[0], dcid ? 'dcid' : this.routing === RoutingStrategy.ReusePortEbpf ? 'ebpf' : 'cbpf',
          this.shardCount, this.cpus.map((c, i) => [c as number, i]));
      } catch (e) {
        for (const fd of g.fds) this.#native.closeFd(fd);
        throw fromNative(e, 'IoCluster steering');
      }
    }
    const ep: ClusterEndpoint = Object.freeze({
      index: this.#declared.length, kind, name: name ?? null,
      address: Object.freeze({ family: g.address[0] as SocketAddress['family'], address: g.address[1], port: g.address[2] }),
    });
    this.#declared.push({ ep, fds: g.fds, udpOptions, tls });
    return ep;
  }

  /** @internal hands the sockets over (once). */
  _start(): Declared[] {
    if (this.#closed) throw new IoError('ShardClosed', 'IoCluster: closed');
    if (this.#started) throw new IoError('DriverRunning', 'runPerCore(): this cluster is already running');
    this.#started = true;
    return this.#declared;
  }
}

/** What each worker gets (structured-cloned). @internal */
export interface ShardBoot {
  shardId: number;
  shardCount: number;
  cpu: number | null;
  config: Config;
  endpoints: { kind: 'tcp' | 'udp'; name: string | null; fd: number; udpOptions: object | null; tls: { slot: number; timeoutMs: number } | null }[];
  handler: string;
  workerData: unknown;
}

/**
 * One shard of a cluster, in its worker thread: the same surface as {@link Io}, plus where it
 * sits in the cluster and the endpoints it was handed.
 */
export class ShardIo extends Io {
  readonly shardId: number;
  readonly shardCount: number;
  /** The CPU this shard's thread is pinned to (null: not pinned). */
  readonly cpu: number | null;
  /** This shard's member of each cluster endpoint, in declaration order. */
  readonly endpoints: readonly EndpointId[];
  #names: Map<string, EndpointId>;
  /** @internal the last runSync() handle, for the cluster's shutdown */
  _running: ShutdownHandle | null = null;

  /** @internal created by the worker bootstrap of {@link runPerCore}. */
  constructor(boot: ShardBoot) {
    super(boot.config);
    this.shardId = boot.shardId;
    this.shardCount = boot.shardCount;
    this.cpu = boot.cpu;
    const ids: EndpointId[] = [];
    this.#names = new Map();
    for (const e of boot.endpoints) {
      try {
        const id = (e.kind === 'tcp'
          ? this._native.adoptListener(this._shard, e.fd, 1)
          : this._native.adoptUdp(this._shard, e.fd, e.udpOptions ?? {})) as EndpointId;
        if (e.tls !== null) {
          const r = this._native.endpointSetTls(this._shard, id, e.tls.slot, e.tls.timeoutMs);
          if (r < 0) throw new IoError('SyscallFailed', `ShardIo: TLS for cluster endpoint ${e.name ?? ids.length} failed (${r})`);
        }
        ids.push(id);
        if (e.name !== null) this.#names.set(e.name, id);
      } catch (err) {
        throw fromNative(err, 'ShardIo adopt');
      }
    }
    this.endpoints = Object.freeze(ids);
  }

  /** This shard's member of the cluster endpoint with that name or index. */
  endpoint(nameOrIndex: string | number): EndpointId {
    const id = typeof nameOrIndex === 'number' ? this.endpoints[nameOrIndex] : this.#names.get(nameOrIndex);
    if (id === undefined) throw new IoError('InvalidArgument', `ShardIo.endpoint: no cluster endpoint ${JSON.stringify(nameOrIndex)}`);
    return id;
  }

  /** The CPU this thread is running on right now (sched_getcpu). */
  currentCpu(): number {
    return this._native.currentCpu();
  }

  /** The CPUs this thread may run on (sched_getaffinity). */
  affinity(): number[] {
    return this._native.threadAffinity();
  }

  override runSync(...args: Parameters<Io['runSync']>): ShutdownHandle {
    const h = super.runSync(...args);
    this._running = h;
    return h;
  }
}

/** What the handler module's default export receives besides the shard. */
export interface ShardContext {
  readonly shardId: number;
  readonly shardCount: number;
  /** `options.workerData` of {@link runPerCore}. */
  readonly workerData: unknown;
}

/** A handler module's default export: sets the shard up and drives it (`io.runSync(...)`). */
export type ShardHandler = (io: ShardIo, ctx: ShardContext) => void | ShutdownHandle | Promise<void | ShutdownHandle>;

/** A running shard, as the main thread sees it. */
export interface ShardInfo {
  readonly shardId: number;
  readonly threadId: number;
  /** The CPU it was pinned to (null: not pinned). */
  readonly cpu: number | null;
  /** The CPUs its thread may run on, read inside the thread after pinning. */
  readonly affinity: readonly number[];
  readonly backend: 'io_uring' | 'epoll';
  /**
   * The id of the shard's {@link IoHandle}: `IoHandle.from(info.handleId)` reaches the shard from
   * this thread (or any other), e.g. to publish to every shard's WebSocket subscribers.
   */
  readonly handleId: number;
}

/** One shard's numbers from {@link ClusterHandle.stats}. */
export interface ShardStats {
  readonly shardId: number;
  /** The CPU its thread ran on when asked. */
  readonly cpu: number;
  readonly pool: PoolStats;
}

/** Emitted as 'shardExit' when a shard's worker ends other than through shutdown(). */
export interface ShardExit {
  readonly shardId: number;
  readonly exitCode: number;
  readonly error: Error | null;
}

/**
 * The running cluster (the seed's ShutdownHandle for runPerCore). Emits 'shardExit'
 * ({@link ShardExit}) when a shard's worker dies on its own; the others keep serving.
 */
export class ClusterHandle extends EventEmitter {
  readonly shards: readonly ShardInfo[];
  #workers: Worker[];
  #done: Promise<void> | undefined;
  #exited = new Set<number>();

  /** @internal */
  constructor(workers: Worker[], shards: ShardInfo[]) {
    super();
    this.#workers = workers;
    this.shards = Object.freeze(shards);
    workers.forEach((w, i) => {
      // Reported on 'exit', not on 'error': only then is the worker's environment torn down,
      // its shard destroyed and its SO_REUSEPORT socket closed, so no new connection is routed
      // to a dead shard after shardExit.
      let error: Error | null = null;
      w.on('error', (e) => { error = e; });
      w.on('exit', (code) => this.#exit(i, error ? (code || 1) : code, error));
    });
  }

  #exit(i: number, code: number, error: Error | null): void {
    if (this.#exited.has(i)) return;
    this.#exited.add(i);
    if (this.#done) return;  // an exit we asked for
    process.stderr.write(`zero-io: cluster shard ${i} exited (code ${code})${error ? `: ${error.stack ?? error.message}` : ''}\n`);
    this.emit('shardExit', Object.freeze({ shardId: i, exitCode: code, error }) satisfies ShardExit);
  }

  /** Pool stats of every live shard, with the CPU each one runs on. */
  async stats(): Promise<ShardStats[]> {
    return Promise.all(this.#workers.filter((_, i) => !this.#exited.has(i)).map((w) => request<ShardStats>(w, { type: 'stats' })));
  }

  /**
   * Drains every shard: stops accepting, closes connections gracefully (pending writes flushed,
   * up to `timeoutMs`), stops the drivers, and ends the workers. Resolves when all have ended.
   * Idempotent.
   */
  shutdown(options: { timeoutMs?: number } = {}): Promise<void> {
    this.#done ??= (async () => {
      const timeoutMs = options.timeoutMs ?? 5000;
      await Promise.all(this.#workers.map(async (w, i) => {
        if (this.#exited.has(i)) return;
        const ended = new Promise<void>((r) => w.once('exit', () => r()));
        const forced = setTimeout(() => void w.terminate(), timeoutMs + 5000);
        w.postMessage({ type: 'shutdown', timeoutMs });
        await ended;
        clearTimeout(forced);
      }));
    })();
    return this.#done;
  }
}

let seq = 0;
function request<T>(w: Worker, msg: { type: string }): Promise<T> {
  const id = ++seq;
  return new Promise((resolve, reject) => {
    const onMsg = (m: { type: string; id?: number; value?: T; error?: string }): void => {
      if (m.id !== id) return;
      w.off('message', onMsg);
      w.off('exit', onExit);
      if (m.error) reject(new IoError('ShardClosed', m.error));
      else resolve(m.value as T);
    };
    const onExit = (): void => {
      w.off('message', onMsg);
      reject(new IoError('ShardClosed', 'the shard exited before answering'));
    };
    w.on('message', onMsg);
    w.once('exit', onExit);
    w.postMessage({ ...msg, id });
  });
}

/**
 * Starts one worker thread per shard of `cluster`: each pins itself to its CPU, creates its
 * {@link ShardIo}, takes over its member of every declared endpoint, and runs the default
 * export of `handlerModule` ({@link ShardHandler}), which drives the shard (`io.runSync`).
 * Resolves once every shard is serving; rejects (and stops the others) when one fails to start.
 */
export async function runPerCore(cluster: IoCluster, handlerModule: string | URL,
  options: { workerData?: unknown } = {}): Promise<ClusterHandle> {
  if (!(cluster instanceof IoCluster)) throw new IoError('InvalidArgument', 'runPerCore: the first argument must be an IoCluster');
  rejectUnknownKeys(options, ['workerData'], 'runPerCore');
  const handler = handlerModule instanceof URL ? handlerModule.href
    : /^[a-z][a-z0-9+.-]*:/i.test(handlerModule) ? handlerModule : pathToFileURL(handlerModule).href;
  const declared = cluster._start();
  const boot = new URL('./cluster-worker.js', import.meta.url);
  const workers: Worker[] = [];
  const starts: Promise<ShardInfo>[] = [];
  for (let i = 0; i < cluster.shardCount; i++) {
    const data: ShardBoot = {
      shardId: i, shardCount: cluster.shardCount, cpu: cluster.cpus[i], config: cluster.config, handler,
      endpoints: declared.map((d) => ({
        kind: d.ep.kind, name: d.ep.name, fd: d.fds[i], udpOptions: d.udpOptions,
        tls: d.tls && { slot: d.tls.slot, timeoutMs: d.tls.timeoutMs },
      })),
      workerData: options.workerData,
    };
    const w = new Worker(boot, { workerData: data, name: `zero-io shard ${i}` });
    workers.push(w);
    starts.push(new Promise<ShardInfo>((resolve, reject) => {
      const onMsg = (m: { type: string; info?: ShardInfo; error?: string; kind?: string }): void => {
        if (m.type === 'ready') { cleanup(); resolve(m.info as ShardInfo); }
        else if (m.type === 'failed') { cleanup(); reject(new IoError('ShardFailed', `shard ${i}: ${m.error}`, { shardId: i })); }
      };
      const onErr = (e: Error): void => { cleanup(); reject(new IoError('ShardFailed', `shard ${i}: ${e.message}`, { shardId: i }, { cause: e })); };
      const onExit = (code: number): void => { cleanup(); reject(new IoError('ShardFailed', `shard ${i} exited (code ${code}) before it was ready`, { shardId: i })); };
      const cleanup = (): void => { w.off('message', onMsg); w.off('error', onErr); w.off('exit', onExit); };
      w.on('message', onMsg);
      w.once('error', onErr);
      w.once('exit', onExit);
    }));
  }
  const settled = await Promise.allSettled(starts);
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) {
    await Promise.all(workers.map((w) => w.terminate()));
    throw failed.reason;
  }
  return new ClusterHandle(workers, settled.map((s) => (s as PromiseFulfilledResult<ShardInfo>).value));
}

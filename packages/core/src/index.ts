/**
 * @zero-io/core — the io_uring shard engine for Node.js.
 *
 * Three primitives: `new Io(config)` owns a shard, `io.poll(timeoutMs)` runs one tick,
 * `io.nextEvent()` drains the tick's events — or `io.runSync(handler)` drives it from Node's
 * event loop. Protocol packages (`@zero-io/tcp`, ...) add their methods to `Io`.
 * @module
 */
export { Io, ERR_NAME_NOT_FOUND } from './io.js';
export type { PoolStats, PoolGauge, RunSyncOptions, ShutdownHandle, ConnStats, PoolPressureInfo, TlsInfo } from './io.js';
export { IoError, isIoError, errnoName, errnoDescription } from './errors.js';
export type { IoErrorKind, IoErrorFields } from './errors.js';
export { resolveConfig } from './config.js';
export { UdpAddress, parseHostPort, formatHostPort } from './address.js';
export { MulticastGroup } from './udp.js';
export { SendBuffer } from './send-buffer.js';
export { IoHandle } from './handle.js';
export { OwnedSlot } from './owned-slot.js';
export { StreamWriter } from './stream-writer.js';
export type { StreamWriterOptions } from './stream-writer.js';
export type { OwnedSlotTransfer } from './owned-slot.js';
export type { UdpEndpointConfig, UdpTarget, UdpEndpointStats } from './udp.js';
export type { Backend, Config, ResolvedConfig, UringConfig, DebugConfig } from './config.js';
export type {
  Event, EventMap, ConnId, EndpointId, Protocol, MessageKind, CloseOrigin, SocketAddress,
  ConnectedEvent, DisconnectedEvent, StreamFrameEvent, WritableEvent, UdpRecvEvent, HandleRejectedEvent,
  PoolPressureEvent, PressureState, PressurePool, TlsReadyEvent, PeerEndedEvent,
} from './events.js';
export type { ProbeInfo } from './addon.js';
export { IoCluster, ShardIo, ClusterHandle, RoutingStrategy, runPerCore } from './cluster.js';
export { ScidGenerator, SERVER_ID_MASK, CID_LENGTH, cidSlot } from './scid.js';
export type { ClusterConfig, ClusterEndpoint, ShardContext, ShardHandler, ShardInfo, ShardStats, ShardExit } from './cluster.js';

import { loadAddon } from './addon.js';
import { IoError } from './errors.js';

/** The engine features compiled into the loaded addon (SPEC.md "Feature gates"). */
export function features(): string[] {
  return loadAddon().features();
}

/**
 * Throws FeatureMissing unless the loaded engine was built with `gate`. Protocol packages call
 * this at import so a missing gate fails early with the fix.
 */
export function requireFeature(gate: string, pkg: string): void {
  if (!loadAddon().features().includes(gate)) {
    throw new IoError('FeatureMissing',
      `${pkg} needs the engine feature '${gate}', which this build of the native engine lacks ` +
      `(it has: ${loadAddon().features().join(', ') || 'none'}). Rebuild with ` +
      `ZERO_IO_FEATURES=${[...loadAddon().features(), gate].join(',')} node tooling/build-native.mjs`,
      { feature: gate });
  }
}

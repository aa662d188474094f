/**
 * For @zero-io protocol packages only: the native surface behind an Io. Not a public API; it
 * may change in any release.
 * @internal
 * @module
 */
export { internalsOf, registerEventType } from './io.js';
export {
  openListener, registerCloseReason, registerCloseReasonRange, registerHandlerFailure, setServerTlsAttacher, serverTlsAttacher,
  registerProtocolCloseReason, registerEngineError, setTlsContexts, getTlsContexts, type TlsContexts,
} from './extensions.js';
export type { IoInternals } from './io.js';
export type { NativeAddon } from './addon.js';
export { describeValue, fromNative } from './errors.js';
export { checkPort, bindIp, rejectUnknownKeys } from './address.js';
export { setUdpGsoForTesting } from './udp.js';
export { ERR, OP, loadAddon } from './addon.js';
export { setClusterTlsResolver } from './cluster.js';
export { pushFailed } from './handle.js';
export {
  R_METHOD, R_TARGET, R_PATH, R_QUERY, R_BODY, R_COUNT, R_FLAGS, METHODS, REQ_STREAMED, REQ_KEEP_ALIVE, REQ_HTTP10,
  u32, expired, span, findField, allFields, methodOf, registerRecordEvent, type Latin1Buffer,
} from './http-record.js';
export { intOption, boolOption, listenOptions, listenTlsArgs } from './options.js';

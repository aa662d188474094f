/**
 * Events: a discriminated union, extended by protocol packages through declaration merging on
 * {@link EventMap}. At run time there is ONE reused flyweight object per Io: every event and its
 * payload view is borrowed — valid until the next poll(); copy or detach to keep it.
 * @module
 */

import type { UdpAddress } from './address.js';

/** A connection id: a generation-tagged index. A stale id (closed) is refused, never reused for another connection's data. */
export type ConnId = number & { readonly __brand: 'ConnId' };
/** A listening endpoint id. */
export type EndpointId = number & { readonly __brand: 'EndpointId' };
/** Transport of a connection. Protocol packages add their own. */
export type Protocol = 'tcp' | 'uds' | 'quic';
/** Typed message discriminator on StreamFrame (the seed's MessageKind). */
export type MessageKind = 'Binary' | 'WsText' | 'WsBinary' | 'MqttPacket' | 'GrpcFrame' | 'FixText' | 'Sbe' | 'User';
/** Why a connection ended. */
export type CloseOrigin = 'local' | 'peer' | 'error' | 'timeout';

/** A socket address as node:net reports it. */
export interface SocketAddress {
  address: string;
  port: number;
  family: 'IPv4' | 'IPv6' | 'unix';
}

/** A connection is open (accepted on an endpoint, or an outbound connect succeeded). */
export interface ConnectedEvent {
  readonly type: 'Connected';
  readonly conn: ConnId;
  /** The listening endpoint that accepted it, or null for an outbound connection. */
  readonly endpoint: EndpointId | null;
  readonly protocol: Protocol;
  /** The remote address (looked up when read). Null once the socket is gone. */
  readonly peer: SocketAddress | null;
  /**
   * A TLS connection (`tcpListenWith({ tls })` / `tcpConnectWith({ tls })`): Connected comes
   * after its handshake, and `io.tlsInfo(conn)` tells the version, cipher, ALPN and peer.
   */
  readonly tls: boolean;
}

/** A STARTTLS upgrade (`io.tlsUpgrade` / `io.tlsAcceptUpgrade`) finished its handshake. */
export interface TlsReadyEvent {
  readonly type: 'TlsReady';
  readonly conn: ConnId;
  /** The listener that accepted the connection, or null for an outbound one (looked up when read). */
  readonly endpoint: EndpointId | null;
}

/**
 * The peer ended its side of the connection (it sent FIN, as node:net's 'end'): every byte it
 * sent before has been delivered as StreamFrame events.
 *
 * What follows depends on `allowHalfOpen` (tcp/uds listen and connect options, as node:net):
 * - false (the default): the connection closes by itself once what the application writes in
 *   answer has gone out. Precisely: after this event's batch, when the write queue is empty and
 *   no `Writable` is owed (a write that was cut short gets its `Writable`, and what the
 *   application writes then is sent too); the first batch end that finds nothing more written
 *   closes it (`Disconnected`, origin 'peer'). Writes from the handler and from promise
 *   callbacks that run right after it (microtasks of the same batch) count; answers written
 *   later (a timer, setImmediate, other I/O) need `allowHalfOpen: true`.
 * - true: the connection stays open for writing until the application closes it
 *   (`closeGraceful` sends what is queued, then closes; `end` sends FIN and lets the close
 *   follow).
 *
 * TLS: the peer's close_notify counts as its end (and its FIN after it is not reported again);
 * the answer is encrypted as usual and our close_notify follows it.
 */
export interface PeerEndedEvent {
  readonly type: 'PeerEnded';
  readonly conn: ConnId;
  /** The listener that accepted the connection, or null for an outbound one. */
  readonly endpoint: EndpointId | null;
  readonly protocol: Protocol;
}

/** A connection ended; its id is invalid after this batch. */
export interface DisconnectedEvent {
  readonly type: 'Disconnected';
  readonly conn: ConnId;
  /** The listener that accepted the connection, or null for an outbound one. */
  readonly endpoint: EndpointId | null;
  /**
   * The remote address, still readable in this handler (kept from before the socket closed);
   * for a failed connect, the address of the last attempt. Null when there was none.
   */
  readonly peer: SocketAddress | null;
  /**
   * errno of the cause (0 for a clean close), e.g. 104 (ECONNRESET), 111 (ECONNREFUSED); a
   * negative engine code (TLS, HTTP, ...); for a connection that became a WebSocket, its close
   * code (1000-4999, see @zero-io/websocket).
   */
  readonly errorCode: number;
  /** Human-readable cause, e.g. "ECONNRESET: connection reset by peer". */
  readonly reason: string;
  readonly origin: CloseOrigin;
  readonly protocol: Protocol;
  /**
   * The cause as an IoError when it is one of ours rather than an errno: TlsHandshakeFailed
   * (with `alert` and a readable reason, e.g. "alert received: bad certificate (42)"),
   * TlsProtocolError, a TLS handshake time-out (TlsHandshakeFailed, origin 'timeout'), or
   * ConnectTimeout (`connectTimeoutMs`, origin 'timeout'). Null for errno causes and clean
   * closes. Read it in the handler (borrowed).
   * A server connection whose handshake fails is reported by this event only: it was never
   * Connected.
   */
  readonly error: import('./errors.js').IoError | null;
}

/** Bytes arrived on a connection (TCP RX is push-only). */
export interface StreamFrameEvent {
  readonly type: 'StreamFrame';
  readonly conn: ConnId;
  /** The listener that accepted the connection, or null for an outbound one (looked up when read). */
  readonly endpoint: EndpointId | null;
  /** Stream id (0 for TCP / UDS). */
  readonly stream: number;
  readonly kind: MessageKind;
  /**
   * The payload: a view into the shared slot pool. Borrowed: valid until the next poll();
   * copy it (`Buffer.from(ev.data)`) to keep it.
   */
  readonly data: Uint8Array;
  /** Payload length, without creating a view. */
  readonly length: number;
  /**
   * Where the payload starts in `io.poolBytes` (no view is created): with
   * `io.streamWrite(conn, io.poolBytes, ev.offset, ev.length)` a frame is forwarded with zero
   * JS allocation. Borrowed, like `data`.
   */
  readonly offset: number;
}

/**
 * A datagram arrived on a UDP endpoint (multishot recvmsg straight into a pool slot).
 * Datagrams longer than `poolSlotSize - 44` bytes are cut (`truncated`), as recvmsg does with
 * a short buffer; raise `poolSlotSize` for larger ones.
 */
export interface UdpRecvEvent {
  readonly type: 'UdpRecv';
  /** The UDP endpoint (from `udpBind`). */
  readonly endpoint: EndpointId;
  /**
   * The sender. Built when read (a small copy that stays valid after the poll); to reply
   * without allocating, pass the event itself as `to`: `io.udpSendBytes(ev.endpoint, ev, data)`.
   */
  readonly from: UdpAddress;
  /** The payload: a borrowed view into the slot pool, valid until the next poll(). */
  readonly data: Uint8Array;
  /** Payload length (without creating a view). */
  readonly length: number;
  /** Where the payload starts in `io.poolBytes` (borrowed, like `data`). */
  readonly offset: number;
  /** The datagram was longer than a slot holds and was cut to `length` bytes. */
  readonly truncated: boolean;
  /**
   * GRO endpoints (`udpBindWith({ gro: true })`): when > 0, the kernel coalesced a train of
   * datagrams from one sender into this payload, each `segmentSize` bytes (the last may be
   * shorter): datagram i is `data.subarray(i * segmentSize, (i + 1) * segmentSize)`. 0: one
   * datagram.
   */
  readonly segmentSize: number;
}

/**
 * An {@link IoHandle} command from another thread could not be carried out (on the shard's
 * thread). Writes are all-or-nothing: `length` bytes were not queued.
 */
export interface HandleRejectedEvent {
  readonly type: 'HandleRejected';
  readonly conn: ConnId;
  /**
   * The refused command: 'streamWrite' or 'streamWriteBuffer' (the commands that carry bytes),
   * 'httpRespond', or 'wsPublish' (no pool slot for the frame; `conn` is 0). A `close` /
   * `closeGraceful` of a connection that is already closed or closing is a no-op and is not
   * reported, as with `io.close`; so are `pauseRecv` / `resumeRecv`.
   */
  readonly op: string;
  /** Bytes not written (streamWrite). */
  readonly length: number;
  /** Negative engine code (see `reason`). */
  readonly errorCode: number;
  /** Why, e.g. "the connection is closed (stale id)". */
  readonly reason: string;
}

/** The backpressure cascade's states (SPEC.md), from calm to shedding load. */
export type PressureState = 'Healthy' | 'Warning' | 'Critical' | 'Drain';
/** The pools the cascade watches, each against its budget. */
export type PressurePool = 'fillRing' | 'txRing' | 'perConn' | 'freeStack';

/**
 * The shard's backpressure state changed (see `io.poolPressure()` for the policy). Emitted once
 * per transition. A state is entered at once; it is left 10 points below its threshold and no
 * sooner than 250 ms after the previous change (a timer re-evaluates an idle shard), so a load
 * at a threshold cannot flap it.
 */
export interface PoolPressureEvent {
  readonly type: 'PoolPressure';
  readonly state: PressureState;
  readonly previous: PressureState;
  /** The highest pool use against its budget, in percent. */
  readonly utilizationPct: number;
  /** The pool that sets the utilization. */
  readonly pool: PressurePool;
}

/** A connection's write queue drained after a partial streamWrite: write more now. */
export interface WritableEvent {
  readonly type: 'Writable';
  readonly conn: ConnId;
  /** The listener that accepted the connection, or null for an outbound one (looked up when read). */
  readonly endpoint: EndpointId | null;
}

/**
 * The event union's map. Protocol packages add members with
 * `declare module '@zero-io/core' { interface EventMap { MyEvent: MyEventType } }`.
 */
export interface EventMap {
  Connected: ConnectedEvent;
  Disconnected: DisconnectedEvent;
  PeerEnded: PeerEndedEvent;
  StreamFrame: StreamFrameEvent;
  Writable: WritableEvent;
  TlsReady: TlsReadyEvent;
  UdpRecv: UdpRecvEvent;
  HandleRejected: HandleRejectedEvent;
  PoolPressure: PoolPressureEvent;
}

/** Any event (switch on `type` for exhaustive typing). */
export type Event = EventMap[keyof EventMap];

/** @internal native event type numbers (native/shard/shard.h EventType). */
export const EV_CONNECTED = 1;
/** @internal */
export const EV_TLS_READY = 8;
/** @internal */
export const EV_DISCONNECTED = 2;
/** @internal */
export const EV_STREAM_FRAME = 3;
/** @internal */
export const EV_WRITABLE = 4;
/** @internal */
export const EV_UDP_RECV = 5;
/** @internal */
export const EV_HANDLE_REJECTED = 6;
/** @internal */
export const EV_POOL_PRESSURE = 7;
/** @internal */
export const EV_PEER_ENDED = 9;
/** @internal */
export const PRESSURE_STATES: PressureState[] = ['Healthy', 'Warning', 'Critical', 'Drain'];
/** @internal */
export const PRESSURE_POOLS: PressurePool[] = ['fillRing', 'txRing', 'perConn', 'freeStack'];
/** @internal */
export const EVENT_WORDS = 8;

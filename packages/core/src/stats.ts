/**
 * What the Io reports about itself and its connections: pool gauges, connection statistics
 * (TCP_INFO, or quiche's for QUIC), TLS state, the backpressure cascade. Result types only.
 * @module
 */
import type { PressureState, PressurePool } from './events.js';

/** Current / peak / capacity of one pool. */
export interface PoolGauge {
  readonly current: number;
  readonly peak: number;
  readonly capacity: number;
}

/** Per-pool statistics (the seed's PoolStats) plus engine counters. */
export interface PoolStats {
  /** Free-stack slots checked out (TX queues, scratch). */
  readonly freeStack: PoolGauge;
  /** RX buffers taken from the provided buffer ring and not yet returned. */
  readonly fillRing: PoolGauge;
  /** RX events delivered in the current batch. */
  readonly rxRing: PoolGauge;
  /** Slots taken from the free stack for transmission (copying writes); SendBuffer slots queued by reference count once, in `freeStack`. */
  readonly txRing: PoolGauge;
  /** Completion-queue entries ready at a drain. */
  readonly completionRing: PoolGauge;
  /** Scratch budget (5% of slots) for reassembly. */
  readonly scratchPool: PoolGauge;
  /** Connection-table entries in use. */
  readonly perConn: PoolGauge;
  /** How the pool memory is backed: 'hugetlb', 'thp' or 'normal'. */
  readonly backing: string;
  /** Whether payloads are shared zero-copy with JS (false: copied). */
  readonly zeroCopy: boolean;
  /** Open connections. */
  readonly connections: number;
  /** The active backend ({@link Io.backend}). */
  readonly backend: 'io_uring' | 'epoll';
  /**
   * Engine counters: rxEnobufs, rxRearm, txShortSends, txPartialAccepts, connsRejected, ...;
   * TLS: tlsHandshakes, tlsFailed, tlsTimeouts, ktlsActive, tlsRxPaused (receives paused because
   * a connection's undelivered ciphertext passed two records), tlsRxPeak (the most ciphertext
   * one connection held, bytes).
   */
  readonly counters: Readonly<Record<string, number>>;
}

/** Per-connection statistics (the seed's ConnStats): the kernel's TCP_INFO plus our counters. */
export interface ConnStats {
  /** Smoothed round-trip time, µs. */
  readonly rttUs: number;
  readonly rttVarUs: number;
  readonly minRttUs: number;
  /** Congestion window, segments. */
  readonly cwnd: number;
  readonly ssthresh: number;
  readonly mss: number;
  /** Segments retransmitted over the connection's life. */
  readonly retransmits: number;
  /** Segments the kernel currently considers lost. */
  readonly lost: number;
  readonly unacked: number;
  readonly bytesSent: number;
  readonly bytesRetrans: number;
  readonly bytesAcked: number;
  readonly bytesReceived: number;
  /** Bytes/s, the kernel's delivery-rate estimate. */
  readonly deliveryRate: number;
  /** Bytes delivered to JS / accepted by the kernel for sending, as counted by the engine. */
  readonly bytesIn: number;
  readonly bytesOut: number;
  /** A TLS connection (see @zero-io/tcp). */
  readonly tls: boolean;
  /**
   * Whether kernel TLS (kTLS) carries the connection's records. False for plaintext, and for
   * TLS where the kernel has no kTLS or the session cannot be offloaded: `io.tlsInfo(conn)
   * .kTlsReason` says why.
   */
  readonly kTls: boolean;
}

/** The TLS state of a connection ({@link Io.tlsInfo}). */
export interface TlsInfo {
  /** 'handshake' until it finishes, then 'open'; 'closed' after close_notify, 'failed' after an error. */
  readonly state: 'idle' | 'handshake' | 'open' | 'closed' | 'failed';
  readonly side: 'server' | 'client';
  /** 'TLSv1.2' or 'TLSv1.3' (null during the handshake). */
  readonly version: string | null;
  /** The IANA name, e.g. 'TLS_AES_128_GCM_SHA256'. */
  readonly cipher: string | null;
  /** The protocol ALPN chose, or null. */
  readonly alpn: string | null;
  /** The SNI name the client sent (server side) or asked for (client side). */
  readonly servername: string | null;
  /** The session was resumed (ticket), not a full handshake. */
  readonly resumed: boolean;
  /** The peer certificate's subject, e.g. '/CN=example.com', or null when none was sent. */
  readonly peerSubject: string | null;
  /** A peer certificate was presented and verified against the trust anchors. */
  readonly peerVerified: boolean;
  /** Kernel TLS carries the records. */
  readonly kTls: boolean;
  /** Why kTLS is not active (e.g. the kernel has no CONFIG_TLS), or null. */
  readonly kTlsReason: string | null;
  /** The alert sent or received on failure (RFC 8446 section 6), -1 for none. */
  readonly alert: number;
  readonly alertReceived: boolean;
  /** Why the session failed, or null. */
  readonly reason: string | null;
}

/** A snapshot of the backpressure cascade (the seed's PoolPressureInfo). */
export interface PoolPressureInfo {
  readonly state: PressureState;
  /** The highest pool use against its budget, in percent. */
  readonly utilizationPct: number;
  /** The pool that sets it. */
  readonly pool: PressurePool;
  /** Each watched pool's use against its budget, in percent. */
  readonly pools: Readonly<Record<PressurePool, number>>;
  /**
   * Utilization (percent) at which each state is entered; it is left 10 points lower, and no
   * sooner than 250 ms after the last change.
   */
  readonly thresholds: { readonly warning: number; readonly critical: number; readonly drain: number };
  /**
   * The budget partition in slots: RX is the RX buffer ring (60% of the slots rounded down to a
   * power of two, at most 32,768); TX critical 10%, TX bulk 25% and scratch 5% of all slots.
   */
  readonly budgets: { readonly rx: number; readonly txCritical: number; readonly txBulk: number; readonly scratch: number };
  /** State changes so far. */
  readonly transitions: number;
  /**
   * Writes refused or cut by the TX policy: TCP / Unix-socket writes beyond the connection's fair
   * share of the bulk-TX budget (any state), TLS writes and UDP sends beyond the budget in
   * Critical / Drain.
   */
  readonly writesCapped: number;
  /** Connections closed at accept in Drain (while the RX ring or the free stack was at the Drain threshold). */
  readonly acceptsRefused: number;
}


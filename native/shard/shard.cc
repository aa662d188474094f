#include "shard/shard.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <new>
#include <cstring>

namespace zio {

namespace {
uint32_t floor_pow2(uint32_t v) {
  uint32_t p = 1;
  while (p * 2 <= v) p *= 2;
  return p;
}
}  // namespace

Shard::~Shard() {
  if (handle_q_) handle_q_->close();  // producers on other threads get kClosed from now on
  // Completions not yet reaped may carry descriptors (a multishot accept installs the new fd
  // before its CQE is read): cancel everything, reap what is posted, and close those fds, so a
  // shard torn down mid-flight (e.g. worker termination) leaks nothing and peers see the close.
  if (drv_ready_) {  // a shard whose init failed before the driver existed has nothing in flight
    io_uring_sqe* sqe = drv_.get_sqe();
    io_uring_prep_cancel(sqe, nullptr, IORING_ASYNC_CANCEL_ANY);
    io_uring_sqe_set_data64(sqe, ud_encode(kOpCancel, 0x7fffffffu, 0));
    for (int round = 0; round < 4; ++round) {
      drv_.submit_and_wait(round == 0 ? 0 : 1000000);  // up to 1 ms for cancellations to post
      uint32_t seen = drv_.reap([](io_uring_cqe* cqe) {
        if (ud_op(cqe->user_data) == kOpAccept && cqe->res >= 0) ::close(cqe->res);
        return true;
      });
      if (seen == 0 && round > 0) break;
    }
  }
  // shutdown() first: in-flight requests hold file references, so close() alone would leave
  // the sockets alive until the kernel finishes tearing down the ring; shutdown() ends the
  // connection for the peer at once.
  for (auto& c : conns_) {
    if (c.fd >= 0) {
      ::shutdown(c.fd, SHUT_RDWR);
      ::close(c.fd);
    }
    for (uint32_t a = 0; a < c.he_count; ++a)
      if (c.he_fd[a] >= 0) ::close(c.he_fd[a]);
  }
  for (auto& e : endpoints_) {
    if (e.fd >= 0) {
      ::shutdown(e.fd, SHUT_RDWR);
      ::close(e.fd);
      if (!e.path.empty()) unlink(e.path.c_str());
    }
  }
}

// Fault injection for the creation steps (tests only): ZERO_IO_FAULT_INIT=<step> makes that step
// fail as the real failure would, so each cleanup path runs (under ASan in the native suite).
// Steps, in order: pool, ring, bufring, eventfd, handle, tables.
static bool inject_fault(const char* step, int* r, std::string* err) {
  const char* f = getenv("ZERO_IO_FAULT_INIT");
  if (!f || strcmp(f, step) != 0) return false;
  *r = -ENOMEM;
  *err = std::string("injected failure of shard creation step '") + step +
         "' (ZERO_IO_FAULT_INIT): " + strerror(ENOMEM);
  return true;
}

int Shard::init(const ShardConfig& cfg, std::string* kind, std::string* err) {
  try {
    return init_steps(cfg, kind, err);
  } catch (const std::bad_alloc&) {
    *kind = "PoolSetup";
    *err = "out of memory while building the shard's tables (maxConnections=" +
           std::to_string(cfg.max_connections) + ", maxWriteQueueBytes=" +
           std::to_string(cfg.max_write_queue_bytes) + "): lower them or poolSlotCount";
    return -ENOMEM;
  }
}

int Shard::init_steps(const ShardConfig& cfg, std::string* kind, std::string* err) {
  cfg_ = cfg;
  probe_uring(&probe_);
  bool uring_ok = probe_.available && kernel_at_least(probe_.kernel, kRequiredMajor, kRequiredMinor) &&
                  probe_.ops_ok && probe_.multishot_recv && probe_.buf_ring;
  // 'auto' takes io_uring when the kernel offers what the driver needs, else epoll; the reason
  // is kept for io.backendReason and the debug log.
  Backend backend = cfg.backend;
  if (backend == Backend::Auto) {
    backend = uring_ok ? Backend::IoUring : Backend::Epoll;
    if (!uring_ok) {
      fallback_reason_ = !probe_.available
          ? std::string("io_uring_setup failed: ") + strerror(probe_.setup_errno) +
                " (kernel.io_uring_disabled=" + std::to_string(probe_.io_uring_disabled) + ")"
          : "the kernel lacks multishot recv with provided buffer rings (needs Linux >= 6.0)";
    }
  }
  if (backend == Backend::IoUring && !probe_.available) {
    *kind = "NotSupportedOnBackend";
    int e = probe_.setup_errno;
    *err = std::string("io_uring_setup failed: ") + strerror(e) + " (" +
           (e == EPERM ? "EPERM" : e == ENOSYS ? "ENOSYS" : "errno " + std::to_string(e)) +
           "). io_uring is blocked here: check sysctl kernel.io_uring_disabled (now " +
           std::to_string(probe_.io_uring_disabled) +
           "), or the container's seccomp profile (Docker's default and Kubernetes RuntimeDefault "
           "deny it); allow io_uring_setup/io_uring_enter/io_uring_register, or pass "
           "backend: 'auto' (falls back to epoll) or 'epoll'";
    return -e;
  }
  if (backend == Backend::IoUring && !uring_ok) {
    *kind = "KernelTooOld";
    *err = "io_uring multishot recv with provided buffer rings needs Linux >= 6.0, found " +
           std::to_string(probe_.kernel.major) + "." + std::to_string(probe_.kernel.minor) +
           "; upgrade the kernel, or pass backend: 'auto' or 'epoll'";
    return -ENOSYS;
  }
  // Pool partition (SPEC.md): 60% RX (rounded down to a power of two: the buffer ring size),
  // the rest is the free stack for TX and scratch.
  uint32_t rx = floor_pow2(std::max<uint32_t>(1, cfg.pool_slot_count * 60 / 100));
  if (rx > 32768) rx = 32768;  // buffer ids are 16 bits
  probe_udp(&udp_probe_);
  uint32_t gro = udp_probe_.gro ? cfg.gro_buffers : 0;
  if (gro & (gro - 1)) gro = floor_pow2(gro);
  pool_ = std::make_shared<SlotPool>();
  int r = 0;
  if (!inject_fault("pool", &r, err))
    r = pool_->create(cfg.pool_slot_count, cfg.pool_slot_size, rx, cfg.huge_pages, err,
                      static_cast<size_t>(gro) * kGroBufSize);
  if (r < 0) {
    *kind = "PoolSetup";
    return r;
  }
  RingOptions ro;
  ro.sq_entries = cfg.sq_entries;
  ro.defer_taskrun = cfg.defer_taskrun;
  if (!inject_fault("ring", &r, err)) r = drv_.init(backend, ro, probe_, err);
  drv_ready_ = r == 0;
  if (r == 0 && !inject_fault("bufring", &r, err)) r = drv_.setup_buf_ring(rx, kBufGroup, err);
  if (r == 0 && !inject_fault("eventfd", &r, err)) r = drv_.enable_eventfd(err);
  if (r < 0) {
    *kind = "NotSupportedOnBackend";
    return r;
  }
  for (uint32_t i = 0; i < rx; ++i) drv_.buf_add(pool_->slot_ptr(i), cfg.pool_slot_size, i);
  drv_.buf_commit();
  rx_in_ring_ = rx;
  if (gro && drv_.setup_buf_ring(gro, kGroBufGroup, err) == 0) {
    gro_count_ = gro;
    for (uint32_t i = 0; i < gro; ++i)
      drv_.buf_add(gro_ptr(i), kGroBufSize, static_cast<uint16_t>(i), kGroBufGroup);
    drv_.buf_commit(kGroBufGroup);
    gro_in_ring_ = gro;
  }

  if (!inject_fault("handle", &r, err)) handle_q_ = HandleQueue::create(cfg.handle_queue);
  if (!handle_q_) {
    int e = r < 0 ? -r : errno;
    *kind = "NotSupportedOnBackend";
    if (r == 0) *err = std::string("eventfd() for the IoHandle queue failed: ") + strerror(e);
    return -e;
  }
  if (drv_.deferred()) handle_q_->set_kick_fd(drv_.wake_fd());
  handle_q_->pool = pool_;
  arm_handle_wake();
  drv_.submit();
  if (inject_fault("tables", &r, err)) throw std::bad_alloc();
  events_.reset(new EventRec[cfg.max_events_per_poll]());
  conns_.resize(cfg.max_connections);
  for (uint32_t i = 0; i < cfg.max_connections; ++i) {
    conns_[i].next_free = i + 1;
    for (auto& f : conns_[i].he_fd) f = -1;
  }
  free_head_ = 0;
  free_tail_ = cfg.max_connections - 1;
  free_count_ = cfg.max_connections;
  endpoints_.resize(cfg.max_endpoints);
  txq_cap_ = cfg.max_write_queue_bytes / cfg.pool_slot_size + 2;
  txq_.resize(static_cast<size_t>(txq_cap_) * cfg.max_connections);
  dirty_.reserve(cfg.max_connections);
  dirty_work_.reserve(cfg.max_connections);
  parked_.reserve(cfg.max_connections + cfg.max_endpoints);
  loaned_.reserve(cfg.max_events_per_poll);
  closed_.reserve(cfg.max_events_per_poll);
  // Four per connection: a QUIC one can hold its quiche timer, its pacing timer, a graceful
  // close's and its connect timer at once (+1: the cascade's).
  timers_.init(cfg.max_connections * 4 + cfg.max_endpoints + 1, now_ms());

  // Budget partition (SPEC.md): 60% RX / 10% TX critical / 25% TX bulk / 5% scratch, and the
  // cascade thresholds from poolPressurePct (P): Warning P-20, Critical P, Drain halfway to 100.
  pressure_.budget_rx = rx;
  pressure_.budget_tx_critical = std::max<uint32_t>(1, cfg.pool_slot_count / 10);
  pressure_.budget_tx_bulk = std::max<uint32_t>(1, cfg.pool_slot_count / 4);
  pressure_.budget_scratch = std::max<uint32_t>(1, cfg.pool_slot_count / 20);
  uint32_t P = std::clamp<uint32_t>(cfg.pool_pressure_pct, 21, 99);
  pressure_.enter[kWarning] = P - 20;
  pressure_.enter[kCritical] = P;
  pressure_.enter[kDrain] = P + (100 - P) / 2;
  gauges_.fill_ring.capacity = rx;
  gauges_.rx_ring.capacity = cfg.max_events_per_poll;
  gauges_.tx_ring.capacity = pool_->free_stack.capacity;
  gauges_.completion_ring.capacity = cfg.sq_entries * 8;
  gauges_.scratch_pool.capacity = cfg.pool_slot_count * 5 / 100;
  gauges_.per_conn.capacity = cfg.max_connections;
  return 0;
}

void Shard::reset_peaks() {
  for (PoolGauge* g : {&pool_->free_stack, &gauges_.fill_ring, &gauges_.rx_ring, &gauges_.tx_ring,
                       &gauges_.completion_ring, &gauges_.scratch_pool, &gauges_.per_conn})
    g->peak = g->current;
}

// ------------------------------------------------------------------ helpers

Conn* Shard::lookup(uint32_t index, uint32_t gen) {
  if (index >= conns_.size()) return nullptr;
  Conn& c = conns_[index];
  if (c.gen != gen || c.state == ConnState::Free) return nullptr;
  return &c;
}

void Shard::emit(int32_t type, uint32_t index, uint32_t gen, int32_t kind, uint32_t off,
                 uint32_t len, int32_t code, int32_t aux) {
  EventRec& e = events_[n_events_++];
  e.type = type;
  e.index = static_cast<int32_t>(index);
  e.gen = static_cast<int32_t>(gen);
  e.kind = kind;
  e.off = off;
  e.len = len;
  e.code = code;
  e.aux = aux;
}

void Shard::mark_dirty(uint32_t index) {
  Conn& c = conns_[index];
  if (!c.dirty) {
    c.dirty = true;
    dirty_.push_back(index);
  }
}

int64_t Shard::alloc_conn() {
  if (free_count_ == 0) return kErrTableFull;
  uint32_t idx = free_head_;
  free_head_ = conns_[idx].next_free;
  --free_count_;
  Conn& c = conns_[idx];
  uint32_t gen = c.gen;
  c = Conn{};
  c.gen = gen;
  for (auto& f : c.he_fd) f = -1;
  ++conns_used_;
  gauges_.per_conn.add(1);
  return idx;
}

void Shard::release_tx(Conn& c) {
  while (c.tx_count) {
    TxChunk& ch = txq_[static_cast<size_t>(&c - conns_.data()) * txq_cap_ + c.tx_head];
    pool_->release(ch.slot);
    if (!ch.shared) tx_slot_sub(c);
    c.tx_head = (c.tx_head + 1) % txq_cap_;
    --c.tx_count;
  }
  c.tx_bytes = 0;
  c.tx_inflight_chunks = 0;
  wake_pool_waiters();
}

// ------------------------------------------------------------------ SQE preparation

void Shard::arm_recv(uint32_t index) {
  Conn& c = conns_[index];
  io_uring_sqe* sqe = drv_.get_sqe();
  io_uring_prep_recv_multishot(sqe, c.fd, nullptr, 0, 0);
  sqe->flags |= IOSQE_BUFFER_SELECT;
  sqe->buf_group = kBufGroup;
  io_uring_sqe_set_data64(sqe, ud_encode(kOpRecv, index, c.gen));
  c.recv_armed = true;
  c.need_rearm = false;
  ++c.inflight;
}

void Shard::arm_accept(uint32_t ep) {
  Endpoint& e = endpoints_[ep];
  io_uring_sqe* sqe = drv_.get_sqe();
  io_uring_prep_multishot_accept(sqe, e.fd, nullptr, nullptr, SOCK_CLOEXEC);
  io_uring_sqe_set_data64(sqe, ud_encode(kOpAccept, ep, e.gen));
  e.accept_armed = true;
  ++e.inflight;
}

void Shard::start_send(uint32_t index) {
  Conn& c = conns_[index];
  TxChunk* q = &txq_[static_cast<size_t>(index) * txq_cap_];
  uint32_t n = std::min<uint32_t>(c.tx_count, kIovMax);
  for (uint32_t i = 0; i < n; ++i) {
    TxChunk& ch = q[(c.tx_head + i) % txq_cap_];
    c.iov[i].iov_base = pool_->slot_ptr(ch.slot) + ch.off;
    c.iov[i].iov_len = ch.len;
  }
  c.tx_inflight_chunks = n;
  io_uring_sqe* sqe = drv_.get_sqe();
  if (n == 1) {
    // One slot: a plain send skips sendmsg's msghdr and iovec import.
    io_uring_prep_send(sqe, c.fd, c.iov[0].iov_base, c.iov[0].iov_len, MSG_NOSIGNAL);
  } else {
    c.msg = msghdr{};
    c.msg.msg_iov = c.iov;
    c.msg.msg_iovlen = n;
    io_uring_prep_sendmsg(sqe, c.fd, &c.msg, MSG_NOSIGNAL);
  }
  io_uring_sqe_set_data64(sqe, ud_encode(kOpSend, index, c.gen));
  c.send_inflight = true;
  ++c.inflight;
}

// ------------------------------------------------------------------ connections

// Close sequence (DESIGN.md section 3): cancel every op on the fd, close after the last CQE.
void Shard::begin_close(uint32_t index, int32_t err, int32_t origin) {
  Conn& c = conns_[index];
  if (c.state == ConnState::Closing || c.state == ConnState::Closed) return;
  c.state = ConnState::Closing;
  if (err == 0 && c.http && c.http->error && !(c.ws && c.ws->upgraded)) {  // an HTTP error answered before this close
    err = c.http->error_code;
    origin = kOriginError;
  }
  if (c.ws) ws_final(c, &err, &origin);  // a WebSocket reports its close code
  if (c.quic) quic_begin_close(index, &err, &origin);  // CONNECTION_CLOSE; QUIC's code and side
  if (c.quic_race) quic_race_end(index);  // a QUIC connect still racing: its attempts go
  c.close_err = err;
  c.close_origin = origin;
  if (c.timer != TimerWheel::kNone) { timers_.cancel(c.timer); c.timer = TimerWheel::kNone; }
  if (c.connect_timer != TimerWheel::kNone) {
    timers_.cancel(c.connect_timer);
    c.connect_timer = TimerWheel::kNone;
  }
  if (c.inflight > 0 && !c.cancel_sent) {
    if (c.fd >= 0) {
      ::shutdown(c.fd, SHUT_RDWR);
      cancel_conn_fd(index, c.fd);
    }
    for (uint32_t a = 0; a < c.he_count; ++a)
      if (c.he_fd[a] >= 0) cancel_conn_fd(index, c.he_fd[a]);
    c.cancel_sent = true;
  }
  c.final_pending = true;
  mark_dirty(index);
}

void Shard::cancel_conn_fd(uint32_t index, int fd) {
  Conn& c = conns_[index];
  io_uring_sqe* sqe = drv_.get_sqe();
  io_uring_prep_cancel_fd(sqe, fd, IORING_ASYNC_CANCEL_ALL);
  io_uring_sqe_set_data64(sqe, ud_encode(kOpCancel, index, c.gen));
  ++c.inflight;
}

void Shard::try_finalize(uint32_t index) {
  Conn& c = conns_[index];
  if (!c.final_pending || c.inflight > 0) return;
  if (!room(1)) {
    ++counters_.events_deferred;
    return;  // stays dirty: Disconnected goes out in the next tick
  }
  if (c.fd >= 0) ::close(c.fd);
  for (uint32_t a = 0; a < c.he_count; ++a)
    if (c.he_fd[a] >= 0) { ::close(c.he_fd[a]); c.he_fd[a] = -1; }
  release_tx(c);
  emit(kEvDisconnected, index, c.gen, c.proto, c.opened ? 0 : 1, 0, c.close_err, c.close_origin);
  ++counters_.conns_closed;
  c.fd = -1;
  c.state = ConnState::Closed;
  c.final_pending = false;
  closed_.push_back(index);
}

void Shard::emit_peer_ended(uint32_t index) {
  Conn& c = conns_[index];
  if (c.ws) {  // WebSocket: a FIN without a close frame ends the connection (1006)
    c.eof_owed = false;
    ws_peer_ended(index);
    return;
  }
  if (c.http) {  // HTTP answers what the peer sent, then closes (no PeerEnded for the app)
    c.eof_owed = false;
    http_peer_ended(index);
    return;
  }
  emit(kEvPeerEnded, index, c.gen, c.proto, 0, 0, 0, 0);
  c.eof_owed = false;
  c.app_epoch = epoch_;
}

bool Shard::eof_close_due(const Conn& c) const {
  if (!c.peer_eof || c.eof_owed || tls_owes(c)) return false;
  if (c.write_closed) return true;  // both sides ended
  return !c.half_open && !c.end_pending && !c.want_writable && c.app_epoch != epoch_;
}

// Returns a just-allocated, never-opened connection entry to the free list.
void Shard::release_closed_now(uint32_t index) {
  closed_.push_back(index);
  conns_[index].state = ConnState::Closed;
}

void Shard::release_closed() {
  for (uint32_t index : closed_) {
    Conn& c = conns_[index];
    c.tls.reset();
    if (c.ws) ws_release(c);
    if (c.quic) quic_release(c);
    c.quic_race.reset();
    if (c.http) {
      --c.http->ep->stats.active;
      if (c.http->h2 && c.http->h2->sv.goaway_code() != 0)
        ++c.http->ep->stats.goaway[std::min<uint32_t>(c.http->h2->sv.goaway_code(), 14)];
      if (c.http->timer != TimerWheel::kNone) timers_.cancel(c.http->timer);
      c.http.reset();
    }
    c.state = ConnState::Free;
    c.gen = (c.gen + 1) & 0xffffff;
    if (c.gen == 0) c.gen = 1;
    // FIFO free list: a closed index is reused as late as possible.
    c.next_free = UINT32_MAX;
    if (free_count_ == 0) free_head_ = index; else conns_[free_tail_].next_free = index;
    free_tail_ = index;
    ++free_count_;
    --conns_used_;
    gauges_.per_conn.sub(1);
  }
  closed_.clear();
}

// ------------------------------------------------------------------ tick

void Shard::recycle_rx() {
  if (!loaned_plain_.empty()) {
    for (uint32_t s : loaned_plain_) pool_->release(s);
    loaned_plain_.clear();
    wake_pool_waiters();
  }
  if (!loaned_.empty()) {
    uint32_t rx = 0, gro = 0;
    for (uint16_t bid : loaned_) {
      if (bid & kLoanGro) {
        uint16_t g = bid & ~kLoanGro;
        drv_.buf_add(gro_ptr(g), kGroBufSize, g, kGroBufGroup);
        ++gro;
      } else {
        drv_.buf_add(pool_->slot_ptr(bid), pool_->slot_size(), bid);
        ++rx;
      }
    }
    if (rx) drv_.buf_commit();
    if (gro) drv_.buf_commit(kGroBufGroup);
    rx_in_ring_ += rx;
    gro_in_ring_ += gro;
    gauges_.fill_ring.sub(rx);
    loaned_.clear();
  }
  // Re-arm connections parked on ENOBUFS now that buffers are back (in their own group).
  if (!parked_.empty() && (rx_in_ring_ > 0 || gro_in_ring_ > 0)) {
    size_t keep = 0;
    for (uint32_t idx : parked_) {
      if (idx & 0x80000000u) {  // a UDP endpoint
        Endpoint& e = endpoints_[idx & 0x7fffffffu];
        if ((e.gro ? gro_in_ring_ : rx_in_ring_) == 0) { parked_[keep++] = idx; continue; }
        e.parked = false;
        if (e.open && !e.closing && !e.recv_armed) arm_udp_recv(idx & 0x7fffffffu);
        continue;
      }
      if (rx_in_ring_ == 0) { parked_[keep++] = idx; continue; }
      Conn& c = conns_[idx];
      c.parked = false;
      if (c.state == ConnState::Open && !c.recv_armed && !c.peer_eof && !rx_held(c)) arm_recv(idx);
    }
    parked_.resize(keep);
  }
}

void Shard::flush(bool allow_events) {
  // Work on a snapshot: anything marked dirty while we go lands in dirty_ for the next pass.
  dirty_work_.swap(dirty_);
  dirty_.clear();
  for (uint32_t idx : dirty_work_) {
    Conn& c = conns_[idx];
    c.dirty = false;
    if (c.state == ConnState::Open && c.tls) {
      ConnTls& t = *c.tls;
      if (t.s.pending_out()) t.s.flush_out();
      if (allow_events && tls_owes(c)) tls_pump(idx);
      if (t.rx_paused && t.s.input_left() <= kTlsRxResume && !c.recv_armed) {
        t.rx_paused = false;  // drained below one record: read again
        c.need_rearm = !c.peer_eof;
      }
      if (t.ktls == Ktls::Wanted) ktls_try(idx);
    }
    if (c.state == ConnState::Open && c.quic) quic_service(idx, allow_events);
    if (c.state == ConnState::Open && c.ws) ws_flush(idx, allow_events);
    else if (c.state == ConnState::Open && c.http) http_flush(idx, allow_events);
    if (c.state == ConnState::Open) {
      if (c.eof_owed && allow_events && !tls_owes(c) && !ws_holds(c) && room(1)) emit_peer_ended(idx);
      if (c.need_rearm && !c.recv_armed && !c.peer_eof && !c.parked && !rx_held(c)) arm_recv(idx);
      if (!c.send_inflight && c.tx_count > c.tx_inflight_chunks) start_send(idx);
      if (!c.send_inflight && c.tx_count == 0) {
        if (c.http && writable_owed(c)) {  // HTTP: the engine sends what its answers left over
          c.want_writable = false;
          http_drain(idx);
        } else if (writable_owed(c) && allow_events && room(1)) {
          c.want_writable = false;
          c.app_epoch = epoch_;
          emit(kEvWritable, idx, c.gen, 0, 0, 0, 0, 0);
        }
        // Drained: a graceful close closes now. A peer FIN (without allowHalfOpen) closes once
        // the app has had PeerEnded and every Writable and answered with nothing more
        // (eof_close_due): what it writes in answer is never cut off.
        // TLS: a graceful close asked for mid-handshake waits for it (its held writes and
        // close_notify follow), and a FIN waits until the plaintext before it is delivered.
        bool tls_hs = c.tls && c.tls->s.phase() == tls::Phase::Handshake;
        if (c.graceful && !c.quic && !(c.peer_eof && tls_hs)) {
          if (!(c.tls && c.tls->s.pending_out()) && !(tls_hs && !c.drain_err)) {
            if (c.tls && c.tls->ktls == Ktls::Active && !c.drain_err) ktls_close_notify(idx);
            begin_close(idx, c.drain_err, c.drain_err ? c.drain_origin : c.graceful_origin);
          }
        } else if (c.end_pending && !tls_hs && !(c.tls && c.tls->s.pending_out())) {
          // end(): everything queued (and close_notify) is out: our FIN.
          if (c.tls && c.tls->ktls == Ktls::Active) ktls_close_notify(idx);
          ::shutdown(c.fd, SHUT_WR);
          c.end_pending = false;
          c.write_closed = true;
          if (eof_close_due(c)) begin_close(idx, 0, kOriginLocal);
        } else if (c.peer_eof && tls_hs) {
          c.tls->s.abort("the peer closed the connection during the handshake");
          begin_close(idx, kErrTlsHandshake, kOriginPeer);
        } else if (eof_close_due(c)) {
          if (c.tls && !c.write_closed && tls_sending(*c.tls)) {
            // Our close_notify goes after the answer, then the close (a graceful one).
            c.graceful = true;
            c.graceful_origin = kOriginPeer;
            if (c.tls->ktls != Ktls::Active) c.tls->s.close_notify();
            if (c.timer != TimerWheel::kNone) timers_.cancel(c.timer);
            c.timer = timers_.add(now_ms() + 5000, kTimerGraceful, idx, c.gen);
            if (c.tx_count > 0) start_send(idx);  // the close_notify now, not at the next tick
            mark_dirty(idx);
          } else {
            begin_close(idx, 0, c.write_closed ? kOriginLocal : kOriginPeer);
          }
        }
      }
    }
    if (c.state == ConnState::Closing && allow_events) try_finalize(idx);
    if (c.final_pending || writable_owed(c) || (c.state == ConnState::Open && c.eof_owed) ||
        (c.state == ConnState::Open && c.peer_eof && !c.half_open && c.app_epoch == epoch_) ||
        (c.state == ConnState::Open && c.tls && (c.tls->ktls == Ktls::Wanted || tls_owes(c))) ||
        http_owes(c) || ws_owes(c) || quic_owes(c))
      mark_dirty(idx);  // an event is still owed (or kTLS set-up waits): retried at the next tick
  }
  dirty_work_.clear();
  if (timer_op_mode_) arm_timer_op();
  drv_.submit();
}

bool Shard::emittable_pending() const {
  for (uint32_t idx : dirty_) {
    const Conn& c = conns_[idx];
    if (c.final_pending && c.inflight == 0) return true;
    if (writable_owed(c)) return true;
    if (c.state == ConnState::Open && c.eof_owed && !tls_owes(c) && !ws_holds(c)) return true;  // PeerEnded
    // TLS plaintext or a handshake event left for lack of event room (pool slots wake it).
    if (c.state == ConnState::Open && c.tls && (c.tls->event_owed || (c.tls->pump_more && !c.pool_waiting)))
      return true;
    if (http_owes(c)) return true;  // HTTP input left for lack of event room
    if (ws_owes(c)) return true;    // WebSocket input or WsOpen left for lack of event room
    if (quic_owes(c)) return true;  // QUIC events left for lack of event room
  }
  return false;
}

void Shard::end_batch() {
  ++epoch_;  // the app has seen this batch's events: flush() may close what it did not answer
  release_closed();
  recycle_rx();
  flush(false);
}

bool Shard::has_pending_work() {
  return drv_.work_pending() || emittable_pending() || handle_q_->pending();
}

int Shard::tick(int64_t timeout_ms) {
  ++epoch_;
  n_events_ = 0;
  gauges_.rx_ring.current = 0;
  release_closed();
  recycle_rx();
  drain_handle();  // commands pushed from other threads (cheap when empty)
  flush(true);  // may emit Writable / Disconnected events
  int64_t wait_ns = 0;
  if (n_events_ == 0 && timeout_ms != 0 && !emittable_pending()) {
    uint64_t d = timers_.next_deadline();
    int64_t t = timeout_ms;
    if (d != UINT64_MAX) {
      uint64_t now = now_ms();
      int64_t until = d > now ? static_cast<int64_t>(d - now) : 0;
      if (t < 0 || until < t) t = until;
    }
    wait_ns = t < 0 ? -1 : t * 1000000;
  }
  int r = drv_.submit_and_wait(wait_ns);
  if (r < 0 && r != -ETIME && r != -EINTR) return r;
  unsigned ready = drv_.cq_ready();
  if (ready > gauges_.completion_ring.peak) gauges_.completion_ring.peak = ready;
  gauges_.completion_ring.current = ready;
  // Stop while 2 event records remain free: one CQE produces at most one event, and a close
  // finalised during dispatch needs one more.
  drv_.reap([this](io_uring_cqe* cqe) {
    if (!room(2)) return false;
    handle_cqe(cqe);
    return true;
  });
  fire_timers();
  // Finalise closes whose last CQE arrived in this batch, so Disconnected is not a tick late.
  // QUIC connections that took packets (or timed out) in this batch: their events now, with
  // the room left (what does not fit waits for the next tick).
  bool quic = false;
  for (size_t i = 0; i < dirty_.size(); ++i) {
    Conn& c = conns_[dirty_[i]];
    if (c.state == ConnState::Open && c.quic) {
      quic_service(dirty_[i], true);
      quic = true;
    }
  }
  // Their packets (ACKs, handshake flights) leave now: a batch with no event for JS would
  // otherwise leave them prepared and unsubmitted until something else woke the shard.
  if (quic) drv_.submit();
  for (size_t i = 0; i < dirty_.size(); ++i) {
    Conn& c = conns_[dirty_[i]];
    if (c.state == ConnState::Closing) try_finalize(dirty_[i]);
  }
  update_pressure();
  gauges_.rx_ring.current = n_events_;
  if (n_events_ > gauges_.rx_ring.peak) gauges_.rx_ring.peak = n_events_;
  return static_cast<int>(n_events_);
}

void Shard::wait_for_slot(uint32_t index) {
  Conn& c = conns_[index];
  if (c.pool_waiting) return;
  c.pool_waiting = true;
  pool_waiters_.push_back(index);
}

void Shard::wake_pool_waiters() {
  if (pool_waiters_.empty() || pool_->free_count() == 0) return;
  for (uint32_t idx : pool_waiters_) {
    conns_[idx].pool_waiting = false;
    mark_dirty(idx);  // flush() emits Writable for it
  }
  pool_waiters_.clear();
}

}  // namespace zio

// native/shard/connect.cc — outbound connections: reserve, Happy Eyeballs attempts (RFC 8305),
// UDS connect, connect timeout, failures, and the connect completions.
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
#include <cstring>

namespace zio {

// An outbound TCP connection's peer address is the Happy Eyeballs candidate `a` (UDS keeps
// its path in addr from the start).
void keep_target(Conn& c, uint32_t a) {
  if (c.proto != kProtoTcp) return;
  c.addr_len = c.he_addr[a].sin6_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
  memcpy(&c.addr, &c.he_addr[a], c.addr_len);
}

int64_t Shard::conn_reserve(int32_t proto) {
  int64_t idx = alloc_conn();
  if (idx < 0) return idx;
  Conn& c = conns_[idx];
  c.state = ConnState::Resolving;
  c.proto = proto;
  return idx;
}

int Shard::conn_connect(uint32_t index, uint32_t gen, const sockaddr_in6* addrs, uint32_t count,
                        uint32_t attempt_delay_ms) {
  Conn* c = lookup(index, gen);
  if (!c) return kErrStaleId;
  if (c->state != ConnState::Resolving) return kErrClosing;
  if (count == 0) return -EINVAL;
  c->he_count = static_cast<uint8_t>(std::min<uint32_t>(count, kHeMax));
  memcpy(c->he_addr, addrs, sizeof(sockaddr_in6) * c->he_count);
  c->he_next = 0;
  c->he_pending = 0;
  c->he_delay_ms = attempt_delay_ms;
  c->state = ConnState::Connecting;
  start_attempt(index);
  drv_.submit();
  return 0;
}

void Shard::start_attempt(uint32_t index) {
  Conn& c = conns_[index];
  if (c.quic_race) {  // QUIC: the next address's attempt (quic_client.cc)
    quic_race_next(index);
    return;
  }
  while (c.he_next < c.he_count) {
    uint8_t a = c.he_next++;
    const sockaddr* sa = reinterpret_cast<const sockaddr*>(&c.he_addr[a]);
    socklen_t sl = sa->sa_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) { c.he_err = errno; continue; }
    c.he_fd[a] = fd;
    io_uring_sqe* sqe = drv_.get_sqe();
    io_uring_prep_connect(sqe, fd, sa, sl);
    io_uring_sqe_set_data64(sqe, ud_encode(kOpConnectBase + a, index, c.gen));
    ++c.inflight;
    ++c.he_pending;
    // RFC 8305 section 5: start the next attempt after the Connection Attempt Delay if this
    // one has not succeeded by then (or at once if it fails first, see on_connect).
    if (c.he_next < c.he_count) {
      if (c.timer != TimerWheel::kNone) timers_.cancel(c.timer);
      c.timer = timers_.add(now_ms() + c.he_delay_ms, kTimerHeNext, index, c.gen);
    }
    return;
  }
  if (c.he_pending == 0) begin_close(index, c.he_err ? c.he_err : ECONNREFUSED, kOriginError);
}

int Shard::conn_connect_uds(uint32_t index, uint32_t gen, const std::string& path) {
  Conn* c = lookup(index, gen);
  if (!c) return kErrStaleId;
  sockaddr_un* su = reinterpret_cast<sockaddr_un*>(&c->addr);
  if (path.size() >= sizeof su->sun_path) return -ENAMETOOLONG;
  su->sun_family = AF_UNIX;
  memcpy(su->sun_path, path.data(), path.size());
  su->sun_path[path.size()] = 0;
  c->addr_len = uds_len(*su, path.size());
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  c->he_count = 1;
  c->he_next = 1;
  c->he_fd[0] = fd;
  c->he_pending = 1;
  c->state = ConnState::Connecting;
  io_uring_sqe* sqe = drv_.get_sqe();
  io_uring_prep_connect(sqe, fd, reinterpret_cast<sockaddr*>(&c->addr), c->addr_len);
  io_uring_sqe_set_data64(sqe, ud_encode(kOpConnectBase, index, c->gen));
  ++c->inflight;
  drv_.submit();
  return 0;
}

int Shard::conn_set_connect_timeout(uint32_t index, uint32_t gen, uint32_t ms) {
  Conn* c = lookup(index, gen);
  if (!c) return kErrStaleId;
  if (c->state != ConnState::Resolving && c->state != ConnState::Connecting) return kErrClosing;
  if (c->connect_timer != TimerWheel::kNone) timers_.cancel(c->connect_timer);
  c->connect_timer = ms ? timers_.add(now_ms() + ms, kTimerConnect, index, c->gen) : TimerWheel::kNone;
  return 0;
}

int Shard::conn_fail(uint32_t index, uint32_t gen, int32_t code) {
  Conn* c = lookup(index, gen);
  if (!c) return kErrStaleId;
  if (c->state != ConnState::Resolving) return kErrClosing;
  begin_close(index, code, kOriginError);
  return 0;
}

void Shard::on_connect(uint32_t idx, uint32_t a, int res) {
  Conn& c = conns_[idx];
  --c.inflight;
  if (c.he_pending) --c.he_pending;
  int fd = c.he_fd[a];
  if (c.state == ConnState::Open || c.state == ConnState::Closing || res < 0) {
    // A loser, a late attempt, or a failure.
    if (fd >= 0) ::close(fd);
    c.he_fd[a] = -1;
    if (c.state != ConnState::Connecting) return;
    if (res != -ECANCELED) {
      c.he_err = -res;
      keep_target(c, a);  // the failed target, for the Disconnected reason
    }
    // RFC 8305 section 5: on failure start the next attempt at once.
    if (c.he_next < c.he_count) {
      if (c.timer != TimerWheel::kNone) { timers_.cancel(c.timer); c.timer = TimerWheel::kNone; }
      start_attempt(idx);
    } else if (c.he_pending == 0) {
      begin_close(idx, c.he_err ? c.he_err : ECONNREFUSED, kOriginError);
    }
    return;
  }
  // The winner. Cancel the others (their CQEs close their fds).
  c.fd = fd;
  if (c.connect_timer != TimerWheel::kNone) {
    timers_.cancel(c.connect_timer);
    c.connect_timer = TimerWheel::kNone;
  }
  keep_target(c, a);
  c.he_fd[a] = -1;
  if (c.timer != TimerWheel::kNone) { timers_.cancel(c.timer); c.timer = TimerWheel::kNone; }
  for (uint32_t o = 0; o < c.he_count; ++o)
    if (c.he_fd[o] >= 0) cancel_conn_fd(idx, c.he_fd[o]);
  c.state = ConnState::Open;
  c.opened = true;
  if (c.proto == kProtoTcp && cfg_.no_delay) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  if (rx_held(c)) c.need_rearm = true;  // pauseRecv() before the connect completed: kept
  else arm_recv(idx);
  ++counters_.conns_connected;
  if (c.tls) {
    // Connected follows the TLS handshake (tls_established); its ClientHello is queued already.
    if (c.tls_timeout_ms)
      c.timer = timers_.add(now_ms() + c.tls_timeout_ms, kTimerTlsHandshake, idx, c.gen);
    mark_dirty(idx);
    return;
  }
  emit(kEvConnected, idx, c.gen, c.proto, 0, 0, 0, -1);
  mark_dirty(idx);  // writes queued before the connect completed go out now
}

}  // namespace zio

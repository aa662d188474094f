// native/shard/endpoint.cc — listening endpoints: sockets, adoption, TCP/UDS listen, close.
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

// ------------------------------------------------------------------ endpoints

static int set_common_sockopts(int fd, bool reuse_port) {
  int one = 1;
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0) return -errno;
  if (reuse_port && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0) return -errno;
  return 0;
}

Endpoint& Shard::claim_endpoint(uint32_t ep, int fd, EpKind kind, int32_t proto) {
  Endpoint& e = endpoints_[ep];
  uint32_t gen = e.gen;  // the generation survives reuse: old ids stay stale
  e = Endpoint{};
  e.gen = gen;
  e.fd = fd;
  e.open = true;
  e.kind = kind;
  e.proto = proto;
  return e;
}

int64_t Shard::free_endpoint() const {
  for (uint32_t ep = 0; ep < endpoints_.size(); ++ep)
    if (!endpoints_[ep].open && endpoints_[ep].fd < 0) return ep;
  return kErrTableFull;
}

// Binds and listens on a fresh socket, then starts multishot accept. Returns the endpoint index
// or -errno (with *err_op naming the failing syscall); the socket is closed on failure.
int64_t Shard::open_endpoint(int family, const sockaddr* sa, socklen_t len, int backlog,
                             bool reuse_port, int32_t proto, const std::string& path,
                             const char** err_op) {
  int64_t ep = free_endpoint();
  if (ep < 0) return ep;
  int fd = listen_socket(sa, len, backlog, reuse_port, err_op);
  if (fd < 0) return fd;
  int64_t r = adopt_listener(fd, proto);
  if (r < 0) { *err_op = "listen"; ::close(fd); return r; }
  endpoints_[r].path = path;
  return r;
}

int64_t Shard::adopt_listener(int fd, int32_t proto) {
  int64_t ep = free_endpoint();
  if (ep < 0) return ep;
  int acc = 0;
  socklen_t al = sizeof acc;
  if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &al) < 0) return -errno;
  if (!acc) return -EINVAL;  // not a listening socket
  claim_endpoint(static_cast<uint32_t>(ep), fd, EpKind::Listener, proto);
  arm_accept(static_cast<uint32_t>(ep));
  drv_.submit();
  return ep;
}

int listen_socket(const sockaddr* sa, socklen_t len, int backlog, bool reuse_port,
                  const char** err_op) {
  int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) { *err_op = "socket"; return -errno; }
  int r = 0;
  if (sa->sa_family != AF_UNIX) {
    r = set_common_sockopts(fd, reuse_port);
    if (r < 0) { *err_op = "setsockopt"; ::close(fd); return r; }
    if (sa->sa_family == AF_INET6) {
      int off = 0;  // "[::]" accepts IPv4 too, as node:net does
      setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
    }
  }
  if (bind(fd, sa, len) < 0) { r = -errno; *err_op = "bind"; ::close(fd); return r; }
  if (listen(fd, backlog) < 0) { r = -errno; *err_op = "listen"; ::close(fd); return r; }
  return fd;
}

int64_t Shard::tcp_listen(const sockaddr* sa, socklen_t len, int backlog, bool reuse_port,
                          const char** err_op) {
  return open_endpoint(sa->sa_family, sa, len, backlog, reuse_port, kProtoTcp, std::string(),
                       err_op);
}

// The address length of a Unix socket path: a file path to the end of the struct (as
// node:net), an abstract name ('\0name') exactly: the kernel compares abstract names over the
// length given, and ss(8), socat and libuv >= 1.48 (Node 22) use the exact length.
socklen_t uds_len(const sockaddr_un& su, size_t path_len) {
  return su.sun_path[0] == 0 ? static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path_len)
                             : static_cast<socklen_t>(sizeof(sockaddr_un));
}

int64_t Shard::uds_listen(const std::string& path, int backlog, const char** err_op) {
  sockaddr_un su{};
  su.sun_family = AF_UNIX;
  if (path.size() >= sizeof su.sun_path) { *err_op = "bind"; return -ENAMETOOLONG; }
  memcpy(su.sun_path, path.data(), path.size());
  return open_endpoint(AF_UNIX, reinterpret_cast<sockaddr*>(&su), uds_len(su, path.size()), backlog,
                       false, kProtoUds, path, err_op);
}

int Shard::endpoint_local(uint32_t index, uint32_t gen, sockaddr_storage* out, socklen_t* len) {
  if (index >= endpoints_.size() || endpoints_[index].gen != gen || !endpoints_[index].open)
    return kErrStaleId;
  if (endpoints_[index].closing) return kErrClosing;  // the id is over from closeEndpoint() on
  *len = sizeof *out;
  return getsockname(endpoints_[index].fd, reinterpret_cast<sockaddr*>(out), len) < 0 ? -errno : 0;
}

int Shard::endpoint_close(uint32_t index, uint32_t gen) {
  if (index >= endpoints_.size()) return kErrStaleId;
  Endpoint& e = endpoints_[index];
  if (e.gen != gen || !e.open) return kErrStaleId;
  if (e.closing) return kErrClosing;
  if (e.quic) {
    // Its connections' CONNECTION_CLOSE packets go out first (submitted now: a shutdown socket
    // would fail them with EPIPE; the cancel below ends the multishot recv by itself).
    quic_endpoint_closing(index);
    drv_.submit();
  }
  e.closing = true;
  if (e.timer != TimerWheel::kNone) { timers_.cancel(e.timer); e.timer = TimerWheel::kNone; }
  // shutdown() wakes the pending multishot accept with an error; the fd closes after its
  // final CQE (DESIGN.md: close after the last CQE).
  if (!e.quic) ::shutdown(e.fd, SHUT_RDWR);
  io_uring_sqe* sqe = drv_.get_sqe();
  io_uring_prep_cancel_fd(sqe, e.fd, IORING_ASYNC_CANCEL_ALL);
  io_uring_sqe_set_data64(sqe, ud_encode(kOpCancel, index | 0x80000000u, e.gen));
  ++e.inflight;
  drv_.submit();
  return 0;
}

}  // namespace zio

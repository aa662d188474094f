#include "driver/epoll.h"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace zio {

namespace {
// epoll_event.data for the driver's own fds (socket fds are small non-negative ints).
constexpr uint64_t kTagTimer = 1ull << 40, kTagWake = 2ull << 40;
constexpr uint32_t kMaxEvents = 256;
// A multishot op takes at most this many results per readiness report before other fds get
// their turn (io_uring's multishot retry is bounded the same way).
constexpr int kBurst = 32;

uint64_t mono_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

void set_nonblock(int fd) {
  int fl = fcntl(fd, F_GETFL);
  if (fl >= 0 && !(fl & O_NONBLOCK)) fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}
}  // namespace

EpollDriver::~EpollDriver() {
  if (ep_ >= 0) close(ep_);
  if (timer_fd_ >= 0) close(timer_fd_);
  if (wake_fd_ >= 0) close(wake_fd_);
}

int EpollDriver::init(uint32_t sq_entries, std::string* err) {
  ep_ = epoll_create1(EPOLL_CLOEXEC);
  if (ep_ < 0) {
    int e = errno;
    *err = std::string("epoll_create1() failed: ") + strerror(e);
    return -e;
  }
  timer_fd_ = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
  wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (timer_fd_ < 0 || wake_fd_ < 0) {
    int e = errno;
    *err = std::string("timerfd_create()/eventfd() failed: ") + strerror(e);
    return -e;
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kTagTimer;
  if (epoll_ctl(ep_, EPOLL_CTL_ADD, timer_fd_, &ev) < 0) {
    int e = errno;
    *err = std::string("epoll_ctl(timerfd) failed: ") + strerror(e);
    return -e;
  }
  ev.data.u64 = kTagWake;
  if (epoll_ctl(ep_, EPOLL_CTL_ADD, wake_fd_, &ev) < 0) {
    int e = errno;
    *err = std::string("epoll_ctl(eventfd) failed: ") + strerror(e);
    return -e;
  }
  stage_.resize(sq_entries ? sq_entries : 64);
  cq_.reserve(1024);
  evs_.resize(kMaxEvents);
  return 0;
}

int EpollDriver::setup_buf_ring(uint32_t entries, uint16_t bgid, std::string* err) {
  if (bgid >= kGroups || entries == 0 || (entries & (entries - 1))) {
    *err = "buffer ring: group out of range or entries not a power of two";
    return -EINVAL;
  }
  groups_[bgid].bufs.assign(entries, Buf{nullptr, 0, 0});
  groups_[bgid].mask = entries - 1;
  return 0;
}

io_uring_sqe* EpollDriver::get_sqe() {
  if (staged_ == stage_.size()) submit();
  io_uring_sqe* s = &stage_[staged_++];
  memset(s, 0, sizeof *s);
  return s;
}

void EpollDriver::post(uint64_t ud, int32_t res, uint32_t flags) {
  io_uring_cqe c{};
  c.user_data = ud;
  c.res = res;
  c.flags = flags;
  cq_.push_back(c);
}

void EpollDriver::signal() {
  // A completion posted outside epoll_wait (an inline send, a NOP kick) while the owner sleeps
  // on poll_fd(): make that fd readable. Elided while the owner is awake (signals off).
  if (!signals_ || signaled_ || in_wait_ || cq_head_ == cq_.size()) return;
  uint64_t one = 1;
  ssize_t r = write(wake_fd_, &one, sizeof one);
  (void)r;
  signaled_ = true;
}

int EpollDriver::submit() {
  ++submits;
  // start() may post completions and stage nothing itself, so the stage is stable here.
  uint32_t n = staged_;
  staged_ = 0;
  for (uint32_t i = 0; i < n; ++i) start(stage_[i]);
  signal();
  return static_cast<int>(n);
}

EpollDriver::FdOps& EpollDriver::fd_ops(int fd) {
  if (static_cast<size_t>(fd) >= fds_.size()) fds_.resize(static_cast<size_t>(fd) + 64);
  return fds_[fd];
}

void EpollDriver::update_interest(int fd) {
  FdOps& f = fds_[fd];
  uint32_t want = (f.rd.empty() ? 0u : uint32_t{EPOLLIN}) | (f.wr.empty() ? 0u : uint32_t{EPOLLOUT});
  if (want == f.registered) return;
  ++ctl_calls;
  if (want == 0) {
    // Out of the set while idle: a hung-up socket with nothing pending must not spin the loop.
    epoll_ctl(ep_, EPOLL_CTL_DEL, fd, nullptr);
    f.registered = 0;
    return;
  }
  epoll_event ev{};
  ev.events = want;
  ev.data.u64 = static_cast<uint64_t>(fd);
  int r;
  if (f.registered) {
    r = epoll_ctl(ep_, EPOLL_CTL_MOD, fd, &ev);
    // The fd number was closed (which drops it from the set) and reused since.
    if (r < 0 && errno == ENOENT) r = epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev);
  } else {
    r = epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev);
    if (r < 0 && errno == EEXIST) r = epoll_ctl(ep_, EPOLL_CTL_MOD, fd, &ev);
  }
  if (r < 0) {
    // Not pollable (or closed): fail every pending op rather than leave it hanging.
    int e = errno;
    f.registered = 0;
    for (Op& op : f.rd) post(op.ud, -e, 0);
    for (Op& op : f.wr) post(op.ud, -e, 0);
    f.rd.clear();
    f.wr.clear();
    return;
  }
  f.registered = want;
}

void EpollDriver::start(const io_uring_sqe& s) {
  Op op{};
  op.ud = s.user_data;
  op.opcode = s.opcode;
  op.fd = s.fd;
  op.addr = s.addr;
  op.len = s.len;
  if ((s.opcode == IORING_OP_RECV || s.opcode == IORING_OP_RECVMSG) && s.buf_group >= kGroups) {
    post(op.ud, -EINVAL, 0);
    return;
  }
  switch (s.opcode) {
    case IORING_OP_NOP:
      post(op.ud, 0, 0);
      return;
    case IORING_OP_TIMEOUT: {
      auto* ts = reinterpret_cast<const __kernel_timespec*>(s.addr);
      uint64_t rel = static_cast<uint64_t>(ts->tv_sec) * 1000000000ull + static_cast<uint64_t>(ts->tv_nsec);
      timeouts_.push_back(Timeout{mono_ns() + rel, op.ud});
      arm_timerfd();
      return;
    }
    case IORING_OP_ASYNC_CANCEL: {
      uint32_t n = (s.cancel_flags & IORING_ASYNC_CANCEL_ANY) && !(s.cancel_flags & IORING_ASYNC_CANCEL_FD)
                       ? cancel_all()
                   : s.cancel_flags & IORING_ASYNC_CANCEL_FD ? cancel_fd(s.fd)
                                                             : cancel_ud(s.fd, s.addr);
      post(op.ud, n ? static_cast<int32_t>(n) : -ENOENT, 0);
      return;
    }
    case IORING_OP_ACCEPT:
      op.multishot = s.ioprio & IORING_ACCEPT_MULTISHOT;
      op.flags = s.accept_flags | SOCK_NONBLOCK;
      set_nonblock(op.fd);
      break;
    case IORING_OP_RECV:
      op.multishot = s.ioprio & IORING_RECV_MULTISHOT;
      op.flags = s.msg_flags;
      if (!(s.flags & IOSQE_BUFFER_SELECT)) { post(op.ud, -EINVAL, 0); return; }  // unused shape
      op.group = s.buf_group;
      break;
    case IORING_OP_RECVMSG:
      op.multishot = s.ioprio & IORING_RECV_MULTISHOT;
      op.flags = s.msg_flags;
      if (!(s.flags & IOSQE_BUFFER_SELECT)) { post(op.ud, -EINVAL, 0); return; }
      op.group = s.buf_group;
      break;
    case IORING_OP_READ:
      break;
    case IORING_OP_SEND:
    case IORING_OP_SENDMSG:
      op.flags = s.msg_flags;
      break;
    case IORING_OP_CONNECT: {
      op.len = static_cast<uint32_t>(s.off);
      set_nonblock(op.fd);
      int r = connect(op.fd, reinterpret_cast<const sockaddr*>(op.addr), op.len);
      if (r == 0) { post(op.ud, 0, 0); return; }
      if (errno != EINPROGRESS && errno != EAGAIN) { post(op.ud, -errno, 0); return; }
      FdOps& f = fd_ops(op.fd);
      f.wr.push_back(op);
      update_interest(op.fd);
      return;
    }
    default:
      post(op.ud, -EOPNOTSUPP, 0);
      return;
  }
  if (op.fd < 0) { post(op.ud, -EBADF, 0); return; }
  FdOps& f = fd_ops(op.fd);
  if (op.opcode == IORING_OP_SEND || op.opcode == IORING_OP_SENDMSG) {
    // Issue inline when nothing is queued ahead (order is kept per fd).
    if (f.wr.empty() && try_write(op)) return;
    f.wr.push_back(op);
  } else {
    f.rd.push_back(op);
  }
  update_interest(op.fd);
}

bool EpollDriver::try_write(Op& op) {
  ++syscalls;
  ssize_t n;
  if (op.opcode == IORING_OP_CONNECT) {
    int err = 0;
    socklen_t l = sizeof err;
    if (getsockopt(op.fd, SOL_SOCKET, SO_ERROR, &err, &l) < 0) err = errno;
    if (err == EINPROGRESS || err == EALREADY) return false;
    post(op.ud, -err, 0);
    return true;
  }
  if (op.opcode == IORING_OP_SEND)
    n = send(op.fd, reinterpret_cast<const void*>(op.addr), op.len, static_cast<int>(op.flags) | MSG_DONTWAIT);
  else
    n = sendmsg(op.fd, reinterpret_cast<const msghdr*>(op.addr), static_cast<int>(op.flags) | MSG_DONTWAIT);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return false;
  if (n < 0 && errno == EINTR) return false;
  post(op.ud, n < 0 ? -errno : static_cast<int32_t>(n), 0);
  return true;
}

void EpollDriver::run_writes(int fd, FdOps& f) {
  size_t done = 0;
  while (done < f.wr.size()) {
    if (f.wr[done].opcode == IORING_OP_CONNECT) {
      // EPOLLOUT on a connecting socket: the attempt finished (SO_ERROR says how).
      if (!try_write(f.wr[done])) break;
    } else if (!try_write(f.wr[done])) {
      break;
    }
    ++done;
  }
  if (done) f.wr.erase(f.wr.begin(), f.wr.begin() + static_cast<long>(done));
}

void EpollDriver::run_reads(int fd, FdOps& f) {
  size_t i = 0;
  while (i < f.rd.size()) {
    Op& op = f.rd[i];
    bool finished = false;  // the op posted its final completion
    for (int burst = 0; burst < kBurst && !finished; ++burst) {
      ++syscalls;
      if (op.opcode == IORING_OP_ACCEPT) {
        int nfd = accept4(fd, nullptr, nullptr, static_cast<int>(op.flags));
        if (nfd < 0) {
          int e = errno;
          if (e == EAGAIN || e == EWOULDBLOCK) break;
          if (e == EINTR || e == ECONNABORTED) continue;
          post(op.ud, -e, 0);
          finished = true;
          break;
        }
        post(op.ud, nfd, op.multishot ? IORING_CQE_F_MORE : 0);
        if (!op.multishot) finished = true;
        continue;
      }
      if (op.opcode == IORING_OP_READ) {
        ssize_t n = read(fd, reinterpret_cast<void*>(op.addr), op.len);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) break;
        post(op.ud, n < 0 ? -errno : static_cast<int32_t>(n), 0);
        finished = true;
        break;
      }
      // RECV / RECVMSG with a provided buffer (the shard always selects one).
      Group& g = groups_[op.group];
      if (g.head == g.tail) {
        post(op.ud, -ENOBUFS, 0);  // like the kernel: the multishot op ends, the shard re-arms
        finished = true;
        break;
      }
      Buf& b = g.bufs[g.head & g.mask];
      uint32_t cqe_flags = IORING_CQE_F_BUFFER | (static_cast<uint32_t>(b.bid) << IORING_CQE_BUFFER_SHIFT);
      int32_t res;
      if (op.opcode == IORING_OP_RECV) {
        ssize_t n = recv(fd, b.addr, b.len, static_cast<int>(op.flags) | MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) break;
        if (n <= 0) {  // EOF or error: no buffer consumed, the op ends
          post(op.ud, n == 0 ? 0 : -errno, 0);
          finished = true;
          break;
        }
        res = static_cast<int32_t>(n);
        ++g.head;
        bool short_read = static_cast<uint32_t>(n) < b.len;
        post(op.ud, res, cqe_flags | (op.multishot ? IORING_CQE_F_MORE : 0));
        if (!op.multishot) { finished = true; break; }
        if (short_read) break;  // most likely drained: let epoll say when there is more
        continue;
      }
      // RECVMSG: the kernel's multishot layout, io_uring_recvmsg_out | name | control | payload.
      const msghdr* tmpl = reinterpret_cast<const msghdr*>(op.addr);
      uint32_t hdr = static_cast<uint32_t>(sizeof(io_uring_recvmsg_out) + tmpl->msg_namelen + tmpl->msg_controllen);
      if (b.len < hdr) {
        post(op.ud, -EINVAL, 0);
        finished = true;
        break;
      }
      auto* out = reinterpret_cast<io_uring_recvmsg_out*>(b.addr);
      msghdr m{};
      iovec iov{b.addr + hdr, b.len - hdr};
      m.msg_name = tmpl->msg_namelen ? b.addr + sizeof *out : nullptr;
      m.msg_namelen = tmpl->msg_namelen;
      m.msg_control = tmpl->msg_controllen ? b.addr + sizeof *out + tmpl->msg_namelen : nullptr;
      m.msg_controllen = tmpl->msg_controllen;
      m.msg_iov = &iov;
      m.msg_iovlen = 1;
      ssize_t n = recvmsg(fd, &m, static_cast<int>(op.flags) | MSG_DONTWAIT | MSG_TRUNC);
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) break;
      if (n < 0) {
        post(op.ud, -errno, 0);
        finished = true;
        break;
      }
      out->namelen = m.msg_namelen;
      out->controllen = static_cast<uint32_t>(m.msg_controllen);
      out->payloadlen = static_cast<uint32_t>(n);
      out->flags = static_cast<uint32_t>(m.msg_flags);
      uint32_t copied = static_cast<uint32_t>(n) < iov.iov_len ? static_cast<uint32_t>(n) : static_cast<uint32_t>(iov.iov_len);
      ++g.head;
      post(op.ud, static_cast<int32_t>(hdr + copied), cqe_flags | (op.multishot ? IORING_CQE_F_MORE : 0));
      if (!op.multishot) { finished = true; break; }
    }
    if (finished) {
      f.rd.erase(f.rd.begin() + static_cast<long>(i));
    } else {
      ++i;
    }
  }
}

void EpollDriver::on_ready(int fd, uint32_t events) {
  if (static_cast<size_t>(fd) >= fds_.size()) {
    epoll_ctl(ep_, EPOLL_CTL_DEL, fd, nullptr);
    return;
  }
  FdOps& f = fds_[fd];
  bool err = events & (EPOLLERR | EPOLLHUP);
  if (!f.wr.empty() && (events & EPOLLOUT || err)) run_writes(fd, f);
  if (!f.rd.empty() && (events & (EPOLLIN | EPOLLRDHUP) || err)) run_reads(fd, f);
  update_interest(fd);
}

uint32_t EpollDriver::cancel_fd(int fd) {
  if (fd < 0 || static_cast<size_t>(fd) >= fds_.size()) return 0;
  FdOps& f = fds_[fd];
  uint32_t n = 0;
  for (Op& op : f.rd) { post(op.ud, -ECANCELED, 0); ++n; }
  for (Op& op : f.wr) { post(op.ud, -ECANCELED, 0); ++n; }
  f.rd.clear();
  f.wr.clear();
  update_interest(fd);
  return n;
}

uint32_t EpollDriver::cancel_ud(int fd, uint64_t ud) {
  if (fd < 0 || static_cast<size_t>(fd) >= fds_.size()) return 0;
  FdOps& f = fds_[fd];
  for (auto* list : {&f.rd, &f.wr}) {
    for (auto it = list->begin(); it != list->end(); ++it) {
      if (it->ud != ud) continue;
      post(ud, -ECANCELED, 0);
      list->erase(it);
      update_interest(fd);
      return 1;
    }
  }
  return 0;
}

uint32_t EpollDriver::cancel_all() {
  uint32_t n = 0;
  for (size_t fd = 0; fd < fds_.size(); ++fd)
    if (!fds_[fd].rd.empty() || !fds_[fd].wr.empty()) n += cancel_fd(static_cast<int>(fd));
  for (const Timeout& t : timeouts_) { post(t.ud, -ECANCELED, 0); ++n; }
  timeouts_.clear();
  return n;
}

void EpollDriver::arm_timerfd() {
  uint64_t next = UINT64_MAX;
  for (const Timeout& t : timeouts_) next = t.deadline_ns < next ? t.deadline_ns : next;
  if (next == timerfd_deadline_) return;
  itimerspec its{};
  if (next != UINT64_MAX) {
    its.it_value.tv_sec = static_cast<time_t>(next / 1000000000ull);
    its.it_value.tv_nsec = static_cast<long>(next % 1000000000ull);
  }
  timerfd_settime(timer_fd_, TFD_TIMER_ABSTIME, &its, nullptr);  // zero disarms
  timerfd_deadline_ = next;
}

void EpollDriver::fire_timeouts() {
  uint64_t now = mono_ns();
  size_t j = 0;
  for (size_t i = 0; i < timeouts_.size(); ++i) {
    if (timeouts_[i].deadline_ns <= now) {
      post(timeouts_[i].ud, -ETIME, 0);
    } else {
      timeouts_[j++] = timeouts_[i];
    }
  }
  timeouts_.resize(j);
  arm_timerfd();
}

int EpollDriver::submit_and_wait(int64_t timeout_ns) {
  in_wait_ = true;  // the caller reaps right after: completions posted now need no wake-up
  submit();
  // Enough completions already wait for the shard (it reaps at most an event ring's worth per
  // tick): do not poll for more, so the completion backlog stays bounded like a ring's CQ.
  if (cq_.size() - cq_head_ >= kMaxEvents) {
    in_wait_ = false;
    return 0;
  }
  ++waits;
  int ms;
  if (cq_head_ < cq_.size() || timeout_ns == 0) {
    ms = 0;
  } else if (timeout_ns < 0) {
    ms = -1;
  } else {
    int64_t m = (timeout_ns + 999999) / 1000000;  // round up: never wake early and spin
    ms = m > 0x7fffffff ? 0x7fffffff : static_cast<int>(m);
  }
  int n = epoll_wait(ep_, evs_.data(), static_cast<int>(evs_.size()), ms);
  if (n < 0) {
    in_wait_ = false;
    return errno == EINTR ? 0 : -errno;
  }
  for (int i = 0; i < n; ++i) {
    uint64_t tag = evs_[i].data.u64;
    if (tag == kTagTimer) {
      uint64_t v;
      ssize_t r = read(timer_fd_, &v, sizeof v);
      (void)r;
      timerfd_deadline_ = 0;  // fired: re-armed by fire_timeouts for what is left
      fire_timeouts();
    } else if (tag == kTagWake) {
      uint64_t v;
      ssize_t r = read(wake_fd_, &v, sizeof v);
      (void)r;
      signaled_ = false;
    } else {
      on_ready(static_cast<int>(tag), evs_[i].events);
    }
  }
  in_wait_ = false;  // due timeouts were fired above, when the timerfd reported them
  return 0;
}

}  // namespace zio

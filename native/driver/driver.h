// native/driver/driver.h — the driver interface the shard talks to: io_uring (Ring) or epoll
// (EpollDriver), chosen once per shard. Both take the same operation records (io_uring_sqe,
// filled by liburing's io_uring_prep_* helpers) and hand back the same completion records, so
// the shard's state machines do not know which backend runs them.
//
// The branch on the backend is one well-predicted test per call; the io_uring path stays inline.
#pragma once
#include <memory>
#include <string>

#include "driver/epoll.h"
#include "driver/uring.h"

namespace zio {

enum class Backend : uint8_t { Auto = 0, IoUring = 1, Epoll = 2 };
inline const char* backend_name(Backend b) { return b == Backend::Epoll ? "epoll" : "io_uring"; }

class Driver {
 public:
  // Backend::Epoll: epoll; otherwise the io_uring ring. 0 or -errno (+ *err).
  int init(Backend b, const RingOptions& opt, const UringProbe& probe, std::string* err) {
    if (b == Backend::Epoll) {
      ep_ = std::make_unique<EpollDriver>();
      return ep_->init(opt.sq_entries, err);
    }
    return ring_.init(opt, probe, err);
  }
  Backend backend() const { return ep_ ? Backend::Epoll : Backend::IoUring; }
  bool is_epoll() const { return ep_ != nullptr; }

  io_uring_sqe* get_sqe() { return __builtin_expect(ep_ != nullptr, 0) ? ep_->get_sqe() : ring_.get_sqe(); }
  int submit() { return ep_ ? ep_->submit() : ring_.submit(); }
  int submit_and_wait(int64_t timeout_ns) {
    return ep_ ? ep_->submit_and_wait(timeout_ns) : ring_.submit_and_wait(timeout_ns);
  }
  uint32_t cq_ready() { return ep_ ? ep_->cq_ready() : io_uring_cq_ready(ring_.raw()); }
  // Hands completions to f (io_uring_cqe*) until f returns false; returns how many were taken.
  template <class F>
  uint32_t reap(F&& f) {
    if (ep_) return ep_->reap(f);
    io_uring_cqe* cqe;
    unsigned head, seen = 0;
    io_uring_for_each_cqe(ring_.raw(), head, cqe) {
      if (!f(cqe)) break;
      ++seen;
    }
    io_uring_cq_advance(ring_.raw(), seen);
    return seen;
  }
  bool work_pending() { return ep_ ? ep_->work_pending() : ring_.work_pending(); }

  // The fd an event loop watches, and whether it is the wake eventfd (DEFER_TASKRUN rings)
  // rather than the ring / epoll fd itself.
  bool deferred() const { return !ep_ && ring_.deferred(); }
  int poll_fd() const { return ep_ ? ep_->poll_fd() : ring_.deferred() ? ring_.wake_fd() : ring_.ring_fd(); }
  int wake_fd() const { return ring_.wake_fd(); }
  int enable_eventfd(std::string* err) { return ep_ ? 0 : ring_.enable_eventfd(err); }
  void drain_eventfd() { if (!ep_) ring_.drain_eventfd(); }
  void eventfd_signals(bool on) {
    if (ep_) ep_->signals(on);
    else ring_.eventfd_signals(on);
  }
  uint32_t setup_flags() const { return ep_ ? 0 : ring_.setup_flags(); }

  // Provided buffers: group 0 holds the RX slots, group 1 the UDP GRO buffers.
  int setup_buf_ring(uint32_t entries, uint16_t bgid, std::string* err) {
    return ep_ ? ep_->setup_buf_ring(entries, bgid, err) : ring_.setup_buf_ring(entries, bgid, err);
  }
  void buf_add(void* addr, uint32_t len, uint16_t bid, uint16_t bgid = 0) {
    if (ep_) ep_->buf_add(addr, len, bid, bgid);
    else ring_.buf_add(addr, len, bid, bgid);
  }
  void buf_commit(uint16_t bgid = 0) {
    if (ep_) ep_->buf_commit(bgid);
    else ring_.buf_commit(bgid);
  }

  const Ring& ring() const { return ring_; }
  const EpollDriver* epoll() const { return ep_.get(); }

 private:
  Ring ring_;
  std::unique_ptr<EpollDriver> ep_;
};

}  // namespace zio

// native/driver/epoll.h — the epoll backend (tier 1): carries out the driver's operations with
// readiness notification and non-blocking syscalls, and posts their completions in the same
// shape io_uring would. Knows nothing about protocols.
//
// Why this shape (docs/architecture/0007-epoll-backend.md): the shard's state machines speak
// "submit an operation, receive its completion" (user_data, res, flags). Keeping that contract
// for both backends means one shard, one set of tests, and no second copy of any protocol
// machine. This backend accepts exactly the operations the shard submits:
//
//   NOP, TIMEOUT (relative, count 0), ASYNC_CANCEL (by fd with CANCEL_ALL, CANCEL_ANY, or by
//   user_data with the op's fd in sqe->fd as a hint — io_uring ignores it there),
//   ACCEPT (multishot), RECV (multishot, buffer select), RECVMSG (multishot, buffer select,
//   io_uring_recvmsg_out layout), READ, SEND, SENDMSG, CONNECT.
//
// Completions follow io_uring's rules: a multishot op posts IORING_CQE_F_MORE while it stays
// armed and ends with a CQE without it (error, EOF, -ENOBUFS, -ECANCELED); a buffer-select
// completion carries IORING_CQE_F_BUFFER and the buffer id; cancelled ops post -ECANCELED before
// the cancel's own CQE (the number cancelled, or -ENOENT).
//
// Readiness is level-triggered; an fd is in the epoll set only while it has a pending op, so a
// peer's hang-up cannot spin the loop. Sends run at submit (like io_uring's inline issue) and
// wait for EPOLLOUT only when the socket buffer is full; reads wait for EPOLLIN.
#pragma once
#include <liburing.h>  // io_uring_sqe / io_uring_cqe: the operation and completion records
#include <sys/epoll.h>

#include <cstdint>
#include <string>
#include <vector>

namespace zio {

class EpollDriver {
 public:
  EpollDriver() = default;
  ~EpollDriver();
  EpollDriver(const EpollDriver&) = delete;
  EpollDriver& operator=(const EpollDriver&) = delete;

  int init(uint32_t sq_entries, std::string* err);  // 0 or -errno
  // The fd a event loop watches: readable when a socket with a pending op is ready, a timeout
  // is due, or a completion was posted while signals were on.
  int poll_fd() const { return ep_; }

  io_uring_sqe* get_sqe();  // never null: processes staged ops when the stage is full
  int submit();
  int submit_and_wait(int64_t timeout_ns);
  uint32_t cq_ready() const { return static_cast<uint32_t>(cq_.size() - cq_head_); }
  // Hands each completion (a copy: handlers may post more) to f until f returns false.
  template <class F>
  uint32_t reap(F&& f) {
    uint32_t seen = 0;
    while (cq_head_ < cq_.size()) {
      io_uring_cqe c = cq_[cq_head_];
      if (!f(&c)) break;
      ++cq_head_;
      ++seen;
    }
    if (cq_head_ == cq_.size()) { cq_.clear(); cq_head_ = 0; }
    return seen;
  }
  bool work_pending() const { return cq_head_ < cq_.size(); }
  void signals(bool on) { signals_ = on; }

  static constexpr int kGroups = 2;  // as Ring: 0 RX slots, 1 UDP GRO buffers
  int setup_buf_ring(uint32_t entries, uint16_t bgid, std::string* err);
  void buf_add(void* addr, uint32_t len, uint16_t bid, uint16_t bgid = 0) {
    Group& g = groups_[bgid];
    Buf& b = g.bufs[(g.tail + g.pending++) & g.mask];
    b.addr = static_cast<uint8_t*>(addr);
    b.len = len;
    b.bid = bid;
  }
  void buf_commit(uint16_t bgid = 0) {
    Group& g = groups_[bgid];
    g.tail += g.pending;
    g.pending = 0;
  }

  uint64_t submits = 0, waits = 0, ctl_calls = 0, syscalls = 0;

 private:
  struct Buf { uint8_t* addr; uint32_t len; uint16_t bid; };
  struct Op {
    uint64_t ud;
    uint8_t opcode;
    bool multishot;
    int fd;
    uint64_t addr;   // buffer, msghdr*, or sockaddr*
    uint32_t len;    // buffer length or socklen
    uint32_t flags;  // msg_flags / accept flags
    uint16_t group;  // provided-buffer group (RECV / RECVMSG)
  };
  struct FdOps {
    std::vector<Op> rd, wr;  // FIFO each; the shard keeps at most a few per fd
    uint32_t registered = 0;  // events in the epoll set (0: not in it)
  };
  struct Timeout { uint64_t deadline_ns; uint64_t ud; };

  void start(const io_uring_sqe& s);
  void post(uint64_t ud, int32_t res, uint32_t flags);
  FdOps& fd_ops(int fd);
  void update_interest(int fd);
  void on_ready(int fd, uint32_t events);
  void run_reads(int fd, FdOps& f);
  void run_writes(int fd, FdOps& f);
  // One attempt at a write-side op: true when it completed (posted), false on EAGAIN.
  bool try_write(Op& op);
  uint32_t cancel_fd(int fd);
  uint32_t cancel_ud(int fd, uint64_t ud);  // the op with this user_data on fd
  uint32_t cancel_all();
  void fire_timeouts();
  void arm_timerfd();
  void signal();

  int ep_ = -1, timer_fd_ = -1, wake_fd_ = -1;
  std::vector<io_uring_sqe> stage_;
  uint32_t staged_ = 0;
  std::vector<io_uring_cqe> cq_;
  size_t cq_head_ = 0;
  std::vector<FdOps> fds_;
  std::vector<Timeout> timeouts_;
  uint64_t timerfd_deadline_ = 0;
  struct Group {  // a FIFO of provided buffers, consumed in the order they were added
    std::vector<Buf> bufs;
    uint32_t mask = 0, head = 0, tail = 0, pending = 0;
  };
  Group groups_[kGroups];
  bool signals_ = true, signaled_ = false, in_wait_ = false;
  std::vector<epoll_event> evs_;
};

}  // namespace zio

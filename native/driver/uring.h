// native/driver/uring.h — the io_uring driver (tier 1): ring setup, runtime probe, provided
// buffer ring, eventfd wake, and SQE helpers. Knows nothing about protocols.
//
// Rules (DESIGN.md section 3):
// - Probe at run time, never at build time: setup flags, opcodes and kernel version.
// - CQ sized 8x SQ; get_sqe() submits and retries when the SQ is full.
// - user_data = (op:8 | gen:24 | index:32): a stale completion only touches its own resources.
#pragma once
#include <liburing.h>

#include <cstdint>
#include <string>

namespace zio {

struct KernelVersion { uint32_t major = 0, minor = 0, patch = 0; };
KernelVersion kernel_version();
bool kernel_at_least(const KernelVersion& v, uint32_t major, uint32_t minor);

// What the running kernel offers. Filled by probe_uring(); cheap enough to call once per shard.
struct UringProbe {
  KernelVersion kernel;
  int setup_errno = 0;          // io_uring_setup failure (EPERM/ENOSYS: blocked or disabled)
  bool available = false;       // a ring could be created at all
  bool single_issuer = false;   // IORING_SETUP_SINGLE_ISSUER (6.0)
  bool defer_taskrun = false;   // IORING_SETUP_DEFER_TASKRUN (6.1)
  bool coop_taskrun = false;    // IORING_SETUP_COOP_TASKRUN (5.19)
  bool buf_ring = false;        // IORING_REGISTER_PBUF_RING (5.19)
  bool multishot_accept = false;  // 5.19
  bool multishot_recv = false;    // 6.0
  bool ops_ok = false;          // ACCEPT, RECV, SENDMSG, CONNECT, TIMEOUT, ASYNC_CANCEL present
  int io_uring_disabled = -1;   // /proc/sys/kernel/io_uring_disabled, -1 when absent
};
void probe_uring(UringProbe* out);

// The minimum this driver needs: multishot recv with a provided buffer ring.
constexpr uint32_t kRequiredMajor = 6, kRequiredMinor = 0;

enum Op : uint8_t {
  kOpNone = 0, kOpAccept, kOpRecv, kOpSend, kOpCancel, kOpTimeout, kOpUdpRecv, kOpUdpSend, kOpHandleWake,
  kOpUdpRecvGro,  // a UDP recvmsg into the GRO buffer group
  // connect attempts use 16 + attempt index (shard.cc kOpConnectBase)
};
inline uint64_t ud_encode(uint8_t op, uint32_t index, uint32_t gen) {
  return (static_cast<uint64_t>(op) << 56) | (static_cast<uint64_t>(gen & 0xffffff) << 32) | index;
}
inline uint8_t ud_op(uint64_t ud) { return static_cast<uint8_t>(ud >> 56); }
inline uint32_t ud_gen(uint64_t ud) { return static_cast<uint32_t>(ud >> 32) & 0xffffff; }
inline uint32_t ud_index(uint64_t ud) { return static_cast<uint32_t>(ud); }

struct RingOptions {
  uint32_t sq_entries = 1024;
  uint32_t cq_factor = 8;
  bool defer_taskrun = true;   // used when the probe says the kernel has it
};

class Ring {
 public:
  Ring() = default;
  ~Ring();
  Ring(const Ring&) = delete;
  Ring& operator=(const Ring&) = delete;

  // Creates the ring with the best flags the probe allows. 0 or -errno (+ *err).
  int init(const RingOptions& opt, const UringProbe& probe, std::string* err);
  io_uring* raw() { return &ring_; }
  // DEFER_TASKRUN rings wake us through the eventfd (their fd does not poll readable for pending
  // local work); COOP_TASKRUN rings are watched directly (readable while the CQ is non-empty).
  bool deferred() const { return flags_ & IORING_SETUP_DEFER_TASKRUN; }
  int ring_fd() const { return ring_.ring_fd; }
  uint32_t setup_flags() const { return flags_; }

  // Never returns null: submits when the SQ is full and retries.
  io_uring_sqe* get_sqe();
  // Submits pending SQEs and reaps task work (GETEVENTS); waits up to timeout_ns (-1: no wait
  // unless wait_nr... 0 means do not block). Tolerates EBUSY/EINTR/ETIME.
  int submit_and_wait(int64_t timeout_ns);
  int submit();

  // Eventfd registered with the ring: readable whenever a CQE is posted.
  int wake_fd() const { return event_fd_; }
  int enable_eventfd(std::string* err);
  void drain_eventfd();
  // While we are awake and will look at the CQ anyway, completions need not signal the eventfd
  // (IORING_CQ_EVENTFD_DISABLED). Re-enable before sleeping, then call work_pending() again.
  void eventfd_signals(bool on) { io_uring_cq_eventfd_toggle(&ring_, on); }
  // Completions posted, or deferred task work flagged by the kernel (IORING_SQ_TASKRUN).
  bool work_pending() {
    __atomic_thread_fence(__ATOMIC_SEQ_CST);  // order against the eventfd re-enable
    return io_uring_cq_ready(&ring_) > 0 ||
           ((flags_ & IORING_SETUP_TASKRUN_FLAG) &&
            (IO_URING_READ_ONCE(*ring_.sq.kflags) & IORING_SQ_TASKRUN));
  }

  // Provided buffer rings: group `bgid` (0: the RX slots, 1: UDP GRO buffers), entries a power
  // of two. 0 or -errno.
  static constexpr int kGroups = 2;
  int setup_buf_ring(uint32_t entries, uint16_t bgid, std::string* err);
  void buf_add(void* addr, uint32_t len, uint16_t bid, uint16_t bgid = 0) {
    BufRing& b = brs_[bgid];
    io_uring_buf_ring_add(b.br, addr, len, bid, b.mask, b.pending++);
  }
  void buf_commit(uint16_t bgid = 0) {
    BufRing& b = brs_[bgid];
    if (b.pending) { io_uring_buf_ring_advance(b.br, b.pending); b.pending = 0; }
  }

  uint64_t submits = 0, sq_full = 0, ebusy = 0, enters_skipped = 0;

 private:
  io_uring ring_{};
  bool inited_ = false;
  uint32_t flags_ = 0;
  int event_fd_ = -1;
  struct BufRing {
    io_uring_buf_ring* br = nullptr;
    size_t bytes = 0;
    int mask = 0;
    int pending = 0;
    bool registered = false;
  };
  BufRing brs_[kGroups];
};

}  // namespace zio

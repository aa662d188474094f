#include "driver/uring.h"

#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace zio {

KernelVersion kernel_version() {
  KernelVersion v;
  struct utsname u;
  if (uname(&u) == 0) sscanf(u.release, "%u.%u.%u", &v.major, &v.minor, &v.patch);
  return v;
}

bool kernel_at_least(const KernelVersion& v, uint32_t major, uint32_t minor) {
  return v.major > major || (v.major == major && v.minor >= minor);
}

static int read_int_file(const char* path) {
  FILE* f = fopen(path, "re");
  if (!f) return -1;
  int v = -1;
  if (fscanf(f, "%d", &v) != 1) v = -1;
  fclose(f);
  return v;
}

void probe_uring(UringProbe* p) {
  *p = UringProbe{};
  p->kernel = kernel_version();
  p->io_uring_disabled = read_int_file("/proc/sys/kernel/io_uring_disabled");
  io_uring ring;
  int r = io_uring_queue_init(8, &ring, 0);
  if (r < 0) {
    p->setup_errno = -r;
    return;
  }
  p->available = true;
  io_uring_probe* pr = io_uring_get_probe_ring(&ring);
  if (pr) {
    p->ops_ok = io_uring_opcode_supported(pr, IORING_OP_ACCEPT) &&
                io_uring_opcode_supported(pr, IORING_OP_RECV) &&
                io_uring_opcode_supported(pr, IORING_OP_SENDMSG) &&
                io_uring_opcode_supported(pr, IORING_OP_CONNECT) &&
                io_uring_opcode_supported(pr, IORING_OP_TIMEOUT) &&
                io_uring_opcode_supported(pr, IORING_OP_ASYNC_CANCEL) &&
                io_uring_opcode_supported(pr, IORING_OP_READ);
    io_uring_free_probe(pr);
  }
  io_uring_queue_exit(&ring);
  // Setup flags: try each; the kernel rejects unknown ones with EINVAL.
  auto try_flags = [](uint32_t flags) {
    io_uring t;
    io_uring_params prm{};
    prm.flags = flags;
    int rr = io_uring_queue_init_params(4, &t, &prm);
    if (rr == 0) io_uring_queue_exit(&t);
    return rr == 0;
  };
  p->coop_taskrun = try_flags(IORING_SETUP_COOP_TASKRUN);
  p->single_issuer = try_flags(IORING_SETUP_SINGLE_ISSUER);
  p->defer_taskrun = try_flags(IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN);
  // Buffer rings and multishot accept arrived in 5.19, multishot recv in 6.0. These have no
  // opcode of their own to probe, so the kernel version decides (checked again by the first
  // registration, which fails cleanly on a kernel without them).
  p->buf_ring = kernel_at_least(p->kernel, 5, 19);
  p->multishot_accept = kernel_at_least(p->kernel, 5, 19);
  p->multishot_recv = kernel_at_least(p->kernel, 6, 0);
}

Ring::~Ring() {
  if (inited_) {
    for (int g = 0; g < kGroups; ++g)
      if (brs_[g].registered) io_uring_unregister_buf_ring(&ring_, g);
    io_uring_queue_exit(&ring_);
  }
  for (auto& b : brs_)
    if (b.br) munmap(b.br, b.bytes);
  if (event_fd_ >= 0) close(event_fd_);
}

int Ring::init(const RingOptions& opt, const UringProbe& probe, std::string* err) {
  io_uring_params prm{};
  prm.flags = IORING_SETUP_CQSIZE;
  prm.cq_entries = opt.sq_entries * opt.cq_factor;
  if (opt.defer_taskrun && probe.defer_taskrun)
    prm.flags |= IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
                 IORING_SETUP_TASKRUN_FLAG;  // IORING_SQ_TASKRUN tells when an enter is needed
  else if (probe.coop_taskrun)
    prm.flags |= IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG |
                 (probe.single_issuer ? IORING_SETUP_SINGLE_ISSUER : 0);
  int r = io_uring_queue_init_params(opt.sq_entries, &ring_, &prm);
  if (r < 0) {
    *err = std::string("io_uring_setup(") + std::to_string(opt.sq_entries) + ") failed: " +
           strerror(-r);
    return r;
  }
  inited_ = true;
  flags_ = prm.flags;
  return 0;
}

io_uring_sqe* Ring::get_sqe() {
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  while (!sqe) {
    ++sq_full;
    submit();
    sqe = io_uring_get_sqe(&ring_);
  }
  return sqe;
}

int Ring::submit() {
  for (;;) {
    int r = io_uring_submit(&ring_);
    if (r >= 0) { ++submits; return r; }
    if (r == -EINTR) continue;
    if (r == -EBUSY || r == -EAGAIN) { ++ebusy; return 0; }  // CQ full: caller drains, then retries
    return r;
  }
}

int Ring::submit_and_wait(int64_t timeout_ns) {
  ++submits;
  if (timeout_ns == 0) {
    // Nothing to submit, no deferred task work flagged, completions already posted (e.g. sends
    // that completed inline at submit): no need to enter the kernel at all.
    if (io_uring_sq_ready(&ring_) == 0 && io_uring_cq_ready(&ring_) > 0 &&
        (flags_ & IORING_SETUP_TASKRUN_FLAG) &&
        !(IO_URING_READ_ONCE(*ring_.sq.kflags) & IORING_SQ_TASKRUN)) {
      ++enters_skipped;
      return 0;
    }
    // Submit and run deferred task work so completions are posted, without blocking.
    int r = io_uring_submit_and_get_events(&ring_);
    if (r == -EBUSY || r == -EAGAIN) { ++ebusy; return 0; }
    return r == -EINTR ? 0 : r;
  }
  __kernel_timespec ts;
  __kernel_timespec* tsp = nullptr;
  if (timeout_ns > 0) {
    ts.tv_sec = timeout_ns / 1000000000;
    ts.tv_nsec = timeout_ns % 1000000000;
    tsp = &ts;
  }
  io_uring_cqe* cqe = nullptr;
  int r = io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, tsp, nullptr);
  if (r == -ETIME || r == -EINTR || r == -EBUSY || r == -EAGAIN) return 0;
  return r;
}

int Ring::enable_eventfd(std::string* err) {
  if (event_fd_ >= 0) return 0;
  event_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (event_fd_ < 0) {
    int e = errno;
    *err = std::string("eventfd() failed: ") + strerror(e);
    return -e;
  }
  int r = io_uring_register_eventfd(&ring_, event_fd_);
  if (r < 0) {
    *err = std::string("io_uring_register(IORING_REGISTER_EVENTFD) failed: ") + strerror(-r);
    close(event_fd_);
    event_fd_ = -1;
    return r;
  }
  return 0;
}

void Ring::drain_eventfd() {
  // A non-semaphore eventfd hands over (and resets) its whole counter in one read.
  uint64_t v;
  ssize_t r = read(event_fd_, &v, sizeof v);
  (void)r;
}

int Ring::setup_buf_ring(uint32_t entries, uint16_t bgid, std::string* err) {
  if (bgid >= kGroups || brs_[bgid].br) {
    *err = "buffer ring group already set up or out of range";
    return -EINVAL;
  }
  BufRing& b = brs_[bgid];
  // liburing 2.3 (Debian 12) has no io_uring_setup_buf_ring(): map the ring ourselves
  // (kernel ABI: an array of struct io_uring_buf, page aligned) and register it.
  b.bytes = entries * sizeof(io_uring_buf);
  void* mem = mmap(nullptr, b.bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
  if (mem == MAP_FAILED) {
    int e = errno;
    *err = std::string("mmap of the provided-buffer ring failed: ") + strerror(e);
    return -e;
  }
  b.br = static_cast<io_uring_buf_ring*>(mem);
  io_uring_buf_ring_init(b.br);
  io_uring_buf_reg reg{};
  reg.ring_addr = reinterpret_cast<uint64_t>(b.br);
  reg.ring_entries = entries;
  reg.bgid = bgid;
  int r = io_uring_register_buf_ring(&ring_, &reg, 0);
  if (r < 0) {
    *err = std::string("io_uring_register(IORING_REGISTER_PBUF_RING) failed: ") + strerror(-r);
    return r;
  }
  b.registered = true;
  b.mask = io_uring_buf_ring_mask(entries);
  return 0;
}

}  // namespace zio

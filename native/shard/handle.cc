#include "shard/handle.h"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <new>

namespace zio {

std::shared_ptr<HandleQueue> HandleQueue::create(uint32_t capacity) {
  uint32_t cap = 2;
  while (cap < capacity && cap < (1u << 20)) cap <<= 1;
  std::shared_ptr<HandleQueue> q(new HandleQueue());
  // Blocking: io_uring honours O_NONBLOCK, and a non-blocking read would complete at once with
  // EAGAIN instead of waiting for a producer. (A write blocks only if the counter would overflow.)
  q->efd_ = eventfd(0, EFD_CLOEXEC);
  if (q->efd_ < 0) return nullptr;
  q->cells_.reset(new Cell[cap]);
  for (uint32_t i = 0; i < cap; ++i) q->cells_[i].seq.store(i, std::memory_order_relaxed);
  q->mask_ = cap - 1;
  return q;
}

HandleQueue::~HandleQueue() {
  HandleCmd c;
  closed_.store(true);
  while (pop(&c)) free(c.heap);
  if (efd_ >= 0) ::close(efd_);
  if (kick_fd_ >= 0) ::close(kick_fd_);
}

void HandleQueue::set_kick_fd(int fd) {
  if (kick_fd_ < 0 && fd >= 0) kick_fd_ = fcntl(fd, F_DUPFD_CLOEXEC, 0);
}

// Bounded MPMC ring after D. Vyukov (sequence number per cell); used with one consumer.
int HandleQueue::push(uint8_t op, uint64_t id, uint32_t arg, const uint8_t* data, uint32_t len) {
  if (closed_.load(std::memory_order_acquire)) return kClosed;
  if (len > kMaxPayload) return kTooBig;
  uint8_t* heap = nullptr;
  if (data && len > HandleCmd::kInline) {  // data null: len is a count (kHandleWriteSlot), no bytes
    heap = static_cast<uint8_t*>(malloc(len));
    if (!heap) return kNoMem;
    memcpy(heap, data, len);
  }
  size_t pos = enqueue_.load(std::memory_order_relaxed);
  Cell* cell;
  for (;;) {
    cell = &cells_[pos & mask_];
    size_t seq = cell->seq.load(std::memory_order_acquire);
    intptr_t diff = static_cast<intptr_t>(seq) - static_cast<intptr_t>(pos);
    if (diff == 0) {
      if (enqueue_.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) break;
    } else if (diff < 0) {
      free(heap);
      refused_full.fetch_add(1, std::memory_order_relaxed);
      return kFull;
    } else {
      pos = enqueue_.load(std::memory_order_relaxed);
    }
  }
  HandleCmd& c = cell->cmd;
  c.op = op;
  c.id = id;
  c.arg = arg;
  c.len = len;
  c.heap = heap;
  if (data && !heap && len) memcpy(c.inline_data, data, len);
  cell->seq.store(pos + 1, std::memory_order_release);
  pushed.fetch_add(1, std::memory_order_relaxed);
  signal();
  return kOk;
}

// Wakes the shard unless a wake is already pending (it will see this work too).
void HandleQueue::signal() {
  if (!awake_.exchange(true, std::memory_order_seq_cst)) {
    uint64_t one = 1;
    ssize_t r = write(efd_, &one, sizeof one);
    if (kick_fd_ >= 0) r = write(kick_fd_, &one, sizeof one);
    (void)r;
    wakes.fetch_add(1, std::memory_order_relaxed);
  }
}

int64_t HandleQueue::take_slot() {
  if (closed_.load(std::memory_order_acquire)) return -1;
  int64_t slot = -1;
  size_t left = 0;
  {
    std::lock_guard<std::mutex> g(res_mu_);
    if (!res_.empty()) {
      slot = res_.back();
      res_.pop_back();
      left = res_.size();
    }
  }
  if (left * 2 < res_target_.load(std::memory_order_relaxed) &&
      !res_low_.exchange(true, std::memory_order_acq_rel))
    signal();
  return slot;
}

uint32_t HandleQueue::reservoir_need() {
  uint32_t target = res_target_.load(std::memory_order_relaxed);
  if (target == 0 || !res_low_.load(std::memory_order_acquire)) return 0;
  res_low_.store(false, std::memory_order_release);
  std::lock_guard<std::mutex> g(res_mu_);
  return res_.size() < target ? target - static_cast<uint32_t>(res_.size()) : 0;
}

void HandleQueue::reservoir_put(uint32_t slot) {
  std::lock_guard<std::mutex> g(res_mu_);
  res_.push_back(slot);
}

bool HandleQueue::reservoir_surplus(uint32_t keep, uint32_t* slot) {
  std::lock_guard<std::mutex> g(res_mu_);
  if (res_.size() <= keep) return false;
  *slot = res_.back();
  res_.pop_back();
  return true;
}

uint32_t HandleQueue::reservoir_size() {
  std::lock_guard<std::mutex> g(res_mu_);
  return static_cast<uint32_t>(res_.size());
}

bool HandleQueue::pop(HandleCmd* out) {
  Cell* cell = &cells_[dequeue_ & mask_];
  size_t seq = cell->seq.load(std::memory_order_acquire);
  if (seq != dequeue_ + 1) return false;
  HandleCmd& c = cell->cmd;
  out->op = c.op;
  out->id = c.id;
  out->arg = c.arg;
  out->len = c.len;
  out->heap = c.heap;
  // kHandleWriteSlot carries a byte count in len, no bytes.
  if (!c.heap && c.len && c.op != kHandleWriteSlot) memcpy(out->inline_data, c.inline_data, c.len);
  c.heap = nullptr;
  cell->seq.store(dequeue_ + mask_ + 1, std::memory_order_release);
  ++dequeue_;
  return true;
}

void HandleQueue::close() {
  closed_.store(true, std::memory_order_release);
}

}  // namespace zio

// native/shard/handle.h — the cross-thread side of a shard (IoHandle, DESIGN.md section 3):
// a bounded multi-producer / single-consumer queue of commands plus an eventfd wake.
//
// Producers (any thread, e.g. worker threads) push commands and write the eventfd only when
// the shard is not already flagged awake (redundant-wake elision). The shard keeps an
// IORING_OP_READ armed on the eventfd, so a wake is an ordinary completion in its ring, whatever
// drives it (libuv or a blocking poll). Producers never touch the ring or the pool.
//
// The queue owns its eventfd and outlives the shard for as long as a producer holds it
// (shared_ptr): after the shard is gone, push() answers kClosed instead of writing to a
// descriptor number that may have been reused.
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "pool/pool.h"

namespace zio {

enum HandleOp : uint8_t {
  kHandleWrite = 1, kHandleClose = 2, kHandleCloseGraceful = 3,
  kHandleReleaseSlot = 4,  // an OwnedSlot / handle SendBuffer released on another thread (id = slot)
  kHandleWriteSlot = 5,    // IoHandle.streamWriteBuffer: id = conn, arg = slot, len = bytes
  kHandlePauseRecv = 6, kHandleResumeRecv = 7,
  kHandleHttpRespond = 8,  // IoHandle.httpRespond: id = conn, arg = request id, data = the response
                           // (u16 status, u16 field count, u32 body bytes, then per field u16 name
                           // and u16 value lengths and the bytes, then the body; little-endian)
  kHandleWsPublish = 9,    // IoHandle.wsPublish: arg = topic bytes << 1 | text, data = topic then
                           // the message; id unused (a refusal reports connection 0)
};

struct HandleCmd {
  uint8_t op = 0;
  uint32_t sender = 0;   // producer tag (for diagnostics)
  uint64_t id = 0;       // connection id (gen << 20 | index)
  uint32_t arg = 0;      // closeGraceful timeout (ms)
  uint32_t len = 0;
  uint8_t* heap = nullptr;  // payloads over kInline bytes (owned by the command)
  static constexpr uint32_t kInline = 224;
  uint8_t inline_data[kInline];
  const uint8_t* data() const { return heap ? heap : inline_data; }
};

class HandleQueue {
 public:
  enum : int { kOk = 0, kFull = -1, kClosed = -2, kTooBig = -3, kNoMem = -4 };
  static constexpr uint32_t kMaxPayload = 16u << 20;

  // capacity is rounded up to a power of two. Returns null when no eventfd can be made.
  static std::shared_ptr<HandleQueue> create(uint32_t capacity);
  ~HandleQueue();
  HandleQueue(const HandleQueue&) = delete;
  HandleQueue& operator=(const HandleQueue&) = delete;

  // Any thread. Copies `len` bytes of `data` (data null: `len` is carried as a number only).
  int push(uint8_t op, uint64_t id, uint32_t arg, const uint8_t* data, uint32_t len);
  // The shard's thread only.
  bool pop(HandleCmd* out);
  bool pending() const {
    return cells_[dequeue_ & mask_].seq.load(std::memory_order_acquire) == dequeue_ + 1;
  }
  // The shard's thread: the wake was consumed; producers must signal again for new work.
  // (Called every tick: the common case, nothing flagged, is a plain load.)
  void clear_awake() {
    // An RMW: it synchronizes with the producer's exchange, so that producer's command (pushed
    // before it flagged us) is visible to the pops that follow.
    if (awake_.load(std::memory_order_relaxed)) awake_.exchange(false, std::memory_order_acq_rel);
  }
  // The shard is gone: later pushes fail with kClosed; queued commands are freed.
  void close();
  bool closed() const { return closed_.load(std::memory_order_acquire); }
  int event_fd() const { return efd_; }
  // Also signal `fd` (duplicated, owned by the queue) on each wake: the descriptor a libuv
  // driver watches when the ring's own wake-up cannot be relied on for cross-thread work
  // (DEFER_TASKRUN rings, see docs/architecture/0005-iohandle.md).
  void set_kick_fd(int fd);
  uint32_t capacity() const { return mask_ + 1; }

  // ---- SendBuffers for other threads (IoHandle.sendBuffer) ----
  // A reservoir of free-stack slots the shard keeps filled up to a target (io.handle({
  // sendBuffers })). Any thread takes one (refcount 1, now the taker's); taking the reservoir
  // below half its target, or finding it empty, asks the shard for a refill (a wake).
  int64_t take_slot();  // a slot index, or -1 when empty
  // The shard's thread.
  void set_reservoir_target(uint32_t n) { res_target_.store(n, std::memory_order_relaxed); }
  uint32_t reservoir_target() const { return res_target_.load(std::memory_order_relaxed); }
  // How many slots the reservoir lacks (0 unless a refill is due); clears the request.
  uint32_t reservoir_need();
  void reservoir_put(uint32_t slot);
  // Takes one slot above `keep` out of the reservoir (a lowered target); false when none.
  bool reservoir_surplus(uint32_t keep, uint32_t* slot);
  uint32_t reservoir_size();

  std::atomic<uint64_t> pushed{0}, refused_full{0}, wakes{0};
  // The shard's pool, so another thread can view an OwnedSlot's bytes (set once at init).
  std::shared_ptr<SlotPool> pool;

 private:
  HandleQueue() = default;
  struct alignas(64) Cell {
    std::atomic<size_t> seq;
    HandleCmd cmd;
  };
  std::unique_ptr<Cell[]> cells_;
  uint32_t mask_ = 0;
  alignas(64) std::atomic<size_t> enqueue_{0};
  alignas(64) size_t dequeue_ = 0;
  std::atomic<bool> awake_{false};
  std::atomic<bool> closed_{false};
  int efd_ = -1;
  int kick_fd_ = -1;
  void signal();  // the wake write, unless one is pending
  std::mutex res_mu_;
  std::vector<uint32_t> res_;
  std::atomic<uint32_t> res_target_{0};
  std::atomic<bool> res_low_{false};
};

}  // namespace zio

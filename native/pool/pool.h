// native/pool/pool.h — the slot pool: one mmap'd region cut into fixed-size slots.
//
// Ownership: the pool owns the region. A slot index is either on the free stack, lent to the
// kernel through the RX buffer ring (owned by the driver), lent to JS for one poll (borrowed),
// queued for TX (owned by a connection's write queue), or held by refcount (OwnedSlot, issue 3).
// No allocation after create(): the free stack and refcounts are sized once.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace zio {

enum class HugePages : uint8_t { Auto = 0, On = 1, Off = 2 };
enum class PoolBacking : uint8_t { HugeTlb = 0, TransparentHuge = 1, Normal = 2 };

const char* pool_backing_name(PoolBacking b);

struct PoolGauge {
  uint64_t current = 0;   // in use now
  uint64_t peak = 0;      // highest "current" seen since create or reset_peaks()
  uint64_t capacity = 0;  // the limit
  void add(uint64_t n) { current += n; if (current > peak) peak = current; }
  void sub(uint64_t n) { current -= n; }
};

class SlotPool {
 public:
  SlotPool() = default;
  ~SlotPool();
  SlotPool(const SlotPool&) = delete;
  SlotPool& operator=(const SlotPool&) = delete;

  // Maps slot_count * slot_size bytes. `rx_slots` of them (the first ones) are reserved for the
  // RX buffer ring and never appear on the free stack. Returns 0 or -errno; *err says why.
  // `extra_bytes` more are mapped after the slots (UDP GRO buffers): same memory, same
  // offsets for JS, never on the free stack.
  int create(uint32_t slot_count, uint32_t slot_size, uint32_t rx_slots, HugePages hp,
             std::string* err, size_t extra_bytes = 0);
  // Offset of the extra region (just past the last slot).
  uint64_t extra_offset() const { return static_cast<uint64_t>(slot_count_) * slot_size_; }

  uint8_t* base() const { return base_; }
  size_t bytes() const { return bytes_; }
  uint32_t slot_size() const { return slot_size_; }
  uint32_t slot_count() const { return slot_count_; }
  uint32_t rx_slots() const { return rx_slots_; }
  PoolBacking backing() const { return backing_; }
  uint8_t* slot_ptr(uint32_t idx) const { return base_ + static_cast<size_t>(idx) * slot_size_; }
  uint64_t slot_offset(uint32_t idx) const { return static_cast<uint64_t>(idx) * slot_size_; }

  // Free-stack slots (TX, scratch). Returns a slot index with refcount 1, or -1 when exhausted.
  int64_t acquire();
  // `k` adjacent free-stack slots held as one (a request record larger than a slot): the first
  // index, whose refcount stands for all of them, or -1 when no such run is free. A scan of the
  // free bitmap: for the rare large record, not the hot path.
  int64_t acquire_run(uint32_t k);
  // Drops one reference; the slot (and the run it starts) returns to the free stack at zero.
  void release(uint32_t idx);
  // Slots held with `idx` (1, or a run's length).
  uint32_t run_length(uint32_t idx) const { return run_[idx] ? run_[idx] : 1; }
  // Adds a reference; false when the count is saturated (65535 holders) or the slot is free.
  bool retain(uint32_t idx) {
    if (refs_[idx] == 0 || refs_[idx] == UINT16_MAX) return false;
    ++refs_[idx];
    return true;
  }
  uint16_t refs(uint32_t idx) const { return refs_[idx]; }
  // RX slots (buffer-ring partition) promoted to OwnedSlots: counted here while held; the
  // shard gives them back to the ring when the count drops to zero.
  bool is_rx(uint32_t idx) const { return idx < rx_slots_; }
  void hold_rx(uint32_t idx) { refs_[idx] = 1; }
  // Drops one reference of a held RX slot; true when it was the last (the slot is free now).
  bool unhold_rx(uint32_t idx) { return idx < rx_slots_ && refs_[idx] > 0 && --refs_[idx] == 0; }
  // A free-stack slot that someone holds (a SendBuffer checked out by JS, a queued chunk).
  bool held(uint32_t idx) const { return idx >= rx_slots_ && idx < slot_count_ && refs_[idx] > 0; }
  uint32_t free_count() const { return free_n_; }

  PoolGauge free_stack;  // slots checked out of the free stack
  uint64_t exhausted_count = 0;  // acquire() calls that found the stack empty

 private:
  uint8_t* base_ = nullptr;
  size_t bytes_ = 0;
  uint32_t slot_size_ = 0, slot_count_ = 0, rx_slots_ = 0;
  PoolBacking backing_ = PoolBacking::Normal;
  // The free stack may hold stale entries (slots a run took out of the middle): acquire() skips
  // an entry whose bit in free_bits_ is clear, and a full stack is rebuilt from the bitmap.
  std::vector<uint32_t> free_;
  size_t free_top_ = 0;
  uint32_t free_n_ = 0;                // free slots (set bits)
  std::vector<uint64_t> free_bits_;    // 1: free
  std::vector<uint16_t> run_;          // run length held with its first slot (0: a single slot)
  std::vector<uint16_t> refs_;
  bool is_free(uint32_t i) const { return (free_bits_[i >> 6] >> (i & 63)) & 1; }
  void set_free(uint32_t i, bool f) {
    if (f) free_bits_[i >> 6] |= uint64_t{1} << (i & 63);
    else free_bits_[i >> 6] &= ~(uint64_t{1} << (i & 63));
  }
  void push_free(uint32_t i);
};

}  // namespace zio

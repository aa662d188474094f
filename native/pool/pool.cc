#include "pool/pool.h"

#include <sys/mman.h>

#include <cerrno>
#include <cstring>

namespace zio {

const char* pool_backing_name(PoolBacking b) {
  switch (b) {
    case PoolBacking::HugeTlb: return "hugetlb";
    case PoolBacking::TransparentHuge: return "thp";
    case PoolBacking::Normal: return "normal";
  }
  return "normal";
}

SlotPool::~SlotPool() {
  if (base_) munmap(base_, bytes_);
}

int SlotPool::create(uint32_t slot_count, uint32_t slot_size, uint32_t rx_slots, HugePages hp,
                     std::string* err, size_t extra_bytes) {
  if (slot_count == 0 || slot_size == 0 || rx_slots > slot_count) {
    *err = "pool: slot_count and slot_size must be > 0 and rx_slots <= slot_count";
    return -EINVAL;
  }
  slot_count_ = slot_count;
  slot_size_ = slot_size;
  rx_slots_ = rx_slots;
  bytes_ = static_cast<size_t>(slot_count) * slot_size + extra_bytes;
  const size_t huge = 2u << 20;
  void* p = MAP_FAILED;
  if (hp != HugePages::Off) {
    size_t rounded = (bytes_ + huge - 1) & ~(huge - 1);
    p = mmap(nullptr, rounded, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB,
             -1, 0);
    if (p != MAP_FAILED) {
      bytes_ = rounded;
      backing_ = PoolBacking::HugeTlb;
    } else if (hp == HugePages::On) {
      int e = errno;
      *err = std::string("mmap(MAP_HUGETLB) for the slot pool failed: ") + strerror(e) +
             ". Reserve huge pages (sysctl vm.nr_hugepages) or set hugePages: 'auto'";
      return -e;
    }
  }
  if (p == MAP_FAILED) {
    p = mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
      int e = errno;
      *err = std::string("mmap of the slot pool (") + std::to_string(bytes_) +
             " bytes) failed: " + strerror(e) + ". Lower poolSlotCount or poolSlotSize";
      return -e;
    }
    backing_ = PoolBacking::Normal;
    if (hp == HugePages::Auto && bytes_ >= huge && madvise(p, bytes_, MADV_HUGEPAGE) == 0)
      backing_ = PoolBacking::TransparentHuge;
  }
  base_ = static_cast<uint8_t*>(p);
  // Touch the pages now so the data path never faults on first use.
  for (size_t off = 0; off < bytes_; off += 4096) base_[off] = 0;

  refs_.assign(slot_count, 0);
  run_.assign(slot_count, 0);
  free_bits_.assign((slot_count + 63) / 64, 0);
  free_.resize(slot_count - rx_slots);
  // LIFO stack; lowest index on top so recently used (cache-warm) slots are reused first.
  free_top_ = 0;
  for (uint32_t i = slot_count; i > rx_slots; --i) {
    free_[free_top_++] = i - 1;
    set_free(i - 1, true);
  }
  free_n_ = static_cast<uint32_t>(free_top_);
  free_stack.capacity = free_.size();
  return 0;
}

int64_t SlotPool::acquire() {
  while (free_top_ > 0) {
    uint32_t idx = free_[--free_top_];
    if (!is_free(idx)) continue;  // stale: a run took it
    set_free(idx, false);
    --free_n_;
    refs_[idx] = 1;
    free_stack.add(1);
    return idx;
  }
  ++exhausted_count;
  return -1;
}

int64_t SlotPool::acquire_run(uint32_t k) {
  if (k <= 1) return acquire();
  if (k > UINT16_MAX || k > free_n_) {
    ++exhausted_count;
    return -1;
  }
  uint32_t start = rx_slots_, have = 0;
  for (uint32_t i = rx_slots_; i < slot_count_; ++i) {
    if ((i & 63) == 0 && free_bits_[i >> 6] == 0) {  // a word with nothing free: skip it
      have = 0;
      i += 63;
      continue;
    }
    if (!is_free(i)) {
      have = 0;
      continue;
    }
    if (have++ == 0) start = i;
    if (have == k) {
      for (uint32_t j = start; j < start + k; ++j) set_free(j, false);
      free_n_ -= k;
      refs_[start] = 1;
      run_[start] = static_cast<uint16_t>(k);
      free_stack.add(k);
      return start;
    }
  }
  ++exhausted_count;
  return -1;
}

void SlotPool::push_free(uint32_t i) {
  if (free_top_ == free_.size()) {  // stale entries filled the stack: rebuild it from the bitmap
    free_top_ = 0;
    for (uint32_t j = slot_count_; j > rx_slots_; --j)
      if (is_free(j - 1)) free_[free_top_++] = j - 1;
  }
  free_[free_top_++] = i;
  set_free(i, true);
  ++free_n_;
}

void SlotPool::release(uint32_t idx) {
  if (idx < rx_slots_ || idx >= slot_count_ || refs_[idx] == 0) return;  // not a free-stack slot
  if (--refs_[idx] != 0) return;
  uint32_t k = run_[idx] ? run_[idx] : 1;
  run_[idx] = 0;
  for (uint32_t j = k; j > 0; --j) push_free(idx + j - 1);  // the first slot ends on top
  free_stack.sub(k);
}

}  // namespace zio

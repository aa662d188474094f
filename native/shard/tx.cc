// native/shard/tx.cc — the write path: copying writes, SendBuffer references, OwnedSlot and
// SendBuffer slot checkout/release.
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

int64_t Shard::conn_write(uint32_t index, uint32_t gen, const uint8_t* data, size_t len) {
  Conn* c = lookup(index, gen);
  if (!c) return kErrStaleId;
  if (c->state == ConnState::Closing || c->state == ConnState::Closed || c->graceful ||
      c->end_pending || c->write_closed)
    return kErrClosing;
  if (c->quic) return kErrWrongKind;  // QUIC writes name a stream (quic_stream_write)
  if (c->tls && c->tls->ktls != Ktls::Active) return tls_write(index, data, len);
  size_t done = tx_append(index, data, len, cfg_.max_write_queue_bytes, true);
  if (done < len) {
    c->want_writable = true;
    ++counters_.tx_partial_accepts;
    // Refused for lack of pool slots with nothing of its own queued: no send completion of this
    // connection will wake it, so wait for any slot release instead.
    if (c->tx_count == 0) wait_for_slot(index);
  }
  if (done) mark_dirty(index);
  return static_cast<int64_t>(done);
}

void Shard::overflow_write(uint32_t index, Overflow& o, const uint8_t* data, size_t len) {
  if (!o.empty()) {
    o.buf.append(reinterpret_cast<const char*>(data), len);
    return;
  }
  o.buf.clear();
  o.off = 0;
  int64_t n = conn_write(index, conns_[index].gen, data, len);
  if (n < 0) return;  // closing: nothing more goes out
  if (static_cast<size_t>(n) < len) o.buf.append(reinterpret_cast<const char*>(data) + n, len - static_cast<size_t>(n));
}

bool Shard::overflow_drain(uint32_t index, Overflow& o, size_t keep) {
  while (!o.empty()) {
    int64_t n = conn_write(index, conns_[index].gen, reinterpret_cast<const uint8_t*>(o.buf.data()) + o.off, o.left());
    if (n <= 0) return false;
    o.off += static_cast<size_t>(n);
  }
  o.buf.clear();
  o.off = 0;
  if (o.buf.capacity() > keep) o.buf.shrink_to_fit();  // a large answer's memory goes back
  return true;
}

// Copies bytes into the connection's write queue (coalescing into its tail slot), up to `limit`
// queued bytes; `budget`: ask the bulk-TX budget for new slots. Returns the bytes queued.
size_t Shard::tx_append(uint32_t index, const uint8_t* data, size_t len, size_t limit, bool budget) {
  Conn* c = &conns_[index];
  TxChunk* q = &txq_[static_cast<size_t>(index) * txq_cap_];
  size_t done = 0;
  const uint32_t ss = pool_->slot_size();
  // Coalesce into the tail slot when it has room, is not part of the send in flight, and is
  // ours alone (a SendBuffer slot shared by a fan-out is never written into).
  TxChunk* tail = c->tx_count > c->tx_inflight_chunks
                      ? &q[(c->tx_head + c->tx_count - 1) % txq_cap_] : nullptr;
  if (tail && !tail->shared && pool_->refs(tail->slot) == 1) {
    TxChunk& t = *tail;
    uint32_t room_b = ss - (t.off + t.len);
    size_t n = std::min<size_t>(room_b, len);
    n = std::min<size_t>(n, limit > c->tx_bytes ? limit - c->tx_bytes : 0);
    if (n) {
      memcpy(pool_->slot_ptr(t.slot) + t.off + t.len, data, n);
      t.len += n;
      done += n;
      c->tx_bytes += n;
    }
  }
  while (done < len && c->tx_count < txq_cap_ && c->tx_bytes < limit) {
    if (budget && !tx_admit(*c, 1)) {  // over the bulk budget and over its fair share
      ++pressure_.writes_capped;
      break;
    }
    int64_t s = pool_->acquire();
    if (s < 0) break;
    size_t n = std::min<size_t>({static_cast<size_t>(ss), len - done,
                                 static_cast<size_t>(limit - c->tx_bytes)});
    memcpy(pool_->slot_ptr(static_cast<uint32_t>(s)), data + done, n);
    q[(c->tx_head + c->tx_count) % txq_cap_] = TxChunk{static_cast<uint32_t>(s), 0, 0,
                                                       static_cast<uint32_t>(n)};
    ++c->tx_count;
    tx_slot_add(*c);
    done += n;
    c->tx_bytes += n;
  }
  return done;
}

// Whether a write of `len` bytes would be queued whole right now (IoHandle writes are
// all-or-nothing): 0, or the reason it would not (queue bound, pool, pressure cap).
int Shard::write_fits(uint32_t index, size_t len, bool by_ref) {
  Conn& c = conns_[index];
  if (c.tls && c.tls->ktls != Ktls::Active) {  // encrypted into new slots, by reference or not
    int why;
    return tls_admit(index, len, &why, false) == len ? 0 : why;
  }
  const uint32_t ss = pool_->slot_size();
  // A copy takes ceil(len / slot) new slots (coalescing can only need fewer); a SendBuffer
  // queued by reference takes one queue entry and no slot, so the bulk-TX budget is not asked.
  uint32_t slots = by_ref ? 1 : static_cast<uint32_t>((len + ss - 1) / ss);
  if (c.tx_bytes + len > cfg_.max_write_queue_bytes || c.tx_count + slots > txq_cap_)
    return kErrQueueFull;
  if (by_ref) return 0;
  if (slots > pool_->free_count()) return kErrPoolExhausted;
  if (!tx_admit(c, slots)) {
    ++pressure_.writes_capped;
    return kErrPoolExhausted;
  }
  return 0;
}

int64_t Shard::conn_write_slot(uint32_t index, uint32_t gen, uint32_t slot, uint32_t off,
                               uint32_t len) {
  Conn* c = lookup(index, gen);
  if (!c) return kErrStaleId;
  if (c->state == ConnState::Closing || c->state == ConnState::Closed || c->graceful ||
      c->end_pending || c->write_closed)
    return kErrClosing;
  if (!pool_->held(slot) || off + len > pool_->slot_size()) return kErrWrongKind;
  if (c->quic) return kErrWrongKind;
  if (len == 0) return 0;
  // TLS in user space: the bytes are encrypted into the write queue (a copy; the caller keeps
  // its reference). Queuing the slot itself would put plaintext on the wire.
  if (c->tls && c->tls->ktls != Ktls::Active)  // all of it or none, as by reference
    return tls_write(index, pool_->slot_ptr(slot) + off, len, true);
  // No bulk-TX budget check: a reference takes no pool slot (the SendBuffer's slot is counted
  // once, in the free stack's gauge).
  if (c->tx_count >= txq_cap_ || c->tx_bytes + len > cfg_.max_write_queue_bytes ||
      !pool_->retain(slot)) {
    c->want_writable = true;
    ++counters_.tx_partial_accepts;
    if (c->tx_count) mark_dirty(index);
    return 0;
  }
  TxChunk* q = &txq_[static_cast<size_t>(index) * txq_cap_];
  q[(c->tx_head + c->tx_count) % txq_cap_] = TxChunk{slot, off, 1, len};
  ++c->tx_count;
  c->tx_bytes += len;
  mark_dirty(index);
  return len;
}

int64_t Shard::detach_rx(uint64_t off) {
  uint64_t slot = off / pool_->slot_size();
  if (slot >= pool_->rx_slots()) {
    // TLS plaintext lent from the free stack: the reference JS had for the batch becomes its own.
    auto p = std::find(loaned_plain_.begin(), loaned_plain_.end(), static_cast<uint32_t>(slot));
    if (p == loaned_plain_.end()) return kErrStaleId;
    *p = loaned_plain_.back();
    loaned_plain_.pop_back();
    ++counters_.slots_detached;
    return static_cast<int64_t>(slot);
  }
  auto it = std::find(loaned_.begin(), loaned_.end(), static_cast<uint16_t>(slot));
  if (it == loaned_.end()) return kErrStaleId;  // not lent in this batch (or detached already)
  *it = loaned_.back();
  loaned_.pop_back();
  pool_->hold_rx(static_cast<uint32_t>(slot));
  ++counters_.slots_detached;
  return static_cast<int64_t>(slot);
}

int Shard::owned_release(uint32_t slot) {
  if (!pool_->is_rx(slot)) return slot_release(slot);  // a detached TLS plaintext slot
  if (!pool_->unhold_rx(slot)) return kErrStaleId;
  drv_.buf_add(pool_->slot_ptr(slot), pool_->slot_size(), static_cast<uint16_t>(slot));
  drv_.buf_commit();
  ++rx_in_ring_;
  gauges_.fill_ring.sub(1);
  if (!parked_.empty()) recycle_rx();  // connections parked on ENOBUFS can read again
  return 0;
}

int64_t Shard::slot_acquire() {
  int64_t s = pool_->acquire();
  return s < 0 ? static_cast<int64_t>(kErrPoolExhausted) : s;
}

int Shard::slot_release(uint32_t slot) {
  if (!pool_->held(slot)) return kErrStaleId;
  pool_->release(slot);
  wake_pool_waiters();
  return 0;
}

}  // namespace zio

// native/shard/ws_pubsub.cc — WebSocket pub/sub on one shard: topics, and the fan-out that
// builds a frame once and queues it by reference on every subscriber.
//
// Topics are per shard (an IoCluster publishes on each shard). A topic is a name, an id and a
// vector of subscribers (gen << 32 | index); a connection keeps the ids it subscribed to, so
// its close removes it everywhere. The frame of a publish lies in a pool slot (a run of
// adjacent slots when larger), and each plaintext subscriber's write queue gets one more
// reference to it: no copy per subscriber. A TLS subscriber gets a copy (its bytes are
// encrypted per connection), as does one whose earlier output still waits in its overflow.
#include <algorithm>
#include <cstring>

#include "shard/shard.h"

namespace zio {

int Shard::ws_subscribe(uint32_t index, uint32_t gen, const std::string& topic, bool on) {
  Conn* c = lookup(index, gen);
  if (!c) return kErrStaleId;
  if (!c->ws || !c->ws->upgraded) return kErrNotWs;
  if (c->state != ConnState::Open) return kErrClosing;
  ConnWs& w = *c->ws;
  uint64_t me = (static_cast<uint64_t>(gen) << 32) | index;
  auto it = ws_topic_ids_.find(topic);
  if (!on) {
    if (it == ws_topic_ids_.end()) return 0;
    uint32_t id = it->second;
    auto mine = std::find(w.topics.begin(), w.topics.end(), id);
    if (mine == w.topics.end()) return 0;
    *mine = w.topics.back();
    w.topics.pop_back();
    std::vector<uint64_t>& subs = ws_topics_[id].subs;
    auto s = std::find(subs.begin(), subs.end(), me);
    if (s != subs.end()) {
      *s = subs.back();
      subs.pop_back();
    }
    if (subs.empty()) {  // the topic goes with its last subscriber
      ws_topic_ids_.erase(it);
      ws_topics_[id].name.clear();
      ws_topic_free_.push_back(id);
    }
    return 1;
  }
  uint32_t id;
  if (it == ws_topic_ids_.end()) {
    if (!ws_topic_free_.empty()) {
      id = ws_topic_free_.back();
      ws_topic_free_.pop_back();
    } else {
      id = static_cast<uint32_t>(ws_topics_.size());
      ws_topics_.emplace_back();
    }
    ws_topics_[id].name = topic;
    ws_topic_ids_.emplace(topic, id);
  } else {
    id = it->second;
    if (std::find(w.topics.begin(), w.topics.end(), id) != w.topics.end()) return 0;
  }
  w.topics.push_back(id);
  ws_topics_[id].subs.push_back(me);
  return 1;
}

void Shard::ws_unsubscribe_all(Conn& c) {
  ConnWs& w = *c.ws;
  uint32_t index = static_cast<uint32_t>(&c - conns_.data());
  uint64_t me = (static_cast<uint64_t>(c.gen) << 32) | index;
  for (uint32_t id : w.topics) {
    std::vector<uint64_t>& subs = ws_topics_[id].subs;
    auto s = std::find(subs.begin(), subs.end(), me);
    if (s != subs.end()) {
      *s = subs.back();
      subs.pop_back();
    }
    if (subs.empty()) {
      ws_topic_ids_.erase(ws_topics_[id].name);
      ws_topics_[id].name.clear();
      ws_topic_free_.push_back(id);
    }
  }
  w.topics.clear();
}

uint32_t Shard::ws_topic_count(const std::string& topic) const {
  auto it = ws_topic_ids_.find(topic);
  return it == ws_topic_ids_.end() ? 0 : static_cast<uint32_t>(ws_topics_[it->second].subs.size());
}

int64_t Shard::ws_publish(const std::string& topic, bool text, const uint8_t* data, size_t len, uint32_t counts[3]) {
  counts[0] = counts[1] = counts[2] = 0;
  auto it = ws_topic_ids_.find(topic);
  if (it == ws_topic_ids_.end()) return 0;
  // (No copy: a subscriber closed by the drop policy leaves its topics only when it is released,
  // after the batch.)
  return ws_fan(ws_topics_[it->second].subs, text, data, len, counts);
}

int64_t Shard::ws_broadcast(const double* ids, size_t n, bool text, const uint8_t* data, size_t len, uint32_t counts[3]) {
  counts[0] = counts[1] = counts[2] = 0;
  ws_targets_.clear();
  for (size_t i = 0; i < n; ++i) {
    double d = ids[i];
    if (!(d >= 0) || d >= 9007199254740992.0) {
      ++counts[kWsDropped];
      continue;
    }
    uint64_t id = static_cast<uint64_t>(d);
    ws_targets_.push_back(((id >> 20) << 32) | (id & 0xFFFFF));
  }
  return ws_fan(ws_targets_, text, data, len, counts);
}

// A frame (header + payload) in one pool slot or a run; -1 when the pool has none.
namespace {
int64_t frame_slot(SlotPool& pool, const uint8_t* hdr, size_t hl, const uint8_t* data, size_t len) {
  size_t n = hl + len;
  const uint32_t ss = pool.slot_size();
  uint32_t run = static_cast<uint32_t>((n + ss - 1) / ss);
  int64_t slot = run <= 1 ? pool.acquire() : pool.acquire_run(run);
  if (slot < 0) return -1;
  uint8_t* f = pool.slot_ptr(static_cast<uint32_t>(slot));
  memcpy(f, hdr, hl);
  if (len) memcpy(f + hl, data, len);
  return slot;
}
}  // namespace

int64_t Shard::ws_fan(const std::vector<uint64_t>& targets, bool text, const uint8_t* data, size_t len,
                      uint32_t counts[3]) {
  uint8_t hdr[ws::kHeaderMax];
  size_t hl = ws::write_header(hdr, text ? ws::kText : ws::kBinary, true, len, nullptr);
  size_t n = hl + len;
  int64_t slot = frame_slot(*pool_, hdr, hl, data, len);
  if (slot < 0) return kErrPoolExhausted;
  const uint8_t* frame = pool_->slot_ptr(static_cast<uint32_t>(slot));
  // permessage-deflate subscribers without our context (the shared compressor): one compressed
  // frame for all of them, made when the first one is met (window bits must match: a class).
  int64_t zslot = -2;  // -2: not made yet, -1: none (not smaller, or no slot)
  size_t zn = 0;
  uint8_t zbits = 0;
  const uint8_t* zframe = nullptr;
  int64_t reached = 0;
  for (uint64_t t : targets) {
    uint32_t index = static_cast<uint32_t>(t & 0xFFFFFFFF), gen = static_cast<uint32_t>(t >> 32);
    Conn* c = index < conns_.size() ? lookup(index, gen) : nullptr;
    // (A client connection masks its frames: a server frame cannot be shared with it.)
    if (!c || !c->ws || !c->ws->upgraded || c->ws->client || c->state != ConnState::Open || c->ws->close_sent ||
        c->graceful || c->ws->ending) {
      ++counts[kWsDropped];
      continue;
    }
    ConnWs& w = *c->ws;
    int32_t r;
    if (!w.deflate || len < w.ep->cfg.deflate_min) {
      r = ws_fan_one(index, slot, frame, n, text, data, len);
    } else if (!w.own_ctx() && w.own_bits() == w.ep->cfg.dc.server_max_window_bits &&
               (zslot == -2 || zbits == w.own_bits())) {
      if (zslot == -2) {
        zbits = w.own_bits();
        zslot = -1;
        if (w.ep->shared.compress(data, len, &ws_z_, true) && ws_z_.size() < len) {
          uint8_t zh[ws::kHeaderMax];
          size_t zhl = ws::write_header(zh, text ? ws::kText : ws::kBinary, true, ws_z_.size(), nullptr);
          zh[0] |= 0x40;  // RSV1: compressed
          zslot = frame_slot(*pool_, zh, zhl, reinterpret_cast<const uint8_t*>(ws_z_.data()), ws_z_.size());
          if (zslot >= 0) {
            zframe = pool_->slot_ptr(static_cast<uint32_t>(zslot));
            zn = zhl + ws_z_.size();
            w.ep->stats.compress_saved += len - ws_z_.size();
          }
        }
      }
      if (zslot >= 0) {
        ++w.ep->stats.compressed_out;
        r = ws_fan_one(index, zslot, zframe, zn, text, data, len);
      } else {
        r = ws_fan_one(index, slot, frame, n, text, data, len);  // not smaller: as it is
      }
    } else {
      r = ws_fan_one(index, -1, nullptr, n, text, data, len);  // its own context: framed for it alone
    }
    ++counts[r];
    ++reached;
  }
  pool_->release(static_cast<uint32_t>(slot));  // the subscribers' references keep it
  if (zslot >= 0) pool_->release(static_cast<uint32_t>(zslot));
  wake_pool_waiters();
  return reached;
}

int32_t Shard::ws_fan_one(uint32_t index, int64_t slot, const uint8_t* frame, size_t n, bool text,
                          const uint8_t* payload, size_t plen) {
  Conn& c = conns_[index];
  ConnWs& w = *c.ws;
  WsCounters& st = w.ep->stats;
  if (ws_over_budget(index)) return kWsDropped;
  ++st.messages_out;
  ++st.published;
  if (slot < 0) {  // framed for this subscriber alone (ws_frame counts its bytes)
    ws_frame(index, text ? ws::kText : ws::kBinary, payload, plen);
    mark_dirty(index);
    return ws_outcome(index);
  }
  st.bytes_out += n;
  bool by_ref = !(c.tls && c.tls->ktls != Ktls::Active) && w.out_empty() && c.tx_count < txq_cap_ &&
                c.tx_bytes + n <= cfg_.max_write_queue_bytes && pool_->retain(static_cast<uint32_t>(slot));
  if (by_ref) {
    TxChunk* q = &txq_[static_cast<size_t>(index) * txq_cap_];
    q[(c.tx_head + c.tx_count) % txq_cap_] = TxChunk{static_cast<uint32_t>(slot), 0, 1, static_cast<uint32_t>(n)};
    ++c.tx_count;
    c.tx_bytes += n;
  } else {
    ws_raw(index, frame, n);
  }
  mark_dirty(index);
  return ws_outcome(index);
}

}  // namespace zio

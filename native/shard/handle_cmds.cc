// native/shard/handle_cmds.cc — IoHandle commands from other threads, carried out on the shard.
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

// ------------------------------------------------------------------ IoHandle commands

void Shard::arm_handle_wake() {
  io_uring_sqe* sqe = drv_.get_sqe();
  io_uring_prep_read(sqe, handle_q_->event_fd(), &handle_buf_, sizeof handle_buf_, 0);
  io_uring_sqe_set_data64(sqe, ud_encode(kOpHandleWake, 0, 0));
}

// Carries out queued cross-thread commands while the event ring has room for a rejection.
// A write is all-or-nothing: it is queued whole, or refused with a HandleRejected event (the
// owner of the shard sees it; nothing is dropped silently).
void Shard::set_handle_reservoir(uint32_t n) {
  uint32_t have = handle_q_->reservoir_size();
  handle_q_->set_reservoir_target(n);
  if (n > have) refill_reservoir(n - have);
  uint32_t slot;
  while (handle_q_->reservoir_surplus(n, &slot)) slot_release(slot);  // a lowered target
}

void Shard::refill_reservoir(uint32_t need) {
  for (uint32_t i = 0; i < need; ++i) {
    int64_t s = pool_->acquire();
    if (s < 0) break;  // taken again when slots come back and a taker asks
    handle_q_->reservoir_put(static_cast<uint32_t>(s));
  }
}

void Shard::drain_handle() {
  HandleCmd cmd;
  handle_q_->clear_awake();  // before popping: a push from now on signals again
  if (uint32_t need = handle_q_->reservoir_need()) refill_reservoir(need);
  while (room(3) && handle_q_->pop(&cmd)) {
    ++counters_.handle_cmds;
    uint32_t index = static_cast<uint32_t>(cmd.id & 0xfffff);
    uint32_t gen = static_cast<uint32_t>(cmd.id >> 20);
    int64_t r = 0;
    switch (cmd.op) {
      case kHandleWrite: {
        Conn* c = lookup(index, gen);
        if (!c) { r = kErrStaleId; break; }
        if (c->state != ConnState::Open && c->state != ConnState::Connecting &&
            c->state != ConnState::Resolving) { r = kErrClosing; break; }
        r = write_fits(index, cmd.len, false);
        if (r == 0) {
          int64_t w = conn_write(index, gen, cmd.data(), cmd.len);
          r = w == static_cast<int64_t>(cmd.len) ? 0 : w < 0 ? w : static_cast<int64_t>(kErrQueueFull);
        }
        break;
      }
      case kHandleClose: r = conn_close(index, gen); break;
      case kHandleReleaseSlot: {
        uint32_t slot = static_cast<uint32_t>(cmd.id);
        if (pool_->is_rx(slot)) owned_release(slot);
        else slot_release(slot);
        free(cmd.heap);
        continue;
      }
      case kHandleWriteSlot: {
        // All-or-nothing like kHandleWrite: queued whole or refused with HandleRejected.
        Conn* c = lookup(index, gen);
        if (!c) { r = kErrStaleId; break; }
        if (c->state != ConnState::Open) { r = kErrClosing; break; }
        if (!pool_->held(cmd.arg) || cmd.len > pool_->slot_size()) { r = kErrWrongKind; break; }
        r = write_fits(index, cmd.len, true);
        if (r == 0) {
          int64_t w = conn_write_slot(index, gen, cmd.arg, 0, cmd.len);
          r = w == static_cast<int64_t>(cmd.len) ? 0 : w < 0 ? w : static_cast<int64_t>(kErrQueueFull);
        }
        break;
      }
      case kHandleCloseGraceful: r = conn_close_graceful(index, gen, cmd.arg); break;
      case kHandlePauseRecv: r = conn_pause_recv(index, gen, true); break;
      case kHandleHttpRespond: r = handle_http_respond(index, gen, cmd); break;
      case kHandleResumeRecv: r = conn_pause_recv(index, gen, false); break;
      case kHandleWsPublish: {
        uint32_t tl = cmd.arg >> 1;
        if (tl == 0 || tl > cmd.len) { r = -EINVAL; break; }
        std::string topic(reinterpret_cast<const char*>(cmd.data()), tl);
        uint32_t counts[3];
        int64_t x = ws_publish(topic, (cmd.arg & 1) != 0, cmd.data() + tl, cmd.len - tl, counts);
        r = x < 0 ? x : 0;  // no pool slot for the frame: HandleRejected (nothing was sent)
        break;
      }
      default: r = -EINVAL;
    }
    bool carries = cmd.op == kHandleWrite || cmd.op == kHandleWriteSlot;  // bytes were dropped
    if (r < 0 && r != kErrClosing && !(r == kErrStaleId && !carries)) {
      ++counters_.handle_rejected;
      emit(kEvHandleRejected, index, gen, cmd.op, 0, carries ? cmd.len : 0u,
           static_cast<int32_t>(r), 0);
    }
    free(cmd.heap);
  }
}

// An answer from another thread (see kHandleHttpRespond for the layout). A request that is gone
// is a no-op, as on the shard's own thread; a malformed command is rejected.
int64_t Shard::handle_http_respond(uint32_t index, uint32_t gen, const HandleCmd& cmd) {
  const uint8_t* p = cmd.data();
  uint32_t len = cmd.len;
  auto u16 = [](const uint8_t* q) { uint16_t v; memcpy(&v, q, 2); return v; };
  if (len < 8) return -EINVAL;
  uint16_t status = u16(p), nfields = u16(p + 2);
  uint32_t body_len;
  memcpy(&body_len, p + 4, 4);
  constexpr uint32_t kFieldsMax = 128;
  if (nfields > kFieldsMax) return -EINVAL;
  http1::Field fields[kFieldsMax];
  uint32_t at = 8;
  for (uint32_t i = 0; i < nfields; ++i) {
    if (at + 4 > len) return -EINVAL;
    uint16_t nl = u16(p + at), vl = u16(p + at + 2);
    at += 4;
    if (at + nl + vl > len) return -EINVAL;
    fields[i] = {reinterpret_cast<const char*>(p + at), nl, reinterpret_cast<const char*>(p + at + nl), vl};
    at += nl + vl;
  }
  if (at + body_len != len) return -EINVAL;
  int64_t r = http_respond(index, gen, cmd.arg, status, fields, nfields, p + at, body_len, false);
  return r == kErrStaleId ? 0 : r;  // the request is gone: nothing to answer, nothing to report
}

}  // namespace zio

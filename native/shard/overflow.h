// native/shard/overflow.h — bytes a protocol wrote beyond its connection's write-queue room
// (an HTTP answer, WebSocket frames): kept whole, in order, and handed to the write queue as it
// drains (Shard::overflow_write / overflow_drain in tx.cc).
#pragma once
#include <cstddef>
#include <string>

namespace zio {

struct Overflow {
  std::string buf;
  size_t off = 0;  // bytes of buf already in the write queue
  bool empty() const { return off >= buf.size(); }
  size_t left() const { return buf.size() - off; }
};

}  // namespace zio

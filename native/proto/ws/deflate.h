// native/proto/ws/deflate.h — permessage-deflate (RFC 7692), sans-IO: the extension's
// negotiation (offers and answers of Sec-WebSocket-Extensions) and the per-message codec on
// zlib-ng's raw deflate (from the Rust staticlib, as the HTTP codings).
//
// Memory (zlib-ng): an inflater holds a window of 2^client_max_window_bits bytes plus ~7 KiB of
// state; a deflater 2^(window_bits + 2) + 2^(mem_level + 9) bytes plus ~6 KiB. Both are made
// on first use.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace zio::ws {

// What one side is willing to agree to.
struct DeflateConfig {
  bool server_no_context_takeover = true;   // server: ask for it (a shared compressor per shard)
  bool client_no_context_takeover = false;  // server: ask the client not to keep its context
  uint8_t server_max_window_bits = 15;      // 8..15
  uint8_t client_max_window_bits = 15;      // 8..15 (applied when the client allows it)
  int level = 3;                            // zlib level 1..9
  uint8_t mem_level = 8;                    // 1..9
};

// What was agreed for a connection.
struct DeflateParams {
  bool server_no_context_takeover = false, client_no_context_takeover = false;
  uint8_t server_max_window_bits = 15, client_max_window_bits = 15;
};

// Server side: picks the first permessage-deflate offer in `v` (one Sec-WebSocket-Extensions
// value; call once per field line, stopping at the first true) it can accept under `cfg`, and
// writes the answer's value into *answer. False when there is no acceptable offer (also for an
// offer with unknown or repeated parameters, which RFC 7692 section 7 says to decline).
bool negotiate(const uint8_t* v, size_t n, const DeflateConfig& cfg, DeflateParams* agreed, std::string* answer);
// The client's offer for `cfg` (client_max_window_bits offered so the server may lower it).
std::string client_offer(const DeflateConfig& cfg);
// Client side: the server's answer (the value of its Sec-WebSocket-Extensions). False when it is
// not a valid answer to our offer.
bool accept_answer(const uint8_t* v, size_t n, const DeflateConfig& cfg, DeflateParams* agreed);

// Decompresses one message at a time. Not copyable.
class Inflater {
 public:
  Inflater() = default;
  ~Inflater();
  Inflater(const Inflater&) = delete;
  Inflater& operator=(const Inflater&) = delete;
  // Feeds compressed bytes of the current message, appending what they inflate to *out.
  // kInflateOk, kInflateTooBig (*out would pass `limit`: a compression bomb, 1009) or
  // kInflateBad (not deflate data, 1007); *why says which.
  enum : int { kInflateOk = 0, kInflateTooBig = 1, kInflateBad = 2 };
  int feed(const uint8_t* p, size_t n, std::string* out, size_t limit, const char** why);
  // The message ended: the RFC's 00 00 FF FF tail is fed, and with `reset` the window is dropped
  // (no context takeover).
  int finish(std::string* out, size_t limit, bool reset, const char** why);
  void set_window_bits(uint8_t bits) { bits_ = bits; }
  size_t memory() const;

 private:
  bool ensure();
  void* z_ = nullptr;
  uint8_t bits_ = 15;
};

class Deflater {
 public:
  Deflater() = default;
  ~Deflater();
  Deflater(const Deflater&) = delete;
  Deflater& operator=(const Deflater&) = delete;
  void configure(int level, uint8_t window_bits, uint8_t mem_level);
  // One whole message: its compressed payload (the trailing 00 00 FF FF removed) into *out.
  // With `reset` the context is dropped after it (no context takeover). False on a codec error.
  bool compress(const uint8_t* p, size_t n, std::string* out, bool reset);
  size_t memory() const;

 private:
  void* z_ = nullptr;
  int level_ = 3;
  uint8_t bits_ = 15, mem_ = 8;
};

}  // namespace zio::ws

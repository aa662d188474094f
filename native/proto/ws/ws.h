// native/proto/ws/ws.h — the WebSocket frame machine (RFC 6455), sans-IO: frames, and the
// opening handshake's pieces (the Sec-WebSocket-Accept key, the subprotocol choice). Its
// connection wiring lives in shard/ws_conn.cc.
//
// Reading: Reader::feed(bytes) walks frames in place (the payload is unmasked where it lies, so
// a message's bytes can be handed on without a copy) and reports, through Events, message data
// (text is UTF-8-checked across fragments), message ends, pings, pongs and the close frame, or
// the close code a violation calls for (1002 protocol, 1007 invalid UTF-8, 1009 too big).
// Writing: write_header() builds a frame header (masked for a client) before its payload.
// No allocation, no syscalls, no clock.
#pragma once
#include <cstddef>
#include <cstdint>

namespace zio::ws {

enum Opcode : uint8_t { kContinuation = 0, kText = 1, kBinary = 2, kClose = 8, kPing = 9, kPong = 10 };

// Close codes (RFC 6455 section 7.4.1).
enum : uint16_t {
  kNormal = 1000, kGoingAway = 1001, kProtocolError = 1002, kUnsupportedData = 1003,
  kNoStatus = 1005, kAbnormal = 1006, kInvalidPayload = 1007, kPolicy = 1008, kTooBig = 1009,
  kMissingExtension = 1010, kInternalError = 1011,
};

// Whether a close code may appear in a close frame (1000-1003, 1007-1014, 3000-4999: 1012-1014
// are IANA-registered: service restart, try again later, bad gateway).
bool valid_close_code(uint16_t code);

// Unmasks (or masks: the same XOR) n bytes that sit `offset` bytes into a frame's payload.
void unmask(uint8_t* data, size_t n, const uint8_t key[4], uint64_t offset);

// Incremental UTF-8 validation (RFC 3629: no overlongs, no surrogates, at most U+10FFFF) that
// may be fed a sequence cut anywhere.
class Utf8 {
 public:
  // False at the first invalid byte (the validator then stays failed).
  bool feed(const uint8_t* p, size_t n);
  // No sequence left open (the message may end here).
  bool complete() const { return need_ == 0 && !bad_; }
  void reset() { need_ = 0; lo_ = 0x80; hi_ = 0xBF; bad_ = false; }

 private:
  uint8_t need_ = 0;               // continuation bytes still expected
  uint8_t lo_ = 0x80, hi_ = 0xBF;  // the range allowed for the next continuation byte
  bool bad_ = false;
};

struct Limits {
  uint64_t max_message = 16u << 20;  // bytes of one message (all its fragments)
  uint64_t max_frame = UINT64_MAX;   // bytes of one data frame's payload
  bool server = true;                // frames from a client must be masked (from a server: not)
  bool deflate = false;              // permessage-deflate agreed: RSV1 marks a compressed message
};

class Events {
 public:
  virtual ~Events() = default;
  // Bytes of the current message (unmasked, in place; valid for the call). `text`: the message
  // is text (and these bytes passed UTF-8 checking so far — unless the message is compressed
  // (Reader::compressed()): its bytes are deflate data, checked by the caller once inflated).
  virtual void on_data(const uint8_t* p, size_t n, bool text) = 0;
  // The current message is complete.
  virtual void on_message_end(bool text) = 0;
  virtual void on_ping(const uint8_t* p, size_t n) = 0;
  virtual void on_pong(const uint8_t* p, size_t n) = 0;
  // The peer's close frame: its code (kNoStatus when the frame had none) and reason.
  virtual void on_close(uint16_t code, const uint8_t* reason, size_t n) = 0;
};

class Reader {
 public:
  Reader(const Limits& limits, Events* events) : limits_(limits), events_(events) {}
  // Consumes frames from data[0, len) (unmasking payloads in place). Returns the bytes used:
  // a frame header cut short is left for the next call (the caller keeps those bytes and
  // feeds them again with what follows); payloads are consumed as they come. After a
  // violation returns what was used and failed() is set.
  size_t feed(uint8_t* data, size_t len);
  // The close code a violation calls for (0: none), and why (static text).
  uint16_t failed() const { return fail_code_; }
  const char* why() const { return why_; }
  bool closed() const { return closed_; }  // the peer's close frame was read: nothing more is
  // Called from an Events callback: feed() returns after the frame that made the call (the
  // caller ran out of room for what the next frames would produce) and is fed the rest later.
  void pause() { pause_ = true; }
  // The current message is compressed (RSV1 on its first frame; permessage-deflate).
  bool compressed() const { return compressed_; }
  void set_deflate(bool on) { limits_.deflate = on; }

 private:
  size_t fail(uint16_t code, const char* why, size_t used);
  Limits limits_;
  Events* events_;
  // The frame being read.
  bool in_frame_ = false, fin_ = false, masked_ = false;
  uint8_t opcode_ = 0, key_[4] = {};
  uint64_t remaining_ = 0, offset_ = 0;
  // The message being assembled (data frames).
  bool in_message_ = false, text_ = false, compressed_ = false;
  uint64_t message_bytes_ = 0;
  Utf8 utf8_;
  // A control frame's payload, gathered (at most 125 bytes).
  uint8_t control_[125] = {};
  size_t control_len_ = 0;
  uint16_t fail_code_ = 0;
  const char* why_ = "";
  bool closed_ = false;
  bool pause_ = false;
};

// Writes a frame header into out (at most kHeaderMax bytes) for a payload of `len` bytes;
// `key`: a client's masking key (the caller masks the payload with unmask()), or nullptr.
// Returns the header's length.
constexpr size_t kHeaderMax = 14;
size_t write_header(uint8_t* out, uint8_t opcode, bool fin, uint64_t len, const uint8_t* key);

// ---- the opening handshake (RFC 6455 section 4) ----
// Whether a Sec-WebSocket-Key is the base64 of 16 bytes (24 characters, "==" at the end).
bool key_valid(const uint8_t* key, size_t n);
// Sec-WebSocket-Accept for a key: base64(SHA-1(key + the RFC's GUID)), 28 characters.
void accept_key(const uint8_t* key, size_t n, char out[28]);
// Whether a comma-separated token list (a Sec-WebSocket-Protocol or Connection value) holds
// `token` (case-sensitive when `exact`, as subprotocol names are; otherwise ASCII case-blind).
bool list_has(const uint8_t* list, size_t n, const char* token, size_t token_len, bool exact);

// A masking key for a client frame (RFC 6455 section 5.3: unpredictable; BoringSSL's RNG).
void mask_key(uint8_t key[4]);
// A client's opening handshake: its request, and the check of the server's answer.
// The Sec-WebSocket-Key (16 random bytes, base64) and the accept value it expects.
void client_key(char key[24], char expect[28]);
// What parse_response found in a server's answer to the opening handshake.
struct Response {
  uint16_t status = 0;
  bool upgrade_ok = false, connection_ok = false, accept_ok = false, extensions = false;
  const uint8_t* protocol = nullptr;  // Sec-WebSocket-Protocol's value (nullptr: none)
  size_t protocol_len = 0;
  const uint8_t* ext = nullptr;       // Sec-WebSocket-Extensions' value (one line; nullptr: none)
  size_t ext_len = 0;
};
// Parses a response head from p[0, n): its length, 0 when incomplete, -1 when malformed.
// `expect` is the accept value of the key sent.
int64_t parse_response(const uint8_t* p, size_t n, const char expect[28], Response* out);

}  // namespace zio::ws

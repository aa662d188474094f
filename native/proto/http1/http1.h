// native/proto/http1/http1.h — the HTTP/1.1 request parser (RFC 9110 / RFC 9112), sans-IO.
//
// Two machines:
//   parse_head(): the request line and header section, from one contiguous buffer (the caller
//     keeps the bytes until the head is complete; offsets in Head point into that buffer).
//   BodyDecoder: the message body as framed by Content-Length or chunked coding (RFC 9112
//     section 6 and 7.1), fed in pieces of any size; yields data spans into what it was fed.
// Strict by design (request smuggling defences, each cited at its check): a bare CR or LF,
// obs-fold, whitespace before a colon, a field name or method that is not a token, control
// characters in a value or target, Content-Length with Transfer-Encoding, a repeated or
// malformed Content-Length, a Transfer-Encoding that does not end in chunked, chunk sizes that
// overflow, chunk extensions beyond their limit — each is an error with the status to answer
// (400, 413, 414, 431, 501, 505); the connection is then closed by the caller.
// No allocation: headers go into caller-provided storage; no syscalls, no clock.
#pragma once
#include <cstddef>
#include <cstdint>

namespace zio::http1 {

// Limits, unit last (STYLE.md 6).
struct Limits {
  uint32_t head_bytes_max = 16 * 1024;   // request line + headers + final CRLF -> 431
  uint32_t headers_max = 100;            // header fields -> 431
  uint32_t target_bytes_max = 8 * 1024;  // request-target -> 414
  uint32_t chunk_ext_bytes_max = 1024;   // extensions of one chunk -> 400
  uint32_t trailer_bytes_max = 8 * 1024; // the trailer section -> 431
  uint64_t body_bytes_max = 1ull << 30;  // declared or decoded body -> 413
};

// A range of the buffer parse_head() was given (or the piece BodyDecoder was fed).
struct Span {
  uint32_t off = 0, len = 0;
};

struct Header {
  Span name, value;  // value without leading/trailing whitespace
};

enum class Method : uint8_t { Other, Get, Head, Post, Put, Delete, Connect, Options, Trace, Patch };

// parse_head / BodyDecoder results: >= 0 bytes consumed (head: the whole head), or one of:
enum : int32_t {
  kIncomplete = -1,  // need more bytes (nothing consumed)
  kError = -2,       // malformed: see the Error for the status and the reason
};

struct Error {
  uint16_t status = 0;        // the status to answer: 400, 413, 414, 431, 501 or 505
  const char* reason = "";    // static text: what was wrong (for logs and counters)
};

struct Head {
  Method method = Method::Other;
  Span method_text, target, path, query;  // query: after '?', without it (len 0: none)
  uint8_t version_minor = 1;              // HTTP/1.0 or HTTP/1.1
  Header* headers = nullptr;              // caller's storage, limits.headers_max entries
  uint32_t header_count = 0;
  int64_t content_length = -1;            // -1: none
  bool chunked = false;
  bool keep_alive = true;                 // after Connection and the version's default
  bool expect_continue = false;           // Expect: 100-continue
  bool upgrade = false;                   // Connection: upgrade with an Upgrade field
  Span upgrade_to;                        // the Upgrade field's value
  bool h2_preface = false;                // "PRI * HTTP/2.0": HTTP/2 with prior knowledge (RFC 9113
                                          // 3.4); parse_head returns the request line's length, the
                                          // caller checks the rest of the 24-byte preface
  uint32_t head_bytes = 0;
};

// Parses a request head from buf[0, len). `headers` must have limits.headers_max entries.
// Returns the head's length in bytes (the body, if any, starts there), kIncomplete, or kError
// with *err set. Leading empty lines (CRLF) before the request line are skipped (RFC 9112
// section 2.2) and counted in the length.
int32_t parse_head(const uint8_t* buf, size_t len, const Limits& limits, Head* head, Header* headers,
                   Error* err);

// Case-insensitive comparison of a span of `buf` with a lowercase ASCII literal.
bool span_is(const uint8_t* buf, Span s, const char* lower);

// The body of one request, framed by Content-Length or chunked coding.
//
//   size-state machine for chunked (RFC 9112 section 7.1):
//     Size --hex digits--> Size --';'--> Ext --CRLF--> Data --len bytes--> DataCr -> DataLf -> Size
//     Size --'0' CRLF--> Trailer --CRLF--> Done;  Trailer --field line CRLF--> Trailer
class BodyDecoder {
 public:
  // Content-Length framing (cl >= 0), chunked, or neither (no body: done at once).
  void start(int64_t content_length, bool chunked, const Limits& limits);
  // Decodes from p[0, n). Returns the bytes consumed (possibly fewer than n: call again with the
  // rest; a request's body may end before n: what follows is the next request), or kError.
  // *data is the body bytes found in this call (a span of p; len 0: none). Borrowed: valid
  // while p is.
  int32_t feed(const uint8_t* p, size_t n, Span* data, Error* err);
  bool done() const { return state_ == State::Done; }
  uint64_t body_bytes() const { return total_; }
  // Chunked trailer fields seen (not kept: bounded by trailer_bytes_max).
  uint32_t trailer_fields() const { return trailers_; }

 private:
  enum class State : uint8_t { Length, Size, Ext, SizeLf, Data, DataCr, DataLf, Trailer, TrailerLf,
                               TrailerLine, TrailerLineLf, Done };
  State state_ = State::Done;
  Limits limits_;
  uint64_t left_ = 0;        // Length: bytes to go; Data: bytes of this chunk to go
  uint64_t total_ = 0;
  uint32_t digits_ = 0;      // hex digits of the chunk size so far
  uint32_t ext_bytes_ = 0;
  uint32_t trailer_bytes_ = 0, trailers_ = 0;
  bool line_empty_ = true;   // the trailer line so far is empty
};

}  // namespace zio::http1

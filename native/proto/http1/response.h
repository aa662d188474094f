// native/proto/http1/response.h — HTTP/1.1 response heads and chunked framing, sans-IO.
//
// The writing half of the HTTP/1.1 machine: a response head serialised into caller memory
// (a pool slot), the Date field from a per-second cache, chunk framing for streamed bodies.
// Field names and values are checked (RFC 9110 section 5): a CR, LF or NUL in either would let
// a handler split the response (response splitting), so such a head is refused, not written.
// No allocation, no clock (the caller passes the time), no syscalls.
#pragma once
#include <cstddef>
#include <cstdint>

namespace zio::http1 {

struct Field {
  const char* name;
  size_t name_len;
  const char* value;
  size_t value_len;
};

struct ResponseHead {
  uint16_t status = 200;
  const Field* fields = nullptr;  // the application's fields (no Date / Content-Length / Transfer-Encoding / Connection)
  uint32_t field_count = 0;
  int64_t body_bytes = 0;         // >= 0: Content-Length; -1: chunked (a streamed body)
  bool head_request = false;      // HEAD: the framing fields as for GET, no body (RFC 9110 9.3.2)
  bool close = false;             // Connection: close (the connection ends after this response)
  bool http10 = false;            // the request was HTTP/1.0: no chunked (close-delimited instead)
  bool keep_alive10 = false;      // an HTTP/1.0 request asked for keep-alive: say it is kept
                                  // (HTTP/1.0 closes by default, RFC 9112 section 9.3)
  bool trusted = false;           // the fields were checked already (a stored template)
};

// IMF-fixdate (RFC 9110 section 5.6.7) of a Unix time, cached for the second it was made.
class DateCache {
 public:
  // The 29-byte date for `unix_seconds` ("Sun, 06 Nov 1994 08:49:37 GMT"), formatted once per second.
  const char* get(int64_t unix_seconds);
  static constexpr size_t kLen = 29;

 private:
  int64_t second_ = -1;
  char text_[kLen + 1] = {};
};

// The canonical reason phrase of a status ("OK", "Not Found"; "" for an unknown code).
const char* reason_phrase(uint16_t status);

// Whether a status has no body by definition (1xx, 204, 304): no Content-Length or chunked
// framing is written for it (RFC 9110 sections 8.6, 15.3.5, 15.4.5; RFC 9112 section 6.1).
bool status_has_no_body(uint16_t status);

// Results of serialize_head: bytes written, or
enum : int64_t {
  kNoRoom = -1,      // `cap` is too small: nothing written
  kBadField = -2,    // a field name is not a token, or a name/value holds CR, LF or NUL
  kBadStatus = -3,   // not 100..999
};

// Writes the head into out[0, cap): status line, Date, the framing field (Content-Length, or
// Transfer-Encoding: chunked unless HTTP/1.0, where the body is delimited by the close),
// Connection: close when asked, then the application's fields and the empty line.
int64_t serialize_head(const ResponseHead& h, DateCache& date, int64_t unix_seconds, uint8_t* out,
                       size_t cap);

// Chunk framing: the size line before `len` data bytes ("1a\r\n"), written into out (at most
// kChunkLineMax bytes); returns its length. After the data the caller writes "\r\n"; the body
// ends with kLastChunk.
constexpr size_t kChunkLineMax = 18;  // 16 hex digits + CRLF
size_t chunk_line(uint64_t len, uint8_t* out);
constexpr const char kChunkEnd[] = "\r\n";
constexpr const char kLastChunk[] = "0\r\n\r\n";

}  // namespace zio::http1

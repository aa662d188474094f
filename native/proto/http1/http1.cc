#include "proto/http1/http1.h"

#include <cstring>

namespace zio::http1 {
namespace {

// tchar (RFC 9110 section 5.6.2): "!#$%&'*+-.^_`|~", DIGIT, ALPHA.
struct TokenTable {
  bool t[256] = {};
  constexpr TokenTable() {
    for (const char* c = "!#$%&'*+-.^_`|~"; *c; ++c) t[static_cast<unsigned char>(*c)] = true;
    for (int c = '0'; c <= '9'; ++c) t[c] = true;
    for (int c = 'a'; c <= 'z'; ++c) t[c] = true;
    for (int c = 'A'; c <= 'Z'; ++c) t[c] = true;
  }
};
constexpr TokenTable kToken{};

inline bool is_token(uint8_t c) { return kToken.t[c]; }
// field-vchar / SP / HTAB (RFC 9110 section 5.5): no CTL, no DEL. obs-text (>= 0x80) is allowed.
inline bool is_field_char(uint8_t c) { return c == '\t' || (c >= 0x20 && c != 0x7f); }
// request-target bytes (RFC 9112 section 3.2, RFC 3986): visible ASCII only.
inline bool is_target_char(uint8_t c) { return c > 0x20 && c < 0x7f; }
inline int hexval(uint8_t c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
inline uint8_t lower(uint8_t c) { return c >= 'A' && c <= 'Z' ? static_cast<uint8_t>(c + 32) : c; }

int32_t fail(Error* err, uint16_t status, const char* reason) {
  err->status = status;
  err->reason = reason;
  return kError;
}

struct Method_ {
  const char* text;
  Method m;
};
constexpr Method_ kMethods[] = {{"GET", Method::Get},         {"HEAD", Method::Head},
                                {"POST", Method::Post},       {"PUT", Method::Put},
                                {"DELETE", Method::Delete},   {"CONNECT", Method::Connect},
                                {"OPTIONS", Method::Options}, {"TRACE", Method::Trace},
                                {"PATCH", Method::Patch}};

// Calls f(element span) for each element of a comma-separated list (RFC 9110 section 5.6.1),
// trimming OWS; empty elements are passed as len 0.
template <typename F>
void each_element(const uint8_t* buf, Span v, F&& f) {
  uint32_t i = v.off, end = v.off + v.len;
  while (i <= end) {
    uint32_t s = i;
    while (i < end && buf[i] != ',') ++i;
    uint32_t e = i;
    while (s < e && (buf[s] == ' ' || buf[s] == '\t')) ++s;
    while (e > s && (buf[e - 1] == ' ' || buf[e - 1] == '\t')) --e;
    f(Span{s, e - s});
    ++i;  // past the comma (or past the end)
  }
}

}  // namespace

bool span_is(const uint8_t* buf, Span s, const char* lower_lit) {
  size_t n = strlen(lower_lit);
  if (s.len != n) return false;
  for (size_t i = 0; i < n; ++i)
    if (lower(buf[s.off + i]) != static_cast<uint8_t>(lower_lit[i])) return false;
  return true;
}

int32_t parse_head(const uint8_t* buf, size_t len, const Limits& lim, Head* h, Header* headers,
                   Error* err) {
  *h = Head{};
  h->headers = headers;
  // Too long to ever be a head within the limit: answer without waiting for the end.
  auto over = [&](bool) { return fail(err, 431, "request head larger than maxHeaderSize"); };
  const size_t cap = lim.head_bytes_max;
  size_t i = 0;
  // RFC 9112 section 2.2: a server SHOULD ignore at least one empty line before the request line.
  while (i + 1 < len && buf[i] == '\r' && buf[i + 1] == '\n') i += 2;
  if (i >= len || (buf[i] == '\r' && i + 1 >= len)) return len > cap ? over(false) : kIncomplete;
  if (buf[i] == '\n' || buf[i] == '\r') return fail(err, 400, "bare CR or LF before the request line");

  // ---- request-line = method SP request-target SP HTTP-version CRLF (RFC 9112 section 3)
  size_t m0 = i;
  while (i < len && is_token(buf[i])) {
    if (i - m0 >= 32) return fail(err, 400, "method longer than 32 bytes");
    ++i;
  }
  if (i >= len) return kIncomplete;
  if (i == m0 || buf[i] != ' ') return fail(err, 400, "method is not a token followed by one space");
  h->method_text = Span{static_cast<uint32_t>(m0), static_cast<uint32_t>(i - m0)};
  for (const auto& km : kMethods)
    if (h->method_text.len == strlen(km.text) && memcmp(buf + m0, km.text, h->method_text.len) == 0)
      h->method = km.m;
  size_t t0 = ++i;
  while (i < len && is_target_char(buf[i])) {
    if (i - t0 >= lim.target_bytes_max) return fail(err, 414, "request-target longer than maxTargetSize");
    ++i;
  }
  if (i >= len) return len > cap ? over(true) : kIncomplete;
  if (i == t0 || buf[i] != ' ') return fail(err, 400, "request-target has a forbidden character (or is empty)");
  h->target = Span{static_cast<uint32_t>(t0), static_cast<uint32_t>(i - t0)};
  size_t v0 = ++i;
  if (len - v0 < 10) {  // "HTTP/1.1\r\n"
    for (size_t k = v0; k < len; ++k)
      if (buf[k] == '\n' || (buf[k] == '\r' && k + 1 < len && buf[k + 1] != '\n'))
        return fail(err, 400, "malformed HTTP version or line end");
    return kIncomplete;
  }
  if (memcmp(buf + v0, "HTTP/", 5) != 0 || buf[v0 + 6] != '.' || buf[v0 + 5] < '0' ||
      buf[v0 + 5] > '9' || buf[v0 + 7] < '0' || buf[v0 + 7] > '9')
    return fail(err, 400, "malformed HTTP version");
  if (buf[v0 + 8] != '\r' || buf[v0 + 9] != '\n') return fail(err, 400, "request line does not end in CRLF");
  uint8_t major = buf[v0 + 5] - '0', minor = buf[v0 + 7] - '0';
  i = v0 + 10;
  if (major == 2 && minor == 0 && h->method_text.len == 3 && memcmp(buf + m0, "PRI", 3) == 0 &&
      h->target.len == 1 && buf[t0] == '*') {
    h->h2_preface = true;  // the caller hands the connection to HTTP/2 (RFC 9113 section 3.4)
    h->head_bytes = static_cast<uint32_t>(i);
    return static_cast<int32_t>(i);
  }
  if (major != 1 || minor > 1) return fail(err, 505, "HTTP version not supported (1.0 and 1.1 are)");
  if (i > cap) return over(false);
  h->version_minor = minor;

  // Path and query of the target (origin-form, absolute-form, asterisk, authority-form).
  {
    uint32_t p = h->target.off, e = h->target.off + h->target.len;
    if (buf[p] != '/' && buf[p] != '*' && h->method != Method::Connect) {
      // absolute-form: scheme "://" authority path
      uint32_t k = p;
      while (k + 2 < e && !(buf[k] == ':' && buf[k + 1] == '/' && buf[k + 2] == '/')) ++k;
      if (k + 2 >= e) return fail(err, 400, "request-target is neither origin-form nor absolute-form");
      k += 3;
      while (k < e && buf[k] != '/' && buf[k] != '?') ++k;
      p = k;
    }
    uint32_t q = p;
    while (q < e && buf[q] != '?') ++q;
    h->path = Span{p, q - p};
    if (q < e) h->query = Span{q + 1, e - q - 1};
  }

  // ---- field lines (RFC 9112 section 5)
  int host_count = 0, cl_count = 0, te_count = 0;
  bool conn_close = false, conn_keep = false, conn_upgrade = false, has_upgrade = false;
  Span te{};
  for (;;) {
    if (i >= len) return len > cap ? over(false) : kIncomplete;
    if (buf[i] == '\r') {
      if (i + 1 >= len) return len > cap ? over(false) : kIncomplete;
      if (buf[i + 1] != '\n') return fail(err, 400, "bare CR in the header section");
      i += 2;
      break;  // the empty line: end of the head
    }
    if (buf[i] == '\n') return fail(err, 400, "bare LF in the header section");
    // RFC 9112 section 5.2: obs-fold is rejected with 400.
    if (buf[i] == ' ' || buf[i] == '\t') return fail(err, 400, "obs-fold (a header line starting with whitespace)");
    size_t n0 = i;
    while (i < len && is_token(buf[i])) ++i;
    if (i >= len) return len > cap ? over(false) : kIncomplete;
    // RFC 9112 section 5.1: no whitespace between the field name and the colon (MUST reject).
    if (buf[i] != ':' || i == n0) return fail(err, 400, "header field name is not a token followed by ':'");
    Span name{static_cast<uint32_t>(n0), static_cast<uint32_t>(i - n0)};
    ++i;
    while (i < len && (buf[i] == ' ' || buf[i] == '\t')) ++i;
    size_t vs = i;
    while (i < len && is_field_char(buf[i])) ++i;
    if (i >= len) return len > cap ? over(false) : kIncomplete;
    if (buf[i] == '\n') return fail(err, 400, "bare LF ends a header line");
    if (buf[i] != '\r') return fail(err, 400, "forbidden character (NUL or control) in a header value");
    if (i + 1 >= len) return len > cap ? over(false) : kIncomplete;
    if (buf[i + 1] != '\n') return fail(err, 400, "bare CR in a header value");
    size_t ve = i;
    while (ve > vs && (buf[ve - 1] == ' ' || buf[ve - 1] == '\t')) --ve;
    i += 2;
    if (i > cap) return over(false);
    if (h->header_count >= lim.headers_max) return fail(err, 431, "more header fields than maxHeaderCount");
    Span value{static_cast<uint32_t>(vs), static_cast<uint32_t>(ve - vs)};
    headers[h->header_count++] = Header{name, value};

    // The fields that frame the message or the connection.
    if (span_is(buf, name, "content-length")) {
      // RFC 9112 section 6.3: an invalid or repeated Content-Length is unrecoverable framing
      // (repeated identical values are refused too: no list forms, no second opinion).
      if (++cl_count > 1) return fail(err, 400, "repeated Content-Length");
      if (value.len == 0 || value.len > 19) return fail(err, 400, "malformed Content-Length");
      uint64_t v = 0;
      for (uint32_t k = 0; k < value.len; ++k) {
        uint8_t c = buf[value.off + k];
        if (c < '0' || c > '9') return fail(err, 400, "malformed Content-Length");
        v = v * 10 + (c - '0');
      }
      if (v > lim.body_bytes_max) return fail(err, 413, "Content-Length over maxBodySize");
      h->content_length = static_cast<int64_t>(v);
    } else if (span_is(buf, name, "transfer-encoding")) {
      if (++te_count > 1) return fail(err, 400, "repeated Transfer-Encoding");
      te = value;
    } else if (span_is(buf, name, "host")) {
      ++host_count;
    } else if (span_is(buf, name, "connection")) {
      each_element(buf, value, [&](Span el) {
        if (span_is(buf, el, "close")) conn_close = true;
        else if (span_is(buf, el, "keep-alive")) conn_keep = true;
        else if (span_is(buf, el, "upgrade")) conn_upgrade = true;
      });
    } else if (span_is(buf, name, "expect")) {
      if (span_is(buf, value, "100-continue")) h->expect_continue = true;
      else return fail(err, 417, "an expectation other than 100-continue");
    } else if (span_is(buf, name, "upgrade")) {
      has_upgrade = true;
      h->upgrade_to = value;
    }
  }
  if (i > cap) return over(false);
  h->head_bytes = static_cast<uint32_t>(i);

  // RFC 9112 section 3.2: a 1.1 request without exactly one Host gets 400.
  if (host_count > 1 || (minor == 1 && host_count == 0)) return fail(err, 400, "missing or repeated Host");
  if (te_count) {
    // RFC 9112 section 6.1: Transfer-Encoding in a 1.0 request is faulty framing.
    if (minor == 0) return fail(err, 400, "Transfer-Encoding in an HTTP/1.0 request");
    // RFC 9112 section 6.3: both Transfer-Encoding and Content-Length: refuse (request smuggling).
    if (cl_count) return fail(err, 400, "both Transfer-Encoding and Content-Length");
    // The codings: chunked last and once; anything else before it is not implemented here.
    int elements = 0, chunked_at = -1;
    bool bad = false, other = false;
    each_element(buf, te, [&](Span el) {
      if (el.len == 0) { bad = true; return; }
      for (uint32_t k = 0; k < el.len; ++k)
        if (!is_token(buf[el.off + k])) bad = true;
      if (span_is(buf, el, "chunked")) {
        if (chunked_at >= 0) bad = true;
        chunked_at = elements;
      } else {
        other = true;
      }
      ++elements;
    });
    if (bad || chunked_at != elements - 1) return fail(err, 400, "Transfer-Encoding does not end in one chunked");
    if (other) return fail(err, 501, "a transfer coding other than chunked");
    h->chunked = true;
  }
  h->keep_alive = !conn_close && (minor == 1 || conn_keep);
  h->upgrade = conn_upgrade && has_upgrade;
  return static_cast<int32_t>(i);
}

// ------------------------------------------------------------------ body

void BodyDecoder::start(int64_t content_length, bool chunked, const Limits& limits) {
  limits_ = limits;
  total_ = 0;
  digits_ = 0;
  ext_bytes_ = 0;
  trailer_bytes_ = 0;
  trailers_ = 0;
  line_empty_ = true;
  if (chunked) {
    state_ = State::Size;
    left_ = 0;
  } else if (content_length > 0) {
    state_ = State::Length;
    left_ = static_cast<uint64_t>(content_length);
  } else {
    state_ = State::Done;
  }
}

int32_t BodyDecoder::feed(const uint8_t* p, size_t n, Span* data, Error* err) {
  *data = Span{};
  if (n > INT32_MAX) n = INT32_MAX;
  size_t i = 0;
  while (i < n && state_ != State::Done) {
    uint8_t c = p[i];
    switch (state_) {
      case State::Length:
      case State::Data: {
        size_t k = left_ < n - i ? static_cast<size_t>(left_) : n - i;
        *data = Span{static_cast<uint32_t>(i), static_cast<uint32_t>(k)};
        left_ -= k;
        total_ += k;
        i += k;
        if (left_ == 0) state_ = state_ == State::Length ? State::Done : State::DataCr;
        return static_cast<int32_t>(i);  // one span per call
      }
      case State::Size: {
        int v = hexval(c);
        if (v >= 0) {
          // chunk-size = 1*HEXDIG; more than 16 digits overflows 64 bits (RFC 9112 section 7.1).
          if (++digits_ > 16) return fail(err, 400, "chunk size overflows");
          left_ = left_ * 16 + static_cast<uint64_t>(v);
          if (left_ > limits_.body_bytes_max || total_ + left_ > limits_.body_bytes_max)
            return fail(err, 413, "chunked body over maxBodySize");
        } else if (c == ';' && digits_) {
          state_ = State::Ext;
        } else if (c == '\r' && digits_) {
          state_ = State::SizeLf;
        } else {
          return fail(err, 400, "malformed chunk size");
        }
        ++i;
        break;
      }
      case State::Ext:
        // chunk-ext is read and bounded, not interpreted.
        if (++ext_bytes_ > limits_.chunk_ext_bytes_max) return fail(err, 400, "chunk extension over its limit");
        if (c == '\r') state_ = State::SizeLf;
        else if (!is_field_char(c)) return fail(err, 400, "forbidden character in a chunk extension");
        ++i;
        break;
      case State::SizeLf:
        if (c != '\n') return fail(err, 400, "chunk size line does not end in CRLF");
        ++i;
        if (left_ == 0) {
          state_ = State::Trailer;  // last-chunk
          line_empty_ = true;
        } else {
          state_ = State::Data;
        }
        digits_ = 0;
        ext_bytes_ = 0;
        break;
      case State::DataCr:
        if (c != '\r') return fail(err, 400, "chunk data not followed by CRLF");
        state_ = State::DataLf;
        ++i;
        break;
      case State::DataLf:
        if (c != '\n') return fail(err, 400, "chunk data not followed by CRLF");
        state_ = State::Size;
        left_ = 0;
        ++i;
        break;
      case State::Trailer:  // at the start of a trailer line
        if (c == '\r') {
          state_ = State::TrailerLf;
        } else if (c == ' ' || c == '\t') {
          return fail(err, 400, "obs-fold in the trailer section");
        } else if (!is_token(c)) {
          return fail(err, 400, "malformed trailer field");
        } else {
          state_ = State::TrailerLine;
        }
        if (++trailer_bytes_ > limits_.trailer_bytes_max) return fail(err, 431, "trailer section over its limit");
        ++i;
        break;
      case State::TrailerLine:
        if (++trailer_bytes_ > limits_.trailer_bytes_max) return fail(err, 431, "trailer section over its limit");
        if (c == '\r') state_ = State::TrailerLineLf;
        else if (!is_field_char(c)) return fail(err, 400, "forbidden character in a trailer field");
        ++i;
        break;
      case State::TrailerLineLf:
        if (c != '\n') return fail(err, 400, "bare CR in the trailer section");
        ++trailers_;
        state_ = State::Trailer;
        ++i;
        break;
      case State::TrailerLf:
        if (c != '\n') return fail(err, 400, "bare CR ends the chunked body");
        state_ = State::Done;
        ++i;
        break;
      case State::Done:
        break;
    }
  }
  return static_cast<int32_t>(i);
}

}  // namespace zio::http1

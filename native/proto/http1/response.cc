#include "proto/http1/response.h"

#include <cstring>

namespace zio::http1 {
namespace {

// tchar (RFC 9110 section 5.6.2).
bool is_token(uint8_t c) {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
  return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != nullptr;
}
// field-vchar / SP / HTAB; obs-text allowed. No CR, LF, NUL or other CTL: no response splitting.
bool is_field_char(uint8_t c) { return c == '\t' || (c >= 0x20 && c != 0x7f); }

class Writer {
 public:
  Writer(uint8_t* out, size_t cap) : out_(out), cap_(cap) {}
  void put(const char* s, size_t n) {
    if (n > cap_ - len_) { full_ = true; return; }
    memcpy(out_ + len_, s, n);
    len_ += n;
  }
  void put(const char* s) { put(s, strlen(s)); }
  void num(uint64_t v) {
    char b[24];
    int i = 24;
    do { b[--i] = static_cast<char>('0' + v % 10); v /= 10; } while (v);
    put(b + i, static_cast<size_t>(24 - i));
  }
  bool full() const { return full_; }
  size_t len() const { return len_; }

 private:
  uint8_t* out_;
  size_t cap_, len_ = 0;
  bool full_ = false;
};

// Civil date from days since 1970-01-01 (H. Hinnant's algorithm, public-domain arithmetic).
void civil(int64_t z, int* y, unsigned* m, unsigned* d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = static_cast<int>(yoe + era * 400 + (*m <= 2));
}

}  // namespace

const char* DateCache::get(int64_t t) {
  if (t == second_) return text_;
  static const char* kDays[] = {"Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"};  // 1970-01-01 was a Thursday
  static const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  int64_t days = t >= 0 ? t / 86400 : (t - 86399) / 86400;
  int64_t secs = t - days * 86400;
  int y;
  unsigned m, d;
  civil(days, &y, &m, &d);
  int64_t wd = days % 7;
  if (wd < 0) wd += 7;
  // "Sun, 06 Nov 1994 08:49:37 GMT"
  char* p = text_;
  memcpy(p, kDays[wd], 3);
  p[3] = ',';
  p[4] = ' ';
  p[5] = static_cast<char>('0' + d / 10);
  p[6] = static_cast<char>('0' + d % 10);
  p[7] = ' ';
  memcpy(p + 8, kMonths[m - 1], 3);
  p[11] = ' ';
  p[12] = static_cast<char>('0' + (y / 1000) % 10);
  p[13] = static_cast<char>('0' + (y / 100) % 10);
  p[14] = static_cast<char>('0' + (y / 10) % 10);
  p[15] = static_cast<char>('0' + y % 10);
  p[16] = ' ';
  int hh = static_cast<int>(secs / 3600), mm = static_cast<int>(secs / 60 % 60), ss = static_cast<int>(secs % 60);
  p[17] = static_cast<char>('0' + hh / 10);
  p[18] = static_cast<char>('0' + hh % 10);
  p[19] = ':';
  p[20] = static_cast<char>('0' + mm / 10);
  p[21] = static_cast<char>('0' + mm % 10);
  p[22] = ':';
  p[23] = static_cast<char>('0' + ss / 10);
  p[24] = static_cast<char>('0' + ss % 10);
  memcpy(p + 25, " GMT", 4);
  text_[kLen] = 0;
  second_ = t;
  return text_;
}

const char* reason_phrase(uint16_t s) {
  switch (s) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 417: return "Expectation Failed";
    case 426: return "Upgrade Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "";
  }
}

bool status_has_no_body(uint16_t s) { return (s >= 100 && s < 200) || s == 204 || s == 304; }

int64_t serialize_head(const ResponseHead& h, DateCache& date, int64_t unix_seconds, uint8_t* out,
                       size_t cap) {
  if (h.status < 100 || h.status > 999) return kBadStatus;
  for (uint32_t i = 0; !h.trusted && i < h.field_count; ++i) {
    const Field& f = h.fields[i];
    if (f.name_len == 0) return kBadField;
    for (size_t k = 0; k < f.name_len; ++k)
      if (!is_token(static_cast<uint8_t>(f.name[k]))) return kBadField;
    for (size_t k = 0; k < f.value_len; ++k)
      if (!is_field_char(static_cast<uint8_t>(f.value[k]))) return kBadField;
  }
  Writer w(out, cap);
  w.put("HTTP/1.1 ");
  w.num(h.status);
  w.put(" ");
  w.put(reason_phrase(h.status));
  w.put("\r\nDate: ");
  w.put(date.get(unix_seconds), DateCache::kLen);
  w.put("\r\n");
  if (!status_has_no_body(h.status)) {
    // HEAD: the same framing fields as the GET would have (RFC 9110 section 9.3.2).
    if (h.body_bytes >= 0) {
      w.put("Content-Length: ");
      w.num(static_cast<uint64_t>(h.body_bytes));
      w.put("\r\n");
    } else if (!h.http10) {
      w.put("Transfer-Encoding: chunked\r\n");
    }
  }
  // An HTTP/1.0 streamed body is delimited by the close (RFC 9112 section 6.3, item 8).
  if (h.close || (h.http10 && h.body_bytes < 0 && !status_has_no_body(h.status))) w.put("Connection: close\r\n");
  else if (h.http10 && h.keep_alive10) w.put("Connection: keep-alive\r\n");
  for (uint32_t i = 0; i < h.field_count; ++i) {
    const Field& f = h.fields[i];
    w.put(f.name, f.name_len);
    w.put(": ");
    w.put(f.value, f.value_len);
    w.put("\r\n");
  }
  w.put("\r\n");
  if (w.full()) return kNoRoom;
  return static_cast<int64_t>(w.len());
}

size_t chunk_line(uint64_t len, uint8_t* out) {
  static const char kHex[] = "0123456789abcdef";
  char b[16];
  int i = 16;
  do { b[--i] = kHex[len & 15]; len >>= 4; } while (len);
  size_t n = static_cast<size_t>(16 - i);
  memcpy(out, b + i, n);
  out[n] = '\r';
  out[n + 1] = '\n';
  return n + 2;
}

}  // namespace zio::http1

// Tests for native/proto/http1/response: response heads, the Date cache, chunk framing, and the
// response-splitting refusal. A response is checked by parsing it back with an independent
// reading of RFC 9112 (status line, fields, framing).
#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "proto/http1/response.h"

using namespace zio::http1;

namespace {
std::string head(const ResponseHead& h, int64_t t = 784111777) {
  DateCache d;
  uint8_t buf[1024];
  int64_t n = serialize_head(h, d, t, buf, sizeof buf);
  if (n < 0) return "ERR" + std::to_string(n);
  return std::string(reinterpret_cast<char*>(buf), static_cast<size_t>(n));
}
Field F(const char* n, const char* v) { return Field{n, strlen(n), v, strlen(v)}; }
}  // namespace

TEST(Http1Response, DatesAreImfFixdate) {
  DateCache d;
  EXPECT_STREQ(d.get(784111777), "Sun, 06 Nov 1994 08:49:37 GMT");  // RFC 9110 section 5.6.7
  EXPECT_STREQ(d.get(0), "Thu, 01 Jan 1970 00:00:00 GMT");
  EXPECT_STREQ(d.get(951782400), "Tue, 29 Feb 2000 00:00:00 GMT");  // a leap day
  EXPECT_STREQ(d.get(1795651199), "Wed, 25 Nov 2026 23:59:59 GMT");  // date -u -d @1795651199
  EXPECT_STREQ(d.get(4102444800), "Fri, 01 Jan 2100 00:00:00 GMT");
  const char* a = d.get(1000);
  EXPECT_EQ(a, d.get(1000));  // the same second: the cached text, not formatted again
}

TEST(Http1Response, HeadsFrameTheBody) {
  Field fs[] = {F("Content-Type", "text/plain")};
  ResponseHead h;
  h.fields = fs;
  h.field_count = 1;
  h.body_bytes = 5;
  EXPECT_EQ(head(h), "HTTP/1.1 200 OK\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\nContent-Length: 5\r\n"
                     "Content-Type: text/plain\r\n\r\n");
  h.body_bytes = -1;  // streamed
  EXPECT_NE(head(h).find("Transfer-Encoding: chunked\r\n"), std::string::npos);
  h.http10 = true;    // HTTP/1.0 has no chunked: the close delimits the body
  std::string s10 = head(h);
  EXPECT_EQ(s10.find("Transfer-Encoding"), std::string::npos);
  EXPECT_NE(s10.find("Connection: close\r\n"), std::string::npos);
  ResponseHead nc;
  nc.status = 204;
  nc.body_bytes = 0;
  std::string s204 = head(nc);
  EXPECT_EQ(s204.find("Content-Length"), std::string::npos);  // RFC 9110 8.6: not in a 204
  EXPECT_EQ(s204.rfind("HTTP/1.1 204 No Content\r\n", 0), 0u);
  ResponseHead cl;
  cl.status = 404;
  cl.body_bytes = 9;
  cl.close = true;
  std::string s404 = head(cl);
  EXPECT_NE(s404.find("Connection: close\r\n"), std::string::npos);
  EXPECT_EQ(s404.rfind("HTTP/1.1 404 Not Found\r\n", 0), 0u);
  ResponseHead odd;
  odd.status = 299;
  EXPECT_EQ(head(odd).rfind("HTTP/1.1 299 \r\n", 0), 0u);  // no phrase for an unknown code
  odd.status = 99;
  EXPECT_EQ(head(odd), "ERR" + std::to_string(kBadStatus));
}

TEST(Http1Response, ResponseSplittingIsRefused) {
  const std::string bads[] = {"a\r\nSet-Cookie: x=1", "a\nb", "a\rb", std::string("a\0b", 3), "a\x01"};
  for (const std::string& bad : bads) {
    Field fs[] = {Field{"X", 1, bad.data(), bad.size()}};
    ResponseHead h;
    h.fields = fs;
    h.field_count = 1;
    EXPECT_EQ(head(h), "ERR" + std::to_string(kBadField));
  }
  Field names[] = {F("Bad Name", "v"), F("X:Y", "v"), F("", "v")};
  for (Field& f : names) {
    ResponseHead h;
    h.fields = &f;
    h.field_count = 1;
    EXPECT_EQ(head(h), "ERR" + std::to_string(kBadField)) << f.name;
  }
}

TEST(Http1Response, NoRoomWritesNothingPastCap) {
  ResponseHead h;
  h.body_bytes = 1;
  DateCache d;
  uint8_t buf[64];
  memset(buf, 0xAB, sizeof buf);
  EXPECT_EQ(serialize_head(h, d, 0, buf, 40), kNoRoom);
  for (size_t i = 40; i < sizeof buf; ++i) ASSERT_EQ(buf[i], 0xAB);
}

TEST(Http1Response, ChunkLines) {
  uint8_t b[kChunkLineMax];
  EXPECT_EQ(std::string(reinterpret_cast<char*>(b), chunk_line(26, b)), "1a\r\n");
  EXPECT_EQ(std::string(reinterpret_cast<char*>(b), chunk_line(0, b)), "0\r\n");
  EXPECT_EQ(std::string(reinterpret_cast<char*>(b), chunk_line(UINT64_MAX, b)), "ffffffffffffffff\r\n");
  EXPECT_STREQ(kLastChunk, "0\r\n\r\n");
}

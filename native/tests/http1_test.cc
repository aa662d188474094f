// Tests for native/proto/http1: the request head parser and the body decoder, a request
// smuggling vector suite, and a mutation fuzzer over the committed seed corpus
// (native/tests/corpus/http1) that runs in every native pass, also under ASan/UBSan.
#include <gtest/gtest.h>

#include <dirent.h>

#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "proto/http1/http1.h"

using namespace zio::http1;

namespace {

struct Parsed {
  int32_t r = 0;
  Error err;
  Head head;
  std::vector<Header> storage;
};

Parsed parse(const std::string& s, const Limits& lim = Limits{}) {
  Parsed p;
  p.storage.resize(lim.headers_max);
  p.r = parse_head(reinterpret_cast<const uint8_t*>(s.data()), s.size(), lim, &p.head, p.storage.data(), &p.err);
  return p;
}

std::string str(const std::string& buf, Span s) { return buf.substr(s.off, s.len); }

// The body of `wire` after a head of `head_bytes`, decoded whole; status 0 when it decoded.
struct Decoded {
  std::string body;
  uint16_t status = 0;
  size_t used = 0;
  bool done = false;
};

Decoded decode(const std::string& wire, size_t from, int64_t cl, bool chunked, size_t piece = SIZE_MAX,
               const Limits& lim = Limits{}) {
  Decoded d;
  BodyDecoder b;
  b.start(cl, chunked, lim);
  size_t at = from;
  while (!b.done() && at < wire.size()) {
    size_t n = std::min(piece, wire.size() - at);
    Span data;
    Error err;
    int32_t r = b.feed(reinterpret_cast<const uint8_t*>(wire.data() + at), n, &data, &err);
    if (r < 0) {
      d.status = err.status;
      break;
    }
    d.body.append(wire, at + data.off, data.len);
    at += static_cast<size_t>(r);
    if (r == 0 && !b.done()) break;
  }
  d.done = b.done();
  d.used = at - from;
  return d;
}

}  // namespace

TEST(Http1, ParsesARequestHead) {
  std::string s = "GET /search?q=zero&x=1 HTTP/1.1\r\nHost: example.com\r\nAccept:  */*  \r\nX-Empty:\r\n\r\nrest";
  Parsed p = parse(s);
  ASSERT_EQ(p.r, static_cast<int32_t>(s.size() - 4)) << p.err.reason;
  EXPECT_EQ(p.head.method, Method::Get);
  EXPECT_EQ(str(s, p.head.target), "/search?q=zero&x=1");
  EXPECT_EQ(str(s, p.head.path), "/search");
  EXPECT_EQ(str(s, p.head.query), "q=zero&x=1");
  EXPECT_EQ(p.head.version_minor, 1);
  ASSERT_EQ(p.head.header_count, 3u);
  EXPECT_EQ(str(s, p.head.headers[1].name), "Accept");
  EXPECT_EQ(str(s, p.head.headers[1].value), "*/*");  // OWS trimmed both sides
  EXPECT_EQ(p.head.headers[2].value.len, 0u);
  EXPECT_TRUE(p.head.keep_alive);
  EXPECT_EQ(p.head.content_length, -1);
  EXPECT_FALSE(p.head.chunked);
}

TEST(Http1, EveryPrefixIsIncompleteAndTheWholeIsTheSame) {
  for (const char* req : {"GET / HTTP/1.1\r\nHost: h\r\n\r\n",
                          "\r\n\r\nPOST /p HTTP/1.0\r\nContent-Length: 3\r\n\r\n",
                          "PUT /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip-not, chunked\r\n\r\n"}) {
    std::string s = req;
    Parsed whole = parse(s);
    for (size_t n = 0; n < s.size(); ++n) {
      Parsed part = parse(s.substr(0, n));
      // A prefix is either incomplete or already refused with the same verdict as the whole.
      if (part.r != kIncomplete) {
        ASSERT_EQ(part.r, kError) << "prefix " << n << " of " << req;
        EXPECT_EQ(part.err.status, whole.err.status);
      }
    }
  }
}

TEST(Http1, ConnectionSemantics) {
  EXPECT_FALSE(parse("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n").head.keep_alive);
  EXPECT_FALSE(parse("GET / HTTP/1.0\r\n\r\n").head.keep_alive);
  EXPECT_TRUE(parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").head.keep_alive);
  EXPECT_TRUE(parse("GET / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n\r\n").head.expect_continue);
  Parsed u = parse("GET /ws HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n");
  EXPECT_TRUE(u.head.upgrade);
  EXPECT_FALSE(parse("GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\n").head.upgrade);
  Parsed h2 = parse("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
  EXPECT_TRUE(h2.head.h2_preface);
  EXPECT_EQ(h2.r, 16);  // the request line; the caller checks the rest of the 24-byte preface
  Parsed abs = parse("GET http://example.com:80/a/b?c HTTP/1.1\r\nHost: example.com\r\n\r\n");
  ASSERT_GT(abs.r, 0);
  EXPECT_EQ(abs.head.path.len, 4u);
  Parsed star = parse("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n");
  ASSERT_GT(star.r, 0);
  EXPECT_EQ(star.head.method, Method::Options);
}

TEST(Http1, LimitsAnswer414And431) {
  Limits lim;
  lim.target_bytes_max = 64;
  lim.head_bytes_max = 256;
  lim.headers_max = 4;
  EXPECT_EQ(parse("GET /" + std::string(100, 'a') + " HTTP/1.1\r\n", lim).err.status, 414);
  // A target still arriving but already over the limit: answered at once.
  EXPECT_EQ(parse("GET /" + std::string(100, 'a'), lim).err.status, 414);
  std::string many = "GET / HTTP/1.1\r\nHost: h\r\n";
  for (int i = 0; i < 4; ++i) many += "X-" + std::to_string(i) + ": v\r\n";
  EXPECT_EQ(parse(many + "\r\n", lim).err.status, 431);
  EXPECT_EQ(parse("GET / HTTP/1.1\r\nHost: h\r\nX: " + std::string(300, 'v') + "\r\n\r\n", lim).err.status, 431);
  // Headers still arriving past the limit (slowloris-sized): 431 without waiting for the end.
  EXPECT_EQ(parse("GET / HTTP/1.1\r\nHost: h\r\nX: " + std::string(300, 'v'), lim).err.status, 431);
  lim.body_bytes_max = 1000;
  EXPECT_EQ(parse("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1001\r\n\r\n", lim).err.status, 413);
}

// Request smuggling and malformed framing, from published research (CL.TE, TE.CL, TE.TE
// obfuscations, chunk-size tricks, header-name whitespace, NUL and bare CR/LF): each must be
// refused with the status given (the caller answers it and closes).
struct Vector {
  const char* name;
  std::string wire;
  uint16_t status;  // from the head parser; 0: the head parses and the body must fail (body_status)
  uint16_t body_status = 0;
};

std::vector<Vector> vectors() {
  const std::string H = "POST / HTTP/1.1\r\nHost: h\r\n";
  return {
      {"CL.TE", H + "Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nX", 400},
      {"TE.CL", H + "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n8\r\nSMUGGLED\r\n0\r\n\r\n", 400},
      {"TE.TE space before colon", H + "Transfer-Encoding : chunked\r\n\r\n", 400},
      {"TE.TE tab before colon", H + "Transfer-Encoding\t: chunked\r\n\r\n", 400},
      {"TE.TE obs-fold", H + "Transfer-Encoding:\r\n chunked\r\n\r\n", 400},
      {"TE.TE xchunked", H + "Transfer-Encoding: xchunked\r\n\r\n", 400},
      {"TE.TE chunked then identity", H + "Transfer-Encoding: chunked, identity\r\n\r\n", 400},
      {"TE.TE twice", H + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
      {"TE.TE chunked twice in a list", H + "Transfer-Encoding: chunked, chunked\r\n\r\n", 400},
      {"TE.TE empty element", H + "Transfer-Encoding: , chunked\r\n\r\n", 400},
      {"TE.TE quoted", H + "Transfer-Encoding: \"chunked\"\r\n\r\n", 400},
      {"TE.TE vertical tab", H + "Transfer-Encoding: chunked\x0b\r\n\r\n", 400},
      {"TE.TE NUL in value", H + std::string("Transfer-Encoding: chunked\0\r\n\r\n", 31), 400},
      {"TE.TE gzip before chunked (not implemented)", H + "Transfer-Encoding: gzip, chunked\r\n\r\n", 501},
      {"TE in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
      {"CL twice identical", H + "Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello", 400},
      {"CL twice different", H + "Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400},
      {"CL list", H + "Content-Length: 5, 5\r\n\r\nhello", 400},
      {"CL plus sign", H + "Content-Length: +5\r\n\r\nhello", 400},
      {"CL negative", H + "Content-Length: -1\r\n\r\n", 400},
      {"CL hex", H + "Content-Length: 0x5\r\n\r\nhello", 400},
      {"CL space inside", H + "Content-Length: 1 0\r\n\r\n", 400},
      {"CL overflow", H + "Content-Length: 99999999999999999999999\r\n\r\n", 400},
      {"CL empty", H + "Content-Length:\r\n\r\n", 400},
      {"CL space before colon", H + "Content-Length : 5\r\n\r\nhello", 400},
      {"bare LF line ends", "POST / HTTP/1.1\nHost: h\nContent-Length: 5\n\nhello", 400},
      {"bare LF after a header", H + "Content-Length: 5\n\r\nhello", 400},
      {"bare CR in a value", H + "X: a\rb\r\n\r\n", 400},
      {"bare CR line end", H + "X: a\r\r\n\r\n", 400},
      {"NUL in a header name", H + std::string("X\0Y: 1\r\n\r\n", 10), 400},
      {"space in a header name", H + "Bad Name: 1\r\n\r\n", 400},
      {"empty header name", H + ": value\r\n\r\n", 400},
      {"header name with a colon only", H + "::\r\n\r\n", 400},
      {"DEL in a value", H + "X: a\x7f\r\n\r\n", 400},
      {"space in the method", "GE T / HTTP/1.1\r\nHost: h\r\n\r\n", 400},
      {"two spaces after the method", "GET  / HTTP/1.1\r\nHost: h\r\n\r\n", 400},
      {"tab as separator", "GET\t/ HTTP/1.1\r\nHost: h\r\n\r\n", 400},
      {"control character in the target", "GET /a\x01 HTTP/1.1\r\nHost: h\r\n\r\n", 400},
      {"non-ASCII in the target", "GET /caf\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n", 400},
      {"lowercase version", "GET / http/1.1\r\nHost: h\r\n\r\n", 400},
      {"HTTP/1.2", "GET / HTTP/1.2\r\nHost: h\r\n\r\n", 505},
      {"HTTP/3.0", "GET / HTTP/3.0\r\nHost: h\r\n\r\n", 505},
      {"missing Host in 1.1", "GET / HTTP/1.1\r\n\r\n", 400},
      {"two Host fields", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
      {"obs-fold in a plain header", H + "X: a\r\n\tb\r\n\r\n", 400},
      {"leading whitespace before the first header", "GET / HTTP/1.1\r\n Host: h\r\n\r\n", 400},
      {"unknown expectation", H + "Expect: 200-ok\r\n\r\n", 417},
      // Body-level tricks: the head is fine, the chunked framing is not.
      {"chunk size over the body limit", H + "Transfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFF\r\n", 0, 413},
      {"chunk size with leading space", H + "Transfer-Encoding: chunked\r\n\r\n 5\r\nhello\r\n0\r\n\r\n", 0, 400},
      {"chunk size with trailing space", H + "Transfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\n0\r\n\r\n", 0, 400},
      {"chunk size 0x prefix", H + "Transfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n", 0, 400},
      {"chunk size negative", H + "Transfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n", 0, 400},
      {"chunk size bare LF", H + "Transfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n", 0, 400},
      {"chunk data longer than its size", H + "Transfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n", 0, 400},
      {"chunk data without CRLF", H + "Transfer-Encoding: chunked\r\n\r\n5\r\nhelloX0\r\n\r\n", 0, 400},
      {"chunk extension over the limit", H + "Transfer-Encoding: chunked\r\n\r\n5;" + std::string(2000, 'x') + "\r\nhello\r\n0\r\n\r\n", 0, 400},
      {"control character in a chunk extension", H + "Transfer-Encoding: chunked\r\n\r\n5;a\x01\r\nhello\r\n0\r\n\r\n", 0, 400},
      {"obs-fold in the trailers", H + "Transfer-Encoding: chunked\r\n\r\n0\r\nX: a\r\n b\r\n\r\n", 0, 400},
      {"bare LF ends the chunked body", H + "Transfer-Encoding: chunked\r\n\r\n0\r\n\n", 0, 400},
  };
}

TEST(Http1, SmugglingVectorsAreRefused) {
  auto vs = vectors();
  EXPECT_GE(vs.size(), 40u);
  for (const Vector& v : vs) {
    SCOPED_TRACE(v.name);
    Parsed p = parse(v.wire);
    if (v.status) {
      ASSERT_EQ(p.r, kError) << "accepted: " << v.name;
      EXPECT_EQ(p.err.status, v.status) << p.err.reason;
      EXPECT_STRNE(p.err.reason, "");
      continue;
    }
    ASSERT_GT(p.r, 0) << p.err.reason;
    // Whole, and one byte at a time: the same refusal.
    for (size_t piece : {SIZE_MAX, size_t{1}, size_t{7}}) {
      Decoded d = decode(v.wire, static_cast<size_t>(p.r), p.head.content_length, p.head.chunked, piece);
      EXPECT_EQ(d.status, v.body_status) << "piece " << piece;
    }
  }
}

TEST(Http1, BodiesDecodeInAnyPieces) {
  std::string wire = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "5;name=value\r\nhello\r\n1A\r\n, and twenty-six bytes too\r\n0\r\nX-T: 1\r\nX-U: 2\r\n\r\n"
                     "GET /next HTTP/1.1\r\nHost: h\r\n\r\n";
  Parsed p = parse(wire);
  ASSERT_GT(p.r, 0);
  ASSERT_TRUE(p.head.chunked);
  for (size_t piece = 1; piece <= 40; ++piece) {
    Decoded d = decode(wire, static_cast<size_t>(p.r), -1, true, piece);
    ASSERT_EQ(d.status, 0) << piece;
    ASSERT_TRUE(d.done) << piece;
    EXPECT_EQ(d.body, "hello, and twenty-six bytes too");
    // It stopped exactly where the next (pipelined) request starts.
    EXPECT_EQ(wire.substr(static_cast<size_t>(p.r) + d.used, 9), "GET /next");
  }
  std::string cl = "PUT /x HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n0123456789GET";
  Parsed q = parse(cl);
  ASSERT_GT(q.r, 0);
  Decoded d = decode(cl, static_cast<size_t>(q.r), q.head.content_length, false, 3);
  EXPECT_EQ(d.body, "0123456789");
  EXPECT_EQ(d.used, 10u);
  Limits small;
  small.body_bytes_max = 8;
  EXPECT_EQ(decode("10\r\n", 0, -1, true, SIZE_MAX, small).status, 413);
  // 17 hex digits overflow 64 bits whatever the limit: 400, never a wrapped small size.
  Limits huge;
  huge.body_bytes_max = UINT64_MAX;
  EXPECT_EQ(decode("10000000000000000\r\n", 0, -1, true, SIZE_MAX, huge).status, 400);
}

// ---- the mutation fuzzer (a fixed seed: reproducible; every native pass, also under ASan)

std::vector<std::string> corpus() {
  std::vector<std::string> out;
  std::string dir = std::string(ZIO_TEST_CORPUS) + "/http1";
  DIR* d = opendir(dir.c_str());
  if (!d) return out;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    std::ifstream f(dir + "/" + e->d_name, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    out.push_back(ss.str());
  }
  closedir(d);
  return out;
}

TEST(Http1Fuzz, MutatedRequestsNeverCrashAndParseTheSameInPieces) {
  std::vector<std::string> seeds = corpus();
  ASSERT_GE(seeds.size(), 10u) << "seed corpus missing: " << ZIO_TEST_CORPUS;
  for (const Vector& v : vectors()) seeds.push_back(v.wire);
  std::mt19937 rng(20261125);
  const char dict[][24] = {"\r\n", "\n", "\r", " ", "\t", ":", ";", ",", "\0", "chunked", "Content-Length: ",
                           "Transfer-Encoding: ", "0\r\n\r\n", "FFFFFFFF", "HTTP/1.1", "Host: h\r\n", "\x80", "\x7f"};
  Limits lim;
  lim.head_bytes_max = 2048;
  lim.headers_max = 16;
  lim.body_bytes_max = 1 << 20;
  int accepted = 0, refused = 0;
  for (int iter = 0; iter < 100000; ++iter) {
    std::string s = seeds[rng() % seeds.size()];
    int edits = 1 + static_cast<int>(rng() % 6);
    for (int e = 0; e < edits; ++e) {
      size_t at = s.empty() ? 0 : rng() % (s.size() + 1);
      switch (rng() % 6) {
        case 0: if (at < s.size()) s[at] = static_cast<char>(s[at] ^ (1 << (rng() % 8))); break;
        case 1: if (at < s.size()) s.erase(at, 1 + rng() % 4); break;
        case 2: { const char* w = dict[rng() % (sizeof dict / sizeof dict[0])]; s.insert(at, w, w[0] ? strlen(w) : 1); break; }
        case 3: if (!s.empty()) { size_t from = rng() % s.size(); s.insert(at, s.substr(from, 1 + rng() % 16)); } break;
        case 4: s.insert(at, 1, static_cast<char>(rng() % 256)); break;
        case 5: if (at < s.size()) s.resize(at); break;
      }
    }
    Parsed whole = parse(s, lim);
    ASSERT_TRUE(whole.r == kIncomplete || whole.r == kError || (whole.r > 0 && static_cast<size_t>(whole.r) <= s.size()));
    if (whole.r == kError) {
      ++refused;
      ASSERT_TRUE(whole.err.status == 400 || whole.err.status == 413 || whole.err.status == 414 ||
                  whole.err.status == 417 || whole.err.status == 431 || whole.err.status == 501 ||
                  whole.err.status == 505) << whole.err.status;
    }
    if (whole.r > 0) {
      ++accepted;
      // Every span lies inside the head.
      auto inside = [&](Span sp) { return sp.off + sp.len <= static_cast<uint32_t>(whole.r); };
      ASSERT_TRUE(inside(whole.head.target) && inside(whole.head.path) && inside(whole.head.query));
      for (uint32_t k = 0; k < whole.head.header_count; ++k)
        ASSERT_TRUE(inside(whole.head.headers[k].name) && inside(whole.head.headers[k].value));
      ASSERT_FALSE(whole.head.chunked && whole.head.content_length >= 0);
      // The body decodes the same whole and in random pieces.
      Decoded a = decode(s, static_cast<size_t>(whole.r), whole.head.content_length, whole.head.chunked, SIZE_MAX, lim);
      Decoded b = decode(s, static_cast<size_t>(whole.r), whole.head.content_length, whole.head.chunked, 1 + rng() % 9, lim);
      ASSERT_EQ(a.status, b.status);
      ASSERT_EQ(a.body, b.body);
      ASSERT_EQ(a.done, b.done);
      if (a.done) {
        ASSERT_EQ(a.used, b.used);
      }
    }
    // Any prefix is incomplete, or refused as the whole is, or (for a complete whole) the same.
    size_t cut = s.empty() ? 0 : rng() % s.size();
    Parsed part = parse(s.substr(0, cut), lim);
    if (part.r == kError) {
      ASSERT_EQ(whole.r, kError) << "a prefix was refused but the whole was not";
      ASSERT_EQ(part.err.status, whole.err.status);
    } else if (part.r > 0) {
      ASSERT_EQ(part.r, whole.r);
    }
  }
  // The corpus keeps both paths busy.
  EXPECT_GT(accepted, 1000);
  EXPECT_GT(refused, 1000);
}

// Content codings: Accept-Encoding negotiation, compressible types, and every encoder's output
// decoded by the same libraries' decoders.
#include <brotli/decode.h>
#include <gtest/gtest.h>
#include <zlib-ng.h>
#include <zstd.h>

#include <cstring>
#include <memory>
#include <random>
#include <string>

#include "proto/compress/compress.h"

using namespace zio::compress;

namespace {

uint8_t best(std::initializer_list<const char*> lines) {
  Accept a;
  for (const char* l : lines) a.add(l, strlen(l));
  return a.best();
}

std::string decode(Coding c, const std::string& in, size_t n) {
  std::string out(n, '\0');
  if (c == kGzip) {
    zng_stream s{};
    EXPECT_EQ(zng_inflateInit2(&s, 15 + 16), Z_OK);
    s.next_in = reinterpret_cast<const uint8_t*>(in.data());
    s.avail_in = static_cast<uint32_t>(in.size());
    s.next_out = reinterpret_cast<uint8_t*>(out.data());
    s.avail_out = static_cast<uint32_t>(out.size());
    EXPECT_EQ(zng_inflate(&s, Z_FINISH), Z_STREAM_END);
    out.resize(s.total_out);
    zng_inflateEnd(&s);
  } else if (c == kBr) {
    size_t got = n;
    EXPECT_EQ(BrotliDecoderDecompress(in.size(), reinterpret_cast<const uint8_t*>(in.data()), &got,
                                      reinterpret_cast<uint8_t*>(out.data())),
              BROTLI_DECODER_RESULT_SUCCESS);
    out.resize(got);
  } else {
    size_t got = ZSTD_decompress(out.data(), n, in.data(), in.size());
    EXPECT_FALSE(ZSTD_isError(got));
    out.resize(got);
  }
  return out;
}

std::string text(size_t n) {
  std::string s;
  std::mt19937 rng(7);
  static const char* words[] = {"price", "bid", "ask", "symbol", "volume", "{", "}", "\"", ":", ",", " "};
  while (s.size() < n) s += words[rng() % 11];
  s.resize(n);
  return s;
}

}  // namespace

TEST(Compress, AcceptEncodingPicksTheBestQ) {
  EXPECT_EQ(best({"gzip, deflate, br, zstd"}), bit(kGzip) | bit(kBr) | bit(kZstd));
  EXPECT_EQ(best({"gzip"}), bit(kGzip));
  EXPECT_EQ(best({"x-gzip"}), bit(kGzip));
  EXPECT_EQ(best({"GZIP;Q=0.5, br;q=0.9"}), bit(kBr));
  EXPECT_EQ(best({"gzip;q=1.0, br;q=0.999"}), bit(kGzip));
  EXPECT_EQ(best({"gzip;q=0"}), 0);
  EXPECT_EQ(best({"identity"}), 0);
  EXPECT_EQ(best({""}), 0);
  EXPECT_EQ(best({"*"}), bit(kGzip) | bit(kBr) | bit(kZstd));
  EXPECT_EQ(best({"*;q=0.5, gzip;q=0"}), bit(kBr) | bit(kZstd));
  EXPECT_EQ(best({"br;q=0.2", "gzip;q=0.4"}), bit(kGzip));  // several field lines
  EXPECT_EQ(best({"deflate, compress"}), 0);
  EXPECT_EQ(best({"gzip ; q=0.3 , zstd;q=0.3"}), bit(kGzip) | bit(kZstd));
}

TEST(Compress, MalformedElementsAreSkipped) {
  EXPECT_EQ(best({"gzip;q=2"}), 0);
  EXPECT_EQ(best({"gzip;q=0.1234"}), 0);
  EXPECT_EQ(best({"gzip;q=abc, br"}), bit(kBr));
  EXPECT_EQ(best({",,, ;;; ,br"}), bit(kBr));
  EXPECT_EQ(best({"gzip br"}), 0);  // not a list: one bad element
  std::string junk(5000, ';');
  EXPECT_EQ(best({junk.c_str()}), 0);
}

TEST(Compress, CompressibleTypes) {
  for (const char* t : {"text/html", "text/plain; charset=utf-8", "application/json", "application/problem+json",
                        "image/svg+xml", "application/javascript", "Application/JSON;charset=utf-8", "application/wasm"})
    EXPECT_TRUE(compressible_type(t, strlen(t))) << t;
  for (const char* t : {"image/png", "image/jpeg", "application/octet-stream", "application/gzip", "video/mp4",
                        "font/woff2", "application/zip", "", "text"})
    EXPECT_FALSE(compressible_type(t, strlen(t))) << t;
}

TEST(Compress, EveryCodingRoundTrips) {
  Encoder e;
  std::string out;
  for (size_t n : {size_t{200}, size_t{4096}, size_t{100000}, size_t{300000}})
    for (Coding c : {kGzip, kBr, kZstd})
      for (Effort ef : {Effort::kDynamic, Effort::kStored}) {
        std::string in = text(n);
        ASSERT_TRUE(e.encode(c, ef, reinterpret_cast<const uint8_t*>(in.data()), n, &out)) << name(c) << n;
        EXPECT_LT(out.size(), n > 1000 ? n / 2 : n) << name(c) << n;
        EXPECT_EQ(decode(c, out, n + 16), in) << name(c) << n;
      }
}

TEST(Compress, IncompressibleInputIsRefused) {
  std::string in(4096, '\0');
  std::mt19937 rng(1);
  for (char& ch : in) ch = static_cast<char>(rng());
  Encoder e;
  std::string out;
  for (Coding c : {kGzip, kBr, kZstd})
    EXPECT_FALSE(e.encode(c, Effort::kDynamic, reinterpret_cast<const uint8_t*>(in.data()), in.size(), &out)) << name(c);
  EXPECT_FALSE(e.encode(kIdentity, Effort::kDynamic, reinterpret_cast<const uint8_t*>(in.data()), in.size(), &out));
}

// Fuzz: Accept-Encoding values and content types of random bytes (and mutations of real ones)
// parse without reading out of bounds (ASan in the test command) and give a subset of our codings.
TEST(Compress, FuzzAcceptAndTypes) {
  std::mt19937 rng(20261203);
  const std::string seeds[] = {"gzip, deflate, br, zstd", "br;q=0.5, gzip;q=1.0, *;q=0", "text/html; charset=utf-8",
                               "application/problem+json", "identity;q=0.001"};
  for (int i = 0; i < 20000; ++i) {
    std::string v = seeds[rng() % 5];
    int edits = 1 + rng() % 8;
    for (int k = 0; k < edits; ++k) {
      size_t at = v.empty() ? 0 : rng() % v.size();
      switch (rng() % 3) {
        case 0: if (!v.empty()) v[at] = static_cast<char>(rng()); break;
        case 1: v.insert(v.begin() + static_cast<long>(at), static_cast<char>(" ,;=q.01*"[rng() % 9])); break;
        default: if (!v.empty()) v.erase(at, 1 + rng() % 3); break;
      }
    }
    // A heap copy of exactly v.size() bytes: any read past the end is caught by ASan.
    std::unique_ptr<char[]> exact(new char[v.size() ? v.size() : 1]);
    memcpy(exact.get(), v.data(), v.size());
    Accept a;
    a.add(exact.get(), v.size());
    EXPECT_EQ(a.best() & ~kAllCodings, 0);
    (void)compressible_type(exact.get(), v.size());
  }
}

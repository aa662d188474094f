// native/proto/compress/compress.cc — content-coding negotiation and one-shot encoders.
#include "proto/compress/compress.h"

#include <brotli/encode.h>
#include <zlib-ng.h>
#include <zstd.h>

#include <cstring>

namespace zio::compress {

namespace {

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; }

bool ieq(const char* a, size_t n, const char* lit) {
  size_t m = strlen(lit);
  if (n != m) return false;
  for (size_t i = 0; i < n; ++i)
    if (lower(a[i]) != lit[i]) return false;
  return true;
}

bool starts(const char* a, size_t n, const char* lit) {
  size_t m = strlen(lit);
  return n >= m && ieq(a, m, lit);
}

bool ends(const char* a, size_t n, const char* lit) {
  size_t m = strlen(lit);
  return n >= m && ieq(a + n - m, m, lit);
}

bool ows(char c) { return c == ' ' || c == '\t'; }

// qvalue (RFC 9110 section 12.4.2) in thousandths; -1 when malformed.
int parse_q(const char* p, size_t n) {
  if (n == 0 || n > 5) return -1;
  if (p[0] != '0' && p[0] != '1') return -1;
  int q = (p[0] - '0') * 1000;
  if (n == 1) return q;
  if (p[1] != '.') return -1;
  int scale = 100;
  for (size_t i = 2; i < n; ++i, scale /= 10) {
    if (p[i] < '0' || p[i] > '9') return -1;
    q += (p[i] - '0') * scale;
  }
  return q > 1000 ? -1 : q;
}

}  // namespace

const char* name(Coding c) {
  switch (c) {
    case kGzip: return "gzip";
    case kBr: return "br";
    case kZstd: return "zstd";
    default: return "";
  }
}

void Accept::add(const char* v, size_t len) {
  size_t i = 0;
  while (i < len) {
    size_t end = i;
    while (end < len && v[end] != ',') ++end;
    // One element: coding *( OWS ";" OWS param )
    size_t a = i, b = end;
    while (a < b && ows(v[a])) ++a;
    size_t t = a;
    while (t < b && v[t] != ';' && !ows(v[t])) ++t;
    const char* tok = v + a;
    size_t tlen = t - a;
    int q = 1000;
    bool bad = tlen == 0;
    for (size_t p = t; p < b && !bad;) {
      while (p < b && ows(v[p])) ++p;
      if (p >= b) break;
      if (v[p] != ';') { bad = true; break; }
      ++p;
      while (p < b && ows(v[p])) ++p;
      size_t ps = p;
      while (p < b && v[p] != ';' && !ows(v[p])) ++p;
      if (p - ps >= 2 && lower(v[ps]) == 'q' && v[ps + 1] == '=') {
        q = parse_q(v + ps + 2, p - ps - 2);
        if (q < 0) bad = true;
      }
    }
    if (!bad) {
      int16_t qq = static_cast<int16_t>(q);
      auto set = [&](Coding c) { if (q_[c] < qq) q_[c] = qq; };
      if (ieq(tok, tlen, "gzip") || ieq(tok, tlen, "x-gzip")) set(kGzip);
      else if (ieq(tok, tlen, "br")) set(kBr);
      else if (ieq(tok, tlen, "zstd")) set(kZstd);
      else if (ieq(tok, tlen, "identity")) set(kIdentity);
      else if (tlen == 1 && tok[0] == '*') { if (star_ < qq) star_ = qq; }
    }
    i = end + 1;
  }
}

uint8_t Accept::best() const {
  int16_t q[kCodings];
  int16_t top = 0;
  for (uint8_t c = kGzip; c < kCodings; ++c) {
    q[c] = q_[c] >= 0 ? q_[c] : star_ >= 0 ? star_ : 0;
    if (q[c] > top) top = q[c];
  }
  if (top == 0) return 0;
  uint8_t m = 0;
  for (uint8_t c = kGzip; c < kCodings; ++c)
    if (q[c] == top) m |= static_cast<uint8_t>(1u << c);
  return m;
}

bool compressible_type(const char* ct, size_t len) {
  size_t n = 0;  // the media type, without parameters
  while (n < len && ct[n] != ';' && !ows(ct[n])) ++n;
  if (starts(ct, n, "text/")) return true;
  if (ends(ct, n, "+json") || ends(ct, n, "+xml")) return true;
  static const char* const kTypes[] = {
      "application/json", "application/javascript", "application/x-javascript", "application/ecmascript",
      "application/xml", "application/wasm", "application/x-ndjson", "application/graphql-response+json",
      "application/x-www-form-urlencoded", "application/vnd.ms-fontobject", "application/x-font-ttf",
      "font/ttf", "font/otf", "font/eot", "image/svg+xml", "image/x-icon", "image/vnd.microsoft.icon",
      "image/bmp"};
  for (const char* t : kTypes)
    if (ieq(ct, n, t)) return true;
  return false;
}

Encoder::~Encoder() {
  if (gzip_) {
    zng_deflateEnd(static_cast<zng_stream*>(gzip_));
    delete static_cast<zng_stream*>(gzip_);
  }
  if (zstd_) ZSTD_freeCCtx(static_cast<ZSTD_CCtx*>(zstd_));
}

bool Encoder::encode(Coding c, Effort e, const uint8_t* in, size_t n, std::string* out) {
  bool stored = e == Effort::kStored;
  switch (c) {
    case kGzip: {
      int level = stored ? 9 : 5;
      auto* s = static_cast<zng_stream*>(gzip_);
      if (!s) {
        s = new zng_stream();
        // windowBits 15 + 16: a gzip wrapper (RFC 1952); memLevel 8 (zlib's default).
        if (zng_deflateInit2(s, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
          delete s;
          return false;
        }
        gzip_ = s;
        gzip_level_ = level;
      } else if (zng_deflateReset(s) != Z_OK) {
        return false;
      }
      if (gzip_level_ != level) {
        if (zng_deflateParams(s, level, Z_DEFAULT_STRATEGY) != Z_OK) return false;
        gzip_level_ = level;
      }
      out->resize(zng_deflateBound(s, n));
      s->next_in = in;
      s->avail_in = static_cast<uint32_t>(n);
      s->next_out = reinterpret_cast<uint8_t*>(out->data());
      s->avail_out = static_cast<uint32_t>(out->size());
      if (n > UINT32_MAX || zng_deflate(s, Z_FINISH) != Z_STREAM_END) return false;
      out->resize(s->total_out);
      break;
    }
    case kBr: {
      // Quality 11 (the smallest) only for stored answers of at most 64 KiB: it costs ~1 s/MiB.
      int quality = stored ? (n <= (64u << 10) ? 11 : 6) : 3;  // 3: 4's size at 60% of its time
      size_t cap = BrotliEncoderMaxCompressedSize(n);
      if (cap == 0) return false;
      out->resize(cap);
      size_t got = cap;
      if (!BrotliEncoderCompress(quality, BROTLI_DEFAULT_WINDOW, BROTLI_MODE_GENERIC, n, in, &got,
                                 reinterpret_cast<uint8_t*>(out->data())))
        return false;
      out->resize(got);
      break;
    }
    case kZstd: {
      int level = stored ? (n <= (64u << 10) ? 19 : 9) : 3;
      auto* cx = static_cast<ZSTD_CCtx*>(zstd_);
      if (!cx && !(cx = ZSTD_createCCtx())) return false;
      zstd_ = cx;
      out->resize(ZSTD_compressBound(n));
      size_t r = ZSTD_compressCCtx(cx, out->data(), out->size(), in, n, level);
      if (ZSTD_isError(r)) return false;
      out->resize(r);
      break;
    }
    default:
      return false;
  }
  return out->size() < n;
}

}  // namespace zio::compress

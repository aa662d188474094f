// native/proto/compress/compress.h — HTTP content codings (RFC 9110 section 8.4): gzip (zlib-ng),
// br (brotli) and zstd, chosen by Accept-Encoding, sans-IO.
//
// What the HTTP machines need to compress an answer: which codings a request accepts
// (negotiation with q-values, RFC 9110 section 12.5.3), whether a content type is worth
// compressing, and a one-shot encoder with its working memory kept between answers (a shard owns
// one Encoder; nothing is allocated per answer once warm, except brotli's own state).
// The codecs come from the one Rust staticlib (zlib-ng's native zng_ API, brotli, zstd, each C
// built by the engine's toolchain; DESIGN.md section 4).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace zio::compress {

enum Coding : uint8_t { kIdentity = 0, kGzip = 1, kBr = 2, kZstd = 3 };
constexpr uint8_t kCodings = 4;
constexpr uint8_t bit(Coding c) { return static_cast<uint8_t>(1u << c); }
constexpr uint8_t kAllCodings = bit(kGzip) | bit(kBr) | bit(kZstd);

// Content-Encoding's token for a coding ("gzip", "br", "zstd"; "" for identity).
const char* name(Coding c);

// Accept-Encoding, read field line by field line (a request may carry several). The result is
// the set of our codings that share the highest q-value above 0 among those accepted (a "*"
// names every coding not listed; "x-gzip" is gzip). A malformed element is skipped, as if absent.
class Accept {
 public:
  void add(const char* value, size_t len);
  // Bits (bit(Coding)) of the best-q codings; 0: none acceptable (answer identity).
  uint8_t best() const;

 private:
  int16_t q_[kCodings] = {-1, -1, -1, -1};  // thousandths; -1: not named
  int16_t star_ = -1;
};

// Whether an answer of this Content-Type gains from compression: text/*, JSON, JavaScript, XML,
// the +json / +xml suffixes, SVG, WebAssembly, uncompressed fonts and icons. Images, audio,
// video, archives and unknown types are left alone (already compressed, or unknown).
bool compressible_type(const char* ct, size_t len);

// Quality of an encoding: kDynamic for an answer built per request (fast), kStored for a
// response compressed once and reused (ZeroResponse templates: slow and small).
enum class Effort : uint8_t { kDynamic, kStored };

class Encoder {
 public:
  Encoder() = default;
  ~Encoder();
  Encoder(const Encoder&) = delete;
  Encoder& operator=(const Encoder&) = delete;
  // Compresses in[0, n) with `c` into *out (replaced). False when the coding failed or the result
  // would not be smaller than the input (the caller then sends identity).
  bool encode(Coding c, Effort e, const uint8_t* in, size_t n, std::string* out);

 private:
  void* gzip_ = nullptr;   // zng_stream, kept (deflateReset between answers)
  int gzip_level_ = -1;
  void* zstd_ = nullptr;   // ZSTD_CCtx, kept
};

}  // namespace zio::compress

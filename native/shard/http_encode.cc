// native/shard/http_encode.cc — response compression for HTTP/1.1 and HTTP/2 answers
// (docs/architecture/0017-http-compression.md).
//
// The request's Accept-Encoding is read when it is parsed (the best-q set of our codings, kept
// per request / per stream); the answer is encoded when it is given, in the first of the
// listener's codings the request accepts, if
//   - its status has a body and the body is at least compress_min bytes,
//   - it has a Content-Type worth compressing (compress::compressible_type),
//   - it carries no Content-Encoding, Content-Range or Cache-Control: no-transform of its own,
//   - and the encoded body is smaller.
// An answer that could have been encoded says Vary: Accept-Encoding whether it was or not (a
// cache must not give the identity body to a client that accepts gzip, nor the reverse).
// Templates (ZeroResponse reused) keep their encoded bodies: each coding is made once.
#include <cstring>

#include "shard/shard.h"

namespace zio {

namespace {

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; }

bool name_is(const http1::Field& f, const char* lit) {
  size_t n = strlen(lit);
  if (f.name_len != n) return false;
  for (size_t i = 0; i < n; ++i)
    if (lower(f.name[i]) != lit[i]) return false;
  return true;
}

bool value_has(const http1::Field& f, const char* lit) {
  size_t n = strlen(lit);
  for (size_t i = 0; i + n <= f.value_len; ++i) {
    size_t k = 0;
    while (k < n && lower(f.value[i + k]) == lit[k]) ++k;
    if (k == n) return true;
  }
  return false;
}

constexpr char kVary[] = "Vary";
constexpr char kAcceptEncoding[] = "Accept-Encoding";
constexpr char kContentEncoding[] = "Content-Encoding";

}  // namespace

void Shard::http_encode(HttpEndpoint& ep, uint8_t accept, uint16_t status, const http1::Field** fields,
                        uint32_t* nfields, const uint8_t** body, size_t* body_len, HttpEncoded* stored) {
  const HttpConfig& cfg = ep.cfg;
  if (cfg.compress_n == 0 || *body_len < cfg.compress_min || http1::status_has_no_body(status)) return;
  const http1::Field* f = *fields;
  uint32_t n = *nfields;
  bool typed = false, varies = false;
  int32_t etag = -1;
  for (uint32_t i = 0; i < n; ++i) {
    if (name_is(f[i], "content-type")) {
      typed = compress::compressible_type(f[i].value, f[i].value_len);
    } else if (name_is(f[i], "content-encoding") || name_is(f[i], "content-range")) {
      return;
    } else if (name_is(f[i], "cache-control")) {
      if (value_has(f[i], "no-transform")) return;
    } else if (name_is(f[i], "vary")) {
      varies = varies || value_has(f[i], "accept-encoding") || value_has(f[i], "*");
    } else if (name_is(f[i], "etag")) {
      etag = static_cast<int32_t>(i);
    }
  }
  if (!typed) return;
  compress::Coding pick = compress::kIdentity;
  for (uint8_t i = 0; i < cfg.compress_n && pick == compress::kIdentity; ++i)
    if (accept & (1u << cfg.compress_order[i])) pick = static_cast<compress::Coding>(cfg.compress_order[i]);
  const std::string* enc = nullptr;
  if (pick != compress::kIdentity) {
    uint8_t b = compress::bit(pick);
    if (stored) {
      if (!(stored->tried & b)) {
        stored->tried |= b;
        if (http_enc_.encode(pick, compress::Effort::kStored, *body, *body_len, &stored->body[pick])) stored->ok |= b;
        else stored->body[pick].clear();
      }
      if (stored->ok & b) enc = &stored->body[pick];
    } else if (http_enc_.encode(pick, compress::Effort::kDynamic, *body, *body_len, &http_zbody_)) {
      enc = &http_zbody_;
    }
  }
  if (!enc && varies) return;  // identity, and the application's Vary says so already
  http_zfields_.assign(f, f + n);
  if (enc) {
    if (etag >= 0) {  // the encoded body is not the identity body: a strong validator would lie
      http1::Field& e = http_zfields_[static_cast<uint32_t>(etag)];
      if (!(e.value_len >= 2 && e.value[0] == 'W' && e.value[1] == '/')) {
        http_zetag_.assign("W/");
        http_zetag_.append(e.value, e.value_len);
        e.value = http_zetag_.data();
        e.value_len = http_zetag_.size();
      }
    }
    const char* cn = compress::name(pick);
    http_zfields_.push_back({kContentEncoding, sizeof kContentEncoding - 1, cn, strlen(cn)});
    ++ep.stats.compressed;
    ep.stats.compress_saved += *body_len - enc->size();
    *body = reinterpret_cast<const uint8_t*>(enc->data());
    *body_len = enc->size();
  }
  if (!varies) http_zfields_.push_back({kVary, sizeof kVary - 1, kAcceptEncoding, sizeof kAcceptEncoding - 1});
  *fields = http_zfields_.data();
  *nfields = static_cast<uint32_t>(http_zfields_.size());
}

}  // namespace zio

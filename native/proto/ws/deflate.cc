// native/proto/ws/deflate.cc — permessage-deflate (RFC 7692): see deflate.h.
#include "proto/ws/deflate.h"

#include <zlib-ng.h>

#include <cstring>
#include <vector>

namespace zio::ws {

namespace {

struct Param {
  std::string name, value;
  bool has_value = false;
};

std::string lower(const uint8_t* p, size_t n) {
  std::string s(reinterpret_cast<const char*>(p), n);
  for (char& c : s)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
  return s;
}

bool is_ws(uint8_t c) { return c == ' ' || c == '\t'; }

// Splits an extension list into extensions (name + params), commas inside quotes respected.
// False on a malformed list.
bool parse_list(const uint8_t* v, size_t n, std::vector<std::pair<std::string, std::vector<Param>>>* out) {
  size_t i = 0;
  while (i < n) {
    while (i < n && (is_ws(v[i]) || v[i] == ',')) ++i;
    if (i >= n) break;
    std::vector<std::string> parts;
    std::string cur;
    bool quoted = false;
    while (i < n && (quoted || v[i] != ',')) {
      if (v[i] == '"') quoted = !quoted;
      else if (!quoted && v[i] == ';') {
        parts.push_back(cur);
        cur.clear();
      } else {
        cur.push_back(static_cast<char>(v[i]));
      }
      ++i;
    }
    if (quoted) return false;
    parts.push_back(cur);
    auto trim = [](const std::string& s) {
      size_t a = 0, b = s.size();
      while (a < b && is_ws(static_cast<uint8_t>(s[a]))) ++a;
      while (b > a && is_ws(static_cast<uint8_t>(s[b - 1]))) --b;
      return s.substr(a, b - a);
    };
    std::string name = trim(parts[0]);
    if (name.empty()) return false;
    std::vector<Param> params;
    for (size_t k = 1; k < parts.size(); ++k) {
      std::string p = trim(parts[k]);
      if (p.empty()) return false;
      Param q;
      size_t eq = p.find('=');
      if (eq == std::string::npos) {
        q.name = lower(reinterpret_cast<const uint8_t*>(p.data()), p.size());
      } else {
        std::string a = trim(p.substr(0, eq));
        q.name = lower(reinterpret_cast<const uint8_t*>(a.data()), a.size());
        q.value = trim(p.substr(eq + 1));
        q.has_value = true;
      }
      params.push_back(std::move(q));
    }
    out->emplace_back(lower(reinterpret_cast<const uint8_t*>(name.data()), name.size()), std::move(params));
  }
  return true;
}

// A window-bits value: 8..15, digits only (a quoted value arrives here unquoted).
int bits_of(const std::string& s) {
  if (s.empty() || s.size() > 2) return -1;
  int v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return -1;
    v = v * 10 + (c - '0');
  }
  if (s.size() == 2 && s[0] == '0') return -1;
  return v >= 8 && v <= 15 ? v : -1;
}

}  // namespace

bool negotiate(const uint8_t* v, size_t n, const DeflateConfig& cfg, DeflateParams* agreed, std::string* answer) {
  std::vector<std::pair<std::string, std::vector<Param>>> exts;
  if (!parse_list(v, n, &exts)) return false;
  for (const auto& [name, params] : exts) {
    if (name != "permessage-deflate") continue;
    bool sntc = false, cntc = false, smwb = false, cmwb = false, ok = true;
    int sbits = 15, cbits = -1;  // cbits: -1 the client did not allow client_max_window_bits
    for (const Param& p : params) {
      if (p.name == "server_no_context_takeover" && !sntc && !p.has_value) sntc = true;
      else if (p.name == "client_no_context_takeover" && !cntc && !p.has_value) cntc = true;
      else if (p.name == "server_max_window_bits" && !smwb && p.has_value && (sbits = bits_of(p.value)) > 0) smwb = true;
      else if (p.name == "client_max_window_bits" && !cmwb) {
        cmwb = true;
        cbits = p.has_value ? bits_of(p.value) : 15;
        if (cbits < 0) ok = false;
      } else {
        ok = false;  // unknown, repeated or malformed: decline this offer
      }
    }
    // zlib cannot deflate with a 256-byte window (it would use 512): an offer that needs 8 is declined.
    if (!ok || sbits < 9) continue;
    DeflateParams a;
    a.server_no_context_takeover = sntc || cfg.server_no_context_takeover;
    a.client_no_context_takeover = cntc || cfg.client_no_context_takeover;
    int sb = sbits < cfg.server_max_window_bits ? sbits : cfg.server_max_window_bits;
    a.server_max_window_bits = static_cast<uint8_t>(sb < 9 ? 9 : sb);
    a.client_max_window_bits = 15;
    answer->assign("permessage-deflate");
    if (a.server_no_context_takeover) answer->append("; server_no_context_takeover");
    if (a.client_no_context_takeover) answer->append("; client_no_context_takeover");
    if (smwb || a.server_max_window_bits < 15)
      answer->append("; server_max_window_bits=").append(std::to_string(a.server_max_window_bits));
    if (cbits > 0) {  // the client lets us choose its window
      int cb = cbits < cfg.client_max_window_bits ? cbits : cfg.client_max_window_bits;
      a.client_max_window_bits = static_cast<uint8_t>(cb);
      if (cb < 15 || cbits < 15) answer->append("; client_max_window_bits=").append(std::to_string(cb));
    }
    *agreed = a;
    return true;
  }
  return false;
}

std::string client_offer(const DeflateConfig& cfg) {
  std::string s = "permessage-deflate; client_max_window_bits";
  // (appended piece by piece: GCC 12 warns falsely about operator+ on a literal, PR105651)
  if (cfg.client_max_window_bits < 15) s.append("=").append(std::to_string(cfg.client_max_window_bits));
  if (cfg.server_max_window_bits < 15)
    s.append("; server_max_window_bits=").append(std::to_string(cfg.server_max_window_bits));
  if (cfg.client_no_context_takeover) s += "; client_no_context_takeover";
  if (cfg.server_no_context_takeover) s += "; server_no_context_takeover";
  return s;
}

bool accept_answer(const uint8_t* v, size_t n, const DeflateConfig& cfg, DeflateParams* agreed) {
  std::vector<std::pair<std::string, std::vector<Param>>> exts;
  if (!parse_list(v, n, &exts) || exts.size() != 1 || exts[0].first != "permessage-deflate") return false;
  DeflateParams a;
  bool seen[4] = {};
  for (const Param& p : exts[0].second) {
    if (p.name == "server_no_context_takeover" && !seen[0] && !p.has_value) {
      seen[0] = a.server_no_context_takeover = true;
    } else if (p.name == "client_no_context_takeover" && !seen[1] && !p.has_value) {
      seen[1] = a.client_no_context_takeover = true;
    } else if (p.name == "server_max_window_bits" && !seen[2] && p.has_value && bits_of(p.value) > 0) {
      seen[2] = true;
      a.server_max_window_bits = static_cast<uint8_t>(bits_of(p.value));
    } else if (p.name == "client_max_window_bits" && !seen[3] && p.has_value && bits_of(p.value) > 0) {
      seen[3] = true;  // we offered client_max_window_bits: the server may lower our window
      a.client_max_window_bits = static_cast<uint8_t>(bits_of(p.value));
    } else {
      return false;
    }
  }
  if (cfg.server_no_context_takeover && !a.server_no_context_takeover) {
    // We asked; the server may still decline to honour it (RFC 7692 7.1.1.1 lets a server not
    // include it only if the client did not ask): treat as a bad answer.
    return false;
  }
  if (a.client_max_window_bits < 9) return false;  // zlib cannot deflate with a 256-byte window
  // We said what we allow: the server may only lower it (RFC 7692 7.1.2).
  if (cfg.server_max_window_bits < 15 && (!seen[2] || a.server_max_window_bits > cfg.server_max_window_bits)) return false;
  if (a.client_max_window_bits > cfg.client_max_window_bits) {
    if (seen[3]) return false;
    a.client_max_window_bits = cfg.client_max_window_bits;  // not answered: our offer's bound holds
  }
  a.client_no_context_takeover = a.client_no_context_takeover || cfg.client_no_context_takeover;
  *agreed = a;
  return true;
}

// ---- the codec ----

Inflater::~Inflater() {
  if (z_) {
    zng_inflateEnd(static_cast<zng_stream*>(z_));
    delete static_cast<zng_stream*>(z_);
  }
}

bool Inflater::ensure() {
  if (z_) return true;
  auto* s = new zng_stream();
  if (zng_inflateInit2(s, -static_cast<int>(bits_)) != Z_OK) {
    delete s;
    return false;
  }
  z_ = s;
  return true;
}

int Inflater::feed(const uint8_t* p, size_t n, std::string* out, size_t limit, const char** why) {
  if (!ensure()) {
    *why = "the decompressor could not be set up (out of memory)";
    return kInflateBad;
  }
  auto* s = static_cast<zng_stream*>(z_);
  s->next_in = p;
  s->avail_in = static_cast<uint32_t>(n);
  uint8_t buf[16384];
  for (;;) {
    s->next_out = buf;
    s->avail_out = sizeof buf;
    int r = zng_inflate(s, Z_SYNC_FLUSH);
    size_t got = sizeof buf - s->avail_out;
    if (out->size() + got > limit) {
      *why = "a compressed message that inflates past maxMessageSize (compressed messages are delivered whole: at most a quarter of the pool)";
      return kInflateTooBig;
    }
    out->append(reinterpret_cast<const char*>(buf), got);
    if (r == Z_STREAM_END) {  // a final block: the next bytes start afresh
      zng_inflateReset(s);
      if (s->avail_in == 0) break;
      continue;
    }
    if (r == Z_BUF_ERROR) break;  // no progress possible: it needs more input
    if (r != Z_OK) {
      *why = "a compressed message that is not valid deflate data";
      return kInflateBad;
    }
    if (s->avail_in == 0 && s->avail_out != 0) break;  // all input taken, all output out
  }
  return kInflateOk;
}

int Inflater::finish(std::string* out, size_t limit, bool reset, const char** why) {
  static const uint8_t kTail[4] = {0x00, 0x00, 0xff, 0xff};
  int r = feed(kTail, 4, out, limit, why);
  if (r != kInflateOk) return r;
  if (reset && z_) zng_inflateReset(static_cast<zng_stream*>(z_));
  return kInflateOk;
}

size_t Inflater::memory() const { return z_ ? (size_t{1} << bits_) + 7 * 1024 : 0; }

Deflater::~Deflater() {
  if (z_) {
    zng_deflateEnd(static_cast<zng_stream*>(z_));
    delete static_cast<zng_stream*>(z_);
  }
}

void Deflater::configure(int level, uint8_t window_bits, uint8_t mem_level) {
  level_ = level;
  bits_ = window_bits < 9 ? 9 : window_bits;
  mem_ = mem_level;
}

bool Deflater::compress(const uint8_t* p, size_t n, std::string* out, bool reset) {
  if (!z_) {
    auto* s = new zng_stream();
    if (zng_deflateInit2(s, level_, Z_DEFLATED, -static_cast<int>(bits_), mem_, Z_DEFAULT_STRATEGY) != Z_OK) {
      delete s;
      return false;
    }
    z_ = s;
  }
  auto* s = static_cast<zng_stream*>(z_);
  out->resize(zng_deflateBound(s, n) + 16);
  s->next_in = p;
  s->avail_in = static_cast<uint32_t>(n);
  size_t done = 0;
  for (;;) {
    s->next_out = reinterpret_cast<uint8_t*>(out->data()) + done;
    s->avail_out = static_cast<uint32_t>(out->size() - done);
    int r = zng_deflate(s, Z_SYNC_FLUSH);
    done = out->size() - s->avail_out;
    if (r != Z_OK && r != Z_BUF_ERROR) return false;
    if (s->avail_in == 0 && s->avail_out > 0) break;
    out->resize(out->size() * 2);
  }
  // RFC 7692 7.2.1: the sync flush's empty stored block (00 00 FF FF) is left off.
  if (done >= 4 && memcmp(out->data() + done - 4, "\x00\x00\xff\xff", 4) == 0) done -= 4;
  out->erase(done);
  if (reset) zng_deflateReset(s);
  return true;
}

size_t Deflater::memory() const {
  return z_ ? (size_t{1} << (bits_ + 2)) + (size_t{1} << (mem_ + 9)) + 6 * 1024 : 0;
}

}  // namespace zio::ws

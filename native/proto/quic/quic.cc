// native/proto/quic/quic.cc — see quic.h.
#include "proto/quic/quic.h"

#include <openssl/hmac.h>
#include <openssl/mem.h>
#include <openssl/rand.h>
#include <quiche.h>

#include <cstring>

namespace zio::quic {

bool alpn_wire(const std::vector<std::string>& names, std::string* out, std::string* err) {
  out->clear();
  for (const std::string& n : names) {
    if (n.empty() || n.size() > 255) {
      *err = "alpn: each protocol name must be 1 to 255 bytes";
      return false;
    }
    out->push_back(static_cast<char>(n.size()));
    out->append(n);
  }
  return true;
}

quiche_config* make_config(const Settings& s, std::string* err) {
  quiche_config* c = quiche_config_new(QUICHE_PROTOCOL_VERSION);
  if (!c) {
    *err = "quiche_config_new failed";
    return nullptr;
  }
  std::string wire;
  if (!alpn_wire(s.alpn, &wire, err)) {
    quiche_config_free(c);
    return nullptr;
  }
  if (!wire.empty() &&
      quiche_config_set_application_protos(c, reinterpret_cast<const uint8_t*>(wire.data()), wire.size()) < 0) {
    *err = "alpn: quiche refused the protocol list";
    quiche_config_free(c);
    return nullptr;
  }
  quiche_config_set_max_idle_timeout(c, s.idle_timeout_ms);
  quiche_config_set_max_recv_udp_payload_size(c, 65527);
  quiche_config_set_max_send_udp_payload_size(c, s.max_udp_payload);
  quiche_config_set_initial_max_data(c, s.max_data);
  quiche_config_set_initial_max_stream_data_bidi_local(c, s.max_stream_data_bidi_local);
  quiche_config_set_initial_max_stream_data_bidi_remote(c, s.max_stream_data_bidi_remote);
  quiche_config_set_initial_max_stream_data_uni(c, s.max_stream_data_uni);
  quiche_config_set_initial_max_streams_bidi(c, s.max_streams_bidi);
  quiche_config_set_initial_max_streams_uni(c, s.max_streams_uni);
  quiche_config_set_disable_active_migration(c, s.disable_migration);
  quiche_config_set_active_connection_id_limit(c, s.active_cid_limit);
  quiche_config_discover_pmtu(c, s.pmtud);
  quiche_config_enable_pacing(c, s.pacing);
  // quiche 0.30's BBRv2 reads this in megabits per second (Bandwidth::from_mbits_per_second):
  // ours is bytes per second, rounded up to whole megabits.
  if (s.max_pacing_rate) quiche_config_set_max_pacing_rate(c, (s.max_pacing_rate * 8 + 999999) / 1000000);
  quiche_config_verify_peer(c, s.server ? false : s.verify_peer);
  if (s.early_data) quiche_config_enable_early_data(c);
  if (s.dgram) quiche_config_enable_dgram(c, true, s.dgram_queue, s.dgram_queue);
  const char* cc = s.cc == "reno" ? "reno" : s.cc == "bbr2" ? "bbr2_gcongestion" : "cubic";
  if (quiche_config_set_cc_algorithm_name(c, cc) < 0) {
    *err = "congestionControl: quiche does not know " + s.cc;
    quiche_config_free(c);
    return nullptr;
  }
  return c;
}

std::shared_ptr<quiche_config> shared_config(const Settings& s, std::string* err) {
  quiche_config* c = make_config(s, err);
  if (!c) return nullptr;
  return std::shared_ptr<quiche_config>(c, quiche_config_free);
}

std::string settings_key(const Settings& s) {
  std::string k;
  for (const std::string& a : s.alpn) k += a + '\0';
  k += '|' + s.cc;
  for (uint64_t v : {uint64_t{s.server}, s.idle_timeout_ms, s.max_data, s.max_stream_data_bidi_local,
                     s.max_stream_data_bidi_remote, s.max_stream_data_uni, s.max_streams_bidi, s.max_streams_uni,
                     uint64_t{s.pmtud}, uint64_t{s.pacing}, uint64_t{s.dgram}, uint64_t{s.dgram_queue},
                     uint64_t{s.max_udp_payload}, uint64_t{s.early_data}, uint64_t{s.verify_peer},
                     uint64_t{s.disable_migration}, uint64_t{s.active_cid_limit}, s.max_pacing_rate})
    k += '|' + std::to_string(v);
  return k;
}

void make_cid(uint8_t out[kCidLen], uint16_t slot) {
  RAND_bytes(out, kCidLen);
  out[1] = static_cast<uint8_t>((out[1] & 0xc0) | ((slot >> 8) & 0x3f));
  out[2] = static_cast<uint8_t>(slot & 0xff);
}

bool parse_header(const uint8_t* p, size_t n, Header* h) {
  if (n == 0 || n > 65527) return false;
  // A short header's first byte has the fixed bit set; a long one's too, except Version
  // Negotiation (never sent to a server). Garbage fails here before quiche looks at it.
  if (!(p[0] & 0x40) && (p[0] & 0x80) == 0) return false;
  uint8_t type = 0;
  h->dcid_len = sizeof h->dcid;
  h->scid_len = sizeof h->scid;
  h->token_len = sizeof h->token;
  if (quiche_header_info(p, n, kCidLen, &h->version, &type, h->scid, &h->scid_len, h->dcid,
                         &h->dcid_len, h->token, &h->token_len) < 0) {
    // A long header of a version quiche does not know: its invariant fields (RFC 8999 section
    // 5.1) are enough to answer with Version Negotiation.
    if (!(p[0] & 0x80) || n < 7) return false;
    uint32_t v = (uint32_t{p[1]} << 24) | (uint32_t{p[2]} << 16) | (uint32_t{p[3]} << 8) | p[4];
    if (v == 0 || quiche_version_is_supported(v)) return false;
    size_t at = 5, dl = p[at++];
    if (dl > 20 || at + dl + 1 > n) return false;
    memcpy(h->dcid, p + at, dl);
    h->dcid_len = dl;
    at += dl;
    size_t sl = p[at++];
    if (sl > 20 || at + sl > n) return false;
    memcpy(h->scid, p + at, sl);
    h->scid_len = sl;
    h->version = v;
    h->token_len = 0;
    h->type = PacketType::Initial;  // what it claims to be does not matter: it is answered with VN
    return true;
  }
  if (type < 1 || type > 6) return false;
  h->type = static_cast<PacketType>(type);
  return true;
}

bool version_supported(uint32_t version) { return quiche_version_is_supported(version); }

long negotiate_version(const Header& h, uint8_t* out, size_t cap) {
  return quiche_negotiate_version(h.scid, h.scid_len, h.dcid, h.dcid_len, out, cap);
}

long make_retry(const Header& h, const uint8_t* new_scid, size_t new_scid_len, const uint8_t* token,
                size_t token_len, uint8_t* out, size_t cap) {
  return quiche_retry(h.scid, h.scid_len, h.dcid, h.dcid_len, new_scid, new_scid_len, token,
                      token_len, h.version, out, cap);
}

// ---- retry tokens: version(1) | expiry ms (8) | odcid len (1) | odcid | HMAC-SHA256 (32) ----

void RetryTokens::ensure(uint64_t now_ms) {
  if (!have_) {
    RAND_bytes(cur_.key, sizeof cur_.key);
    cur_.created_ms = now_ms;
    have_ = true;
  }
}

void RetryTokens::rotate(uint64_t now_ms) {
  ensure(now_ms);
  prev_ = cur_;
  have_prev_ = true;
  RAND_bytes(cur_.key, sizeof cur_.key);
  cur_.created_ms = now_ms;
}

namespace {
void token_mac(const TokenKey& k, const uint8_t* body, size_t n, const uint8_t* addr, size_t addr_len,
               uint8_t out[32]) {
  HMAC_CTX* m = HMAC_CTX_new();
  unsigned len = 32;
  HMAC_Init_ex(m, k.key, sizeof k.key, EVP_sha256(), nullptr);
  HMAC_Update(m, body, n);
  HMAC_Update(m, addr, addr_len);
  HMAC_Final(m, out, &len);
  HMAC_CTX_free(m);
}
}  // namespace

size_t RetryTokens::mint(const uint8_t* addr, size_t addr_len, const uint8_t* odcid, size_t odcid_len,
                         uint64_t now_ms, uint8_t* out, size_t cap) {
  if (odcid_len > 20 || cap < 1 + 8 + 1 + odcid_len + 32) return 0;
  ensure(now_ms);
  if (now_ms - cur_.created_ms > 3600 * 1000) rotate(now_ms);  // a fresh key every hour
  size_t n = 0;
  out[n++] = 1;
  uint64_t exp = now_ms + lifetime_ms_;
  for (int i = 7; i >= 0; --i) out[n++] = static_cast<uint8_t>(exp >> (i * 8));
  out[n++] = static_cast<uint8_t>(odcid_len);
  memcpy(out + n, odcid, odcid_len);
  n += odcid_len;
  token_mac(cur_, out, n, addr, addr_len, out + n);
  return n + 32;
}

size_t RetryTokens::check(const uint8_t* token, size_t n, const uint8_t* addr, size_t addr_len,
                          uint64_t now_ms, uint8_t* odcid_out) {
  if (!have_ || n < 1 + 8 + 1 + 32 || token[0] != 1) return 0;
  size_t olen = token[9];
  if (olen > 20 || n != 10 + olen + 32) return 0;
  uint64_t exp = 0;
  for (int i = 1; i <= 8; ++i) exp = (exp << 8) | token[i];
  if (now_ms > exp) return 0;
  uint8_t mac[32];
  token_mac(cur_, token, 10 + olen, addr, addr_len, mac);
  bool ok = CRYPTO_memcmp(mac, token + 10 + olen, 32) == 0;
  if (!ok && have_prev_) {
    token_mac(prev_, token, 10 + olen, addr, addr_len, mac);
    ok = CRYPTO_memcmp(mac, token + 10 + olen, 32) == 0;
  }
  if (!ok) return 0;
  memcpy(odcid_out, token + 10, olen);
  return olen == 0 ? 0 : olen;
}

// ---- stateless reset ----

void reset_token(const uint8_t* key, size_t key_len, const uint8_t* cid, size_t cid_len,
                 uint8_t out[kResetTokenLen]) {
  uint8_t mac[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  HMAC(EVP_sha256(), key, key_len, cid, cid_len, mac, &len);
  memcpy(out, mac, kResetTokenLen);
}

size_t reset_size(size_t n) {
  if (n <= kResetMinLen) return 0;
  return n - 1 < 64 ? n - 1 : 64;
}

void make_stateless_reset(const uint8_t token[kResetTokenLen], size_t size, uint8_t* out) {
  RAND_bytes(out, size - kResetTokenLen);
  out[0] = static_cast<uint8_t>((out[0] & 0x3f) | 0x40);  // header form 0, fixed bit 1
  memcpy(out + size - kResetTokenLen, token, kResetTokenLen);
}

}  // namespace zio::quic

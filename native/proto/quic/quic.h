// native/proto/quic/quic.h — the sans-IO half of QUIC: quiche's transport configuration from our
// settings, connection ids that carry their owner (ScidGenerator), and the first look at a
// datagram (which connection it is for, or what the endpoint must answer by itself).
// No sockets, no clocks, no N-API (DESIGN.md section 1); quiche does the protocol.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

struct quiche_config;

namespace zio::quic {

// Connection ids we issue: 12 bytes (quiche encodes transport parameters into 128 bytes: longer
// ids with a retry could overflow it). Bytes 1-2 carry the cluster slot in their low 14 bits
// (server id and shard id, ScidGenerator); the rest is random (BoringSSL's RNG).
constexpr size_t kCidLen = 12;
constexpr uint16_t kSlotMask = 0x3fff;  // SERVER_ID_MASK: 14 bits

// The transport settings of a listener or a client (resolved and checked by TypeScript).
struct Settings {
  bool server = true;
  std::vector<std::string> alpn;      // in preference order
  uint64_t idle_timeout_ms = 30000;   // 0: none
  uint64_t max_data = 16u << 20;      // connection flow-control window
  uint64_t max_stream_data_bidi_local = 1u << 20;
  uint64_t max_stream_data_bidi_remote = 1u << 20;
  uint64_t max_stream_data_uni = 1u << 20;
  uint64_t max_streams_bidi = 100, max_streams_uni = 100;
  std::string cc = "cubic";           // "reno" | "cubic" | "bbr2"
  bool pmtud = false;
  bool pacing = true;
  uint64_t max_pacing_rate = 0;       // bytes per second (0: none); quiche's pacer (BBRv2)
  bool dgram = true;                  // RFC 9221 datagrams offered
  uint32_t dgram_queue = 1024;        // datagrams queued each way
  uint32_t max_udp_payload = 1350;    // what we send at most (and receive)
  bool early_data = false;            // 0-RTT (server: accept it; client: send it)
  bool verify_peer = true;            // client: the server's certificate
  bool disable_migration = false;
  // Also the most paths quiche keeps per connection: quiche 0.30 never frees a path a peer
  // migrated away from (its connection id is copied, not moved, to the new path), so a connection
  // follows at most active_cid_limit - 1 address changes.
  uint32_t active_cid_limit = 8;
};

// A quiche configuration for `s` (the TLS context is ours: quiche_conn_new_with_tls). nullptr
// with *err set when quiche refuses a value.
quiche_config* make_config(const Settings& s, std::string* err);
// The same, owned (freed with the last holder). quiche_config_new loads the system trust store
// (milliseconds): clients with the same settings share one.
std::shared_ptr<quiche_config> shared_config(const Settings& s, std::string* err);
// A key naming every field of `s` (for a cache of shared configurations).
std::string settings_key(const Settings& s);

// ALPN wire format (length-prefixed names) of a list; false with *err for an empty or long name.
bool alpn_wire(const std::vector<std::string>& names, std::string* out, std::string* err);

// A new connection id whose bytes 1-2 hold `slot` (14 bits).
void make_cid(uint8_t out[kCidLen], uint16_t slot);
// The cluster slot a connection id of ours carries (0 for ids shorter than 3 bytes).
inline uint16_t cid_slot(const uint8_t* cid, size_t len) {
  return len < 3 ? 0 : static_cast<uint16_t>(((cid[1] << 8) | cid[2]) & kSlotMask);
}

// The first look at a datagram: quiche's header parse, with our id length for short headers.
enum class PacketType : uint8_t {
  Initial = 1, Retry = 2, Handshake = 3, ZeroRtt = 4, Short = 5, VersionNegotiation = 6,
};
struct Header {
  uint32_t version = 0;
  PacketType type = PacketType::Short;
  uint8_t dcid[20], scid[20];
  size_t dcid_len = 0, scid_len = 0;
  uint8_t token[256];
  size_t token_len = 0;
  bool long_header() const { return type != PacketType::Short; }  // (quiche's numbering: ffi.rs)
};
// False when the datagram is not a QUIC packet we can read (garbage, truncated): dropped.
bool parse_header(const uint8_t* p, size_t n, Header* h);
bool version_supported(uint32_t version);
// A Version Negotiation packet answering `h` into out (at least 1200 bytes); its length or < 0.
long negotiate_version(const Header& h, uint8_t* out, size_t cap);

// Address-validation tokens (RFC 9000 section 8.1.2) for stateless retry: authenticated with
// HMAC-SHA256 under a key that rotates; they name the client address and the original
// destination id and expire.
struct TokenKey {
  uint8_t key[32];
  uint64_t created_ms = 0;
};
class RetryTokens {
 public:
  explicit RetryTokens(uint64_t lifetime_ms = 10000) : lifetime_ms_(lifetime_ms) {}
  // A token for a client at `addr` (sockaddr bytes) whose Initial went to `odcid`. Length.
  size_t mint(const uint8_t* addr, size_t addr_len, const uint8_t* odcid, size_t odcid_len,
              uint64_t now_ms, uint8_t* out, size_t cap);
  // The original destination id of a valid token (right address, not expired, either key);
  // 0 when the token is not ours.
  size_t check(const uint8_t* token, size_t n, const uint8_t* addr, size_t addr_len,
               uint64_t now_ms, uint8_t* odcid_out);
  void rotate(uint64_t now_ms);  // a new current key; the previous one still checks

 private:
  void ensure(uint64_t now_ms);
  uint64_t lifetime_ms_;
  TokenKey cur_{}, prev_{};
  bool have_ = false, have_prev_ = false;
};
// A Retry packet (RFC 9000 section 17.2.5) telling the client to come back with `token` and
// to use `new_scid`. Its length, or < 0.
long make_retry(const Header& h, const uint8_t* new_scid, size_t new_scid_len, const uint8_t* token,
                size_t token_len, uint8_t* out, size_t cap);


// ---- stateless reset (RFC 9000 section 10.3) ----
// The token of one of our connection ids: HMAC-SHA256 of the id under the listener's key, cut to
// 16 bytes — so whoever holds the key (this listener after a restart, another shard of the same
// server) can end a connection it has no state for, and nobody else can.
constexpr size_t kResetTokenLen = 16;
constexpr size_t kResetMinLen = 21;  // 5 bytes that look like a short header, then the token
void reset_token(const uint8_t* key, size_t key_len, const uint8_t* cid, size_t cid_len,
                 uint8_t out[kResetTokenLen]);
// The size of the Stateless Reset answering an `n`-byte packet: smaller than it (so two
// endpoints that both lost state cannot loop), at most 64 bytes; 0 when `n` is too small to
// answer (section 10.3.3).
size_t reset_size(size_t n);
// A Stateless Reset of `size` (>= kResetMinLen) bytes into `out`: a short header's first byte
// (fixed bit set), random bytes, the token last.
void make_stateless_reset(const uint8_t token[kResetTokenLen], size_t size, uint8_t* out);

}  // namespace zio::quic

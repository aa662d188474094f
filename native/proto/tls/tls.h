// native/proto/tls/tls.h — the TLS machine (sans-IO) on BoringSSL.
//
// No syscalls, no clocks, no Node-API: ciphertext goes in through feed(), plaintext comes out of
// read(), plaintext goes in through write() and ciphertext comes out through the Sink the owner
// gives (the shard queues it on the connection). docs/architecture/0009-tls-stack.md says why
// BoringSSL and how it is contained.
//
// Session states (RFC 8446 section 4 / RFC 5246 section 7.3; renegotiation is never allowed):
//
//     start() --> Handshake --(handshake done)--> Open --(close_notify / FIN)--> Closed
//                     |                            |
//                     +----(alert / bad input)-----+----> Failed (error(), alert(), reason())
//
// Contexts (the certificate, SNI map, ALPN, versions, verification, ticket keys) are immutable
// once built and shared by shared_ptr: a session keeps the context it started with, so a
// certificate swap (CertSlot) never touches a handshake already in progress.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

struct ssl_ctx_st;
struct ssl_st;
struct ssl_session_st;
struct bio_st;

namespace zio::tls {

enum : uint16_t { kTls12 = 0x0303, kTls13 = 0x0304 };

struct CertKey {
  std::string cert_pem;  // the chain: leaf first
  std::string key_pem;
  std::vector<std::string> names;  // SNI names served with it ("*.example.com" allowed)
};

struct ServerOptions {
  std::vector<CertKey> certs;  // certs[0] is the default (no SNI, or no name matched)
  std::vector<std::string> alpn;  // in server preference order
  uint16_t min_version = kTls12, max_version = kTls13;
  std::string ciphers;  // TLS 1.2 suites (OpenSSL syntax); empty: the modern AEAD-only default
  int client_auth = 0;  // 0: none, 1: request, 2: require (mTLS)
  std::string ca_pem;   // CAs that client certificates must chain to; empty: the system store
  bool tickets = true;  // session resumption by ticket (RFC 8446 section 4.6.1 / RFC 5077)
  bool early_data = false;  // tickets allow 0-RTT data (QUIC listeners that accept early data)
};

struct ClientOptions {
  std::string servername;  // SNI and the name the certificate must carry (host name or IP)
  std::vector<std::string> alpn;
  uint16_t min_version = kTls12, max_version = kTls13;
  std::string ciphers;
  std::string ca_pem;  // trust anchors; empty: the system store
  bool verify = true;  // false: accept any certificate (testing only)
  std::string cert_pem, key_pem;  // client certificate (mTLS)
  bool resume = true;  // keep the last session and offer it on the next connect
};

// An immutable TLS configuration (one SSL_CTX, plus one per extra SNI certificate).
// Session-ticket keys shared by every generation of a server context (hot reload keeps them):
// a current key that encrypts new tickets and the previous one that still decrypts, rotated
// every kRotateSeconds, so a ticket resumes for up to two periods. Any thread (mutex).
class TicketKeys {
 public:
  static constexpr int64_t kRotateSeconds = 12 * 3600;
  struct Key {
    uint8_t name[16], aes[16], hmac[32];
    int64_t created = 0;
  };
  // The key to encrypt with now (rotating first when due).
  Key current(int64_t now_s);
  // The key a ticket named `name` was made with; *renew: it is the previous key.
  bool find(const uint8_t name[16], Key* out, bool* renew) const;

 private:
  static Key fresh(int64_t now_s);
  mutable std::mutex mu_;
  Key cur_{}, prev_{};
  bool have_cur_ = false, have_prev_ = false;
};

class Context {
 public:
  ~Context();
  // Build; nullptr with *err set ("certificate: ...", "private key does not match ...").
  static std::shared_ptr<Context> server(const ServerOptions& o, std::string* err);
  static std::shared_ptr<Context> client(const ClientOptions& o, std::string* err);
  // A new server context with other certificates but the same everything else (hot reload).
  // The session-ticket keys are carried over, so tickets issued before a reload still resume.
  std::shared_ptr<Context> with_certs(const std::vector<CertKey>& certs, std::string* err) const;

  bool is_server() const { return server_; }
  // A server context's tickets allow 0-RTT from now on (kept by with_certs: hot reload). Call it
  // before the context serves handshakes.
  void enable_early_data();
  ssl_ctx_st* ctx() const { return ctx_; }
  ssl_ctx_st* for_name(const char* name) const;  // SNI: the context serving `name`
  const std::string& servername() const { return client_.servername; }
  const std::vector<uint8_t>& alpn_wire() const { return alpn_wire_; }
  // Client resumption: the newest session of this context (a reference the caller frees).
  ssl_session_st* take_session() const;
  void store_session(ssl_session_st* s) const;  // takes the reference

 private:
  Context() = default;
  bool build_server(std::string* err);
  bool build_client(std::string* err);
  bool server_ = false;
  ssl_ctx_st* ctx_ = nullptr;
  std::vector<std::pair<std::string, ssl_ctx_st*>> sni_;  // name (lowercase) -> context
  ServerOptions srv_;
  ClientOptions client_;
  std::vector<uint8_t> alpn_wire_;
  mutable std::mutex session_mu_;
  mutable ssl_session_st* session_ = nullptr;
  std::shared_ptr<TicketKeys> tickets_;  // server with tickets on
};

// A connection's own receiver of the sessions its server issues (NewSessionTicket), besides the
// context's newest one: QUIC keeps each with the transport parameters 0-RTT needs. Called inside
// the handshake (the SSL's owner is in a call into it); `sink` must outlive the SSL or be cleared.
struct SessionSink {
  void (*fn)(void* arg, ssl_st* ssl, ssl_session_st* s) = nullptr;  // s is borrowed
  void* arg = nullptr;
};
void set_session_sink(ssl_st* ssl, SessionSink* sink);

// A client SSL made from `ctx` gets its SNI, verified name, resumable session and ALPN offer.
// 0, or -1 with *err.
int client_ssl_setup(ssl_st* ssl, const Context& ctx, std::string* err);

// A certificate slot: the context new handshakes on an endpoint start with. Any thread may
// swap it (CertReloadHandle); a shard reads it once per accepted connection.
class CertSlot {
 public:
  explicit CertSlot(std::shared_ptr<Context> c) : cur_(std::move(c)) {}
  std::shared_ptr<Context> get() const {
    std::lock_guard<std::mutex> g(mu_);
    return cur_;
  }
  // Rebuilds the current context with new certificates. 0, or -1 with *err (the old one stays).
  int reload(const std::vector<CertKey>& certs, std::string* err);
  uint64_t generation() const {
    std::lock_guard<std::mutex> g(mu_);
    return gen_;
  }

 private:
  mutable std::mutex mu_;
  std::shared_ptr<Context> cur_;
  uint64_t gen_ = 1;
};

// Where a session's ciphertext goes. put() returns how much it took; the session keeps the rest
// (pending_out) until flush_out() is called again.
class Sink {
 public:
  virtual size_t put(const uint8_t* data, size_t len) = 0;

 protected:
  ~Sink() = default;
};

enum class Phase : uint8_t { Idle, Handshake, Open, Closed, Failed };

// Error codes of read()/write() (negative, like the shard's kErr*).
enum : int {
  kTlsNeedInput = 0,
  kTlsHandshakeFailed = -1,  // the handshake failed: alert() / reason()
  kTlsProtocolError = -2,    // a bad record after the handshake (bad MAC, renegotiation, ...)
  kTlsPeerClosed = -3,       // close_notify received
};

// Traffic secrets for kernel TLS (kTLS) after the handshake.
struct KtlsKeys {
  uint16_t version = 0, cipher = 0;  // cipher: the IANA suite id (0x1301, 0xc02f, ...)
  uint8_t tx_key[32], tx_iv[12], rx_key[32], rx_iv[12];
  size_t key_len = 0;
  uint64_t tx_seq = 0, rx_seq = 0;
};

class Session {
 public:
  Session() = default;
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Starts a handshake. A client queues its ClientHello on the sink now. 0 or -1 (*err).
  int start(std::shared_ptr<Context> ctx, Sink* sink, std::string* err);

  // Ciphertext in. The bytes are borrowed until read() returns kTlsNeedInput, or until
  // keep_input() copies what is left (call it before the buffer is reused).
  void feed(const uint8_t* data, size_t len);
  size_t input_left() const { return in_len_ + (in_buf_.size() - in_buf_off_); }
  // Whether read() has something to work on: ciphertext not yet consumed, or a record
  // decrypted but not read out whole (a record is up to 16 KiB, a read may be smaller).
  bool readable() const;
  void keep_input();
  // Drops ciphertext that can never complete a record (the peer closed the transport).
  void discard_input();

  // Plaintext out: > 0 bytes, kTlsNeedInput, or a negative kTls* code. Drives the handshake;
  // check handshake_just_done() after each call.
  int read(uint8_t* out, size_t cap);
  bool handshake_just_done() {
    bool d = just_done_;
    just_done_ = false;
    return d;
  }

  // Plaintext in: returns the bytes taken (all of them while open), or a negative kTls* code.
  // Before the handshake is done the bytes wait (up to `early_max`) and go out after it.
  int64_t write(const uint8_t* data, size_t len, size_t early_max);
  // Sends close_notify (RFC 8446 section 6.1), after the handshake when one is under way (the
  // plaintext held for it goes out first). Idempotent.
  void close_notify();
  // Plaintext written before the handshake finished, held until it does.
  size_t held() const { return early_.size(); }
  // Retries ciphertext the sink did not take. True when nothing is left.
  bool flush_out();
  size_t pending_out() const { return pending_.size() - pending_off_; }
  // Ciphertext bytes a write of `len` plaintext bytes adds (record headers, tags).
  static size_t overhead(size_t len) { return (len / 16384 + 1) * 29; }

  Phase phase() const { return phase_; }
  // Marks the session failed for a reason found outside it (the transport closed mid-handshake).
  void abort(const char* why) {
    if (phase_ == Phase::Failed) return;
    reason_ = why;
    phase_ = Phase::Failed;
  }
  bool is_server() const { return server_; }
  // After a failure: the alert sent or received (-1: none) and a readable reason.
  int alert() const { return alert_; }
  bool alert_received() const { return alert_received_; }
  const std::string& reason() const { return reason_; }

  // Negotiated parameters (empty before the handshake).
  const char* version() const;
  const char* cipher() const;
  std::string alpn() const;
  std::string servername() const;
  bool resumed() const;
  std::string peer_subject() const;  // the peer certificate's subject (one line), or ""
  bool peer_verified() const;        // a peer certificate was presented and verified

  // kTLS: the secrets and sequence numbers, when this session can be handed to the kernel:
  // TLS 1.2 with an AES-GCM suite (no post-handshake messages exist there). TLS 1.3 is declined
  // (*why): the kernel would have to take KeyUpdate and NewSessionTicket records we must answer.
  bool ktls_keys(KtlsKeys* out, const char** why) const;
  // The protocol and suite half of that test, answerable right after the handshake.
  bool ktls_eligible(const char** why) const;
  // After the kernel took the keys: the session no longer encrypts (nothing else is valid).
  void mark_offloaded() { offloaded_ = true; }
  bool offloaded() const { return offloaded_; }

  // BIO and callback plumbing (internal).
  void note_alert(int desc, bool received);
  int bio_read(char* out, int len);
  int bio_write(const char* data, int len);

 private:
  int begin(std::shared_ptr<Context> ctx, Sink* sink, std::string* err);
  int fail(int code, int ssl_err);
  void on_handshake_done();
  std::shared_ptr<Context> ctx_;
  ssl_st* ssl_ = nullptr;
  Sink* sink_ = nullptr;
  Phase phase_ = Phase::Idle;
  bool server_ = false, just_done_ = false, offloaded_ = false, alert_received_ = false;
  bool shutdown_sent_ = false, notify_owed_ = false;
  int alert_ = -1;
  std::string reason_;
  // The peer's first bytes (kept during the handshake): a peer that does not speak TLS (an HTTP
  // request, an SSH banner) is reported by what it sent.
  uint8_t first_[24] = {};
  uint8_t first_len_ = 0;
  const uint8_t* in_ = nullptr;
  size_t in_len_ = 0;
  std::vector<uint8_t> in_buf_;
  size_t in_buf_off_ = 0;
  std::vector<uint8_t> pending_;  // ciphertext the sink did not take
  size_t pending_off_ = 0;
  std::vector<uint8_t> early_;    // plaintext written before the handshake finished
};

// The library this machine runs on, e.g. "BoringSSL".
const char* library_version();

// Facts about any SSL (a TLS session's, or the one quiche drives for a QUIC connection).
const char* ssl_version(const ssl_st* ssl);  // "TLSv1.3", ...
const char* ssl_cipher(const ssl_st* ssl);  // the standard name, or ""
std::string ssl_alpn(const ssl_st* ssl);
std::string ssl_servername(const ssl_st* ssl);
bool ssl_resumed(const ssl_st* ssl);
std::string ssl_peer_subject(const ssl_st* ssl);  // the peer certificate's subject (one line), or ""
bool ssl_peer_verified(const ssl_st* ssl);  // a peer certificate was presented and verified

}  // namespace zio::tls

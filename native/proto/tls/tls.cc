// native/proto/tls/tls.cc — see tls.h.
#include "proto/tls/tls.h"

#include <arpa/inet.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <algorithm>
#include <cstring>
#include <ctime>

namespace zio::tls {
namespace {

// The modern TLS 1.2 suites: ECDHE + AEAD only (Mozilla "intermediate" minus DHE). TLS 1.3's
// suites are all AEAD and not configurable in BoringSSL.
constexpr const char* kDefaultCiphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

std::string err_string(const char* what) {
  std::string s = what;
  uint32_t e = ERR_get_error();
  if (e) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    s += ": ";
    s += buf;
  }
  ERR_clear_error();
  return s;
}

// The process-wide BIO method: immutable after the first use (not per-shard state).
const BIO_METHOD* bio_method() {
  static const BIO_METHOD* m = [] {
    BIO_METHOD* b = BIO_meth_new(BIO_TYPE_SOURCE_SINK | 0x80, "zero-io");
    BIO_meth_set_read(b, [](BIO* bio, char* out, int len) -> int {
      BIO_clear_retry_flags(bio);
      int n = static_cast<Session*>(BIO_get_data(bio))->bio_read(out, len);
      if (n == 0) {
        BIO_set_retry_read(bio);
        return -1;
      }
      return n;
    });
    BIO_meth_set_write(b, [](BIO* bio, const char* data, int len) -> int {
      BIO_clear_retry_flags(bio);
      return static_cast<Session*>(BIO_get_data(bio))->bio_write(data, len);
    });
    BIO_meth_set_ctrl(b, [](BIO*, int cmd, long, void*) -> long {
      return cmd == BIO_CTRL_FLUSH ? 1 : 0;
    });
    BIO_meth_set_create(b, [](BIO* bio) -> int {
      BIO_set_init(bio, 1);
      return 1;
    });
    return b;
  }();
  return m;
}

bool load_chain(SSL_CTX* ctx, const CertKey& ck, std::string* err) {
  BIO* b = BIO_new_mem_buf(ck.cert_pem.data(), static_cast<long>(ck.cert_pem.size()));
  X509* leaf = PEM_read_bio_X509(b, nullptr, nullptr, nullptr);
  if (!leaf) {
    BIO_free(b);
    *err = err_string("certificate: no PEM certificate could be read");
    return false;
  }
  bool ok = SSL_CTX_use_certificate(ctx, leaf) == 1;
  X509_free(leaf);
  while (ok) {
    X509* x = PEM_read_bio_X509(b, nullptr, nullptr, nullptr);
    if (!x) break;
    ok = SSL_CTX_add1_chain_cert(ctx, x) == 1;
    X509_free(x);
  }
  ERR_clear_error();  // the end of the PEM input
  BIO_free(b);
  if (!ok) {
    *err = err_string("certificate: not usable");
    return false;
  }
  b = BIO_new_mem_buf(ck.key_pem.data(), static_cast<long>(ck.key_pem.size()));
  EVP_PKEY* key = PEM_read_bio_PrivateKey(b, nullptr, nullptr, nullptr);
  BIO_free(b);
  if (!key) {
    *err = err_string("private key: no PEM private key could be read (encrypted keys are not supported)");
    return false;
  }
  ok = SSL_CTX_use_PrivateKey(ctx, key) == 1 && SSL_CTX_check_private_key(ctx) == 1;
  EVP_PKEY_free(key);
  if (!ok) {
    *err = err_string("private key: does not match the certificate");
    return false;
  }
  return true;
}

// Trust anchors: the PEM given, else the system store (SSL_CERT_FILE, then the distributions'
// bundle paths).
bool load_trust(SSL_CTX* ctx, const std::string& pem, std::string* err) {
  if (!pem.empty()) {
    X509_STORE* st = SSL_CTX_get_cert_store(ctx);
    BIO* b = BIO_new_mem_buf(pem.data(), static_cast<long>(pem.size()));
    int n = 0;
    while (X509* x = PEM_read_bio_X509(b, nullptr, nullptr, nullptr)) {
      X509_STORE_add_cert(st, x);
      X509_free(x);
      ++n;
    }
    ERR_clear_error();
    BIO_free(b);
    if (n == 0) {
      *err = "ca: no PEM certificate could be read";
      return false;
    }
    return true;
  }
  const char* env = getenv("SSL_CERT_FILE");
  const char* paths[] = {env, "/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt",
                         "/etc/ssl/cert.pem"};
  for (const char* p : paths) {
    if (p && SSL_CTX_load_verify_locations(ctx, p, nullptr) == 1) return true;
    ERR_clear_error();
  }
  *err = "ca: no system certificate store found (set ca, or SSL_CERT_FILE)";
  return false;
}

bool encode_alpn(const std::vector<std::string>& list, std::vector<uint8_t>* out, std::string* err) {
  out->clear();
  for (const auto& p : list) {
    if (p.empty() || p.size() > 255) {
      *err = "alpn: each protocol name is 1 to 255 bytes";
      return false;
    }
    out->push_back(static_cast<uint8_t>(p.size()));
    out->insert(out->end(), p.begin(), p.end());
  }
  return true;
}

bool common(SSL_CTX* ctx, uint16_t minv, uint16_t maxv, const std::string& ciphers, std::string* err) {
  if (minv < kTls12 || maxv > kTls13 || minv > maxv) {
    *err = "versions: TLS 1.2 and TLS 1.3 only (minVersion <= maxVersion)";
    return false;
  }
  SSL_CTX_set_min_proto_version(ctx, minv);
  SSL_CTX_set_max_proto_version(ctx, maxv);
  if (SSL_CTX_set_strict_cipher_list(ctx, ciphers.empty() ? kDefaultCiphers : ciphers.c_str()) != 1) {
    *err = err_string("ciphers: not a usable cipher list");
    return false;
  }
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  return true;
}

int sink_index() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

Context* ctx_owner(const SSL* ssl) {
  return static_cast<Context*>(SSL_CTX_get_app_data(SSL_get_SSL_CTX(const_cast<SSL*>(ssl))));
}

void info_cb(const SSL* ssl, int where, int ret) {
  if (!(where & SSL_CB_ALERT)) return;
  auto* s = static_cast<Session*>(SSL_get_app_data(ssl));
  if (s) s->note_alert(ret & 0xff, (where & SSL_CB_READ) != 0);
}

}  // namespace

// ------------------------------------------------------------------ contexts

Context::~Context() {
  if (ctx_) SSL_CTX_free(ctx_);
  for (auto& [n, c] : sni_) SSL_CTX_free(c);
  if (session_) SSL_SESSION_free(session_);
}

static SSL_CTX* new_ctx(Context* owner) {
  SSL_CTX* c = SSL_CTX_new(TLS_method());
  SSL_CTX_set_app_data(c, owner);
  SSL_CTX_set_info_callback(c, info_cb);
  return c;
}

bool Context::build_server(std::string* err) {
  if (srv_.certs.empty()) {
    *err = "certificate: a server needs cert and key";
    return false;
  }
  ctx_ = new_ctx(this);
  if (!common(ctx_, srv_.min_version, srv_.max_version, srv_.ciphers, err)) return false;
  if (!load_chain(ctx_, srv_.certs[0], err)) return false;
  for (size_t i = 1; i < srv_.certs.size(); ++i) {
    SSL_CTX* c = new_ctx(this);
    std::string e;
    // After an SNI switch BoringSSL takes the cipher list and the client-certificate trust
    // store from the new context: each one gets the same policy as the default one.
    if (!common(c, srv_.min_version, srv_.max_version, srv_.ciphers, &e) ||
        (srv_.client_auth && !load_trust(c, srv_.ca_pem, &e)) || !load_chain(c, srv_.certs[i], &e)) {
      SSL_CTX_free(c);
      *err = "sni[" + std::to_string(i - 1) + "] " + e;
      return false;
    }
    for (const auto& n : srv_.certs[i].names) {
      std::string lower = n;
      std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
      SSL_CTX_up_ref(c);
      sni_.push_back({lower, c});
    }
    SSL_CTX_free(c);
  }
  if (!sni_.empty()) {
    SSL_CTX_set_tlsext_servername_callback(ctx_, [](SSL* ssl, int*, void*) -> int {
      const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
      if (!name) return SSL_TLSEXT_ERR_OK;
      SSL_CTX* c = ctx_owner(ssl)->for_name(name);
      if (c) SSL_set_SSL_CTX(ssl, c);
      return SSL_TLSEXT_ERR_OK;
    });
  }
  if (!encode_alpn(srv_.alpn, &alpn_wire_, err)) return false;
  // Every context of the bundle answers ALPN: after an SNI switch BoringSSL asks the new one.
  std::vector<SSL_CTX*> all{ctx_};
  for (auto& [n, sc] : sni_) all.push_back(sc);
  for (SSL_CTX* target : all) {
    if (alpn_wire_.empty()) break;
    SSL_CTX_set_alpn_select_cb(
        target,
        [](SSL* ssl, const uint8_t** out, uint8_t* out_len, const uint8_t* in, unsigned in_len,
           void* arg) -> int {
          auto* self = static_cast<Context*>(arg);
          uint8_t* o = nullptr;
          // Server preference (RFC 7301 section 3.2): no overlap is a no_application_protocol alert.
          if (SSL_select_next_proto(&o, out_len, self->alpn_wire_.data(),
                                    static_cast<unsigned>(self->alpn_wire_.size()), in,
                                    in_len) != OPENSSL_NPN_NEGOTIATED)
            return SSL_TLSEXT_ERR_ALERT_FATAL;
          *out = o;
          return SSL_TLSEXT_ERR_OK;
        },
        this);
  }
  if (srv_.client_auth) {
    if (!load_trust(ctx_, srv_.ca_pem, err)) return false;
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER | (srv_.client_auth == 2 ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0),
                       nullptr);
  }
  if (!srv_.tickets) {
    SSL_CTX_set_options(ctx_, SSL_OP_NO_TICKET);
  } else {
    if (!tickets_) tickets_ = std::make_shared<TicketKeys>();
    // Our own keys (BoringSSL's rotate per context, and a reload makes a new context).
    SSL_CTX_set_tlsext_ticket_key_cb(
        ctx_, [](SSL* ssl, uint8_t* name, uint8_t* iv, EVP_CIPHER_CTX* cctx, HMAC_CTX* hctx, int enc) -> int {
          TicketKeys& keys = *ctx_owner(ssl)->tickets_;
          TicketKeys::Key k;
          bool renew = false;
          if (enc) {
            k = keys.current(static_cast<int64_t>(time(nullptr)));
            memcpy(name, k.name, 16);
            if (RAND_bytes(iv, EVP_MAX_IV_LENGTH) != 1) return -1;
          } else if (!keys.find(name, &k, &renew)) {
            return 0;  // an unknown or expired key: a full handshake
          }
          if (!HMAC_Init_ex(hctx, k.hmac, sizeof k.hmac, EVP_sha256(), nullptr) ||
              !(enc ? EVP_EncryptInit_ex(cctx, EVP_aes_128_cbc(), nullptr, k.aes, iv)
                    : EVP_DecryptInit_ex(cctx, EVP_aes_128_cbc(), nullptr, k.aes, iv)))
            return -1;
          return renew ? 2 : 1;  // 2: valid, but issue a ticket under the current key
        });
  }
  SSL_CTX_set_session_cache_mode(ctx_, SSL_SESS_CACHE_OFF);  // tickets carry the state
  if (srv_.early_data) enable_early_data();
  return true;
}

void Context::enable_early_data() {
  srv_.early_data = true;
  SSL_CTX_set_early_data_enabled(ctx_, 1);
  for (auto& [n, c] : sni_) SSL_CTX_set_early_data_enabled(c, 1);
}

bool Context::build_client(std::string* err) {
  ctx_ = new_ctx(this);
  if (!common(ctx_, client_.min_version, client_.max_version, client_.ciphers, err)) return false;
  if (client_.verify) {
    if (!load_trust(ctx_, client_.ca_pem, err)) return false;
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
  }
  if (!client_.cert_pem.empty() || !client_.key_pem.empty()) {
    if (!load_chain(ctx_, CertKey{client_.cert_pem, client_.key_pem, {}}, err)) return false;
  }
  if (!encode_alpn(client_.alpn, &alpn_wire_, err)) return false;
  // Sessions are kept for resumption (resume) and handed to a connection's own sink (QUIC's
  // session tickets) either way.
  SSL_CTX_set_session_cache_mode(ctx_, SSL_SESS_CACHE_CLIENT);
  SSL_CTX_sess_set_new_cb(ctx_, [](SSL* ssl, SSL_SESSION* s) -> int {
    if (auto* sink = static_cast<SessionSink*>(SSL_get_ex_data(ssl, sink_index())); sink && sink->fn)
      sink->fn(sink->arg, ssl, s);
    Context* c = ctx_owner(ssl);
    if (!c->client_.resume) return 0;  // BoringSSL drops its reference
    c->store_session(s);
    return 1;  // we keep the reference
  });
  return true;
}

std::shared_ptr<Context> Context::server(const ServerOptions& o, std::string* err) {
  std::shared_ptr<Context> c(new Context());
  c->server_ = true;
  c->srv_ = o;
  if (!c->build_server(err)) return nullptr;
  return c;
}

std::shared_ptr<Context> Context::client(const ClientOptions& o, std::string* err) {
  std::shared_ptr<Context> c(new Context());
  c->client_ = o;
  if (!c->build_client(err)) return nullptr;
  return c;
}

std::shared_ptr<Context> Context::with_certs(const std::vector<CertKey>& certs, std::string* err) const {
  std::shared_ptr<Context> c(new Context());
  c->server_ = true;
  c->srv_ = srv_;
  c->srv_.certs = certs;
  c->tickets_ = tickets_;  // tickets issued before the reload still resume after it
  if (!c->build_server(err)) return nullptr;
  return c;
}

TicketKeys::Key TicketKeys::fresh(int64_t now_s) {
  Key k;
  RAND_bytes(k.name, sizeof k.name);
  RAND_bytes(k.aes, sizeof k.aes);
  RAND_bytes(k.hmac, sizeof k.hmac);
  k.created = now_s;
  return k;
}

TicketKeys::Key TicketKeys::current(int64_t now_s) {
  std::lock_guard<std::mutex> g(mu_);
  if (!have_cur_ || now_s - cur_.created >= kRotateSeconds || now_s < cur_.created) {
    if (have_cur_) {
      prev_ = cur_;
      have_prev_ = true;
    }
    cur_ = fresh(now_s);
    have_cur_ = true;
  }
  return cur_;
}

bool TicketKeys::find(const uint8_t name[16], Key* out, bool* renew) const {
  std::lock_guard<std::mutex> g(mu_);
  if (have_cur_ && memcmp(name, cur_.name, 16) == 0) {
    *out = cur_;
    *renew = false;
    return true;
  }
  if (have_prev_ && memcmp(name, prev_.name, 16) == 0) {
    *out = prev_;
    *renew = true;
    return true;
  }
  return false;
}

SSL_CTX* Context::for_name(const char* name) const {
  std::string n = name;
  std::transform(n.begin(), n.end(), n.begin(), ::tolower);
  for (const auto& [pat, c] : sni_)
    if (pat == n) return c;
  // One-label wildcards (RFC 6125 section 6.4.3): "*.example.com" matches "a.example.com".
  size_t dot = n.find('.');
  if (dot != std::string::npos) {
    std::string wild = "*" + n.substr(dot);
    for (const auto& [pat, c] : sni_)
      if (pat == wild) return c;
  }
  return nullptr;
}

SSL_SESSION* Context::take_session() const {
  std::lock_guard<std::mutex> g(session_mu_);
  if (!session_) return nullptr;
  SSL_SESSION_up_ref(session_);
  return session_;
}

void Context::store_session(SSL_SESSION* s) const {
  std::lock_guard<std::mutex> g(session_mu_);
  if (session_) SSL_SESSION_free(session_);
  session_ = s;
}

int CertSlot::reload(const std::vector<CertKey>& certs, std::string* err) {
  std::shared_ptr<Context> base = get();
  auto next = base->with_certs(certs, err);
  if (!next) return -1;
  std::lock_guard<std::mutex> g(mu_);
  cur_ = std::move(next);
  ++gen_;
  return 0;
}

// ------------------------------------------------------------------ sessions

Session::~Session() {
  if (ssl_) SSL_free(ssl_);
}

int Session::start(std::shared_ptr<Context> ctx, Sink* sink, std::string* err) {
  int r = begin(std::move(ctx), sink, err);
  if (r < 0 && phase_ != Phase::Failed) {  // refused before a handshake: say why in tlsInfo
    reason_ = *err;
    phase_ = Phase::Failed;
  }
  return r;
}

int Session::begin(std::shared_ptr<Context> ctx, Sink* sink, std::string* err) {
  ctx_ = std::move(ctx);
  sink_ = sink;
  server_ = ctx_->is_server();
  ssl_ = SSL_new(ctx_->ctx());
  if (!ssl_) {
    *err = err_string("SSL_new");
    return -1;
  }
  SSL_set_app_data(ssl_, this);
  BIO* bio = BIO_new(bio_method());
  BIO_set_data(bio, this);
  SSL_set_bio(ssl_, bio, bio);
  phase_ = Phase::Handshake;
  if (server_) {
    SSL_set_accept_state(ssl_);
    return 0;
  }
  SSL_set_connect_state(ssl_);
  if (client_ssl_setup(ssl_, *ctx_, err) < 0) return -1;
  int r = SSL_do_handshake(ssl_);  // writes the ClientHello to the sink
  if (r != 1 && SSL_get_error(ssl_, r) != SSL_ERROR_WANT_READ) {
    fail(kTlsHandshakeFailed, SSL_get_error(ssl_, r));
    *err = reason_;
    return -1;
  }
  return 0;
}

// A client SSL's SNI, the name its peer's certificate must carry, the session to resume and
// the ALPN offer, from its context (TLS over TCP and QUIC share it).
void set_session_sink(SSL* ssl, SessionSink* sink) { SSL_set_ex_data(ssl, sink_index(), sink); }

int client_ssl_setup(ssl_st* ssl, const Context& ctx, std::string* err) {
  const std::string& name = ctx.servername();
  if (!name.empty()) {
    in6_addr a6;
    bool ip = inet_pton(AF_INET, name.c_str(), &a6) == 1 || inet_pton(AF_INET6, name.c_str(), &a6) == 1;
    // RFC 6066 section 3: literal IP addresses are not sent as SNI; they are still verified.
    if (!ip && SSL_set_tlsext_host_name(ssl, name.c_str()) != 1) {
      *err = "servername: not a usable host name";
      return -1;
    }
    if (SSL_get_verify_mode(ssl) & SSL_VERIFY_PEER) {
      X509_VERIFY_PARAM* p = SSL_get0_param(ssl);
      // A name that cannot be set would leave the certificate's name unchecked: refuse instead.
      if ((ip ? X509_VERIFY_PARAM_set1_ip_asc(p, name.c_str())
              : X509_VERIFY_PARAM_set1_host(p, name.c_str(), name.size())) != 1) {
        ERR_clear_error();
        *err = "servername: not a usable host name or IP address for certificate verification";
        return -1;
      }
    }
  } else if (SSL_get_verify_mode(ssl) & SSL_VERIFY_PEER) {
    // Verification without a name would accept any valid certificate for any host.
    *err = "servername: needed to verify the server's certificate (set servername, or "
           "rejectUnauthorized: false)";
    return -1;
  }
  if (SSL_SESSION* s = ctx.take_session()) {
    SSL_set_session(ssl, s);
    SSL_SESSION_free(s);
  }
  if (!ctx.alpn_wire().empty())
    SSL_set_alpn_protos(ssl, ctx.alpn_wire().data(), ctx.alpn_wire().size());
  return 0;
}

void Session::note_alert(int desc, bool received) {
  if (alert_ >= 0 && !received) return;  // keep the first one we sent; a received one wins
  if (desc == SSL_AD_CLOSE_NOTIFY) return;
  alert_ = desc;
  alert_received_ = received;
}

// Drops the consumed front of the kept input (amortised: only when it is the larger part).
static void compact(std::vector<uint8_t>* buf, size_t* off) {
  if (*off && *off >= buf->size() / 2) {
    buf->erase(buf->begin(), buf->begin() + static_cast<std::ptrdiff_t>(*off));
    *off = 0;
  }
}

void Session::feed(const uint8_t* data, size_t len) {
  if (first_len_ < sizeof first_ && phase_ == Phase::Handshake) {
    size_t n = std::min(len, sizeof first_ - first_len_);
    memcpy(first_ + first_len_, data, n);
    first_len_ = static_cast<uint8_t>(first_len_ + n);
  }
  if (in_buf_off_ < in_buf_.size()) {  // older bytes first
    compact(&in_buf_, &in_buf_off_);
    in_buf_.insert(in_buf_.end(), data, data + len);
    return;
  }
  in_buf_.clear();
  in_buf_off_ = 0;
  in_ = data;
  in_len_ = len;
}

void Session::keep_input() {
  if (in_len_ == 0) return;
  compact(&in_buf_, &in_buf_off_);
  in_buf_.insert(in_buf_.end(), in_, in_ + in_len_);
  in_ = nullptr;
  in_len_ = 0;
}

void Session::discard_input() {
  in_buf_.clear();
  in_buf_off_ = 0;
  in_ = nullptr;
  in_len_ = 0;
}

int Session::bio_read(char* out, int len) {
  size_t want = static_cast<size_t>(len);
  if (in_buf_off_ < in_buf_.size()) {
    size_t n = std::min(want, in_buf_.size() - in_buf_off_);
    memcpy(out, in_buf_.data() + in_buf_off_, n);
    in_buf_off_ += n;
    if (in_buf_off_ == in_buf_.size()) {
      in_buf_.clear();
      in_buf_off_ = 0;
    }
    return static_cast<int>(n);
  }
  size_t n = std::min(want, in_len_);
  if (n) {
    memcpy(out, in_, n);
    in_ += n;
    in_len_ -= n;
  }
  return static_cast<int>(n);
}

int Session::bio_write(const char* data, int len) {
  const auto* p = reinterpret_cast<const uint8_t*>(data);
  size_t n = static_cast<size_t>(len);
  size_t took = 0;
  if (pending_out() == 0) took = sink_->put(p, n);  // order: never overtake queued bytes
  if (took < n) pending_.insert(pending_.end(), p + took, p + n);
  return len;
}

bool Session::flush_out() {
  while (pending_out()) {
    size_t took = sink_->put(pending_.data() + pending_off_, pending_out());
    if (took == 0) return false;
    pending_off_ += took;
  }
  pending_.clear();
  pending_off_ = 0;
  return true;
}

// Readable text for the library reasons a user meets most (the library's code follows in
// brackets); others are given as the library names them.
static std::string explain(const char* reason) {
  static const struct { const char* code; const char* text; } table[] = {
      {"NO_APPLICATION_PROTOCOL", "no common ALPN protocol"},
      {"UNSUPPORTED_PROTOCOL", "protocol version not accepted (too old or too new for the configured range)"},
      {"NO_SHARED_CIPHER", "no cipher suite in common"},
      {"NO_SHARED_GROUP", "no key-exchange group in common"},
      {"PEER_DID_NOT_RETURN_A_CERTIFICATE", "the peer sent no certificate (client authentication is required)"},
      {"CERTIFICATE_VERIFY_FAILED", "certificate verification failed"},
      {"WRONG_VERSION_NUMBER", "not a TLS record (wrong version number)"},
      {"HTTP_REQUEST", "the peer sent a plaintext HTTP request"},
      {"HTTPS_PROXY_REQUEST", "the peer sent a plaintext HTTP CONNECT (proxy) request"},
      {"DECRYPTION_FAILED_OR_BAD_RECORD_MAC", "a record failed authentication (bad record MAC)"},
      {"NO_RENEGOTIATION", "the peer asked for renegotiation, which is refused"},
  };
  std::string code = reason;
  std::transform(code.begin(), code.end(), code.begin(), ::toupper);
  for (const auto& t : table)
    if (code == t.code) return std::string(t.text) + " (" + code + ")";
  return code;
}

int Session::fail(int code, int ssl_err) {
  if (phase_ == Phase::Failed) return code;
  std::string why;
  uint32_t e = ERR_peek_error();
  if (e) {
    const char* r = ERR_reason_error_string(e);
    why = explain(r ? r : "error");
  }
  ERR_clear_error();
  std::string s;
  if (alert_ >= 0) {
    s = std::string(alert_received_ ? "alert received: " : "alert sent: ") +
        SSL_alert_desc_string_long(alert_) + " (" + std::to_string(alert_) + ")";
  }
  // A handshake record starts with 22 (RFC 8446 section 5.1): anything else on the first byte
  // is a peer that does not speak TLS, reported by what it sent.
  if (code == kTlsHandshakeFailed && first_len_ > 0 && first_[0] != 22 && alert_received_ == false) {
    std::string text;
    for (uint8_t i = 0; i < first_len_; ++i) {
      uint8_t ch = first_[i];
      if (ch == '\r' || ch == '\n') { if (!text.empty() && text.back() != ' ') text += ' '; continue; }
      if (ch >= 0x20 && ch < 0x7f) { text += static_cast<char>(ch); continue; }
      char hex[6];
      snprintf(hex, sizeof hex, "\\x%02x", ch);
      text += hex;
    }
    while (!text.empty() && text.back() == ' ') text.pop_back();
    reason_ = "the peer did not speak TLS (first bytes: " + text + ")";
    if (!why.empty()) reason_ += "; " + why;
    phase_ = Phase::Failed;
    return code;
  }
  // Verification details only where a verification ran (the result is X509_V_ERR_INVALID_CALL
  // until one does, e.g. on a server that does not ask for client certificates).
  long vr = ssl_ ? SSL_get_verify_result(ssl_) : X509_V_ERR_INVALID_CALL;
  bool verified = vr != X509_V_ERR_INVALID_CALL && vr != X509_V_OK;
  if (!why.empty()) {
    if (!s.empty()) s += "; ";
    s += why;
  }
  if (verified && code == kTlsHandshakeFailed) {
    if (!s.empty()) s += "; ";
    s += std::string("certificate verification failed: ") + X509_verify_cert_error_string(vr);
  }
  if (s.empty())
    s = ssl_err == SSL_ERROR_SYSCALL ? "the transport failed" : "TLS error " + std::to_string(ssl_err);
  reason_ = s;
  phase_ = Phase::Failed;
  return code;
}

void Session::on_handshake_done() {
  phase_ = Phase::Open;
  just_done_ = true;
  // A TLS 1.3 server's NewSessionTickets wait for its first write (BoringSSL); a zero-byte
  // write sends them now, so a client that only sends can resume too.
  if (server_ && SSL_version(ssl_) == kTls13) {
    SSL_write(ssl_, "", 0);
    ERR_clear_error();
  }
  if (!early_.empty()) {
    std::vector<uint8_t> e;
    e.swap(early_);
    write(e.data(), e.size(), 0);
  }
  if (notify_owed_) close_notify();  // a graceful close asked for during the handshake
}

int Session::read(uint8_t* out, size_t cap) {
  if (phase_ == Phase::Failed) return kTlsProtocolError;
  if (phase_ == Phase::Closed) return kTlsPeerClosed;
  if (phase_ == Phase::Handshake) {
    // A client's first record is a handshake record (22). Anything else is not TLS: fail now
    // rather than wait for the "record" its bytes seem to announce (an SSH banner reads as a
    // record of 11,570 bytes).
    if (server_ && first_len_ > 0 && first_[0] != 22) return fail(kTlsHandshakeFailed, SSL_ERROR_SSL);
    int r = SSL_do_handshake(ssl_);
    if (r != 1) {
      int e = SSL_get_error(ssl_, r);
      if (e == SSL_ERROR_WANT_READ) return kTlsNeedInput;
      return fail(kTlsHandshakeFailed, e);
    }
    on_handshake_done();
  }
  int r = SSL_read(ssl_, out, static_cast<int>(std::min<size_t>(cap, INT32_MAX)));
  if (r > 0) return r;
  int e = SSL_get_error(ssl_, r);
  if (e == SSL_ERROR_WANT_READ) return kTlsNeedInput;
  if (e == SSL_ERROR_ZERO_RETURN) {
    phase_ = Phase::Closed;
    return kTlsPeerClosed;
  }
  return fail(kTlsProtocolError, e);
}

int64_t Session::write(const uint8_t* data, size_t len, size_t early_max) {
  if (phase_ == Phase::Handshake || phase_ == Phase::Idle) {
    size_t n = std::min(len, early_max > early_.size() ? early_max - early_.size() : 0);
    early_.insert(early_.end(), data, data + n);
    return static_cast<int64_t>(n);
  }
  // After the peer's close_notify (Closed) our side may still send until we close it: TLS 1.3
  // half-close (RFC 8446 section 6.1), and what TLS 1.2 peers (OpenSSL, node:tls) accept too.
  if ((phase_ != Phase::Open && phase_ != Phase::Closed) || shutdown_sent_) return kTlsProtocolError;
  if (len == 0) return 0;
  size_t done = 0;
  while (done < len) {
    int chunk = static_cast<int>(std::min<size_t>(len - done, 1 << 30));
    int r = SSL_write(ssl_, data + done, chunk);
    if (r <= 0) return fail(kTlsProtocolError, SSL_get_error(ssl_, r));
    done += static_cast<size_t>(r);
  }
  return static_cast<int64_t>(done);
}

void Session::close_notify() {
  if (shutdown_sent_ || !ssl_ || phase_ == Phase::Failed || offloaded_) return;
  if (phase_ == Phase::Handshake) {
    notify_owed_ = true;
    return;
  }
  shutdown_sent_ = true;
  if (phase_ == Phase::Open || phase_ == Phase::Closed) SSL_shutdown(ssl_);
  ERR_clear_error();
}

const char* ssl_version(const SSL* ssl) { return ssl ? SSL_get_version(ssl) : ""; }

const char* ssl_cipher(const SSL* ssl) {
  const SSL_CIPHER* c = ssl ? SSL_get_current_cipher(ssl) : nullptr;
  return c ? SSL_CIPHER_standard_name(c) : "";
}

std::string ssl_alpn(const SSL* ssl) {
  const uint8_t* p = nullptr;
  unsigned n = 0;
  if (ssl) SSL_get0_alpn_selected(ssl, &p, &n);
  return std::string(reinterpret_cast<const char*>(p ? p : reinterpret_cast<const uint8_t*>("")), n);
}

std::string ssl_servername(const SSL* ssl) {
  const char* n = ssl ? SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name) : nullptr;
  return n ? n : "";
}

bool ssl_resumed(const SSL* ssl) { return ssl && SSL_session_reused(ssl); }

std::string ssl_peer_subject(const SSL* ssl) {
  X509* x = ssl ? SSL_get_peer_certificate(ssl) : nullptr;
  if (!x) return "";
  char buf[512];
  X509_NAME_oneline(X509_get_subject_name(x), buf, sizeof buf);
  X509_free(x);
  return buf;
}

bool ssl_peer_verified(const SSL* ssl) {
  X509* x = ssl ? SSL_get_peer_certificate(ssl) : nullptr;
  if (!x) return false;
  X509_free(x);
  return (SSL_get_verify_mode(ssl) & SSL_VERIFY_PEER) && SSL_get_verify_result(ssl) == X509_V_OK;
}

const char* Session::version() const { return phase_ == Phase::Handshake ? "" : ssl_version(ssl_); }
const char* Session::cipher() const { return ssl_cipher(ssl_); }
std::string Session::alpn() const { return ssl_alpn(ssl_); }
std::string Session::servername() const { return ssl_servername(ssl_); }
bool Session::readable() const { return input_left() > 0 || (ssl_ && SSL_has_pending(ssl_)); }
bool Session::resumed() const { return ssl_resumed(ssl_); }
std::string Session::peer_subject() const { return ssl_peer_subject(ssl_); }
bool Session::peer_verified() const { return ssl_peer_verified(ssl_); }

bool Session::ktls_keys(KtlsKeys* out, const char** why) const {
  if (phase_ != Phase::Open) {
    *why = "handshake not complete";
    return false;
  }
  if (pending_out() || in_len_ || in_buf_off_ < in_buf_.size() || SSL_pending(ssl_)) {
    *why = "records already buffered in user space";
    return false;
  }
  if (!ktls_eligible(why)) return false;
  uint16_t v = SSL_version(ssl_);
  const SSL_CIPHER* c = SSL_get_current_cipher(ssl_);
  uint16_t id = static_cast<uint16_t>(SSL_CIPHER_get_protocol_id(c));
  size_t key_len = id == 0xc02b || id == 0xc02f ? 16 : 32;
  // TLS 1.2 key block (RFC 5246 section 6.3), AEAD suites have no MAC keys:
  // client_write_key, server_write_key, client_write_IV(4), server_write_IV(4).
  uint8_t kb[2 * 32 + 2 * 4];
  size_t kb_len = SSL_get_key_block_len(ssl_);
  if (kb_len != 2 * key_len + 8 || !SSL_generate_key_block(ssl_, kb, kb_len)) {
    *why = "key block not available";
    return false;
  }
  const uint8_t* ck = kb;
  const uint8_t* sk = kb + key_len;
  const uint8_t* civ = kb + 2 * key_len;
  const uint8_t* siv = civ + 4;
  out->version = v;
  out->cipher = id;
  out->key_len = key_len;
  memcpy(out->tx_key, server_ ? sk : ck, key_len);
  memcpy(out->rx_key, server_ ? ck : sk, key_len);
  memcpy(out->tx_iv, server_ ? siv : civ, 4);
  memcpy(out->rx_iv, server_ ? civ : siv, 4);
  out->tx_seq = SSL_get_write_sequence(ssl_);
  out->rx_seq = SSL_get_read_sequence(ssl_);
  return true;
}

bool Session::ktls_eligible(const char** why) const {
  if (!ssl_ || phase_ != Phase::Open) {
    *why = "handshake not complete";
    return false;
  }
  if (SSL_version(ssl_) != kTls12) {
    *why = "TLS 1.3: KeyUpdate and NewSessionTicket records must be answered in user space";
    return false;
  }
  const SSL_CIPHER* c = SSL_get_current_cipher(ssl_);
  uint16_t id = c ? static_cast<uint16_t>(SSL_CIPHER_get_protocol_id(c)) : 0;
  if (id != 0xc02b && id != 0xc02f && id != 0xc02c && id != 0xc030) {
    *why = "cipher suite not offloadable (AES-GCM only)";
    return false;
  }
  return true;
}

const char* library_version() { return OPENSSL_VERSION_TEXT; }

}  // namespace zio::tls

// native/binding/tls.cc — the TLS calls: contexts, certificate slots and reloads, STARTTLS, TLS state.
#include "binding/addon.h"

namespace zio::binding {

// tlsLibrary() -> the TLS stack linked into the addon (BoringSSL, from quiche's build).
Napi::Value ZeroIo::TlsLibrary(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), zio::tls::library_version());
}

// ---- TLS ----
std::string ZeroIo::Str(Napi::Object o, const char* k) {
  Napi::Value v = o.Get(k);
  return v.IsString() ? v.As<Napi::String>().Utf8Value() : std::string();
}

std::vector<std::string> ZeroIo::Strs(Napi::Object o, const char* k) {
  std::vector<std::string> out;
  Napi::Value v = o.Get(k);
  if (!v.IsArray()) return out;
  Napi::Array a = v.As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length(); ++i) out.push_back(a.Get(i).As<Napi::String>().Utf8Value());
  return out;
}

uint16_t ZeroIo::Version(Napi::Object o, const char* k, uint16_t def) {
  std::string v = Str(o, k);
  if (v == "TLSv1.2") return zio::tls::kTls12;
  return v == "TLSv1.3" ? uint16_t{zio::tls::kTls13} : def;
}

std::vector<zio::tls::CertKey> ZeroIo::Certs(Napi::Value v) {
  std::vector<zio::tls::CertKey> out;
  Napi::Array a = v.As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length(); ++i) {
    Napi::Object e = a.Get(i).As<Napi::Object>();
    out.push_back({Str(e, "cert"), Str(e, "key"), Strs(e, "names")});
  }
  return out;
}

// tlsServerContext({ certs: [{cert, key, names}], alpn, minVersion, maxVersion, ciphers,
//   clientAuth, ca, tickets }) -> slot id. Throws TlsInvalidCertificate / InvalidConfig.
Napi::Value ZeroIo::TlsServerContext(const Napi::CallbackInfo& info) {
  Napi::Object o = info[0].As<Napi::Object>();
  zio::tls::ServerOptions so;
  so.certs = Certs(o.Get("certs"));
  so.alpn = Strs(o, "alpn");
  so.min_version = Version(o, "minVersion", zio::tls::kTls12);
  so.max_version = Version(o, "maxVersion", zio::tls::kTls13);
  so.ciphers = Str(o, "ciphers");
  so.client_auth = o.Get("clientAuth").As<Napi::Number>().Int32Value();
  so.ca_pem = Str(o, "ca");
  so.tickets = o.Get("tickets").ToBoolean();
  std::string err;
  auto ctx = zio::tls::Context::server(so, &err);
  if (!ctx) throw TlsError(info.Env(), err);
  std::lock_guard<std::mutex> g(Tls().mu);
  uint64_t id = Tls().next++;
  Tls().slots[id] = std::make_shared<zio::tls::CertSlot>(std::move(ctx));
  return Napi::Number::New(info.Env(), static_cast<double>(id));
}

Napi::Error ZeroIo::TlsError(Napi::Env env, const std::string& err) {
  bool cert = err.rfind("certificate", 0) == 0 || err.rfind("private key", 0) == 0 ||
              err.rfind("sni[", 0) == 0 || err.rfind("ca:", 0) == 0;
  return IoError(env, cert ? "TlsInvalidCertificate" : "InvalidConfig", err);
}

// tlsClientContext({ servername, alpn, minVersion, maxVersion, ciphers, ca, verify, cert,
//   key, resume }) -> context id.
Napi::Value ZeroIo::TlsClientContext(const Napi::CallbackInfo& info) {
  Napi::Object o = info[0].As<Napi::Object>();
  zio::tls::ClientOptions co;
  co.servername = Str(o, "servername");
  co.alpn = Strs(o, "alpn");
  co.min_version = Version(o, "minVersion", zio::tls::kTls12);
  co.max_version = Version(o, "maxVersion", zio::tls::kTls13);
  co.ciphers = Str(o, "ciphers");
  co.ca_pem = Str(o, "ca");
  co.verify = o.Get("verify").ToBoolean();
  co.cert_pem = Str(o, "cert");
  co.key_pem = Str(o, "key");
  co.resume = o.Get("resume").ToBoolean();
  std::string err;
  auto ctx = zio::tls::Context::client(co, &err);
  if (!ctx) throw TlsError(info.Env(), err);
  std::lock_guard<std::mutex> g(Tls().mu);
  uint64_t id = Tls().next++;
  Tls().clients[id] = std::move(ctx);
  return Napi::Number::New(info.Env(), static_cast<double>(id));
}

std::shared_ptr<zio::tls::CertSlot> ZeroIo::FindSlot(double id) {
  std::lock_guard<std::mutex> g(Tls().mu);
  auto it = Tls().slots.find(static_cast<uint64_t>(id));
  return it == Tls().slots.end() ? nullptr : it->second;
}

// A context for a handshake: a client context, or a server slot's current one.
std::shared_ptr<zio::tls::Context> ZeroIo::FindCtx(double id) {
  std::lock_guard<std::mutex> g(Tls().mu);
  auto c = Tls().clients.find(static_cast<uint64_t>(id));
  if (c != Tls().clients.end()) return c->second;
  auto s = Tls().slots.find(static_cast<uint64_t>(id));
  return s == Tls().slots.end() ? nullptr : s->second->get();
}

// tlsReload(slotId, certs) -> generation. Any thread; throws and keeps the old certificate.
Napi::Value ZeroIo::TlsReload(const Napi::CallbackInfo& info) {
  auto slot = FindSlot(info[0].As<Napi::Number>().DoubleValue());
  if (!slot) throw IoError(info.Env(), "InvalidArgument", "the TLS endpoint's certificate slot was released");
  std::string err;
  if (slot->reload(Certs(info[1]), &err) < 0) throw TlsError(info.Env(), err);
  return Napi::Number::New(info.Env(), static_cast<double>(slot->generation()));
}

Napi::Value ZeroIo::TlsSlotGeneration(const Napi::CallbackInfo& info) {
  auto slot = FindSlot(info[0].As<Napi::Number>().DoubleValue());
  return Napi::Number::New(info.Env(), slot ? static_cast<double>(slot->generation()) : -1);
}

Napi::Value ZeroIo::TlsRelease(const Napi::CallbackInfo& info) {
  uint64_t id = static_cast<uint64_t>(info[0].As<Napi::Number>().DoubleValue());
  std::lock_guard<std::mutex> g(Tls().mu);
  Tls().slots.erase(id);
  Tls().clients.erase(id);
  return info.Env().Undefined();
}

// endpointSetTls(shard, ep, slotId, handshakeTimeoutMs) -> 0 or kErr*.
Napi::Value ZeroIo::EndpointSetTls(const Napi::CallbackInfo& info) {
  Shard* sh = Get(info);
  uint32_t idx, gen;
  auto slot = FindSlot(info[2].As<Napi::Number>().DoubleValue());
  if (!EpIdAt(info, 1, &idx, &gen) || !slot) return Napi::Number::New(info.Env(), zio::kErrStaleId);
  return Napi::Number::New(info.Env(), sh->endpoint_set_tls(idx, gen, std::move(slot),
                                                            info[3].As<Napi::Number>().Uint32Value()));
}

Napi::Value ZeroIo::StartTls(const Napi::CallbackInfo& info, TlsStart start) {
  ShardSlot* s = GetSlot(info);
  uint32_t idx, gen;
  auto ctx = FindCtx(info[2].As<Napi::Number>().DoubleValue());
  if (!IdAt(info, 1, &idx, &gen) || !ctx) return Napi::Number::New(info.Env(), zio::kErrStaleId);
  int r = (s->shard.get()->*start)(idx, gen, std::move(ctx), info[3].As<Napi::Number>().Uint32Value());
  Nudge(s);
  return Napi::Number::New(info.Env(), r);
}

// connTlsInfo(shard, conn) -> { ... } or null (not TLS / stale).
Napi::Value ZeroIo::ConnTlsInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Shard* sh = Get(info);
  uint32_t idx, gen;
  const bool id = IdAt(info, 1, &idx, &gen);
  const zio::ConnTls* t = id ? sh->conn_tls(idx, gen) : nullptr;
  static const char* phases[] = {"idle", "handshake", "open", "closed", "failed"};
  zio::Shard::QuicTlsView q;
  if (!t && id && sh->quic_tls(idx, gen, &q)) {  // QUIC: the SSL quiche drives
    const ssl_st* ssl = static_cast<const ssl_st*>(q.ssl);
    const bool hs = q.phase == static_cast<uint8_t>(zio::tls::Phase::Handshake);
    Napi::Object o = Napi::Object::New(env);
    o.Set("phase", phases[q.phase]);
    o.Set("server", q.server);
    o.Set("version", hs ? "" : zio::tls::ssl_version(ssl));
    o.Set("cipher", zio::tls::ssl_cipher(ssl));
    o.Set("alpn", zio::tls::ssl_alpn(ssl));
    o.Set("servername", zio::tls::ssl_servername(ssl));
    o.Set("resumed", zio::tls::ssl_resumed(ssl));
    o.Set("peerSubject", zio::tls::ssl_peer_subject(ssl));
    o.Set("peerVerified", zio::tls::ssl_peer_verified(ssl));
    o.Set("ktls", false);
    o.Set("ktlsReason", "QUIC: quiche encrypts each packet (kTLS is for TCP)");
    o.Set("alert", q.alert);
    o.Set("alertReceived", q.alert_received);
    o.Set("reason", q.reason);
    return o;
  }
  if (!t) return env.Null();
  Napi::Object o = Napi::Object::New(env);
  o.Set("phase", phases[static_cast<int>(t->s.phase())]);
  o.Set("server", t->s.is_server());
  o.Set("version", t->s.version());
  o.Set("cipher", t->s.cipher());
  o.Set("alpn", t->s.alpn());
  o.Set("servername", t->s.servername());
  o.Set("resumed", t->s.resumed());
  o.Set("peerSubject", t->s.peer_subject());
  o.Set("peerVerified", t->s.peer_verified());
  o.Set("ktls", t->ktls == zio::Ktls::Active);
  o.Set("ktlsReason", t->ktls == zio::Ktls::Wanted ? "pending" : t->ktls_why);
  o.Set("alert", t->s.alert());
  o.Set("alertReceived", t->s.alert_received());
  o.Set("reason", t->s.reason());
  return o;
}

Napi::Value ZeroIo::KtlsAvailable(const Napi::CallbackInfo& info) {
  std::string why;
  bool ok = Shard::ktls_available(&why);
  Napi::Array a = Napi::Array::New(info.Env(), 2);
  a.Set(0u, ok);
  a.Set(1u, why);
  return a;
}

}  // namespace zio::binding

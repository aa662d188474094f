// native/binding/quic.cc — the QUIC calls: listen (a UDP endpoint made a QUIC listener, its TLS
// from a registered server context so CertReloadHandle swaps it), connect, stream writes /
// ends / resets / STOP_SENDING, stream ids, datagrams, the application close, ALPN, the close
// information behind Disconnected, and the listener's counters.
#include "binding/addon.h"

namespace zio::binding {

namespace {

// The settings object of quicListen / quicConnect (validated by the TypeScript layer).
zio::quic::Settings ReadSettings(Napi::Object o, bool server) {
  zio::quic::Settings s;
  s.server = server;
  Napi::Value a = o.Get("alpn");
  if (a.IsArray()) {
    Napi::Array arr = a.As<Napi::Array>();
    for (uint32_t i = 0; i < arr.Length(); ++i) s.alpn.push_back(arr.Get(i).ToString().Utf8Value());
  }
  s.idle_timeout_ms = static_cast<uint64_t>(OptNum(o, "idleTimeoutMs", 30000));
  s.max_data = static_cast<uint64_t>(OptNum(o, "initialMaxData", static_cast<double>(s.max_data)));
  double sd = OptNum(o, "initialMaxStreamData", static_cast<double>(s.max_stream_data_bidi_local));
  s.max_stream_data_bidi_local = s.max_stream_data_bidi_remote = s.max_stream_data_uni = static_cast<uint64_t>(sd);
  s.max_streams_bidi = static_cast<uint64_t>(OptNum(o, "maxStreamsBidi", 100));
  s.max_streams_uni = static_cast<uint64_t>(OptNum(o, "maxStreamsUni", 100));
  Napi::Value cc = o.Get("congestionControl");
  if (cc.IsString()) s.cc = cc.As<Napi::String>().Utf8Value();
  s.pmtud = OptFlag(o, "pmtud", false);
  Napi::Value pm = o.Get("pacing");
  s.pacing = !(pm.IsString() && pm.As<Napi::String>().Utf8Value() == "off");
  s.max_pacing_rate = static_cast<uint64_t>(OptNum(o, "maxPacingRate", 0));
  s.dgram = OptFlag(o, "datagrams", true);
  s.dgram_queue = static_cast<uint32_t>(OptNum(o, "datagramQueue", 1024));
  s.max_udp_payload = static_cast<uint32_t>(OptNum(o, "maxUdpPayload", 1350));
  s.early_data = OptFlag(o, "earlyData", false);
  s.verify_peer = OptFlag(o, "verifyPeer", true);
  s.disable_migration = OptFlag(o, "disableMigration", false);
  return s;
}

zio::QuicPacing ReadPacing(Napi::Object o) {
  Napi::Value pm = o.Get("pacing");
  std::string m = pm.IsString() ? pm.As<Napi::String>().Utf8Value() : "wheel";
  return m == "off" ? zio::QuicPacing::Off : m == "txtime" ? zio::QuicPacing::Txtime : zio::QuicPacing::Wheel;
}

}  // namespace

// A listener's QUIC state from a registered TLS slot and its settings (quicListen, quicServe).
std::shared_ptr<zio::QuicEndpoint> ZeroIo::QuicServerEndpoint(Napi::Env env, double slot_id, Napi::Object o, const char* what) {
  auto slot = FindSlot(slot_id);
  if (!slot) throw IoError(env, "InvalidArgument", std::string(what) + ": the TLS context is gone");
  auto q = std::make_shared<zio::QuicEndpoint>();
  q->settings = ReadSettings(o, true);
  q->pacing = ReadPacing(o);
  if (q->settings.early_data) slot->get()->enable_early_data();  // 0-RTT: its tickets allow early data
  q->certs = std::move(slot);
  q->retry = OptFlag(o, "retry", false);
  // Stateless resets: TypeScript passes the key (the caller's, or 32 random bytes).
  Napi::Value rk = o.Get("statelessResetKey");
  if (rk.IsTypedArray()) {
    auto k = rk.As<Napi::Uint8Array>();
    q->reset_key.assign(reinterpret_cast<const char*>(k.Data()), k.ByteLength());
    q->resets = q->reset_key.size() >= 16;
  }
  q->gso = OptFlag(o, "gso", true);
  q->max_handshakes = static_cast<uint32_t>(OptNum(o, "maxHandshakes", 1000));
  q->slot = static_cast<uint16_t>(static_cast<uint32_t>(OptNum(o, "cidSlot", 0)) & zio::quic::kSlotMask);
  std::string err;
  q->cfg_hold = zio::quic::shared_config(q->settings, &err);
  if (!q->cfg_hold) throw IoError(env, "InvalidArgument", std::string(what) + ": " + err);
  q->cfg = q->cfg_hold.get();
  return q;
}

// quicListen(shard, ip, port, tlsSlotId, settings, udpOptions) -> endpoint id
Napi::Value ZeroIo::QuicListen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ShardSlot* s = GetSlot(info);
  sockaddr_storage ss{};
  socklen_t len;
  ReadIpPort(info, 1, &ss, &len);
  auto q = QuicServerEndpoint(env, info[3].As<Napi::Number>().DoubleValue(), info[4].As<Napi::Object>(), "quicListen");
  zio::UdpOptions u = ReadUdpOptions(info[5]);
  u.gro = u.gro && s->shard->gro_available();
  const char* op = nullptr;
  int64_t r = s->shard->udp_bind(reinterpret_cast<sockaddr*>(&ss), len, u, &op);
  if (r < 0) return SyscallResult(env, r, op);
  uint32_t ep = static_cast<uint32_t>(r), gen = s->shard->endpoint_gen(ep);
  int lr = s->shard->quic_listen(ep, gen, std::move(q));
  if (lr < 0) {
    s->shard->endpoint_close(ep, gen);
    return Napi::Number::New(env, lr);
  }
  return Napi::Number::New(env, JoinEpId(ep, gen));
}

// quicServe(shard, ep, tlsSlotId, settings) -> 0 or a code: a bound UDP endpoint (an IoCluster
// member) becomes a QUIC listener
Napi::Value ZeroIo::QuicServe(const Napi::CallbackInfo& info) {
  return OnEp(info, [&](ShardSlot* s, uint32_t ep, uint32_t gen) {
    auto q = QuicServerEndpoint(info.Env(), info[2].As<Napi::Number>().DoubleValue(), info[3].As<Napi::Object>(), "quicServe");
    return Napi::Number::New(info.Env(), s->shard->quic_listen(ep, gen, std::move(q)));
  });
}

// A client's endpoint model: its settings, quiche configuration and TLS context.
std::shared_ptr<zio::QuicEndpoint> ZeroIo::QuicClientModel(Napi::Env env, double ctx_id, Napi::Object settings) {
  auto ctx = FindCtx(ctx_id);
  if (!ctx || ctx->is_server()) throw IoError(env, "InvalidArgument", "quicConnect: the TLS client context is gone");
  auto q = std::make_shared<zio::QuicEndpoint>();
  q->settings = ReadSettings(settings, false);
  q->pacing = ReadPacing(settings);
  q->connect_timeout_ms = static_cast<uint32_t>(OptNum(settings, "connectTimeoutMs", 10000));
  q->client = std::move(ctx);
  std::string err;
  // Clients with the same settings share one quiche configuration (making one loads the
  // system trust store: milliseconds per connect otherwise). At most 16 kept.
  std::string key = zio::quic::settings_key(q->settings);
  auto hit = quic_configs_.find(key);
  if (hit == quic_configs_.end()) {
    auto cfg = zio::quic::shared_config(q->settings, &err);
    if (!cfg) throw IoError(env, "InvalidArgument", "quicConnect: " + err);
    if (quic_configs_.size() >= 16) quic_configs_.erase(quic_configs_.begin());
    hit = quic_configs_.emplace(key, std::move(cfg)).first;
  }
  q->cfg_hold = hit->second;
  q->cfg = q->cfg_hold.get();
  return q;
}

// quicConnect(shard, ip, port, tlsClientId, settings) -> conn id, or a negative code
Napi::Value ZeroIo::QuicConnect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ShardSlot* s = GetSlot(info);
  sockaddr_storage ss{};
  socklen_t len;
  ReadIpPort(info, 1, &ss, &len);
  auto q = QuicClientModel(env, info[3].As<Napi::Number>().DoubleValue(), info[4].As<Napi::Object>());
  std::string err;
  int64_t r = s->shard->quic_connect(reinterpret_cast<sockaddr*>(&ss), len, std::move(q), &err);
  if (r == zio::kErrQuicTls) throw IoError(env, "InvalidConfig", "quicConnect: " + err);
  if (r < 0) return SyscallResult(env, r, "quicConnect");
  uint32_t idx = static_cast<uint32_t>(r);
  // 0-RTT: the ticket goes in before the first packet (the ClientHello is made with it).
  Napi::Value ticket = info[4].As<Napi::Object>().Get("sessionTicket");
  if (ticket.IsTypedArray()) {
    auto t = ticket.As<Napi::Uint8Array>();
    // A ticket quiche refuses (malformed): a full handshake; quicEarlyData says why.
    s->shard->quic_set_ticket(idx, s->shard->conn_gen(idx), t.Data(), t.ByteLength());
  }
  if (s->driver && !s->in_batch) s->shard->flush(false);  // the Initial now
  Nudge(s);
  return Napi::Number::New(env, JoinId(idx, s->shard->conn_gen(idx)));
}

// quicConnectRace(shard, conn, ips, port, delayMs, tlsClientId, settings) -> 0 or a code: a
// reserved connection (connReserve) races the addresses of a resolved host name
Napi::Value ZeroIo::QuicConnectRace(const Napi::CallbackInfo& info) {
  return OnId(info, [&](ShardSlot* s, uint32_t idx, uint32_t gen) {
    Napi::Env env = info.Env();
    Napi::Array ips = info[2].As<Napi::Array>();
    uint32_t port = info[3].As<Napi::Number>().Uint32Value();
    uint32_t delay = info[4].As<Napi::Number>().Uint32Value();
    auto q = QuicClientModel(env, info[5].As<Napi::Number>().DoubleValue(), info[6].As<Napi::Object>());
    std::vector<sockaddr_storage> addrs;
    for (uint32_t i = 0; i < ips.Length() && addrs.size() < zio::kHeMax; ++i) {
      sockaddr_storage ss{};
      socklen_t len;
      if (ParseAddr(ips.Get(i).As<Napi::String>(), port, &ss, &len) == 0) addrs.push_back(ss);
    }
    if (addrs.empty()) return Napi::Number::New(env, -EINVAL);
    std::string ticket;
    Napi::Value t = info[6].As<Napi::Object>().Get("sessionTicket");
    if (t.IsTypedArray()) {
      auto u = t.As<Napi::Uint8Array>();
      ticket.assign(reinterpret_cast<const char*>(u.Data()), u.ByteLength());
    }
    int r = s->shard->quic_connect_race(idx, gen, addrs.data(), static_cast<uint32_t>(addrs.size()), delay,
                                        std::move(q), std::move(ticket));
    if (r == 0 && s->driver && !s->in_batch) s->shard->flush(false);  // the first Initial now
    Nudge(s);
    return Napi::Number::New(env, r);
  });
}

// streamWriteTo(shard, conn, stream, fin, data[, offset, length]) -> bytes taken or a code (core's
// stream form of streamWrite: QUIC streams, or stream 0 of a TCP / UDS connection)
Napi::Value ZeroIo::QuicStreamWrite(const Napi::CallbackInfo& info) {
  return OnId(info, [&](ShardSlot* s, uint32_t idx, uint32_t gen) {
    const uint8_t* d = nullptr;
    size_t n = 0;
    if (!info[4].IsUndefined() && !info[4].IsNull()) ReadBytes(info, 4, "streamWrite", &d, &n);
    uint64_t stream = static_cast<uint64_t>(info[2].As<Napi::Number>().DoubleValue());
    bool fin = info[3].ToBoolean();
    int64_t r;
    int proto = s->shard->conn_proto(idx, gen);
    if (proto == zio::kProtoQuic) r = s->shard->quic_stream_write(idx, gen, stream, d, n, fin);
    else if (proto < 0) r = zio::kErrStaleId;
    else if (stream == 0 && !fin) r = s->shard->conn_write(idx, gen, d, n);  // TCP / UDS: stream 0
    else r = zio::kErrNotQuic;
    if (r >= 0 && s->driver && !s->in_batch) s->shard->flush(false);
    return Napi::Number::New(info.Env(), static_cast<double>(r));
  });
}

// quicStreamShutdown(shard, conn, stream, read, code) -> 0 or a code
Napi::Value ZeroIo::QuicStreamShutdown(const Napi::CallbackInfo& info) {
  return OnId(info, [&](ShardSlot* s, uint32_t idx, uint32_t gen) {
    uint64_t stream = static_cast<uint64_t>(info[2].As<Napi::Number>().DoubleValue());
    uint64_t code = static_cast<uint64_t>(info[4].As<Napi::Number>().DoubleValue());
    int r = s->shard->quic_stream_shutdown(idx, gen, stream, info[3].ToBoolean(), code);
    if (r == 0 && s->driver && !s->in_batch) s->shard->flush(false);
    return Napi::Number::New(info.Env(), r);
  });
}

// quicStreamPull(shard, conn, stream, on) -> 0 or a code
Napi::Value ZeroIo::QuicStreamPull(const Napi::CallbackInfo& info) {
  return OnId(info, [&](ShardSlot* s, uint32_t idx, uint32_t gen) {
    uint64_t stream = static_cast<uint64_t>(info[2].As<Napi::Number>().DoubleValue());
    int r = s->shard->quic_stream_pull(idx, gen, stream, info[3].ToBoolean());
    if (r == 0) Nudge(s);
    return Napi::Number::New(info.Env(), r);
  });
}

// streamReadFrom(shard, conn, stream, buf) -> bytes read, -1 at the stream's end, a negative
// code (kErrWrongKind: not QUIC), or [kErrQuicStreamReset, code]
Napi::Value ZeroIo::QuicStreamRead(const Napi::CallbackInfo& info) {
  return OnId(info, [&](ShardSlot* s, uint32_t idx, uint32_t gen) -> Napi::Value {
    Napi::Env env = info.Env();
    int proto = s->shard->conn_proto(idx, gen);
    if (proto != zio::kProtoQuic) return Napi::Number::New(env, proto < 0 ? zio::kErrStaleId : zio::kErrWrongKind);
    napi_typedarray_type t;
    size_t cap = 0;
    void* d = nullptr;
    if (napi_get_typedarray_info(env, info[3], &t, &cap, &d, nullptr, nullptr) != napi_ok || t != napi_uint8_array)
      throw IoError(env, "InvalidArgument", "streamRead: buf must be a Uint8Array (or Buffer)");
    uint64_t stream = static_cast<uint64_t>(info[2].As<Napi::Number>().DoubleValue());
    bool fin = false;
    uint64_t code = 0;
    int64_t r = s->shard->quic_stream_read(idx, gen, stream, static_cast<uint8_t*>(d), cap, &fin, &code);
    if (r == zio::kErrQuicStreamReset) {
      Napi::Array a = Napi::Array::New(env, 2);
      a.Set(0u, Napi::Number::New(env, static_cast<double>(r)));
      a.Set(1u, Napi::Number::New(env, static_cast<double>(code)));
      return a;
    }
    // MAX_STREAM_DATA now, and a tick: a connection that was waiting for this read closes.
    if (r >= 0) Nudge(s);
    if (r == 0 && fin) return Napi::Number::New(env, -1);
    return Napi::Number::New(env, static_cast<double>(r));
  });
}

// quicMigration(shard, conn) -> [old peer, new peer] | null
Napi::Value ZeroIo::QuicMigration(const Napi::CallbackInfo& info) {
  return OnId(info, [&](ShardSlot* s, uint32_t idx, uint32_t gen) -> Napi::Value {
    sockaddr_storage o{}, n{};
    if (s->shard->quic_migration(idx, gen, &o, &n) < 0) return info.Env().Null();
    Napi::Array a = Napi::Array::New(info.Env(), 2);
    a.Set(0u, AddrToJs(info.Env(), o));
    a.Set(1u, AddrToJs(info.Env(), n));
    return a;
  });
}

Napi::Value ZeroIo::QuicOpenStream(const Napi::CallbackInfo& info) {
  return OnId(info, [&](ShardSlot* s, uint32_t idx, uint32_t gen) {
    return Napi::Number::New(info.Env(), static_cast<double>(s->shard->quic_open_stream(idx, gen, info[2].ToBoolean())));
  });
}

// quicDatagram(shard, conn, data) -> 0 or a code
Napi::Value ZeroIo::QuicDatagram(const Napi::CallbackInfo& info) {
  return OnId(info, [&](ShardSlot* s, uint32_t idx, uint32_t gen) {
    const uint8_t* d = nullptr;
    size_t n = 0;
    ReadBytes(info, 2, "sendDatagram", &d, &n);
    int r = s->shard->quic_datagram(idx, gen, d, n);
    if (r == 0 && s->driver && !s->in_batch) s->shard->flush(false);
    return Napi::Number::New(info.Env(), r);
  });
}

Napi::Value ZeroIo::QuicDatagramMax(const Napi::CallbackInfo& info) {
  return OnId(info, [&](ShardSlot* s, uint32_t idx, uint32_t gen) {
    return Napi::Number::New(info.Env(), static_cast<double>(s->shard->quic_datagram_max(idx, gen)));
  });
}

// quicClose(shard, conn, code, reason) -> 0 or a code
Napi::Value ZeroIo::QuicClose(const Napi::CallbackInfo& info) {
  return OnId(info, [&](ShardSlot* s, uint32_t idx, uint32_t gen) {
    uint64_t code = static_cast<uint64_t>(info[2].As<Napi::Number>().DoubleValue());
    int r = s->shard->quic_close(idx, gen, code, info[3].ToString().Utf8Value());
    if (r == 0 && s->driver && !s->in_batch) s->shard->flush(false);
    return Napi::Number::New(info.Env(), r);
  });
}

// quicSetTicket(shard, conn, bytes) -> 0 or a code
Napi::Value ZeroIo::QuicSetTicket(const Napi::CallbackInfo& info) {
  return OnId(info, [&](ShardSlot* s, uint32_t idx, uint32_t gen) {
    const uint8_t* d = nullptr;
    size_t n = 0;
    ReadBytes(info, 2, "setSessionTicket", &d, &n);
    int r = s->shard->quic_set_ticket(idx, gen, d, n);
    if (r == 0 && s->driver && !s->in_batch) s->shard->flush(false);
    return Napi::Number::New(info.Env(), r);
  });
}

// quicTicket(shard, conn) -> Buffer (the newest session ticket), null when none, or a code
Napi::Value ZeroIo::QuicTicket(const Napi::CallbackInfo& info) {
  return OnId(info, [&](ShardSlot* s, uint32_t idx, uint32_t gen) -> Napi::Value {
    std::string t;
    int r = s->shard->quic_ticket(idx, gen, &t);
    if (r < 0) return Napi::Number::New(info.Env(), r);
    if (t.empty()) return info.Env().Null();
    return Napi::Buffer<uint8_t>::Copy(info.Env(), reinterpret_cast<const uint8_t*>(t.data()), t.size());
  });
}

// quicEarlyData(shard, conn) -> [possible or accepted, reason] or a code
Napi::Value ZeroIo::QuicEarlyData(const Napi::CallbackInfo& info) {
  return OnId(info, [&](ShardSlot* s, uint32_t idx, uint32_t gen) -> Napi::Value {
    std::string why;
    int r = s->shard->quic_early_data(idx, gen, &why);
    if (r < 0) return Napi::Number::New(info.Env(), r);
    Napi::Array a = Napi::Array::New(info.Env(), 2);
    a.Set(0u, Napi::Boolean::New(info.Env(), r == 1));
    a.Set(1u, Napi::String::New(info.Env(), why));
    return a;
  });
}

Napi::Value ZeroIo::QuicAlpn(const Napi::CallbackInfo& info) {
  return OnId(info, [&](ShardSlot* s, uint32_t idx, uint32_t gen) -> Napi::Value {
    std::string a;
    if (!s->shard->quic_alpn(idx, gen, &a)) return info.Env().Null();
    return Napi::String::New(info.Env(), a);
  });
}

// quicCloseInfo(shard, conn) -> [app, peer, timedOut, code, reason, tlsReason, reset] | null
Napi::Value ZeroIo::QuicCloseInfo(const Napi::CallbackInfo& info) {
  return OnId(info, [&](ShardSlot* s, uint32_t idx, uint32_t gen) -> Napi::Value {
    zio::QuicCloseInfo ci;
    if (!s->shard->quic_close_info(idx, gen, &ci)) return info.Env().Null();
    Napi::Array a = Napi::Array::New(info.Env(), 7);
    a.Set(0u, ci.app);
    a.Set(1u, ci.peer);
    a.Set(2u, ci.timed_out);
    a.Set(3u, Napi::Number::New(info.Env(), static_cast<double>(ci.code)));
    a.Set(4u, Napi::String::New(info.Env(), ci.reason));
    a.Set(5u, Napi::String::New(info.Env(), ci.tls_reason));
    a.Set(6u, ci.reset);
    return a;
  });
}

Napi::Value ZeroIo::QuicStats(const Napi::CallbackInfo& info) {
  return OnEp(info, [&](ShardSlot* s, uint32_t ep, uint32_t gen) -> Napi::Value {
    const zio::QuicCounters* c = s->shard->endpoint_quic_stats(ep, gen);
    if (!c) return info.Env().Null();
    Napi::Object o = Napi::Object::New(info.Env());
    auto n = [&](const char* k, uint64_t v) { o.Set(k, Napi::Number::New(info.Env(), static_cast<double>(v))); };
    n("accepted", c->accepted);
    n("refused", c->refused);
    n("handshakesFailed", c->handshakes_failed);
    n("packetsIn", c->packets_in);
    n("packetsOut", c->packets_out);
    n("dropped", c->dropped);
    n("versionNegotiations", c->version_negotiations);
    n("retries", c->retries);
    n("badTokens", c->bad_tokens);
    n("unknownConnectionId", c->unknown_cid);
    n("gsoTrains", c->gso_trains);
    n("pacedWaits", c->paced_waits);
    n("statelessResets", c->stateless_resets);
    const zio::QuicEndpoint* q = s->shard->endpoint_quic(ep, gen);
    o.Set("pacing", q->pacing == zio::QuicPacing::Off ? "off" : q->pacing == zio::QuicPacing::Txtime ? "txtime" : "wheel");
    o.Set("pacingNote", q->pacing_note);
    return o;
  });
}

}  // namespace zio::binding

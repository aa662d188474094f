// native/binding/quic.cc — the QUIC calls: listen (a UDP endpoint made a QUIC listener, its TLS
// from a registered server context so CertReloadHandle swaps it), connect, stream writes /
// ends / resets / STOP_SENDING, stream ids, datagrams, the application close, ALPN, the close
// information behind Disconnected, and the listener's counters.
#include "binding/addon.h"

namespace zio::binding {

namespace {

double Num(Napi::Object o, const char* k, double def) {
  Napi::Value v = o.Get(k);
  return v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : def;
}

bool Flag(Napi::Object o, const char* k, bool def) {
  Napi::Value v = o.Get(k);
  return v.IsBoolean() ? v.As<Napi::Boolean>().Value() : def;
}

// The settings object of quicListen / quicConnect (validated by the TypeScript layer).
zio::quic::Settings ReadSettings(Napi::Object o, bool server) {
  zio::quic::Settings s;
  s.server = server;
  Napi::Value a = o.Get("alpn");
  if (a.IsArray()) {
    Napi::Array arr = a.As<Napi::Array>();
    for (uint32_t i = 0; i < arr.Length(); ++i) s.alpn.push_back(arr.Get(i).ToString().Utf8Value());
  }
  s.idle_timeout_ms = static_cast<uint64_t>(Num(o, "idleTimeoutMs", 30000));
  s.max_data = static_cast<uint64_t>(Num(o, "initialMaxData", static_cast<double>(s.max_data)));
  double sd = Num(o, "initialMaxStreamData", static_cast<double>(s.max_stream_data_bidi_local));
  s.max_stream_data_bidi_local = s.max_stream_data_bidi_remote = s.max_stream_data_uni = static_cast<uint64_t>(sd);
  s.max_streams_bidi = static_cast<uint64_t>(Num(o, "maxStreamsBidi", 100));
  s.max_streams_uni = static_cast<uint64_t>(Num(o, "maxStreamsUni", 100));
  Napi::Value cc = o.Get("congestionControl");
  if (cc.IsString()) s.cc = cc.As<Napi::String>().Utf8Value();
  s.pmtud = Flag(o, "pmtud", false);
  s.pacing = Flag(o, "pacing", true);
  s.dgram = Flag(o, "datagrams", true);
  s.dgram_queue = static_cast<uint32_t>(Num(o, "datagramQueue", 1024));
  s.max_udp_payload = static_cast<uint32_t>(Num(o, "maxUdpPayload", 1350));
  s.early_data = Flag(o, "earlyData", false);
  s.verify_peer = Flag(o, "verifyPeer", true);
  s.disable_migration = Flag(o, "disableMigration", false);
  return s;
}

}  // namespace

// quicListen(shard, ip, port, tlsSlotId, settings, udpOptions) -> endpoint id
Napi::Value ZeroIo::QuicListen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ShardSlot* s = GetSlot(info);
  sockaddr_storage ss{};
  socklen_t len;
  ReadIpPort(info, 1, &ss, &len);
  auto slot = FindSlot(info[3].As<Napi::Number>().DoubleValue());
  if (!slot) throw IoError(env, "InvalidArgument", "quicListen: the TLS context is gone");
  Napi::Object o = info[4].As<Napi::Object>();
  auto q = std::make_shared<zio::QuicEndpoint>();
  q->settings = ReadSettings(o, true);
  q->certs = std::move(slot);
  q->retry = Flag(o, "retry", false);
  q->max_handshakes = static_cast<uint32_t>(Num(o, "maxHandshakes", 1000));
  q->slot = static_cast<uint16_t>(static_cast<uint32_t>(Num(o, "cidSlot", 0)) & zio::quic::kSlotMask);
  std::string err;
  q->cfg = zio::quic::make_config(q->settings, &err);
  if (!q->cfg) throw IoError(env, "InvalidArgument", "quicListen: " + err);
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

// quicConnect(shard, ip, port, tlsClientId, settings) -> conn id, or a negative code
Napi::Value ZeroIo::QuicConnect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ShardSlot* s = GetSlot(info);
  sockaddr_storage ss{};
  socklen_t len;
  ReadIpPort(info, 1, &ss, &len);
  auto ctx = FindCtx(info[3].As<Napi::Number>().DoubleValue());
  if (!ctx || ctx->is_server()) throw IoError(env, "InvalidArgument", "quicConnect: the TLS client context is gone");
  auto q = std::make_shared<zio::QuicEndpoint>();
  q->settings = ReadSettings(info[4].As<Napi::Object>(), false);
  q->client = std::move(ctx);
  std::string err;
  q->cfg = zio::quic::make_config(q->settings, &err);
  if (!q->cfg) throw IoError(env, "InvalidArgument", "quicConnect: " + err);
  int64_t r = s->shard->quic_connect(reinterpret_cast<sockaddr*>(&ss), len, std::move(q), &err);
  if (r == zio::kErrQuicTls) throw IoError(env, "InvalidConfig", "quicConnect: " + err);
  if (r < 0) return SyscallResult(env, r, "quicConnect");
  uint32_t idx = static_cast<uint32_t>(r);
  if (s->driver && !s->in_batch) s->shard->flush(false);  // the Initial now
  Nudge(s);
  return Napi::Number::New(env, JoinId(idx, s->shard->conn_gen(idx)));
}

// streamWriteTo(shard, conn, stream, data, fin[, offset, length]) -> bytes taken or a code (core's
// stream form of streamWrite: QUIC streams, or stream 0 of a TCP / UDS connection)
Napi::Value ZeroIo::QuicStreamWrite(const Napi::CallbackInfo& info) {
  return OnId(info, [&](ShardSlot* s, uint32_t idx, uint32_t gen) {
    const uint8_t* d = nullptr;
    size_t n = 0;
    if (!info[3].IsUndefined() && !info[3].IsNull()) ReadBytes(info, 3, "streamWrite", &d, &n);
    if (info.Length() > 6 && info[5].IsNumber() && info[6].IsNumber()) {
      double off = info[5].As<Napi::Number>().DoubleValue(), l = info[6].As<Napi::Number>().DoubleValue();
      if (!(off >= 0) || !(l >= 0) || off + l > static_cast<double>(n))
        throw IoError(info.Env(), "InvalidArgument", "streamWrite: offset/length outside the data");
      d += static_cast<size_t>(off);
      n = static_cast<size_t>(l);
    }
    uint64_t stream = static_cast<uint64_t>(info[2].As<Napi::Number>().DoubleValue());
    bool fin = info[4].ToBoolean();
    int64_t r;
    if (s->shard->conn_proto(idx, gen) == zio::kProtoQuic) r = s->shard->quic_stream_write(idx, gen, stream, d, n, fin);
    else if (stream == 0 && !fin) r = s->shard->conn_write(idx, gen, d, n);  // TCP / UDS: stream 0
    else r = s->shard->conn_proto(idx, gen) < 0 ? zio::kErrStaleId : zio::kErrNotQuic;
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

Napi::Value ZeroIo::QuicAlpn(const Napi::CallbackInfo& info) {
  return OnId(info, [&](ShardSlot* s, uint32_t idx, uint32_t gen) -> Napi::Value {
    std::string a;
    if (!s->shard->quic_alpn(idx, gen, &a)) return info.Env().Null();
    return Napi::String::New(info.Env(), a);
  });
}

// quicCloseInfo(shard, conn) -> [app, peer, timedOut, code, reason] | null
Napi::Value ZeroIo::QuicCloseInfo(const Napi::CallbackInfo& info) {
  return OnId(info, [&](ShardSlot* s, uint32_t idx, uint32_t gen) -> Napi::Value {
    zio::QuicCloseInfo ci;
    if (!s->shard->quic_close_info(idx, gen, &ci)) return info.Env().Null();
    Napi::Array a = Napi::Array::New(info.Env(), 5);
    a.Set(0u, ci.app);
    a.Set(1u, ci.peer);
    a.Set(2u, ci.timed_out);
    a.Set(3u, Napi::Number::New(info.Env(), static_cast<double>(ci.code)));
    a.Set(4u, Napi::String::New(info.Env(), ci.reason));
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
    return o;
  });
}

}  // namespace zio::binding

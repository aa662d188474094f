// native/binding/ws.cc — the WebSocket server calls: serving upgrades on an HTTP listener,
// sends (one message, a topic, a list of connections), the close handshake, held upgrades,
// pub/sub, counters and the close information behind Disconnected.
#include "binding/addon.h"

namespace zio::binding {

namespace {

std::vector<std::string> Strings(Napi::Value v) {
  std::vector<std::string> out;
  if (!v.IsArray()) return out;
  Napi::Array a = v.As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length(); ++i) out.push_back(a.Get(i).ToString().Utf8Value());
  return out;
}

uint32_t U32(Napi::Object o, const char* k, uint32_t def) {
  return static_cast<uint32_t>(OptNum(o, k, def));
}

// The options object of wsEnable / wsClientStart (validated by the TypeScript layer).
zio::WsConfig ReadWsConfig(Napi::Object o) {
  zio::WsConfig cfg;
  cfg.paths = Strings(o.Get("paths"));
  cfg.origins = Strings(o.Get("origins"));
  cfg.protocols = Strings(o.Get("protocols"));
  Napi::Value mm = o.Get("maxMessage");
  if (mm.IsNumber()) cfg.max_message = static_cast<uint64_t>(mm.As<Napi::Number>().DoubleValue());
  Napi::Value mw = o.Get("maxWhole");
  cfg.max_whole = mw.IsNumber() ? static_cast<uint64_t>(mw.As<Napi::Number>().DoubleValue()) : cfg.max_message;
  Napi::Value mf = o.Get("maxFrame");
  if (mf.IsNumber()) cfg.max_frame = static_cast<uint64_t>(mf.As<Napi::Number>().DoubleValue());
  cfg.idle_timeout_ms = U32(o, "idleTimeoutMs", cfg.idle_timeout_ms);
  cfg.ping_interval_ms = U32(o, "pingIntervalMs", cfg.ping_interval_ms);
  cfg.close_timeout_ms = U32(o, "closeTimeoutMs", cfg.close_timeout_ms);
  cfg.handshake_timeout_ms = U32(o, "handshakeTimeoutMs", cfg.handshake_timeout_ms);
  cfg.send_mark = U32(o, "sendMark", cfg.send_mark);
  cfg.send_max = U32(o, "sendMax", cfg.send_max);
  cfg.slow = U32(o, "slowClose", 0) ? zio::WsSlowPolicy::Close : zio::WsSlowPolicy::Drop;
  cfg.slow_close_code = static_cast<uint16_t>(U32(o, "slowCode", cfg.slow_close_code));
  cfg.only = U32(o, "only", 0) != 0;
  cfg.manual = U32(o, "manual", 0) != 0;
  cfg.pieces = U32(o, "pieces", 0) != 0;
  cfg.deflate = U32(o, "deflate", 0) != 0;
  cfg.deflate_min = U32(o, "deflateMin", cfg.deflate_min);
  cfg.deflate_max_conns = U32(o, "deflateMaxConns", cfg.deflate_max_conns);
  cfg.dc.level = static_cast<int>(U32(o, "deflateLevel", static_cast<uint32_t>(cfg.dc.level)));
  cfg.dc.mem_level = static_cast<uint8_t>(U32(o, "memLevel", cfg.dc.mem_level));
  cfg.dc.server_no_context_takeover = U32(o, "serverNoContextTakeover", cfg.dc.server_no_context_takeover) != 0;
  cfg.dc.client_no_context_takeover = U32(o, "clientNoContextTakeover", cfg.dc.client_no_context_takeover) != 0;
  cfg.dc.server_max_window_bits = static_cast<uint8_t>(U32(o, "serverMaxWindowBits", cfg.dc.server_max_window_bits));
  cfg.dc.client_max_window_bits = static_cast<uint8_t>(U32(o, "clientMaxWindowBits", cfg.dc.client_max_window_bits));
  return cfg;
}

}  // namespace

// Bytes of a send: a string's UTF-8 (into a reused arena) or a Uint8Array's (borrowed).
void ZeroIo::WsBytes(const Napi::CallbackInfo& info, size_t at, const uint8_t** data, size_t* len) {
  napi_value v = info[at];
  napi_valuetype t;
  napi_typeof(info.Env(), v, &t);
  if (t == napi_string) {
    size_t n = 0;
    napi_get_value_string_utf8(info.Env(), v, nullptr, 0, &n);
    ws_arena_.resize(n + 1);
    napi_get_value_string_utf8(info.Env(), v, ws_arena_.data(), n + 1, &n);
    *data = reinterpret_cast<const uint8_t*>(ws_arena_.data());
    *len = n;
    return;
  }
  napi_typedarray_type type;
  void* d;
  if (napi_get_typedarray_info(info.Env(), v, &type, len, &d, nullptr, nullptr) != napi_ok || type != napi_uint8_array)
    throw IoError(info.Env(), "InvalidArgument", "a WebSocket message must be a string or a Uint8Array (or Buffer)");
  *data = static_cast<const uint8_t*>(d);
}

// wsEnable(shard, ep, { paths, origins, protocols, maxMessage, idleTimeoutMs, pingIntervalMs,
//   closeTimeoutMs, sendMark, sendMax, slowClose, slowCode, only, manual }) -> 0 or kErr*
Napi::Value ZeroIo::WsEnable(const Napi::CallbackInfo& info) {
  zio::WsConfig cfg = ReadWsConfig(info[2].As<Napi::Object>());
  return OnEp(info, [&](ShardSlot* s, uint32_t idx, uint32_t gen) {
    return Napi::Number::New(info.Env(), s->shard->endpoint_set_ws(idx, gen, cfg));
  });
}

// Hot path: wsSend(shard, conn, Uint8Array | string, text) -> kWs* outcome or a negative code.
Napi::Value ZeroIo::WsSend(const Napi::CallbackInfo& info) {
  return OnId(info, [&](ShardSlot* s, uint32_t idx, uint32_t gen) {
    const uint8_t* data;
    size_t len;
    WsBytes(info, 2, &data, &len);
    int32_t r = s->shard->ws_send(idx, gen, info[3].ToBoolean(), data, len);
    if (r > 0 && s->driver && !s->in_batch) s->shard->flush(false);
    return Napi::Number::New(info.Env(), r);
  });
}

// wsClose(shard, conn, code, reason: string) -> 0 or kErr*
Napi::Value ZeroIo::WsClose(const Napi::CallbackInfo& info) {
  return OnId(info, [&](ShardSlot* s, uint32_t idx, uint32_t gen) {
    std::string reason = info[3].IsString() ? info[3].As<Napi::String>().Utf8Value() : std::string();
    int r = s->shard->ws_close(idx, gen, static_cast<uint16_t>(info[2].As<Napi::Number>().Uint32Value()),
                               reinterpret_cast<const uint8_t*>(reason.data()), reason.size());
    if (r == 0 && s->driver && !s->in_batch) s->shard->flush(false);
    return Queued(info, s, r);
  });
}

// wsAccept(shard, conn, protocolIndex (-1 none, -2 the one chosen), fields: string[]) -> 0 / kErr*
Napi::Value ZeroIo::WsAccept(const Napi::CallbackInfo& info) {
  return OnId(info, [&](ShardSlot* s, uint32_t idx, uint32_t gen) {
    std::vector<std::string> strs = Strings(info[3]);
    std::vector<zio::http1::Field> fields;
    for (size_t i = 0; i + 1 < strs.size(); i += 2)
      fields.push_back({strs[i].data(), strs[i].size(), strs[i + 1].data(), strs[i + 1].size()});
    int r = s->shard->ws_accept(idx, gen, info[2].As<Napi::Number>().Int32Value(), fields.data(),
                                static_cast<uint32_t>(fields.size()));
    if (r == 0 && s->driver && !s->in_batch) s->shard->flush(false);
    return Queued(info, s, r);
  });
}

// wsReject(shard, conn, status, reason) -> 0 or kErr*
Napi::Value ZeroIo::WsReject(const Napi::CallbackInfo& info) {
  return OnId(info, [&](ShardSlot* s, uint32_t idx, uint32_t gen) {
    // The reason must outlive the connection's error field: kept per status text in a set.
    std::string reason = info[3].IsString() ? info[3].As<Napi::String>().Utf8Value() : std::string("refused");
    // Bounded: past 256 distinct reasons the text is a generic one (the status still says it).
    if (ws_reasons_.size() >= 256 && !ws_reasons_.count(reason)) reason = "refused by the application";
    const char* kept = ws_reasons_.insert(reason).first->c_str();
    int r = s->shard->ws_reject(idx, gen, static_cast<uint16_t>(info[2].As<Napi::Number>().Uint32Value()), kept);
    if (r == 0 && s->driver && !s->in_batch) s->shard->flush(false);
    return Queued(info, s, r);
  });
}

Napi::Value ZeroIo::WsBuffered(const Napi::CallbackInfo& info) {
  return OnId(info, [&](ShardSlot* s, uint32_t idx, uint32_t gen) {
    return Napi::Number::New(info.Env(), static_cast<double>(s->shard->ws_buffered(idx, gen)));
  });
}

// wsCloseInfo(shard, conn) -> [code, reason, errno, clean, origin] or null
Napi::Value ZeroIo::WsCloseInfo(const Napi::CallbackInfo& info) {
  return OnId(info, [&](ShardSlot* s, uint32_t idx, uint32_t gen) -> Napi::Value {
    Napi::Env env = info.Env();
    zio::WsCloseInfo ci;
    if (!s->shard->ws_close_info(idx, gen, &ci)) return env.Null();
    Napi::Array a = Napi::Array::New(env, 5);
    a.Set(0u, Napi::Number::New(env, ci.code));
    a.Set(1u, Napi::String::New(env, *ci.reason));
    a.Set(2u, Napi::Number::New(env, ci.sys_err));
    a.Set(3u, Napi::Boolean::New(env, ci.clean));
    a.Set(4u, Napi::Number::New(env, ci.origin));
    return a;
  });
}

// wsSubscribe(shard, conn, topic, on) -> 1 / 0 / kErr*
Napi::Value ZeroIo::WsSubscribe(const Napi::CallbackInfo& info) {
  return OnId(info, [&](ShardSlot* s, uint32_t idx, uint32_t gen) {
    return Napi::Number::New(info.Env(), s->shard->ws_subscribe(idx, gen, info[2].As<Napi::String>().Utf8Value(),
                                                                info[3].ToBoolean()));
  });
}

// wsPublish(shard, topic, data, text, counts: Uint32Array(3)) -> subscribers reached or kErr*
Napi::Value ZeroIo::WsPublish(const Napi::CallbackInfo& info) {
  ShardSlot* s = GetSlot(info);
  const uint8_t* data;
  size_t len;
  WsBytes(info, 2, &data, &len);
  uint32_t* counts = info[4].As<Napi::Uint32Array>().Data();
  ws_topic_.assign(info[1].As<Napi::String>().Utf8Value());
  int64_t r = s->shard->ws_publish(ws_topic_, info[3].ToBoolean(), data, len, counts);
  if (r > 0 && s->driver && !s->in_batch) s->shard->flush(false);
  return Napi::Number::New(info.Env(), static_cast<double>(r));
}

// wsBroadcast(shard, ids: Float64Array, data, text, counts) -> connections reached or kErr*
Napi::Value ZeroIo::WsBroadcast(const Napi::CallbackInfo& info) {
  ShardSlot* s = GetSlot(info);
  const uint8_t* data;
  size_t len;
  WsBytes(info, 2, &data, &len);
  Napi::Float64Array ids = info[1].As<Napi::Float64Array>();
  uint32_t* counts = info[4].As<Napi::Uint32Array>().Data();
  int64_t r = s->shard->ws_broadcast(ids.Data(), ids.ElementLength(), info[3].ToBoolean(), data, len, counts);
  if (r > 0 && s->driver && !s->in_batch) s->shard->flush(false);
  return Napi::Number::New(info.Env(), static_cast<double>(r));
}

// wsClientStart(shard, conn, cfg, host, path, extra) -> 0 or kErr*: a reserved connection
// becomes a WebSocket client (its handshake is queued; sent once connected).
Napi::Value ZeroIo::WsClientStart(const Napi::CallbackInfo& info) {
  zio::WsConfig cfg = ReadWsConfig(info[2].As<Napi::Object>());
  std::string host = info[3].As<Napi::String>().Utf8Value();
  std::string path = info[4].As<Napi::String>().Utf8Value();
  std::string extra = info[5].As<Napi::String>().Utf8Value();
  return OnId(info, [&](ShardSlot* s, uint32_t idx, uint32_t gen) {
    return Queued(info, s, s->shard->ws_client_start(idx, gen, cfg, host, path, extra));
  });
}

// wsProtocol(shard, conn) -> the subprotocol ('' when none), or null (not a WebSocket)
Napi::Value ZeroIo::WsProtocol(const Napi::CallbackInfo& info) {
  return OnId(info, [&](ShardSlot* s, uint32_t idx, uint32_t gen) -> Napi::Value {
    const std::string* p = s->shard->ws_subprotocol(idx, gen);
    return p ? Napi::String::New(info.Env(), *p) : info.Env().Null();
  });
}

Napi::Value ZeroIo::WsTopicCount(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), Get(info)->ws_topic_count(info[1].As<Napi::String>().Utf8Value()));
}

Napi::Value ZeroIo::WsStats(const Napi::CallbackInfo& info) {
  return OnEp(info, [&](ShardSlot* s, uint32_t idx, uint32_t gen) -> Napi::Value {
    Napi::Env env = info.Env();
    const zio::WsCounters* c = s->shard->endpoint_ws_stats(idx, gen);
    if (!c) return env.Null();
    Napi::Object o = Napi::Object::New(env);
    auto n = [&](const char* k, uint64_t v) { o.Set(k, Napi::Number::New(env, static_cast<double>(v))); };
    n("upgrades", c->upgrades);
    n("refused", c->refused);
    n("open", c->open);
    n("messagesIn", c->messages_in);
    n("messagesOut", c->messages_out);
    n("bytesIn", c->bytes_in);
    n("bytesOut", c->bytes_out);
    n("dropped", c->dropped);
    n("closedSlow", c->closed_slow);
    n("pingTimeouts", c->ping_timeouts);
    n("protocolErrors", c->protocol_errors);
    n("tooBig", c->too_big);
    n("published", c->published);
    n("deflateConnections", c->deflate_open);
    n("compressedIn", c->compressed_in);
    n("compressedOut", c->compressed_out);
    n("compressSaved", c->compress_saved);
    return o;
  });
}

}  // namespace zio::binding

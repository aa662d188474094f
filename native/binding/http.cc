// native/binding/http.cc — the HTTP/1.1 server calls: enabling HTTP on a listener, response
// templates (ZeroResponse built once, answered many times), answers, counters.
#include "binding/addon.h"

namespace zio::binding {

namespace {

uint32_t U32(Napi::Object o, const char* k, uint32_t def) {
  Napi::Value v = o.Get(k);
  return v.IsNumber() ? v.As<Napi::Number>().Uint32Value() : def;
}

// Reads [name, value, ...] strings into `strs` and points `fields` at them.
void ReadFields(Napi::Value v, std::vector<std::string>* strs, std::vector<zio::http1::Field>* fields) {
  strs->clear();
  fields->clear();
  if (!v.IsArray()) return;
  Napi::Array a = v.As<Napi::Array>();
  uint32_t n = a.Length() & ~1u;
  strs->reserve(n);
  for (uint32_t i = 0; i < n; ++i) strs->push_back(a.Get(i).ToString().Utf8Value());
  fields->reserve(n / 2);
  for (uint32_t i = 0; i < n; i += 2)
    fields->push_back({(*strs)[i].data(), (*strs)[i].size(), (*strs)[i + 1].data(), (*strs)[i + 1].size()});
}

// A JS string's UTF-8 appended to `arena` (reused across calls: no allocation once warm).
// Returns its offset; *len its length. A value that is not a string is converted as JS would.
size_t AppendUtf8(napi_env env, napi_value v, std::string* arena, size_t* len) {
  napi_valuetype t;
  napi_typeof(env, v, &t);
  if (t != napi_string) napi_coerce_to_string(env, v, &v);
  size_t n = 0;
  napi_get_value_string_utf8(env, v, nullptr, 0, &n);
  size_t at = arena->size();
  arena->resize(at + n + 1);
  napi_get_value_string_utf8(env, v, arena->data() + at, n + 1, &n);
  arena->resize(at + n);
  *len = n;
  return at;
}

// A body argument: bytes of a Uint8Array (borrowed from JS for this call), or a string's UTF-8
// (copied into `keep`).
bool ReadBody(Napi::Value v, std::string* keep, const uint8_t** data, size_t* len) {
  *data = nullptr;
  *len = 0;
  if (v.IsUndefined() || v.IsNull()) return true;
  if (v.IsString()) {
    keep->clear();
    size_t at = AppendUtf8(v.Env(), v, keep, len);
    *data = reinterpret_cast<const uint8_t*>(keep->data() + at);
    return true;
  }
  if (v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == napi_uint8_array) {
    Napi::Uint8Array u = v.As<Napi::Uint8Array>();
    *data = u.Data();
    *len = u.ByteLength();
    return true;
  }
  return false;
}

// Whether fields could split a response (a CR, LF or NUL, or a name that is not a token):
// serialise a head with them into a scratch buffer and see.
bool FieldsValid(const std::vector<zio::http1::Field>& f) {
  zio::http1::ResponseHead h;
  h.fields = f.data();
  h.field_count = static_cast<uint32_t>(f.size());
  size_t cap = 256;
  for (const auto& x : f) cap += x.name_len + x.value_len + 4;
  std::string buf(cap, '\0');
  zio::http1::DateCache d;
  return zio::http1::serialize_head(h, d, 0, reinterpret_cast<uint8_t*>(buf.data()), cap) >= 0;
}

}  // namespace

// An answer: outside a batch (a promise, a timer) it is sent now and the driver is woken, since
// requests held behind it may be parsed now (a tick must run for their events).
Napi::Value ZeroIo::Answered(const Napi::CallbackInfo& info, ShardSlot* s, int64_t r) {
  if (r > 0) Nudge(s);
  return Napi::Number::New(info.Env(), static_cast<double>(r));
}

Napi::Value ZeroIo::HttpEnable(const Napi::CallbackInfo& info) {
  Napi::Object o = info[2].As<Napi::Object>();
  zio::HttpConfig cfg;
  cfg.limits.headers_max = U32(o, "headerCount", cfg.limits.headers_max);
  cfg.limits.head_bytes_max = U32(o, "headerBytes", cfg.limits.head_bytes_max);
  cfg.limits.target_bytes_max = U32(o, "targetBytes", cfg.limits.target_bytes_max);
  Napi::Value bm = o.Get("bodyMax");
  if (bm.IsNumber()) cfg.limits.body_bytes_max = static_cast<uint64_t>(bm.As<Napi::Number>().DoubleValue());
  cfg.body_inline_max = U32(o, "bodyInline", cfg.body_inline_max);
  cfg.request_timeout_ms = U32(o, "requestTimeoutMs", cfg.request_timeout_ms);
  cfg.keepalive_timeout_ms = U32(o, "keepAliveTimeoutMs", cfg.keepalive_timeout_ms);
  cfg.pipeline_max = U32(o, "pipeline", cfg.pipeline_max);
  cfg.http2 = U32(o, "http2", 1) != 0;
  cfg.h2.max_concurrent_streams = U32(o, "h2Streams", cfg.h2.max_concurrent_streams);
  cfg.h2.initial_window = U32(o, "h2Window", cfg.h2.initial_window);
  cfg.h2.max_frame_size = U32(o, "h2FrameSize", cfg.h2.max_frame_size);
  cfg.h2.header_list_bytes_max = U32(o, "h2HeaderList", cfg.h2.header_list_bytes_max);
  cfg.h2.header_count_max = cfg.limits.headers_max;
  // Compression: the smallest body compressed, and the codings in the order preferred
  // (compress::Coding values; an empty list turns compression off).
  cfg.compress_min = U32(o, "compressMin", cfg.compress_min);
  Napi::Value co = o.Get("compressOrder");
  if (co.IsArray()) {
    Napi::Array a = co.As<Napi::Array>();
    cfg.compress_n = 0;
    for (uint32_t i = 0; i < a.Length() && cfg.compress_n < sizeof cfg.compress_order; ++i) {
      uint32_t c = a.Get(i).As<Napi::Number>().Uint32Value();
      if (c >= zio::compress::kGzip && c < zio::compress::kCodings) cfg.compress_order[cfg.compress_n++] = static_cast<uint8_t>(c);
    }
  }
  cfg.h2.body_bytes_max = cfg.limits.body_bytes_max;
  return OnEp(info, [&](ShardSlot* s, uint32_t idx, uint32_t gen) {
    return Napi::Number::New(info.Env(), s->shard->endpoint_set_http(idx, gen, cfg));
  });
}

Napi::Value ZeroIo::HttpTemplateNew(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto t = std::make_unique<HttpTemplate>();
  t->status = static_cast<uint16_t>(info[0].As<Napi::Number>().Uint32Value());
  ReadFields(info[1], &t->strs, &t->fields);
  if (!FieldsValid(t->fields))
    throw IoError(env, "InvalidArgument",
                  "a response header name must be a token and no name or value may hold CR, LF or NUL "
                  "(that would split the response)");
  const uint8_t* d;
  size_t n;
  std::string keep;
  if (!ReadBody(info[2], &keep, &d, &n)) throw IoError(env, "InvalidArgument", "a response body must be a string or a Uint8Array");
  t->body.assign(reinterpret_cast<const char*>(d ? d : reinterpret_cast<const uint8_t*>("")), n);
  uint32_t id;
  if (!http_free_.empty()) {
    id = http_free_.back();
    http_free_.pop_back();
    http_templates_[id] = std::move(t);
  } else {
    id = static_cast<uint32_t>(http_templates_.size());
    http_templates_.push_back(std::move(t));
  }
  return Napi::Number::New(env, id);
}

Napi::Value ZeroIo::HttpTemplateFree(const Napi::CallbackInfo& info) {
  uint32_t id = info[0].As<Napi::Number>().Uint32Value();
  if (id < http_templates_.size() && http_templates_[id]) {
    http_templates_[id].reset();
    http_free_.push_back(id);
  }
  return info.Env().Undefined();
}

Napi::Value ZeroIo::HttpRespondTemplate(const Napi::CallbackInfo& info) {
  return OnId(info, [&](ShardSlot* s, uint32_t idx, uint32_t gen) -> Napi::Value {
    uint32_t req = info[2].As<Napi::Number>().Uint32Value();
    uint32_t id = info[3].As<Napi::Number>().Uint32Value();
    if (id >= http_templates_.size() || !http_templates_[id])
      return Napi::Number::New(info.Env(), zio::kErrWrongKind);
    HttpTemplate& t = *http_templates_[id];
    int64_t r = s->shard->http_respond(idx, gen, req, t.status, t.fields.data(),
                                       static_cast<uint32_t>(t.fields.size()),
                                       reinterpret_cast<const uint8_t*>(t.body.data()), t.body.size(), true,
                                       &t.encoded);
    return Answered(info, s, r);
  });
}

Napi::Value ZeroIo::HttpRespond(const Napi::CallbackInfo& info) {
  return OnId(info, [&](ShardSlot* s, uint32_t idx, uint32_t gen) -> Napi::Value {
    napi_env env = info.Env();
    uint32_t req = info[2].As<Napi::Number>().Uint32Value();
    uint16_t status = static_cast<uint16_t>(info[3].As<Napi::Number>().Uint32Value());
    ReadFieldsReused(info[4]);
    const uint8_t* d;
    size_t n;
    if (!ReadBody(info[5], &http_body_, &d, &n))
      throw IoError(env, "InvalidArgument", "a response body must be a string or a Uint8Array");
    int64_t r = s->shard->http_respond(idx, gen, req, status, http_fields_.data(),
                                       static_cast<uint32_t>(http_fields_.size()), d, n, false);
    return Answered(info, s, r);
  });
}

// Per-answer responses: fields are written into reused buffers (no allocation per answer once
// they have grown), then pointed at (http_fields_).
void ZeroIo::ReadFieldsReused(Napi::Value v) {
  napi_env env = v.Env();
  http_arena_.clear();
  http_offsets_.clear();
  if (v.IsArray()) {
    Napi::Array a = v.As<Napi::Array>();
    uint32_t n = a.Length() & ~1u;
    for (uint32_t i = 0; i < n; ++i) {
      size_t len;
      size_t at = AppendUtf8(env, a.Get(i), &http_arena_, &len);
      http_offsets_.push_back({at, len});
    }
  }
  http_fields_.clear();
  for (size_t i = 0; i + 1 < http_offsets_.size(); i += 2)
    http_fields_.push_back({http_arena_.data() + http_offsets_[i].first, http_offsets_[i].second,
                            http_arena_.data() + http_offsets_[i + 1].first, http_offsets_[i + 1].second});
}

Napi::Value ZeroIo::HttpStreamStart(const Napi::CallbackInfo& info) {
  return OnId(info, [&](ShardSlot* s, uint32_t idx, uint32_t gen) -> Napi::Value {
    uint32_t req = info[2].As<Napi::Number>().Uint32Value();
    uint16_t status = static_cast<uint16_t>(info[3].As<Napi::Number>().Uint32Value());
    ReadFieldsReused(info[4]);
    int64_t r = s->shard->http_stream_start(idx, gen, req, status, http_fields_.data(),
                                            static_cast<uint32_t>(http_fields_.size()), false);
    if (r == 0) Nudge(s);
    return Napi::Number::New(info.Env(), static_cast<double>(r));
  });
}

Napi::Value ZeroIo::HttpStreamWrite(const Napi::CallbackInfo& info) {
  return OnId(info, [&](ShardSlot* s, uint32_t idx, uint32_t gen) -> Napi::Value {
    uint32_t req = info[2].As<Napi::Number>().Uint32Value();
    const uint8_t* d;
    size_t n;
    if (!ReadBody(info[3], &http_body_, &d, &n))
      throw IoError(info.Env(), "InvalidArgument", "a body piece must be a string or a Uint8Array");
    int64_t r = s->shard->http_stream_write(idx, gen, req, d, n);
    if (r >= 0) Nudge(s);
    return Napi::Number::New(info.Env(), static_cast<double>(r));
  });
}

Napi::Value ZeroIo::HttpStreamEnd(const Napi::CallbackInfo& info) {
  return OnId(info, [&](ShardSlot* s, uint32_t idx, uint32_t gen) -> Napi::Value {
    int64_t r = s->shard->http_stream_end(idx, gen, info[2].As<Napi::Number>().Uint32Value());
    if (r == 0) Nudge(s);
    return Napi::Number::New(info.Env(), static_cast<double>(r));
  });
}

Napi::Value ZeroIo::HttpStats(const Napi::CallbackInfo& info) {
  return OnEp(info, [&](ShardSlot* s, uint32_t idx, uint32_t gen) -> Napi::Value {
    Napi::Env env = info.Env();
    const zio::HttpCounters* c = s->shard->endpoint_http_stats(idx, gen);
    if (!c) return env.Null();
    Napi::Object o = Napi::Object::New(env);
    auto n = [&](const char* k, uint64_t v) { o.Set(k, Napi::Number::New(env, static_cast<double>(v))); };
    n("requests", c->requests);
    n("responses", c->responses);
    n("status1xx", c->status[1]);
    n("status2xx", c->status[2]);
    n("status3xx", c->status[3]);
    n("status4xx", c->status[4]);
    n("status5xx", c->status[5]);
    n("bytesIn", c->bytes_in);
    n("bytesOut", c->bytes_out);
    n("connections", c->connections);
    n("activeConnections", c->active);
    n("parseErrors", c->parse_errors);
    n("limitsHit", c->limit_hits);
    n("timeouts", c->timeouts);
    n("bodyChunks", c->body_chunks);
    n("staleResponses", c->stale_responses);
    n("compressed", c->compressed);
    n("compressSaved", c->compress_saved);
    n("activeStreams", s->shard->endpoint_http_in_flight(idx, gen));
    Napi::Object refused = Napi::Object::New(env);
    for (uint32_t i = 0; i < 8; ++i)
      refused.Set(std::to_string(zio::HttpCounters::kRefusalStatus[i]), Napi::Number::New(env, static_cast<double>(c->refused[i])));
    o.Set("refusedByStatus", refused);
    static const char* const kGoaway[15] = {"NO_ERROR", "PROTOCOL_ERROR", "INTERNAL_ERROR", "FLOW_CONTROL_ERROR",
        "SETTINGS_TIMEOUT", "STREAM_CLOSED", "FRAME_SIZE_ERROR", "REFUSED_STREAM", "CANCEL", "COMPRESSION_ERROR",
        "CONNECT_ERROR", "ENHANCE_YOUR_CALM", "INADEQUATE_SECURITY", "HTTP_1_1_REQUIRED", "OTHER"};
    Napi::Object goaway = Napi::Object::New(env);
    for (uint32_t i = 1; i < 15; ++i) goaway.Set(kGoaway[i], Napi::Number::New(env, static_cast<double>(c->goaway[i])));
    o.Set("h2GoawayByCode", goaway);
    return o;
  });
}

// The connection's HTTP error with what the engine answered: "<why> (answered 431)",
// "<why> (GOAWAY 11)", or "<why>" when nothing was sent.
Napi::Value ZeroIo::HttpError(const Napi::CallbackInfo& info) {
  return OnId(info, [&](ShardSlot* s, uint32_t idx, uint32_t gen) -> Napi::Value {
    uint32_t answered = 0;
    std::string why = s->shard->conn_http_error(idx, gen, &answered);
    if (!why.empty() && answered >= 1000) why += " (GOAWAY " + std::to_string(answered - 1000) + ")";
    else if (!why.empty() && answered > 0) why += " (answered " + std::to_string(answered) + ")";
    return Napi::String::New(info.Env(), why);
  });
}

}  // namespace zio::binding

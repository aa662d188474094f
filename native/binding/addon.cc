// native/binding/addon.cc — registration and core calls of the addon (rules: binding/addon.h).
#include "binding/addon.h"

namespace zio::binding {

HandleRegistry& Registry() {
  static HandleRegistry r;  // NOLINT: process-wide by design (cross-environment)
  return r;
}

std::shared_ptr<zio::HandleQueue> FindQueue(uint64_t id) {
  std::lock_guard<std::mutex> g(Registry().mu);
  auto it = Registry().map.find(id);
  return it == Registry().map.end() ? nullptr : it->second.lock();
}

TlsRegistry& Tls() {
  static TlsRegistry r;  // NOLINT: process-wide by design (cross-environment)
  return r;
}

void OnPollClose(uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); }
void OnTeardownPollClose(uv_handle_t* h) {
  auto hook = static_cast<napi_async_cleanup_hook_handle>(h->data);
  delete reinterpret_cast<uv_poll_t*>(h);
  napi_remove_async_cleanup_hook(hook);  // teardown may now go on (and unload the addon)
}

void OnEnvTeardown(napi_async_cleanup_hook_handle hook, void* arg) {
  Driver* d = static_cast<Driver*>(arg);
  d->hook = nullptr;
  if (!d->poll) {
    napi_remove_async_cleanup_hook(hook);
    return;
  }
  uv_poll_stop(d->poll);
  d->poll->data = hook;
  uv_close(reinterpret_cast<uv_handle_t*>(d->poll), OnTeardownPollClose);
  d->poll = nullptr;
}

void StopDriver(ShardSlot* s) {
  if (!s->driver) return;
  Driver* d = s->driver.get();
  if (d->hook) {
    napi_remove_async_cleanup_hook(d->hook);
    d->hook = nullptr;
  }
  if (d->poll) {
    uv_poll_stop(d->poll);
    uv_close(reinterpret_cast<uv_handle_t*>(d->poll), OnPollClose);
    d->poll = nullptr;
  }
  d->cb.Reset();
  d->ctx.reset();
  s->driver.reset();
  if (s->shard) s->shard->set_timer_op_mode(false);
}

void Kick(Shard* sh) {
  if (!sh->driver().deferred()) {  // the ring fd is watched: post a completion
    io_uring_sqe* sqe = sh->driver().get_sqe();
    io_uring_prep_nop(sqe);
    io_uring_sqe_set_data64(sqe, 0);
    sh->driver().submit();
    return;
  }
  uint64_t one = 1;
  ssize_t r = write(sh->driver().wake_fd(), &one, sizeof one);
  (void)r;
}

void Nudge(ShardSlot* s) {
  if (!s->driver || s->in_batch) return;
  s->shard->flush(false);
  Kick(s->shard.get());
}

ZeroIo::ZeroIo(Napi::Env env, Napi::Object exports) {
  DefineAddon(exports, {
      InstanceMethod("probe", &ZeroIo::Probe),
      InstanceMethod("features", &ZeroIo::Features),
      InstanceMethod("version", &ZeroIo::Version),
      InstanceMethod("createShard", &ZeroIo::CreateShard),
      InstanceMethod("destroyShard", &ZeroIo::DestroyShard),
      InstanceMethod("buffers", &ZeroIo::Buffers),
      InstanceMethod("poll", &ZeroIo::Poll),
      InstanceMethod("tcpListen", &ZeroIo::TcpListen),
      InstanceMethod("udsListen", &ZeroIo::UdsListen),
      InstanceMethod("endpointClose", &ZeroIo::EndpointClose),
      InstanceMethod("udpBind", &ZeroIo::UdpBind),
      InstanceMethod("udpSend", &ZeroIo::UdpSend),
      InstanceMethod("udpMulticast", &ZeroIo::UdpMulticast),
      InstanceMethod("udpStats", &ZeroIo::UdpStats),
      InstanceMethod("handleId", &ZeroIo::HandleId),
      InstanceMethod("detachRx", &ZeroIo::DetachRx),
      InstanceMethod("ownedRelease", &ZeroIo::OwnedRelease),
      InstanceMethod("slotView", &ZeroIo::SlotView),
      InstanceMethod("handleAttach", &ZeroIo::HandleAttach),
      InstanceMethod("handlePush", &ZeroIo::HandlePush),
      InstanceMethod("handleReservoir", &ZeroIo::HandleReservoir),
      InstanceMethod("handleTakeSlot", &ZeroIo::HandleTakeSlot),
      InstanceMethod("udpSendSlot", &ZeroIo::UdpSendSlot),
      InstanceMethod("slotAcquire", &ZeroIo::SlotAcquire),
      InstanceMethod("slotRelease", &ZeroIo::SlotRelease),
      InstanceMethod("writeSlot", &ZeroIo::WriteSlot),
      InstanceMethod("ifIndex", &ZeroIo::IfIndex),
      InstanceMethod("endpointAddress", &ZeroIo::EndpointAddress),
      InstanceMethod("connReserve", &ZeroIo::ConnReserve),
      InstanceMethod("connConnect", &ZeroIo::ConnConnect),
      InstanceMethod("connConnectUds", &ZeroIo::ConnConnectUds),
      InstanceMethod("connFail", &ZeroIo::ConnFail),
      InstanceMethod("write", &ZeroIo::Write),
      InstanceMethod("close", &ZeroIo::Close),
      InstanceMethod("closeGraceful", &ZeroIo::CloseGraceful),
      InstanceMethod("closeAll", &ZeroIo::CloseAll),
      InstanceMethod("setHalfOpen", &ZeroIo::SetHalfOpen),
      InstanceMethod("pauseRecv", &ZeroIo::PauseRecv),
      InstanceMethod("connSetConnectTimeout", &ZeroIo::ConnSetConnectTimeout),
      InstanceMethod("connEndpoint", &ZeroIo::ConnEndpoint),
      InstanceMethod("end", &ZeroIo::End),
      InstanceMethod("connPeer", &ZeroIo::ConnPeer),
      InstanceMethod("connProto", &ZeroIo::ConnProto),
      InstanceMethod("httpEnable", &ZeroIo::HttpEnable),
      InstanceMethod("httpTemplate", &ZeroIo::HttpTemplateNew),
      InstanceMethod("httpTemplateFree", &ZeroIo::HttpTemplateFree),
      InstanceMethod("httpRespondTemplate", &ZeroIo::HttpRespondTemplate),
      InstanceMethod("httpRespond", &ZeroIo::HttpRespond),
      InstanceMethod("httpStats", &ZeroIo::HttpStats),
      InstanceMethod("httpError", &ZeroIo::HttpError),
      InstanceMethod("httpStreamStart", &ZeroIo::HttpStreamStart),
      InstanceMethod("httpStreamWrite", &ZeroIo::HttpStreamWrite),
      InstanceMethod("httpStreamEnd", &ZeroIo::HttpStreamEnd),
      InstanceMethod("connStats", &ZeroIo::ConnStats),
      InstanceMethod("poolStats", &ZeroIo::PoolStats),
      InstanceMethod("resetPeaks", &ZeroIo::ResetPeaks),
      InstanceMethod("poolPressure", &ZeroIo::PoolPressure),
      InstanceMethod("startDriver", &ZeroIo::StartDriver),
      InstanceMethod("stopDriver", &ZeroIo::StopDriverJs),
      InstanceMethod("benchFillEvents", &ZeroIo::BenchFillEvents),
      InstanceMethod("reuseportGroup", &ZeroIo::ReuseportGroup),
      InstanceMethod("attachSteering", &ZeroIo::AttachSteering),
      InstanceMethod("adoptListener", &ZeroIo::AdoptListener),
      InstanceMethod("adoptUdp", &ZeroIo::AdoptUdp),
      InstanceMethod("closeFd", &ZeroIo::CloseFd),
      InstanceMethod("threadAffinity", &ZeroIo::ThreadAffinity),
      InstanceMethod("currentCpu", &ZeroIo::CurrentCpu),
      InstanceMethod("tlsServerContext", &ZeroIo::TlsServerContext),
      InstanceMethod("tlsClientContext", &ZeroIo::TlsClientContext),
      InstanceMethod("tlsReload", &ZeroIo::TlsReload),
      InstanceMethod("tlsRelease", &ZeroIo::TlsRelease),
      InstanceMethod("tlsSlotGeneration", &ZeroIo::TlsSlotGeneration),
      InstanceMethod("endpointSetTls", &ZeroIo::EndpointSetTls),
      InstanceMethod("connSetTlsClient", &ZeroIo::ConnSetTlsClient),
      InstanceMethod("connTlsUpgrade", &ZeroIo::ConnTlsUpgrade),
      InstanceMethod("connTlsInfo", &ZeroIo::ConnTlsInfo),
      InstanceMethod("ktlsAvailable", &ZeroIo::KtlsAvailable),
      InstanceMethod("tlsLibrary", &ZeroIo::TlsLibrary),
      InstanceMethod("wsEnable", &ZeroIo::WsEnable),
      InstanceMethod("wsSend", &ZeroIo::WsSend),
      InstanceMethod("wsClose", &ZeroIo::WsClose),
      InstanceMethod("wsAccept", &ZeroIo::WsAccept),
      InstanceMethod("wsReject", &ZeroIo::WsReject),
      InstanceMethod("wsBuffered", &ZeroIo::WsBuffered),
      InstanceMethod("wsCloseInfo", &ZeroIo::WsCloseInfo),
      InstanceMethod("wsSubscribe", &ZeroIo::WsSubscribe),
      InstanceMethod("wsPublish", &ZeroIo::WsPublish),
      InstanceMethod("wsBroadcast", &ZeroIo::WsBroadcast),
      InstanceMethod("wsTopicCount", &ZeroIo::WsTopicCount),
      InstanceMethod("wsStats", &ZeroIo::WsStats),
      InstanceMethod("wsClientStart", &ZeroIo::WsClientStart),
      InstanceMethod("wsProtocol", &ZeroIo::WsProtocol),
      InstanceMethod("quicListen", &ZeroIo::QuicListen),
      InstanceMethod("quicServe", &ZeroIo::QuicServe),
      InstanceMethod("quicConnect", &ZeroIo::QuicConnect),
      InstanceMethod("quicConnectRace", &ZeroIo::QuicConnectRace),
      InstanceMethod("streamWriteTo", &ZeroIo::QuicStreamWrite),
      InstanceMethod("quicStreamShutdown", &ZeroIo::QuicStreamShutdown),
      InstanceMethod("quicOpenStream", &ZeroIo::QuicOpenStream),
      InstanceMethod("quicDatagram", &ZeroIo::QuicDatagram),
      InstanceMethod("quicDatagramMax", &ZeroIo::QuicDatagramMax),
      InstanceMethod("quicClose", &ZeroIo::QuicClose),
      InstanceMethod("quicAlpn", &ZeroIo::QuicAlpn),
      InstanceMethod("quicCloseInfo", &ZeroIo::QuicCloseInfo),
      InstanceMethod("quicStats", &ZeroIo::QuicStats),
      InstanceMethod("quicStreamPull", &ZeroIo::QuicStreamPull),
      InstanceMethod("streamReadFrom", &ZeroIo::QuicStreamRead),
      InstanceMethod("quicMigration", &ZeroIo::QuicMigration),
      InstanceMethod("quicSetTicket", &ZeroIo::QuicSetTicket),
      InstanceMethod("quicTicket", &ZeroIo::QuicTicket),
      InstanceMethod("quicEarlyData", &ZeroIo::QuicEarlyData),
  });
}

ZeroIo::~ZeroIo() {
  // Environment teardown (process exit or worker termination): release every shard.
  for (auto& s : shards_) {
    if (!s) continue;
    StopDriver(s.get());
    s->shard.reset();
  }
}

void ZeroIo::FinishDestroy(uint32_t id) {
  if (id < shards_.size() && shards_[id]) {
    if (shards_[id]->handle_id) {
      std::lock_guard<std::mutex> g(Registry().mu);
      Registry().map.erase(shards_[id]->handle_id);
    }
    StopDriver(shards_[id].get());
    shards_[id].reset();
  }
}

Napi::Error ZeroIo::IoError(Napi::Env env, const char* kind, const std::string& msg) {
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("zioKind", Napi::String::New(env, kind));
  return e;
}

ShardSlot* ZeroIo::GetSlot(const Napi::CallbackInfo& info) {
  uint32_t id = info[0].As<Napi::Number>().Uint32Value();
  if (id >= shards_.size() || !shards_[id] || !shards_[id]->shard || shards_[id]->destroy_requested)
    throw IoError(info.Env(), "ShardClosed", "this Io was closed; create a new Io");
  return shards_[id].get();
}

// The answer of a write: outside a batch (timers, promises) nothing else will flush, so what
// was queued is sent now.
Napi::Value ZeroIo::Written(const Napi::CallbackInfo& info, ShardSlot* s, int64_t r) {
  if (r > 0 && s->driver && !s->in_batch) s->shard->flush(false);
  return Napi::Number::New(info.Env(), static_cast<double>(r));
}

// The answer of a call that queued work for the shard: a success (0) wakes its loop.
Napi::Value ZeroIo::Queued(const Napi::CallbackInfo& info, ShardSlot* s, int r) {
  if (r == 0) Nudge(s);
  return Napi::Number::New(info.Env(), r);
}

Napi::Value ZeroIo::Probe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  zio::UringProbe p;
  zio::probe_uring(&p);
  Napi::Object o = Napi::Object::New(env);
  char kv[64];
  snprintf(kv, sizeof kv, "%u.%u.%u", p.kernel.major, p.kernel.minor, p.kernel.patch);
  o.Set("kernel", kv);
  o.Set("available", p.available);
  o.Set("setupErrno", p.setup_errno);
  o.Set("ioUringDisabled", p.io_uring_disabled);
  o.Set("singleIssuer", p.single_issuer);
  o.Set("deferTaskrun", p.defer_taskrun);
  o.Set("coopTaskrun", p.coop_taskrun);
  o.Set("bufRing", p.buf_ring);
  o.Set("multishotAccept", p.multishot_accept);
  o.Set("multishotRecv", p.multishot_recv);
  o.Set("opsOk", p.ops_ok);
  zio::UdpProbe u;
  zio::probe_udp(&u);
  o.Set("udpGso", u.gso);
  o.Set("udpGro", u.gro);
  return o;
}

// version() -> the engine's version (@zero-io/core's, set by the build): the loader checks them.
// The same string with a tag, readable without loading the binary (tooling/platform-package-check.mjs
// checks a cross-built engine before publishing).
__attribute__((used)) static const char kVersionTag[] = "zero-io-engine-version=" ZIO_VERSION;
Napi::Value ZeroIo::Version(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), kVersionTag + sizeof("zero-io-engine-version=") - 1);
}

Napi::Value ZeroIo::Features(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Array a = Napi::Array::New(env);
  uint32_t i = 0;
  const char* list = ZIO_FEATURES;  // set by CMake: a comma-separated list
  std::string cur;
  for (const char* p = list;; ++p) {
    if (*p == ',' || *p == 0) {
      if (!cur.empty()) a.Set(i++, cur);
      cur.clear();
      if (!*p) break;
    } else {
      cur.push_back(*p);
    }
  }
  return a;
}

Napi::Value ZeroIo::CreateShard(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = info[0].As<Napi::Object>();
  ShardConfig c;
  auto u32 = [&](const char* k, uint32_t& dst) {
    Napi::Value v = o.Get(k);
    if (v.IsNumber()) dst = v.As<Napi::Number>().Uint32Value();
  };
  u32("poolSlotCount", c.pool_slot_count);
  u32("poolSlotSize", c.pool_slot_size);
  u32("maxConnections", c.max_connections);
  u32("maxEventsPerPoll", c.max_events_per_poll);
  u32("poolPressurePct", c.pool_pressure_pct);
  u32("maxWriteQueueBytes", c.max_write_queue_bytes);
  u32("maxEndpoints", c.max_endpoints);
  u32("sqEntries", c.sq_entries);
  u32("handleQueue", c.handle_queue);
  u32("udpGroBuffers", c.gro_buffers);
  Napi::Value hp = o.Get("hugePages");
  if (hp.IsString()) {
    std::string h = hp.As<Napi::String>();
    c.huge_pages = h == "on" ? zio::HugePages::On : h == "off" ? zio::HugePages::Off
                                                              : zio::HugePages::Auto;
  }
  Napi::Value dt = o.Get("deferTaskrun");
  if (dt.IsBoolean()) c.defer_taskrun = dt.As<Napi::Boolean>();
  Napi::Value be = o.Get("backend");
  if (be.IsString()) {
    std::string b = be.As<Napi::String>();
    if (b == "io_uring") c.backend = zio::Backend::IoUring;
    else if (b == "epoll") c.backend = zio::Backend::Epoll;
    else if (b == "auto") c.backend = zio::Backend::Auto;
    else throw IoError(env, "InvalidConfig", "backend must be 'auto', 'io_uring' or 'epoll'");
  }
  Napi::Value nd = o.Get("noDelay");
  if (nd.IsBoolean()) c.no_delay = nd.As<Napi::Boolean>();
  if (c.max_connections == 0 || c.max_connections >= kIndexMax)
    throw IoError(env, "InvalidConfig", "maxConnections must be between 1 and 1048575");
  if (c.max_events_per_poll < 4)
    throw IoError(env, "InvalidConfig", "maxEventsPerPoll must be at least 4");

  auto slot = std::make_unique<ShardSlot>();
  slot->shard = std::make_unique<Shard>();
  std::string kind, err;
  int r = slot->shard->init(c, &kind, &err);
  if (r < 0) {
    Napi::Error e = IoError(env, kind.c_str(), err);
    e.Set("errno", Napi::Number::New(env, -r));
    const auto& p = slot->shard->probe();
    if (kind == "KernelTooOld") {
      char found[48];
      snprintf(found, sizeof found, "%u.%u.%u", p.kernel.major, p.kernel.minor, p.kernel.patch);
      e.Set("found", found);
      e.Set("required", "6.0");
    }
    if (kind == "NotSupportedOnBackend") {
      e.Set("backend", "io_uring");
      e.Set("feature", "io_uring_setup");
    }
    throw e;
  }
  uint32_t id = 0;
  while (id < shards_.size() && shards_[id]) ++id;
  if (id == shards_.size()) shards_.emplace_back();
  shards_[id] = std::move(slot);
  return Napi::Number::New(env, id);
}

Napi::Value ZeroIo::DestroyShard(const Napi::CallbackInfo& info) {
  uint32_t id = info[0].As<Napi::Number>().Uint32Value();
  if (id >= shards_.size() || !shards_[id]) return info.Env().Undefined();
  ShardSlot* s = shards_[id].get();
  if (s->in_batch) {
    s->destroy_requested = true;  // finished by OnWake once the batch returns
    return info.Env().Undefined();
  }
  FinishDestroy(id);
  return info.Env().Undefined();
}

Napi::Value ZeroIo::Buffers(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Shard* sh = Get(info);
  Napi::Object o = Napi::Object::New(env);
  // External ArrayBuffers over the event ring and the pool. Each holds a shared_ptr so the
  // memory outlives the shard for as long as JS can still see it.
  auto pool = new std::shared_ptr<zio::SlotPool>(sh->pool());
  napi_value pool_ab;
  napi_status st = napi_create_external_arraybuffer(
      env, (*pool)->base(), (*pool)->bytes(),
      [](napi_env, void*, void* hint) { delete static_cast<std::shared_ptr<zio::SlotPool>*>(hint); },
      pool, &pool_ab);
  if (st != napi_ok) {
    delete pool;
    throw IoError(env, "NotSupportedOnPlatform",
                  "this runtime forbids external ArrayBuffers (napi_no_external_buffers_allowed); "
                  "zero-io needs them to share its slot pool with JavaScript");
  }
  auto ev = new std::shared_ptr<zio::EventRec[]>(sh->events());
  napi_value ev_ab;
  st = napi_create_external_arraybuffer(
      env, ev->get(), sizeof(zio::EventRec) * sh->events_capacity(),
      [](napi_env, void*, void* hint) { delete static_cast<std::shared_ptr<zio::EventRec[]>*>(hint); },
      ev, &ev_ab);
  if (st != napi_ok) {
    delete ev;
    throw IoError(env, "NotSupportedOnPlatform", "external ArrayBuffer for the event ring refused");
  }
  o.Set("pool", Napi::Value(env, pool_ab));
  o.Set("events", Napi::Value(env, ev_ab));
  o.Set("slotSize", sh->pool()->slot_size());
  o.Set("slotCount", sh->pool()->slot_count());
  o.Set("rxSlots", sh->pool()->rx_slots());
  o.Set("backing", zio::pool_backing_name(sh->pool()->backing()));
  o.Set("setupFlags", sh->driver().setup_flags());
  o.Set("backend", zio::backend_name(sh->backend()));
  o.Set("backendReason", sh->fallback_reason());
  return o;
}

Napi::Value ZeroIo::Poll(const Napi::CallbackInfo& info) {
  ShardSlot* s = GetSlot(info);
  if (s->driver)
    throw IoError(info.Env(), "DriverRunning",
                  "poll() cannot be called while runSync() drives this Io; stop it first");
  double t = info[1].As<Napi::Number>().DoubleValue();
  int n = s->shard->tick(t < 0 ? -1 : static_cast<int64_t>(t));
  return Napi::Number::New(info.Env(), n);
}

int ZeroIo::ParseAddr(const std::string& ip, uint32_t port, sockaddr_storage* ss, socklen_t* len) {
  memset(ss, 0, sizeof *ss);
  auto* s4 = reinterpret_cast<sockaddr_in*>(ss);
  auto* s6 = reinterpret_cast<sockaddr_in6*>(ss);
  if (inet_pton(AF_INET, ip.c_str(), &s4->sin_addr) == 1) {
    s4->sin_family = AF_INET;
    s4->sin_port = htons(port);
    *len = sizeof *s4;
    return 0;
  }
  if (inet_pton(AF_INET6, ip.c_str(), &s6->sin6_addr) == 1) {
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons(port);
    *len = sizeof *s6;
    return 0;
  }
  return -EINVAL;
}

Napi::Value ZeroIo::AddrToJs(Napi::Env env, const sockaddr_storage& ss) {
  Napi::Array a = Napi::Array::New(env, 3);
  char buf[INET6_ADDRSTRLEN] = {0};
  if (ss.ss_family == AF_INET) {
    auto* s4 = reinterpret_cast<const sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &s4->sin_addr, buf, sizeof buf);
    a.Set(0u, "IPv4");
    a.Set(1u, buf);
    a.Set(2u, ntohs(s4->sin_port));
  } else if (ss.ss_family == AF_INET6) {
    auto* s6 = reinterpret_cast<const sockaddr_in6*>(&ss);
    inet_ntop(AF_INET6, &s6->sin6_addr, buf, sizeof buf);
    a.Set(0u, "IPv6");
    a.Set(1u, buf);
    a.Set(2u, ntohs(s6->sin6_port));
  } else {
    auto* su = reinterpret_cast<const sockaddr_un*>(&ss);
    a.Set(0u, "unix");
    // An abstract name (first byte NUL) reads as '@name', as ss(8) prints it (the rest of
    // sun_path is NUL padding, as node:net binds them).
    if (su->sun_path[0] == 0 && su->sun_path[1] != 0) {
      std::string name(1, '@');
      name.append(su->sun_path + 1, strnlen(su->sun_path + 1, sizeof su->sun_path - 1));
      a.Set(1u, name);
    } else
      a.Set(1u, su->sun_path);
    a.Set(2u, 0);
  }
  return a;
}

// info[i] = an IP string, info[i + 1] = a port: the sockaddr, or throws InvalidAddress.
void ZeroIo::ReadIpPort(const Napi::CallbackInfo& info, size_t i, sockaddr_storage* ss, socklen_t* len) {
  std::string ip = info[i].As<Napi::String>();
  uint32_t port = info[i + 1].As<Napi::Number>().Uint32Value();
  if (ParseAddr(ip, port, ss, len) < 0)
    throw IoError(info.Env(), "InvalidAddress", "not an IP address: " + ip);
}

Napi::Value ZeroIo::SyscallResult(Napi::Env env, int64_t r, const char* op) {
  if (r >= 0) return Napi::Number::New(env, static_cast<double>(r));
  Napi::Error e = IoError(env, r == zio::kErrTableFull ? "TableFull" : "SyscallFailed",
                          r == zio::kErrTableFull ? "table full" : strerror(static_cast<int>(-r)));
  e.Set("errno", Napi::Number::New(env, static_cast<double>(-r)));
  e.Set("syscall", op ? op : "");
  throw e;
}

Napi::Value ZeroIo::TcpListen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ShardSlot* s = GetSlot(info);
  int backlog = info[3].As<Napi::Number>().Int32Value();
  bool reuse = info[4].As<Napi::Boolean>();
  sockaddr_storage ss{};
  socklen_t len;
  ReadIpPort(info, 1, &ss, &len);
  const char* op = nullptr;
  int64_t r = s->shard->tcp_listen(reinterpret_cast<sockaddr*>(&ss), len, backlog, reuse, &op);
  if (r < 0) return SyscallResult(env, r, op);
  return Napi::Number::New(env, JoinEpId(static_cast<uint32_t>(r), s->shard->endpoint_gen(r)));
}

Napi::Value ZeroIo::UdsListen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ShardSlot* s = GetSlot(info);
  std::string path = info[1].As<Napi::String>();
  int backlog = info[2].As<Napi::Number>().Int32Value();
  const char* op = nullptr;
  int64_t r = s->shard->uds_listen(path, backlog, &op);
  if (r < 0) return SyscallResult(env, r, op);
  return Napi::Number::New(env, JoinEpId(static_cast<uint32_t>(r), s->shard->endpoint_gen(r)));
}

Napi::Value ZeroIo::EndpointClose(const Napi::CallbackInfo& info) {
  return OnEp(info, [&](ShardSlot* s, uint32_t idx, uint32_t gen) {
    return Queued(info, s, s->shard->endpoint_close(idx, gen));
  });
}

// handleId(shard) -> the registry id of this shard's IoHandle queue (registered once).
Napi::Value ZeroIo::HandleId(const Napi::CallbackInfo& info) {
  ShardSlot* s = GetSlot(info);
  if (!s->handle_id) {
    std::lock_guard<std::mutex> g(Registry().mu);
    s->handle_id = Registry().next++;
    Registry().map[s->handle_id] = s->shard->handle_queue();
  }
  return Napi::Number::New(info.Env(), static_cast<double>(s->handle_id));
}

Napi::Value ZeroIo::DetachRx(const Napi::CallbackInfo& info) {
  Shard* sh = Get(info);
  double off = info[1].As<Napi::Number>().DoubleValue();
  if (!(off >= 0)) return Napi::Number::New(info.Env(), zio::kErrStaleId);
  return Napi::Number::New(info.Env(), static_cast<double>(sh->detach_rx(static_cast<uint64_t>(off))));
}

Napi::Value ZeroIo::OwnedRelease(const Napi::CallbackInfo& info) {
  ShardSlot* s = GetSlot(info);  // on success parked readers may resume
  return Queued(info, s, s->shard->owned_release(info[1].As<Napi::Number>().Uint32Value()));
}

// slotView(handleId, off, len) -> an ArrayBuffer over [off, off+len) of that shard's pool, for
// an OwnedSlot transferred to this thread (keeps the pool mapped while it lives), or null.
Napi::Value ZeroIo::SlotView(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t id = static_cast<uint64_t>(info[0].As<Napi::Number>().DoubleValue());
  std::shared_ptr<zio::HandleQueue> q = FindQueue(id);
  if (!q || !q->pool) return env.Null();
  double off = info[1].As<Napi::Number>().DoubleValue();
  double len = info[2].As<Napi::Number>().DoubleValue();
  if (!(off >= 0) || !(len >= 0) || off + len > static_cast<double>(q->pool->bytes())) return env.Null();
  auto hold = new std::shared_ptr<zio::SlotPool>(q->pool);
  napi_value ab;
  if (napi_create_external_arraybuffer(
          env, q->pool->base() + static_cast<size_t>(off), static_cast<size_t>(len),
          [](napi_env, void*, void* hint) { delete static_cast<std::shared_ptr<zio::SlotPool>*>(hint); },
          hold, &ab) != napi_ok) {
    delete hold;
    throw IoError(env, "NotSupportedOnPlatform", "external ArrayBuffer refused for an OwnedSlot view");
  }
  return Napi::Value(env, ab);
}

// handleAttach(id) -> an external holding the queue (any thread), or null when it is gone.
Napi::Value ZeroIo::HandleAttach(const Napi::CallbackInfo& info) {
  uint64_t id = static_cast<uint64_t>(info[0].As<Napi::Number>().DoubleValue());
  std::shared_ptr<zio::HandleQueue> q = FindQueue(id);
  if (!q || q->closed()) return info.Env().Null();
  return Napi::External<std::shared_ptr<zio::HandleQueue>>::New(
      info.Env(), new std::shared_ptr<zio::HandleQueue>(std::move(q)),
      [](Napi::Env, std::shared_ptr<zio::HandleQueue>* p) { delete p; });
}

// handlePush(external, op, conn, arg, data?, count?) -> 0, or -1 full / -2 shard gone / -3 too big.
// `count` (without data) is a byte count carried by the command (streamWriteBuffer).
Napi::Value ZeroIo::HandlePush(const Napi::CallbackInfo& info) {
  auto* q = info[0].As<Napi::External<std::shared_ptr<zio::HandleQueue>>>().Data();
  uint8_t op = static_cast<uint8_t>(info[1].As<Napi::Number>().Uint32Value());
  double id = info[2].As<Napi::Number>().DoubleValue();
  if (!(id >= 0) || id > 9007199254740991.0) return Napi::Number::New(info.Env(), -5);
  uint32_t arg = info[3].As<Napi::Number>().Uint32Value();
  const uint8_t* data = nullptr;
  size_t len = 0;
  if (info.Length() > 4 && !info[4].IsUndefined()) ReadBytes(info, 4, "IoHandle.streamWrite", &data, &len);
  else if (info.Length() > 5 && info[5].IsNumber()) len = info[5].As<Napi::Number>().Uint32Value();
  if (len > zio::HandleQueue::kMaxPayload) return Napi::Number::New(info.Env(), zio::HandleQueue::kTooBig);
  int r = (*q)->push(op, static_cast<uint64_t>(id), arg, data, static_cast<uint32_t>(len));
  return Napi::Number::New(info.Env(), r);
}

// handleReservoir(shard, n): keep n slots ready for IoHandle.sendBuffer.
Napi::Value ZeroIo::HandleReservoir(const Napi::CallbackInfo& info) {
  Get(info)->set_handle_reservoir(info[1].As<Napi::Number>().Uint32Value());
  return info.Env().Undefined();
}

// handleTakeSlot(external) -> [slot, ArrayBuffer over the slot] (the caller holds one
// reference), or null when the reservoir is empty (a refill is requested).
Napi::Value ZeroIo::HandleTakeSlot(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto& q = *info[0].As<Napi::External<std::shared_ptr<zio::HandleQueue>>>().Data();
  if (!q->pool) return env.Null();
  int64_t slot = q->take_slot();
  if (slot < 0) return env.Null();
  auto hold = new std::shared_ptr<zio::SlotPool>(q->pool);
  napi_value ab;
  if (napi_create_external_arraybuffer(
          env, q->pool->slot_ptr(static_cast<uint32_t>(slot)), q->pool->slot_size(),
          [](napi_env, void*, void* hint) { delete static_cast<std::shared_ptr<zio::SlotPool>*>(hint); },
          hold, &ab) != napi_ok) {
    delete hold;
    q->push(zio::kHandleReleaseSlot, static_cast<uint64_t>(slot), 0, nullptr, 0);
    throw IoError(env, "NotSupportedOnPlatform", "external ArrayBuffer refused for a SendBuffer view");
  }
  Napi::Array a = Napi::Array::New(env, 2);
  a.Set(0u, Napi::Number::New(env, static_cast<double>(slot)));
  a.Set(1u, Napi::Value(env, ab));
  return a;
}

// slotAcquire(shard) -> slot index (a SendBuffer's), or kErrPoolExhausted.
Napi::Value ZeroIo::SlotAcquire(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(Get(info)->slot_acquire()));
}

Napi::Value ZeroIo::SlotRelease(const Napi::CallbackInfo& info) {
  ShardSlot* s = GetSlot(info);  // on success a pool waiter may now write
  return Queued(info, s, s->shard->slot_release(info[1].As<Napi::Number>().Uint32Value()));
}

// writeSlot(shard, conn, slot, off, len) -> bytes queued (len or 0) or a negative code.
Napi::Value ZeroIo::WriteSlot(const Napi::CallbackInfo& info) {
  return OnId(info, [&](ShardSlot* s, uint32_t idx, uint32_t gen) {
    return Written(info, s, s->shard->conn_write_slot(idx, gen, info[2].As<Napi::Number>().Uint32Value(),
                                                      info[3].As<Napi::Number>().Uint32Value(),
                                                      info[4].As<Napi::Number>().Uint32Value()));
  });
}

Napi::Value ZeroIo::EndpointAddress(const Napi::CallbackInfo& info) {
  Shard* sh = Get(info);
  uint32_t idx, gen;
  bool ok = EpIdAt(info, 1, &idx, &gen);
  return AddrOrNull(info.Env(), [&](sockaddr_storage* ss, socklen_t* len) {
    return ok ? sh->endpoint_local(idx, gen, ss, len) : zio::kErrStaleId;
  });
}

Napi::Value ZeroIo::ConnReserve(const Napi::CallbackInfo& info) {
  Shard* sh = Get(info);
  int32_t proto = info[1].As<Napi::Number>().Int32Value();
  int64_t r = sh->conn_reserve(proto);
  if (r < 0) return Napi::Number::New(info.Env(), static_cast<double>(r));
  uint32_t idx = static_cast<uint32_t>(r);
  return Napi::Number::New(info.Env(), JoinId(idx, sh->conn_gen(idx)));
}

Napi::Value ZeroIo::ConnConnect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ShardSlot* s = GetSlot(info);
  uint32_t idx, gen;
  if (!IdAt(info, 1, &idx, &gen))
    return Napi::Number::New(env, zio::kErrStaleId);
  Napi::Array ips = info[2].As<Napi::Array>();
  uint32_t port = info[3].As<Napi::Number>().Uint32Value();
  uint32_t delay = info[4].As<Napi::Number>().Uint32Value();
  sockaddr_in6 addrs[zio::kHeMax];
  uint32_t n = 0;
  for (uint32_t i = 0; i < ips.Length() && n < zio::kHeMax; ++i) {
    sockaddr_storage ss{};
    socklen_t len;
    std::string ip = ips.Get(i).As<Napi::String>();
    if (ParseAddr(ip, port, &ss, &len) < 0) continue;
    memcpy(&addrs[n++], &ss, sizeof(sockaddr_in6));
  }
  if (n == 0) return Napi::Number::New(env, -EINVAL);
  int r = s->shard->conn_connect(idx, gen, addrs, n, delay);
  Nudge(s);
  return Napi::Number::New(env, r);
}

Napi::Value ZeroIo::ConnConnectUds(const Napi::CallbackInfo& info) {
  return OnId(info, [&](ShardSlot* s, uint32_t idx, uint32_t gen) {
    std::string path = info[2].As<Napi::String>();
    return Napi::Number::New(info.Env(), s->shard->conn_connect_uds(idx, gen, path));
  });
}

Napi::Value ZeroIo::ConnFail(const Napi::CallbackInfo& info) {
  return OnId(info, [&](ShardSlot* s, uint32_t idx, uint32_t gen) {
    int r = s->shard->conn_fail(idx, gen, info[2].As<Napi::Number>().Int32Value());
    Nudge(s);
    return Napi::Number::New(info.Env(), r);
  });
}

// Reads a Uint8Array at info[at] and, when given, (offset, length) within it at info[at+1],
// info[at+2] (as fs.write(fd, buffer, offset, length)). Throws InvalidArgument otherwise.
void ZeroIo::ReadBytes(const Napi::CallbackInfo& info, size_t at, const char* what,
                      const uint8_t** data, size_t* length) {
  napi_typedarray_type type;
  void* d;
  if (napi_get_typedarray_info(info.Env(), info[at], &type, length, &d, nullptr, nullptr) != napi_ok ||
      type != napi_uint8_array)
    throw IoError(info.Env(), "InvalidArgument", std::string(what) + " expects a Uint8Array (or Buffer)");
  *data = static_cast<const uint8_t*>(d);
  if (info.Length() > at + 2 && !info[at + 1].IsUndefined()) {
    double o = info[at + 1].As<Napi::Number>().DoubleValue();
    double l = info[at + 2].As<Napi::Number>().DoubleValue();
    if (!(o >= 0) || !(l >= 0) || o + l > static_cast<double>(*length))
      throw IoError(info.Env(), "InvalidArgument", std::string(what) + ": offset/length out of the buffer's bounds");
    *data += static_cast<size_t>(o);
    *length = static_cast<size_t>(l);
  }
}

// Hot path: write(shard, conn, Uint8Array[, offset, length]) -> bytes accepted or a negative code.
Napi::Value ZeroIo::Write(const Napi::CallbackInfo& info) {
  return OnId(info, [&](ShardSlot* s, uint32_t idx, uint32_t gen) {
    const uint8_t* data;
    size_t length;
    ReadBytes(info, 2, "streamWrite", &data, &length);
    return Written(info, s, s->shard->conn_write(idx, gen, data, length));
  });
}

Napi::Value ZeroIo::Close(const Napi::CallbackInfo& info) {
  return OnId(info, [&](ShardSlot* s, uint32_t idx, uint32_t gen) {
    return Queued(info, s, s->shard->conn_close(idx, gen));
  });
}

Napi::Value ZeroIo::CloseGraceful(const Napi::CallbackInfo& info) {
  return OnId(info, [&](ShardSlot* s, uint32_t idx, uint32_t gen) {
    return Queued(info, s, s->shard->conn_close_graceful(idx, gen, info[2].As<Napi::Number>().Uint32Value()));
  });
}

// setHalfOpen(shard, id, on, isEndpoint): allowHalfOpen on a listener or a connection.
Napi::Value ZeroIo::SetHalfOpen(const Napi::CallbackInfo& info) {
  bool on = info[2].ToBoolean();
  if (info[3].ToBoolean()) {
    return OnEp(info, [&](ShardSlot* s, uint32_t idx, uint32_t gen) {
      return Queued(info, s, s->shard->endpoint_set_half_open(idx, gen, on));
    });
  }
  return OnId(info, [&](ShardSlot* s, uint32_t idx, uint32_t gen) {
    return Queued(info, s, s->shard->conn_set_half_open(idx, gen, on));
  });
}

// connSetConnectTimeout(shard, conn, ms)
Napi::Value ZeroIo::ConnSetConnectTimeout(const Napi::CallbackInfo& info) {
  return OnId(info, [&](ShardSlot* s, uint32_t idx, uint32_t gen) {
    return Queued(info, s, s->shard->conn_set_connect_timeout(idx, gen, info[2].As<Napi::Number>().Uint32Value()));
  });
}

// pauseRecv(shard, conn, pause)
Napi::Value ZeroIo::PauseRecv(const Napi::CallbackInfo& info) {
  return OnId(info, [&](ShardSlot* s, uint32_t idx, uint32_t gen) {
    return Queued(info, s, s->shard->conn_pause_recv(idx, gen, info[2].ToBoolean()));
  });
}

// end(shard, conn): FIN after what is queued; reading goes on.
Napi::Value ZeroIo::End(const Napi::CallbackInfo& info) {
  return OnId(info, [&](ShardSlot* s, uint32_t idx, uint32_t gen) {
    return Queued(info, s, s->shard->conn_end(idx, gen));
  });
}

// connEndpoint(shard, conn) -> endpoint id, -1 (outbound) or a negative code.
Napi::Value ZeroIo::ConnEndpoint(const Napi::CallbackInfo& info) {
  return OnId(info, [&](ShardSlot* s, uint32_t idx, uint32_t gen) {
    int64_t r = s->shard->conn_endpoint(idx, gen);
    return Napi::Number::New(info.Env(), r < 0 ? static_cast<double>(r) : kEndpointTag + static_cast<double>(r));
  });
}

Napi::Value ZeroIo::CloseAll(const Napi::CallbackInfo& info) {
  ShardSlot* s = GetSlot(info);
  s->shard->close_all(info[1].As<Napi::Number>().Uint32Value());
  Nudge(s);
  return info.Env().Undefined();
}

Napi::Value ZeroIo::ConnPeer(const Napi::CallbackInfo& info) {
  Shard* sh = Get(info);
  uint32_t idx, gen;
  bool ok = IdAt(info, 1, &idx, &gen);
  return AddrOrNull(info.Env(), [&](sockaddr_storage* ss, socklen_t* len) {
    return ok ? sh->conn_peer(idx, gen, ss, len) : zio::kErrStaleId;
  });
}

// connStats(shard, conn) -> { rttUs, ... } or a negative code.
Napi::Value ZeroIo::ConnStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Shard* sh = Get(info);
  uint32_t idx, gen;
  if (!IdAt(info, 1, &idx, &gen))
    return Napi::Number::New(env, zio::kErrStaleId);
  zio::TcpStats t;
  bool quic = sh->conn_proto(idx, gen) == zio::kProtoQuic;
  int r = quic ? sh->quic_conn_stats(idx, gen, &t) : sh->conn_tcp_info(idx, gen, &t);
  if (r < 0) return Napi::Number::New(env, r);
  Napi::Object o = Napi::Object::New(env);
  auto n = [&](const char* k, double v) { o.Set(k, Napi::Number::New(env, v)); };
  n("rttUs", t.rtt_us);
  n("rttVarUs", t.rttvar_us);
  n("minRttUs", t.min_rtt_us);
  n("cwnd", t.cwnd);
  n("ssthresh", t.ssthresh);
  n("mss", t.mss);
  n("retransmits", t.retransmits);
  n("lost", t.lost);
  n("unacked", t.unacked);
  n("bytesSent", static_cast<double>(t.bytes_sent));
  n("bytesRetrans", static_cast<double>(t.bytes_retrans));
  n("bytesAcked", static_cast<double>(t.bytes_acked));
  n("bytesReceived", static_cast<double>(t.bytes_received));
  n("deliveryRate", static_cast<double>(t.delivery_rate));
  n("bytesIn", static_cast<double>(t.bytes_in));
  n("bytesOut", static_cast<double>(t.bytes_out));
  const zio::ConnTls* tl = sh->conn_tls(idx, gen);
  o.Set("tls", quic || tl != nullptr);
  o.Set("ktls", tl && tl->ktls == zio::Ktls::Active);
  return o;
}

Napi::Value ZeroIo::ConnProto(const Napi::CallbackInfo& info) {
  return OnId(info, [&](ShardSlot* s, uint32_t idx, uint32_t gen) {
    return Napi::Number::New(info.Env(), s->shard->conn_proto(idx, gen));
  });
}

Napi::Value ZeroIo::StartDriver(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t id = info[0].As<Napi::Number>().Uint32Value();
  ShardSlot* s = GetSlot(info);
  if (s->driver) throw IoError(env, "DriverRunning", "runSync() is already driving this Io");
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || !loop)
    throw IoError(env, "NotSupportedOnPlatform", "this runtime exposes no libuv loop");
  auto d = std::make_unique<Driver>();
  d->cb = Napi::Persistent(info[1].As<Napi::Function>());
  d->ctx = std::make_unique<Napi::AsyncContext>(env, "zero-io:batch");
  d->slot = s;
  d->env = env;
  d->poll = new uv_poll_t;
  int r = uv_poll_init(loop, d->poll, s->shard->driver().poll_fd());
  if (r != 0) {
    delete d->poll;
    throw IoError(env, "SyscallFailed", std::string("uv_poll_init failed: ") + uv_strerror(r));
  }
  d->poll->data = d.get();
  if (napi_add_async_cleanup_hook(env, OnEnvTeardown, d.get(), &d->hook) != napi_ok) d->hook = nullptr;
  s->driver = std::move(d);
  s->shard->set_timer_op_mode(true);
  uv_poll_start(s->driver->poll, UV_READABLE, OnWake);
  (void)id;
  Kick(s->shard.get());  // first tick now: events may already be waiting
  return env.Undefined();
}

Napi::Value ZeroIo::StopDriverJs(const Napi::CallbackInfo& info) {
  ShardSlot* s = GetSlot(info);
  if (s->in_batch) s->stop_requested = true;  // finished by OnWake once the batch returns
  else StopDriver(s);
  return info.Env().Undefined();
}

// Benchmark support: writes n synthetic StreamFrame records so the JS drain cost can be
// measured without the kernel in the loop. Returns n (capped at the ring capacity).
Napi::Value ZeroIo::BenchFillEvents(const Napi::CallbackInfo& info) {
  Shard* sh = Get(info);
  uint32_t n = info[1].As<Napi::Number>().Uint32Value();
  if (n > sh->events_capacity()) n = sh->events_capacity();
  zio::EventRec* e = sh->events().get();
  for (uint32_t i = 0; i < n; ++i)
    e[i] = zio::EventRec{zio::kEvStreamFrame, static_cast<int32_t>(i % 64), 1, 0, i * 64u, 32u, 0, 0};
  return Napi::Number::New(info.Env(), n);
}

// Batches run per wake-up before the loop gets its turn back (Kick brings us back at once):
// many small batches share one wake-up (a Kick per batch would cost an eventfd write and a
// loop turn each), but no wake-up holds Node's event loop for more than about 2 ms.
constexpr int kBatchesPerWake = 64;
constexpr int64_t kWakeBudgetNs = 2000000;

int64_t MonotonicNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

void OnWake(uv_poll_t* h, int status, int events) {
  (void)status;
  (void)events;
  Driver* d = static_cast<Driver*>(h->data);
  ShardSlot* s = d->slot;
  Shard* sh = s->shard.get();
  if (sh->driver().deferred()) sh->driver().drain_eventfd();
  // Plain Node-API calls with their status checked, no C++ exceptions: while the environment
  // is being torn down (process.exit() or Worker.terminate() from a handler) these calls fail,
  // and turning that failure into a Napi::Error is itself fatal. Then we just stop.
  napi_env env = d->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value global, cb;
  if (napi_get_global(env, &global) != napi_ok ||
      napi_get_reference_value(env, static_cast<napi_ref>(d->cb), &cb) != napi_ok || cb == nullptr) {
    napi_close_handle_scope(env, scope);
    return;
  }
  // Awake: completions posted meanwhile (e.g. sends finishing inline at submit) need not wake
  // us through the eventfd; we re-check before going back to sleep.
  sh->driver().eventfd_signals(false);
  const int64_t started = MonotonicNs();
  for (int round = 0; round < kBatchesPerWake && (round == 0 || MonotonicNs() - started < kWakeBudgetNs); ++round) {
    int n = sh->tick(0);
    if (n > 0) {
      s->in_batch = true;
      napi_value argv, result, exc = nullptr;
      napi_status st = napi_create_uint32(env, static_cast<uint32_t>(n), &argv);
      if (st == napi_ok) st = napi_make_callback(env, *d->ctx, global, cb, 1, &argv, &result);
      if (st == napi_pending_exception) {
        if (napi_get_and_clear_last_exception(env, &exc) != napi_ok) exc = nullptr;
      } else if (st != napi_ok) {
        // The environment is going away (it cannot run JS any more): leave the shard as it
        // is; the environment's cleanup hooks destroy it.
        s->in_batch = false;
        napi_close_handle_scope(env, scope);
        return;
      }
      s->in_batch = false;
      if (s->destroy_requested) {
        ZeroIo* addon = static_cast<ZeroIo*>(nullptr);
        napi_get_instance_data(env, reinterpret_cast<void**>(&addon));
        if (addon) {
          auto& v = addon->shards();
          for (uint32_t i = 0; i < v.size(); ++i)
            if (v[i].get() == s) { addon->FinishDestroy(i); break; }
        }
        if (exc) napi_fatal_exception(env, exc);
        napi_close_handle_scope(env, scope);
        return;
      }
      if (exc) {
        sh->end_batch();
        sh->driver().eventfd_signals(true);
        Kick(sh);  // the error goes to 'uncaughtException'; anything pending is served next wake
        napi_fatal_exception(env, exc);
        napi_close_handle_scope(env, scope);
        return;
      }
      if (s->stop_requested) {  // stopDriver() from inside the batch
        s->stop_requested = false;
        sh->end_batch();
        sh->driver().eventfd_signals(true);
        StopDriver(s);
        napi_close_handle_scope(env, scope);
        return;
      }
    }
    sh->end_batch();
    if (!sh->has_pending_work()) {
      sh->driver().eventfd_signals(true);
      if (!sh->has_pending_work()) {  // nothing slipped in while signals were off
        napi_close_handle_scope(env, scope);
        return;
      }
      sh->driver().eventfd_signals(false);
    }
  }
  sh->driver().eventfd_signals(true);
  Kick(sh);  // still busy: let the loop run other callbacks, then come back
  napi_close_handle_scope(env, scope);
}

}  // namespace zio::binding

using zio::binding::ZeroIo;
NODE_API_ADDON(ZeroIo)
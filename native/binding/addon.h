// native/binding/addon.h — the addon class and the helpers its files share. The binding is the ONLY
// code that includes node-addon-api / node_api.h: addon.cc (registration, core calls, the libuv
// driver), tls.cc, udp.cc (one file per protocol, DESIGN.md section 7).
//
// Rules:
// - Context-aware: all state lives in the Addon instance (one per Node environment, so each
//   worker thread owns its shards). Nothing per-shard in statics.
// - Hot-path calls (poll, write, close) return numbers; negative values are kErr* / -errno codes
//   that the TypeScript layer turns into IoError. Only set-up calls throw, and they throw a
//   plain Error carrying `zioKind` and typed fields, which the TS layer re-wraps.
// - JS is entered from the libuv driver exactly once per batch, through MakeCallback (so
//   microtasks drain) and never from inside Shard code. A JS exception that escapes the
//   dispatcher goes to napi_fatal_exception (the process's 'uncaughtException'), never abort().
// - A shard may be destroyed from inside its own batch callback: destruction is deferred until
//   the callback returns.
#pragma once
#include <arpa/inet.h>
#include <sched.h>
#include <net/if.h>
#include <napi.h>
#include <unistd.h>
#include <uv.h>
#include <cerrno>
#include <cstring>
#include <memory>
#include <mutex>
#include <set>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>
#include "shard/reuseport.h"
#include "shard/shard.h"

namespace zio::binding {

using zio::Shard;
using zio::ShardConfig;

constexpr double kIdShift = 1048576.0;  // ids are gen * 2^20 + index
constexpr uint32_t kIndexMax = 1u << 20;

// Endpoint ids carry this tag (above any connection id: gen < 2^24, index < 2^20), so an
// endpoint id passed where a connection id belongs (or the reverse) is refused as stale
// instead of naming another connection.
constexpr double kEndpointTag = 17592186044416.0;  // 2^44

inline bool SplitId(double id, uint32_t* index, uint32_t* gen) {
  if (!(id >= 0) || id >= kEndpointTag) return false;
  uint64_t v = static_cast<uint64_t>(id);
  *index = static_cast<uint32_t>(v & (kIndexMax - 1));
  *gen = static_cast<uint32_t>(v >> 20);
  return true;
}
// The connection id argument at info[i]; false for a malformed one (callers answer kErrStaleId).
inline bool IdAt(const Napi::CallbackInfo& info, size_t i, uint32_t* index, uint32_t* gen) {
  return info[i].IsNumber() && SplitId(info[i].As<Napi::Number>().DoubleValue(), index, gen);
}
// The endpoint id argument at info[i] (tagged); false for anything else.
inline bool EpIdAt(const Napi::CallbackInfo& info, size_t i, uint32_t* index, uint32_t* gen) {
  if (!info[i].IsNumber()) return false;
  double v = info[i].As<Napi::Number>().DoubleValue();
  return v >= kEndpointTag && SplitId(v - kEndpointTag, index, gen);
}
inline double JoinId(uint32_t index, uint32_t gen) { return gen * kIdShift + index; }
inline double JoinEpId(uint32_t index, uint32_t gen) { return kEndpointTag + gen * kIdShift + index; }

// Option readers for the config objects the TypeScript layer validated: a number / a flag, or the default.
inline double OptNum(Napi::Object o, const char* k, double def) {
  Napi::Value v = o.Get(k);
  return v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : def;
}
inline bool OptFlag(Napi::Object o, const char* k, bool def) {
  Napi::Value v = o.Get(k);
  return v.IsBoolean() ? v.As<Napi::Boolean>().Value() : def;
}

struct ShardSlot;

// A response built once in JS (ZeroResponse) and answered many times: its fields checked once,
// stored here, serialised per answer with that request's Date / framing / Connection.
struct HttpTemplate {
  uint16_t status = 200;
  std::vector<std::string> strs;       // name, value, name, value ...
  std::vector<zio::http1::Field> fields;
  std::string body;
  zio::HttpEncoded encoded;            // its compressed bodies, made on first need
};

// IoHandle registry: the only process-wide state of the addon. Worker threads have their own
// addon instance (one per Node environment) and reach another thread's shard queue through
// this map, by the numeric id a handle carries across postMessage. It holds weak references:
// the queue lives as long as its shard or an attached handle (docs/architecture/0005).
struct HandleRegistry {
  std::mutex mu;
  std::unordered_map<uint64_t, std::weak_ptr<zio::HandleQueue>> map;
  uint64_t next = 1;
};
HandleRegistry& Registry();
std::shared_ptr<zio::HandleQueue> FindQueue(uint64_t id);

// TLS contexts and certificate slots, by id: process-wide like the handle registry, so a
// CertReloadHandle (which carries only the id) works from any thread. Released by the TS layer's
// FinalizationRegistry (tlsRelease); a listener or connection keeps its own reference.
struct TlsRegistry {
  std::mutex mu;
  std::unordered_map<uint64_t, std::shared_ptr<zio::tls::CertSlot>> slots;
  std::unordered_map<uint64_t, std::shared_ptr<zio::tls::Context>> clients;
  uint64_t next = 1;
};
TlsRegistry& Tls();

struct Driver {
  uv_poll_t* poll = nullptr;
  // Environment teardown closes the poll handle through this hook, so Node keeps the addon
  // loaded until libuv has run our close callback (a close callback run after the addon is
  // unloaded jumps into unmapped memory: seen on worker termination).
  napi_async_cleanup_hook_handle hook = nullptr;
  Napi::FunctionReference cb;
  std::unique_ptr<Napi::AsyncContext> ctx;
  ShardSlot* slot = nullptr;
  napi_env env = nullptr;
};

struct ShardSlot {
  std::unique_ptr<Shard> shard;
  std::unique_ptr<Driver> driver;
  bool in_batch = false;
  bool destroy_requested = false;
  bool stop_requested = false;
  uint64_t handle_id = 0;  // registered IoHandle queue, 0 when none
};

void OnPollClose(uv_handle_t* h);

void OnTeardownPollClose(uv_handle_t* h);

// Environment teardown (worker termination, process exit) with a driver still running.
void OnEnvTeardown(napi_async_cleanup_hook_handle hook, void* arg);

void StopDriver(ShardSlot* s);

// Makes the driver's watched fd readable so OnWake runs soon.
void Kick(Shard* sh);

void OnWake(uv_poll_t* h, int status, int events);

// After a control call (close, connect, ...) made outside a batch (a timer, a promise), no tick
// is coming to submit its SQEs, arm its timers or emit the events it owes (Disconnected): submit
// now and wake the driver. Inside a batch, OnWake does both when the batch returns.
void Nudge(ShardSlot* s);

class ZeroIo : public Napi::Addon<ZeroIo> {
 public:
  ZeroIo(Napi::Env env, Napi::Object exports);
  ~ZeroIo();

  void FinishDestroy(uint32_t id);
  std::vector<std::unique_ptr<ShardSlot>>& shards() { return shards_; }

 private:
  static Napi::Error IoError(Napi::Env env, const char* kind, const std::string& msg);

  ShardSlot* GetSlot(const Napi::CallbackInfo& info);
  Shard* Get(const Napi::CallbackInfo& info) { return GetSlot(info)->shard.get(); }

  // The shape of a call on one connection or endpoint: info[0] is the shard (ShardClosed when
  // it is gone), info[1] the id. A malformed id answers kErrStaleId, as a stale one does inside
  // the shard; otherwise the answer is `op(slot, index, generation)`.
  // The address an engine call wrote, as [family, address, port], or null when it failed. Zeroed
  // first: an abstract Unix name comes at its exact length, not NUL-terminated.
  template <typename Call>
  static Napi::Value AddrOrNull(Napi::Env env, Call call) {
    sockaddr_storage ss{};
    socklen_t len;
    return call(&ss, &len) < 0 ? env.Null() : AddrToJs(env, ss);
  }
  template <typename Parse, typename Op>
  Napi::Value OnIdWith(const Napi::CallbackInfo& info, Parse parse, Op op) {
    ShardSlot* s = GetSlot(info);
    uint32_t idx, gen;
    if (!parse(info, 1, &idx, &gen)) return Napi::Number::New(info.Env(), zio::kErrStaleId);
    return op(s, idx, gen);
  }
  template <typename Op>
  Napi::Value OnId(const Napi::CallbackInfo& info, Op op) { return OnIdWith(info, IdAt, op); }
  // The same for a call on one endpoint (info[1] an endpoint id).
  template <typename Op>
  Napi::Value OnEp(const Napi::CallbackInfo& info, Op op) { return OnIdWith(info, EpIdAt, op); }
  // The answer of a write: outside a batch (timers, promises) nothing else will flush, so what
  // was queued is sent now.
  Napi::Value Written(const Napi::CallbackInfo& info, ShardSlot* s, int64_t r);
  // The answer of a call that queued work for the shard: a success (0) wakes its loop.
  Napi::Value Queued(const Napi::CallbackInfo& info, ShardSlot* s, int r);

  Napi::Value Probe(const Napi::CallbackInfo& info);

  Napi::Value Features(const Napi::CallbackInfo& info);
  Napi::Value Version(const Napi::CallbackInfo& info);

  // tlsLibrary() -> the TLS stack linked into the addon (BoringSSL, from quiche's build).
  Napi::Value TlsLibrary(const Napi::CallbackInfo& info);

  Napi::Value CreateShard(const Napi::CallbackInfo& info);

  Napi::Value DestroyShard(const Napi::CallbackInfo& info);

  Napi::Value Buffers(const Napi::CallbackInfo& info);

  Napi::Value Poll(const Napi::CallbackInfo& info);

  static int ParseAddr(const std::string& ip, uint32_t port, sockaddr_storage* ss, socklen_t* len);

  static Napi::Value AddrToJs(Napi::Env env, const sockaddr_storage& ss);

  // info[i] = an IP string, info[i + 1] = a port: the sockaddr, or throws InvalidAddress.
  static void ReadIpPort(const Napi::CallbackInfo& info, size_t i, sockaddr_storage* ss, socklen_t* len);

  Napi::Value SyscallResult(Napi::Env env, int64_t r, const char* op);

  Napi::Value TcpListen(const Napi::CallbackInfo& info);

  Napi::Value UdsListen(const Napi::CallbackInfo& info);

  Napi::Value EndpointClose(const Napi::CallbackInfo& info);

  // udpBind(shard, ip, port, { reuseAddr, reusePort, broadcast, ipv6Only, recvBufferSize,
  //   sendBufferSize, ttl, multicastTtl, multicastLoopback, multicastInterface, sendQueue })
  static zio::UdpOptions ReadUdpOptions(Napi::Value v);

  Napi::Value UdpBind(const Napi::CallbackInfo& info);

  // Reads a destination: a pool offset of a received sockaddr (number), an IP string + port,
  // or a Uint8Array holding a sockaddr. False when it is not a usable IPv4/IPv6 address.
  static bool ReadDest(Napi::Env env, Shard* sh, napi_value v, uint32_t port, sockaddr_storage* ss,
                       socklen_t* len);

  // The common head of the UDP send calls: endpoint id at info[1], destination at info[2..3].
  // False for a malformed id (the caller answers kErrStaleId); throws for a bad destination.
  static bool ReadUdpTarget(const Napi::CallbackInfo& info, Shard* sh, uint32_t* idx, uint32_t* gen,
                            sockaddr_storage* ss, socklen_t* sl);

  // Hot path: udpSend(shard, ep, to, port, data, offset, length, gso) -> 0 or a negative code.
  Napi::Value UdpSend(const Napi::CallbackInfo& info);

  // udpSendSlot(shard, ep, to, port, slot, off, len) -> 0 or a negative code (SendBuffer).
  Napi::Value UdpSendSlot(const Napi::CallbackInfo& info);

  // handleId(shard) -> the registry id of this shard's IoHandle queue (registered once).
  Napi::Value HandleId(const Napi::CallbackInfo& info);

  Napi::Value DetachRx(const Napi::CallbackInfo& info);

  Napi::Value OwnedRelease(const Napi::CallbackInfo& info);

  // slotView(handleId, off, len) -> an ArrayBuffer over [off, off+len) of that shard's pool, for
  // an OwnedSlot transferred to this thread (keeps the pool mapped while it lives), or null.
  Napi::Value SlotView(const Napi::CallbackInfo& info);

  // handleAttach(id) -> an external holding the queue (any thread), or null when it is gone.
  Napi::Value HandleAttach(const Napi::CallbackInfo& info);

  // handlePush(external, op, conn, arg, data?, count?) -> 0, or -1 full / -2 shard gone / -3 too big.
  // `count` (without data) is a byte count carried by the command (streamWriteBuffer).
  Napi::Value HandlePush(const Napi::CallbackInfo& info);

  // handleReservoir(shard, n): keep n slots ready for IoHandle.sendBuffer.
  Napi::Value HandleReservoir(const Napi::CallbackInfo& info);

  // handleTakeSlot(external) -> [slot, ArrayBuffer over the slot] (the caller holds one
  // reference), or null when the reservoir is empty (a refill is requested).
  Napi::Value HandleTakeSlot(const Napi::CallbackInfo& info);

  // slotAcquire(shard) -> slot index (a SendBuffer's), or kErrPoolExhausted.
  Napi::Value SlotAcquire(const Napi::CallbackInfo& info);

  Napi::Value SlotRelease(const Napi::CallbackInfo& info);

  // writeSlot(shard, conn, slot, off, len) -> bytes queued (len or 0) or a negative code.
  Napi::Value WriteSlot(const Napi::CallbackInfo& info);

  // udpMulticast(shard, ep, join, groupIp, sourceIp | null, ifindex) -> undefined (throws).
  Napi::Value UdpMulticast(const Napi::CallbackInfo& info);

  Napi::Value UdpStats(const Napi::CallbackInfo& info);

  // ifIndex(name) -> interface index (0 when unknown).
  Napi::Value IfIndex(const Napi::CallbackInfo& info);

  Napi::Value EndpointAddress(const Napi::CallbackInfo& info);

  Napi::Value ConnReserve(const Napi::CallbackInfo& info);

  Napi::Value ConnConnect(const Napi::CallbackInfo& info);

  Napi::Value ConnConnectUds(const Napi::CallbackInfo& info);

  Napi::Value ConnFail(const Napi::CallbackInfo& info);

  // Reads a Uint8Array at info[at] and, when given, (offset, length) within it at info[at+1],
  // info[at+2] (as fs.write(fd, buffer, offset, length)). Throws InvalidArgument otherwise.
  static void ReadBytes(const Napi::CallbackInfo& info, size_t at, const char* what,
                        const uint8_t** data, size_t* length);

  // Hot path: write(shard, conn, Uint8Array[, offset, length]) -> bytes accepted or a negative code.
  Napi::Value Write(const Napi::CallbackInfo& info);

  Napi::Value Close(const Napi::CallbackInfo& info);

  Napi::Value CloseGraceful(const Napi::CallbackInfo& info);

  // setHalfOpen(shard, id, on, isEndpoint): allowHalfOpen on a listener or a connection.
  Napi::Value SetHalfOpen(const Napi::CallbackInfo& info);

  // connSetConnectTimeout(shard, conn, ms)
  Napi::Value ConnSetConnectTimeout(const Napi::CallbackInfo& info);

  // pauseRecv(shard, conn, pause)
  Napi::Value PauseRecv(const Napi::CallbackInfo& info);

  // end(shard, conn): FIN after what is queued; reading goes on.
  Napi::Value End(const Napi::CallbackInfo& info);

  // connEndpoint(shard, conn) -> endpoint id, -1 (outbound) or a negative code.
  Napi::Value ConnEndpoint(const Napi::CallbackInfo& info);

  Napi::Value CloseAll(const Napi::CallbackInfo& info);

  Napi::Value ConnPeer(const Napi::CallbackInfo& info);

  // connStats(shard, conn) -> { rttUs, ... } or a negative code.
  Napi::Value ConnStats(const Napi::CallbackInfo& info);

  // QUIC (binding/quic.cc)
  Napi::Value QuicListen(const Napi::CallbackInfo& info);
  Napi::Value QuicServe(const Napi::CallbackInfo& info);
  std::shared_ptr<zio::QuicEndpoint> QuicServerEndpoint(Napi::Env env, double slot_id, Napi::Object o, const char* what);
  Napi::Value QuicConnect(const Napi::CallbackInfo& info);
  Napi::Value QuicConnectRace(const Napi::CallbackInfo& info);
  std::shared_ptr<zio::QuicEndpoint> QuicClientModel(Napi::Env env, double ctx_id, Napi::Object settings);
  Napi::Value QuicStreamWrite(const Napi::CallbackInfo& info);
  Napi::Value QuicStreamShutdown(const Napi::CallbackInfo& info);
  Napi::Value QuicOpenStream(const Napi::CallbackInfo& info);
  Napi::Value QuicDatagram(const Napi::CallbackInfo& info);
  Napi::Value QuicDatagramMax(const Napi::CallbackInfo& info);
  Napi::Value QuicClose(const Napi::CallbackInfo& info);
  Napi::Value QuicAlpn(const Napi::CallbackInfo& info);
  Napi::Value QuicCloseInfo(const Napi::CallbackInfo& info);
  Napi::Value QuicStats(const Napi::CallbackInfo& info);
  Napi::Value QuicStreamPull(const Napi::CallbackInfo& info);
  Napi::Value QuicStreamRead(const Napi::CallbackInfo& info);
  Napi::Value QuicMigration(const Napi::CallbackInfo& info);
  Napi::Value QuicSetTicket(const Napi::CallbackInfo& info);
  Napi::Value QuicTicket(const Napi::CallbackInfo& info);
  Napi::Value QuicEarlyData(const Napi::CallbackInfo& info);

  // ---- TLS ----
  static std::string Str(Napi::Object o, const char* k);
  static std::vector<std::string> Strs(Napi::Object o, const char* k);
  static uint16_t Version(Napi::Object o, const char* k, uint16_t def);
  static std::vector<zio::tls::CertKey> Certs(Napi::Value v);

  // tlsServerContext({ certs: [{cert, key, names}], alpn, minVersion, maxVersion, ciphers,
  //   clientAuth, ca, tickets }) -> slot id. Throws TlsInvalidCertificate / InvalidConfig.
  Napi::Value TlsServerContext(const Napi::CallbackInfo& info);

  static Napi::Error TlsError(Napi::Env env, const std::string& err);

  // tlsClientContext({ servername, alpn, minVersion, maxVersion, ciphers, ca, verify, cert,
  //   key, resume }) -> context id.
  Napi::Value TlsClientContext(const Napi::CallbackInfo& info);

  static std::shared_ptr<zio::tls::CertSlot> FindSlot(double id);
  // A context for a handshake: a client context, or a server slot's current one.
  static std::shared_ptr<zio::tls::Context> FindCtx(double id);

  // tlsReload(slotId, certs) -> generation. Any thread; throws and keeps the old certificate.
  Napi::Value TlsReload(const Napi::CallbackInfo& info);

  Napi::Value TlsSlotGeneration(const Napi::CallbackInfo& info);

  Napi::Value TlsRelease(const Napi::CallbackInfo& info);

  // endpointSetTls(shard, ep, slotId, handshakeTimeoutMs) -> 0 or kErr*.
  Napi::Value EndpointSetTls(const Napi::CallbackInfo& info);

  // (shard, conn, ctxId, handshakeTimeoutMs) -> 0 or kErr*: starts a connection's TLS session
  // with a registered context through `start` (a connect's client side, or STARTTLS).
  using TlsStart = int (Shard::*)(uint32_t, uint32_t, std::shared_ptr<zio::tls::Context>, uint32_t);
  Napi::Value StartTls(const Napi::CallbackInfo& info, TlsStart start);
  Napi::Value ConnSetTlsClient(const Napi::CallbackInfo& info) { return StartTls(info, &Shard::conn_set_tls_client); }
  Napi::Value ConnTlsUpgrade(const Napi::CallbackInfo& info) { return StartTls(info, &Shard::conn_tls_upgrade); }

  // connTlsInfo(shard, conn) -> { ... } or null (not TLS / stale).
  Napi::Value ConnTlsInfo(const Napi::CallbackInfo& info);

  Napi::Value KtlsAvailable(const Napi::CallbackInfo& info);

  Napi::Value ConnProto(const Napi::CallbackInfo& info);

  static Napi::Object Gauge(Napi::Env env, const zio::PoolGauge& g);

  // ---- IoCluster (process-wide: sockets are made here and adopted by each shard) ----

  // reuseportGroup(kind 'tcp'|'udp', ip, port, count, backlog, udpOptions)
  //   -> { fds (group order), address: [family, ip, port] }
  Napi::Value ReuseportGroup(const Napi::CallbackInfo& info);

  // attachSteering(fd, 'cbpf'|'ebpf', count, pinned: [cpu, member][])
  Napi::Value AttachSteering(const Napi::CallbackInfo& info);

  // adoptListener(shard, fd, proto) / adoptUdp(shard, fd, udpOptions) -> EndpointId
  Napi::Value AdoptListener(const Napi::CallbackInfo& info);

  Napi::Value AdoptUdp(const Napi::CallbackInfo& info);

  Napi::Value CloseFd(const Napi::CallbackInfo& info);

  // threadAffinity(cpus?) -> the calling thread's CPUs (after setting them when given)
  Napi::Value ThreadAffinity(const Napi::CallbackInfo& info);

  Napi::Value CurrentCpu(const Napi::CallbackInfo& info);

  Napi::Value PoolStats(const Napi::CallbackInfo& info);

  Napi::Value PoolPressure(const Napi::CallbackInfo& info);

  Napi::Value ResetPeaks(const Napi::CallbackInfo& info);

  Napi::Value StartDriver(const Napi::CallbackInfo& info);

  Napi::Value StopDriverJs(const Napi::CallbackInfo& info);

  // Benchmark support: writes n synthetic StreamFrame records so the JS drain cost can be
  // measured without the kernel in the loop. Returns n (capped at the ring capacity).
  Napi::Value BenchFillEvents(const Napi::CallbackInfo& info);

  // ---- HTTP (binding/http.cc) ----
  // httpEnable(shard, ep, { headerCount, headerBytes, targetBytes, bodyInline, bodyMax,
  //   requestTimeoutMs, keepAliveTimeoutMs, pipeline }) -> 0 or kErr*
  Napi::Value HttpEnable(const Napi::CallbackInfo& info);
  // httpTemplate(status, fields: string[], body: Uint8Array | string) -> template id.
  // Throws InvalidArgument for a field that could split the response.
  Napi::Value HttpTemplateNew(const Napi::CallbackInfo& info);
  Napi::Value HttpTemplateFree(const Napi::CallbackInfo& info);
  // Hot path: httpRespondTemplate(shard, conn, req, templateId) -> bytes, or a negative code.
  Napi::Value HttpRespondTemplate(const Napi::CallbackInfo& info);
  // httpRespond(shard, conn, req, status, fields: string[] | null, body: Uint8Array | string | null)
  Napi::Value HttpRespond(const Napi::CallbackInfo& info);
  // httpStats(shard, ep) -> counters, or null (not an HTTP listener / stale)
  Napi::Value HttpStats(const Napi::CallbackInfo& info);
  // httpError(shard, conn) -> the connection's last HTTP protocol error ('' when none)
  Napi::Value HttpError(const Napi::CallbackInfo& info);
  Napi::Value Answered(const Napi::CallbackInfo& info, ShardSlot* s, int64_t r);
  void ReadFieldsReused(Napi::Value v);
  // Streamed answers: httpStreamStart(shard, conn, req, status, fields) -> 0 or a negative code;
  // httpStreamWrite(shard, conn, req, Uint8Array | string) -> 1 (room) / 0 (wait) / negative;
  // httpStreamEnd(shard, conn, req) -> 0 or a negative code.
  Napi::Value HttpStreamStart(const Napi::CallbackInfo& info);
  Napi::Value HttpStreamWrite(const Napi::CallbackInfo& info);
  Napi::Value HttpStreamEnd(const Napi::CallbackInfo& info);

  // ---- WebSocket (binding/ws.cc) ----
  void WsBytes(const Napi::CallbackInfo& info, size_t at, const uint8_t** data, size_t* len);
  Napi::Value WsEnable(const Napi::CallbackInfo& info);
  Napi::Value WsSend(const Napi::CallbackInfo& info);
  Napi::Value WsClose(const Napi::CallbackInfo& info);
  Napi::Value WsAccept(const Napi::CallbackInfo& info);
  Napi::Value WsReject(const Napi::CallbackInfo& info);
  Napi::Value WsBuffered(const Napi::CallbackInfo& info);
  Napi::Value WsCloseInfo(const Napi::CallbackInfo& info);
  Napi::Value WsSubscribe(const Napi::CallbackInfo& info);
  Napi::Value WsPublish(const Napi::CallbackInfo& info);
  Napi::Value WsBroadcast(const Napi::CallbackInfo& info);
  Napi::Value WsTopicCount(const Napi::CallbackInfo& info);
  Napi::Value WsClientStart(const Napi::CallbackInfo& info);
  Napi::Value WsProtocol(const Napi::CallbackInfo& info);
  Napi::Value WsStats(const Napi::CallbackInfo& info);
  std::string ws_arena_, ws_topic_;
  // QUIC client configurations by settings (binding/quic.cc): shared, at most 16.
  std::unordered_map<std::string, std::shared_ptr<quiche_config>> quic_configs_;
  std::set<std::string> ws_reasons_;  // wsReject reasons (a connection's error points at one)

  std::vector<std::unique_ptr<ShardSlot>> shards_;
  std::vector<std::unique_ptr<HttpTemplate>> http_templates_;  // by id; nullptr: free
  std::vector<uint32_t> http_free_;
  // httpRespond's reused buffers: field strings, their (offset, length), the fields, a string body.
  std::string http_arena_, http_body_;
  std::vector<std::pair<size_t, size_t>> http_offsets_;
  std::vector<zio::http1::Field> http_fields_;
};

}  // namespace zio::binding

// native/binding/udp.cc — the UDP calls: bind, send (copy and SendBuffer), multicast, stats.
#include "binding/addon.h"

namespace zio::binding {

// udpBind(shard, ip, port, { reuseAddr, reusePort, broadcast, ipv6Only, recvBufferSize,
//   sendBufferSize, ttl, multicastTtl, multicastLoopback, multicastInterface, sendQueue })
zio::UdpOptions ZeroIo::ReadUdpOptions(Napi::Value v) {
  zio::UdpOptions u;
  if (!v.IsObject()) return u;
  Napi::Object o = v.As<Napi::Object>();
  auto b = [&](const char* k, bool& dst) {
    Napi::Value x = o.Get(k);
    if (x.IsBoolean()) dst = x.As<Napi::Boolean>();
  };
  auto i = [&](const char* k, int& dst) {
    Napi::Value x = o.Get(k);
    if (x.IsNumber()) dst = x.As<Napi::Number>().Int32Value();
    else if (x.IsBoolean()) dst = x.As<Napi::Boolean>() ? 1 : 0;
  };
  b("reuseAddr", u.reuse_addr);
  b("reusePort", u.reuse_port);
  b("broadcast", u.broadcast);
  b("gro", u.gro);
  i("ipv6Only", u.ipv6_only);
  i("recvBufferSize", u.rcvbuf);
  i("sendBufferSize", u.sndbuf);
  i("ttl", u.ttl);
  i("multicastTtl", u.multicast_ttl);
  i("multicastLoopback", u.multicast_loop);
  int mif = 0, q = static_cast<int>(u.send_queue);
  i("multicastInterface", mif);
  i("sendQueue", q);
  u.multicast_if = static_cast<uint32_t>(mif);
  u.send_queue = static_cast<uint32_t>(q);
  return u;
}

Napi::Value ZeroIo::UdpBind(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ShardSlot* s = GetSlot(info);
  zio::UdpOptions u = ReadUdpOptions(info[3]);
  sockaddr_storage ss{};
  socklen_t len;
  ReadIpPort(info, 1, &ss, &len);
  const char* op = nullptr;
  int64_t r = s->shard->udp_bind(reinterpret_cast<sockaddr*>(&ss), len, u, &op);
  if (r < 0) return SyscallResult(env, r, op);
  return Napi::Number::New(env, JoinEpId(static_cast<uint32_t>(r), s->shard->endpoint_gen(r)));
}

// Reads a destination: a pool offset of a received sockaddr (number), an IP string + port,
// or a Uint8Array holding a sockaddr. False when it is not a usable IPv4/IPv6 address.
bool ZeroIo::ReadDest(Napi::Env env, Shard* sh, napi_value v, uint32_t port, sockaddr_storage* ss,
                     socklen_t* len) {
  napi_valuetype t;
  napi_typeof(env, v, &t);
  const uint8_t* raw = nullptr;
  size_t avail = 0;
  if (t == napi_number) {
    double off;
    napi_get_value_double(env, v, &off);
    if (!(off >= 0) || off >= static_cast<double>(sh->pool()->bytes())) return false;
    raw = sh->pool()->base() + static_cast<size_t>(off);
    avail = sh->pool()->bytes() - static_cast<size_t>(off);
  } else if (t == napi_string) {
    char ip[INET6_ADDRSTRLEN + 1];
    size_t n = 0;
    if (napi_get_value_string_utf8(env, v, ip, sizeof ip, &n) != napi_ok || n >= INET6_ADDRSTRLEN)
      return false;
    return ParseAddr(ip, port, ss, len) == 0;
  } else {
    napi_typedarray_type tt;
    void* d;
    if (napi_get_typedarray_info(env, v, &tt, &avail, &d, nullptr, nullptr) != napi_ok ||
        tt != napi_uint8_array)
      return false;
    raw = static_cast<const uint8_t*>(d);
  }
  if (avail < sizeof(sa_family_t)) return false;
  sa_family_t fam;
  memcpy(&fam, raw, sizeof fam);
  size_t need = fam == AF_INET ? sizeof(sockaddr_in) : fam == AF_INET6 ? sizeof(sockaddr_in6) : 0;
  if (!need || avail < need) return false;
  memcpy(ss, raw, need);
  *len = static_cast<socklen_t>(need);
  return true;
}

// The common head of the UDP send calls: endpoint id at info[1], destination at info[2..3].
// False for a malformed id (the caller answers kErrStaleId); throws for a bad destination.
bool ZeroIo::ReadUdpTarget(const Napi::CallbackInfo& info, Shard* sh, uint32_t* idx, uint32_t* gen,
                          sockaddr_storage* ss, socklen_t* sl) {
  if (!EpIdAt(info, 1, idx, gen)) return false;
  if (!ReadDest(info.Env(), sh, info[2], info[3].As<Napi::Number>().Uint32Value(), ss, sl))
    throw IoError(info.Env(), "InvalidAddress", "udpSend: the destination is not an IPv4/IPv6 address");
  return true;
}

// Hot path: udpSend(shard, ep, to, port, data, offset, length, gso) -> 0 or a negative code.
Napi::Value ZeroIo::UdpSend(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ShardSlot* s = GetSlot(info);
  uint32_t idx, gen;
  sockaddr_storage ss{};
  socklen_t sl;
  if (!ReadUdpTarget(info, s->shard.get(), &idx, &gen, &ss, &sl))
    return Napi::Number::New(env, zio::kErrStaleId);
  const uint8_t* data;
  size_t length;
  ReadBytes(info, 4, "udpSend", &data, &length);
  uint32_t gso = info[7].As<Napi::Number>().Uint32Value();
  int r = s->shard->udp_send(idx, gen, reinterpret_cast<sockaddr*>(&ss), sl, data, length,
                             static_cast<uint16_t>(gso));
  if (r == 0 && s->driver && !s->in_batch) s->shard->driver().submit();
  return Napi::Number::New(env, r);
}

// udpSendSlot(shard, ep, to, port, slot, off, len) -> 0 or a negative code (SendBuffer).
Napi::Value ZeroIo::UdpSendSlot(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ShardSlot* s = GetSlot(info);
  uint32_t idx, gen;
  sockaddr_storage ss{};
  socklen_t sl;
  if (!ReadUdpTarget(info, s->shard.get(), &idx, &gen, &ss, &sl))
    return Napi::Number::New(env, zio::kErrStaleId);
  int r = s->shard->udp_send_slot(idx, gen, reinterpret_cast<sockaddr*>(&ss), sl,
                                  info[4].As<Napi::Number>().Uint32Value(),
                                  info[5].As<Napi::Number>().Uint32Value(),
                                  info[6].As<Napi::Number>().Uint32Value());
  if (r == 0 && s->driver && !s->in_batch) s->shard->driver().submit();
  return Napi::Number::New(env, r);
}

// udpMulticast(shard, ep, join, groupIp, sourceIp | null, ifindex) -> undefined (throws).
Napi::Value ZeroIo::UdpMulticast(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Shard* sh = Get(info);
  uint32_t idx, gen;
  if (!EpIdAt(info, 1, &idx, &gen))
    return Napi::Number::New(env, zio::kErrStaleId);
  bool join = info[2].As<Napi::Boolean>();
  std::string g = info[3].As<Napi::String>();
  sockaddr_storage group, source;
  socklen_t len;
  if (ParseAddr(g, 0, &group, &len) < 0)
    throw IoError(env, "InvalidAddress", "not a multicast group address: " + g);
  bool ssm = info[4].IsString();
  if (ssm) {
    std::string src = info[4].As<Napi::String>();
    if (ParseAddr(src, 0, &source, &len) < 0)
      throw IoError(env, "InvalidAddress", "not a source address: " + src);
    if (source.ss_family != group.ss_family)
      throw IoError(env, "InvalidAddress", "the source and the group must be of the same family");
  }
  uint32_t ifindex = info[5].As<Napi::Number>().Uint32Value();
  const char* op = nullptr;
  int r = sh->udp_multicast(idx, gen, join, group, ssm ? &source : nullptr, ifindex, &op);
  if (r < 0 && r > -1000) return SyscallResult(env, r, op);
  return Napi::Number::New(env, r);
}

Napi::Value ZeroIo::UdpStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Shard* sh = Get(info);
  uint32_t idx, gen;
  const zio::Endpoint* e = nullptr;
  if (EpIdAt(info, 1, &idx, &gen)) e = sh->endpoint(idx, gen);
  if (!e || e->kind != zio::EpKind::Udp) return env.Null();
  Napi::Object o = Napi::Object::New(env);
  o.Set("datagramsReceived", static_cast<double>(e->rx_datagrams));
  o.Set("datagramsTruncated", static_cast<double>(e->rx_truncated));
  o.Set("datagramsSent", static_cast<double>(e->tx_datagrams));
  o.Set("sendErrors", static_cast<double>(e->tx_errors));
  o.Set("lastSendErrno", e->tx_last_errno);
  o.Set("sendQueued", e->udp_queued);
  o.Set("sendQueueCapacity", static_cast<double>(e->udp_tx.size()));
  o.Set("maxDatagram", static_cast<double>(sh->udp_max_datagram()));
  o.Set("maxReceive", static_cast<double>(sh->udp_max_receive(*e)));
  o.Set("gro", e->gro);
  return o;
}

// ifIndex(name) -> interface index (0 when unknown).
Napi::Value ZeroIo::IfIndex(const Napi::CallbackInfo& info) {
  std::string name = info[0].As<Napi::String>();
  return Napi::Number::New(info.Env(), if_nametoindex(name.c_str()));
}

}  // namespace zio::binding

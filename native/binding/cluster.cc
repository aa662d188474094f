// native/binding/cluster.cc — the IoCluster calls: reuseport groups and their steering program,
// adopting a listener or UDP socket made for a shard, thread affinity.
#include "binding/addon.h"

namespace zio::binding {

Napi::Value ZeroIo::ReuseportGroup(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bool tcp = std::string(info[0].As<Napi::String>()) == "tcp";
  uint32_t count = info[3].As<Napi::Number>().Uint32Value();
  int backlog = info[4].As<Napi::Number>().Int32Value();
  zio::UdpOptions u = ReadUdpOptions(info[5]);
  sockaddr_storage ss{};
  socklen_t len;
  ReadIpPort(info, 1, &ss, &len);
  std::vector<int> fds;
  const char* op = nullptr;
  int r = zio::reuseport_group(tcp, reinterpret_cast<sockaddr*>(&ss), len, count, backlog, u, &fds, &op);
  if (r < 0) return SyscallResult(env, r, op);
  Napi::Array a = Napi::Array::New(env, fds.size());
  for (uint32_t i = 0; i < fds.size(); ++i) a.Set(i, fds[i]);
  sockaddr_storage got{};
  socklen_t gl = sizeof got;
  getsockname(fds[0], reinterpret_cast<sockaddr*>(&got), &gl);
  Napi::Object o = Napi::Object::New(env);
  o.Set("fds", a);
  o.Set("address", AddrToJs(env, got));
  return o;
}

// attachSteering(fd, 'cbpf'|'ebpf', count, pinned: [cpu, member][])
Napi::Value ZeroIo::AttachSteering(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  std::string kind = info[1].As<Napi::String>();
  bool ebpf = kind == "ebpf";
  if (kind == "dcid") {  // QUIC: by the destination connection id's shard bits
    std::string err;
    int r = zio::attach_dcid_cbpf(fd, info[2].As<Napi::Number>().Uint32Value(), zio::quic::kCidLen, &err);
    if (r < 0) {
      Napi::Error e = IoError(env, r == -EINVAL ? "InvalidConfig" : "NotSupportedOnBackend", err);
      e.Set("errno", Napi::Number::New(env, -r));
      throw e;
    }
    return env.Undefined();
  }
  zio::Steering st;
  st.count = info[2].As<Napi::Number>().Uint32Value();
  Napi::Array pinned = info[3].As<Napi::Array>();
  for (uint32_t i = 0; i < pinned.Length(); ++i) {
    Napi::Array pair = pinned.Get(i).As<Napi::Array>();
    st.pinned.emplace_back(pair.Get(0u).As<Napi::Number>().Uint32Value(),
                           pair.Get(1u).As<Napi::Number>().Uint32Value());
  }
  std::string err;
  int r = ebpf ? zio::attach_steering_ebpf(fd, st, &err) : zio::attach_steering_cbpf(fd, st, &err);
  if (r < 0) {
    Napi::Error e = IoError(env, "NotSupportedOnBackend", err);
    e.Set("errno", Napi::Number::New(env, -r));
    e.Set("backend", ebpf ? "SO_ATTACH_REUSEPORT_EBPF" : "SO_ATTACH_REUSEPORT_CBPF");
    e.Set("feature", ebpf ? "ReusePortEbpf" : "ReusePortCbpf");
    throw e;
  }
  return env.Undefined();
}

// adoptListener(shard, fd, proto) / adoptUdp(shard, fd, udpOptions) -> EndpointId
Napi::Value ZeroIo::AdoptListener(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ShardSlot* s = GetSlot(info);
  int fd = info[1].As<Napi::Number>().Int32Value();
  int32_t proto = info[2].As<Napi::Number>().Int32Value();
  int64_t r = s->shard->adopt_listener(fd, proto);
  if (r < 0) return SyscallResult(env, r, "adopt");
  Nudge(s);
  return Napi::Number::New(env, JoinEpId(static_cast<uint32_t>(r), s->shard->endpoint_gen(r)));
}

Napi::Value ZeroIo::AdoptUdp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ShardSlot* s = GetSlot(info);
  int fd = info[1].As<Napi::Number>().Int32Value();
  int64_t r = s->shard->udp_adopt(fd, ReadUdpOptions(info[2]));
  if (r < 0) return SyscallResult(env, r, "adopt");
  Nudge(s);
  return Napi::Number::New(env, JoinEpId(static_cast<uint32_t>(r), s->shard->endpoint_gen(r)));
}

Napi::Value ZeroIo::CloseFd(const Napi::CallbackInfo& info) {
  ::close(info[0].As<Napi::Number>().Int32Value());
  return info.Env().Undefined();
}

// threadAffinity(cpus?) -> the calling thread's CPUs (after setting them when given)
Napi::Value ZeroIo::ThreadAffinity(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() > 0 && info[0].IsArray()) {
    Napi::Array a = info[0].As<Napi::Array>();
    std::vector<int> cpus;
    for (uint32_t i = 0; i < a.Length(); ++i) cpus.push_back(a.Get(i).As<Napi::Number>().Int32Value());
    int r = zio::set_thread_affinity(cpus);
    if (r < 0) return SyscallResult(env, r, "sched_setaffinity");
  }
  std::vector<int> cpus;
  int r = zio::thread_affinity(&cpus);
  if (r < 0) return SyscallResult(env, r, "sched_getaffinity");
  Napi::Array out = Napi::Array::New(env, cpus.size());
  for (uint32_t i = 0; i < cpus.size(); ++i) out.Set(i, cpus[i]);
  return out;
}

Napi::Value ZeroIo::CurrentCpu(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), sched_getcpu());
}


}  // namespace zio::binding

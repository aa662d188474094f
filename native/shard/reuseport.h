// native/shard/reuseport.h — IoCluster's socket groups: N sockets in one SO_REUSEPORT group (one
// per shard, group index i = shard i) and the steering program that picks the member for each
// new connection / datagram: the CPU that processes the packet -> the shard pinned to that CPU
// (else cpu % N). Attached as classic BPF (SO_ATTACH_REUSEPORT_CBPF, no privileges needed) or as
// eBPF assembled here (SO_ATTACH_REUSEPORT_EBPF, a BPF_PROG_TYPE_SOCKET_FILTER program; loading
// it needs CAP_BPF or kernel.unprivileged_bpf_disabled=0).
//
// Process-wide helpers, not shard state: the fds they make are handed to shards with
// Shard::adopt_listener / Shard::udp_adopt.
#pragma once
#include <linux/bpf.h>
#include <linux/filter.h>
#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "shard/shard.h"

namespace zio {

// Makes `count` sockets bound to `sa` in one reuseport group, in order (TCP: listening with
// `backlog`; UDP: with `udp` options). Port 0 takes an ephemeral port for the first socket and
// the same port for the rest. 0 with *fds filled, or -errno with *err_op (nothing left open).
int reuseport_group(bool tcp, const sockaddr* sa, socklen_t len, uint32_t count, int backlog,
                    const UdpOptions& udp, std::vector<int>* fds, const char** err_op);

struct Steering {
  uint32_t count = 1;                                 // group members
  std::vector<std::pair<uint32_t, uint32_t>> pinned;  // (cpu, member): shards pinned to a CPU
};
std::vector<sock_filter> assemble_cbpf(const Steering& s);
std::vector<bpf_insn> assemble_ebpf(const Steering& s);
// Attach to any member (the program serves the whole group). 0 or -errno with *err.
int attach_steering_cbpf(int fd, const Steering& s, std::string* err);
int attach_steering_ebpf(int fd, const Steering& s, std::string* err);
// QUIC (DcidDispatch): steers each datagram by the shard bits of its destination connection id
// (ids of `cid_len` bytes, slot in bytes 1-2); `count` must be a power of two. 0 or -errno.
std::vector<sock_filter> assemble_dcid_cbpf(uint32_t count, uint32_t cid_len);
int attach_dcid_cbpf(int fd, uint32_t count, uint32_t cid_len, std::string* err);

// The calling thread's CPU set (sched_getaffinity / sched_setaffinity on this thread only).
int thread_affinity(std::vector<int>* cpus);
int set_thread_affinity(const std::vector<int>& cpus);

}  // namespace zio

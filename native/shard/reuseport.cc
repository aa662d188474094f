#include "shard/reuseport.h"

#include <netinet/in.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#ifndef SO_ATTACH_REUSEPORT_CBPF
#define SO_ATTACH_REUSEPORT_CBPF 51
#endif
#ifndef SO_ATTACH_REUSEPORT_EBPF
#define SO_ATTACH_REUSEPORT_EBPF 52
#endif

namespace zio {

int reuseport_group(bool tcp, const sockaddr* sa, socklen_t len, uint32_t count, int backlog,
                    const UdpOptions& udp, std::vector<int>* fds, const char** err_op) {
  fds->clear();
  if (count == 0 || (sa->sa_family != AF_INET && sa->sa_family != AF_INET6)) return -EINVAL;
  sockaddr_storage addr{};
  memcpy(&addr, sa, len);
  UdpOptions uo = udp;
  uo.reuse_port = true;
  for (uint32_t i = 0; i < count; ++i) {
    int fd;
    if (tcp) {
      // listen() is what adds a TCP socket to the group: members join in index order.
      fd = listen_socket(reinterpret_cast<sockaddr*>(&addr), len, backlog, true, err_op);
    } else {
      fd = udp_socket(sa->sa_family, uo, err_op);
      if (fd >= 0 && bind(fd, reinterpret_cast<sockaddr*>(&addr), len) < 0) {
        int e = errno;
        *err_op = "bind";
        close(fd);
        fd = -e;
      }
    }
    if (fd < 0) {
      for (int f : *fds) close(f);
      fds->clear();
      return fd;
    }
    fds->push_back(fd);
    if (i == 0) {  // the others take the port the first one got
      sockaddr_storage got{};
      socklen_t gl = sizeof got;
      getsockname(fd, reinterpret_cast<sockaddr*>(&got), &gl);
      if (sa->sa_family == AF_INET)
        reinterpret_cast<sockaddr_in*>(&addr)->sin_port = reinterpret_cast<sockaddr_in*>(&got)->sin_port;
      else
        reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port = reinterpret_cast<sockaddr_in6*>(&got)->sin6_port;
    }
  }
  return 0;
}

// A = the CPU handling the packet; a pinned CPU returns its shard's member; else A % count.
std::vector<sock_filter> assemble_cbpf(const Steering& s) {
  std::vector<sock_filter> p;
  p.push_back(sock_filter{BPF_LD | BPF_W | BPF_ABS, 0, 0, static_cast<uint32_t>(SKF_AD_OFF + SKF_AD_CPU)});
  for (const auto& [cpu, member] : s.pinned) {
    p.push_back(sock_filter{BPF_JMP | BPF_JEQ | BPF_K, 0, 1, cpu});
    p.push_back(sock_filter{BPF_RET | BPF_K, 0, 0, member});
  }
  p.push_back(sock_filter{BPF_ALU | BPF_MOD | BPF_K, 0, 0, s.count ? s.count : 1});
  p.push_back(sock_filter{BPF_RET | BPF_A, 0, 0, 0});
  return p;
}

// QUIC (RoutingStrategy.DcidDispatch): the program sees the UDP payload. A short header carries
// one of our connection ids (12 bytes) at offset 1, a long header its length at 5 and the id at 6;
// the id's bytes 1-2 hold the cluster slot (ScidGenerator: shard id in the low bits), so the
// member is slot & (count - 1). A long header with an id of another length (a client's first
// Initial) returns an out-of-range index: the kernel's flow hash picks (and that shard's own
// ids route everything after).
std::vector<sock_filter> assemble_dcid_cbpf(uint32_t count, uint32_t cid_len) {
  uint32_t mask = count > 0 ? count - 1 : 0;
  return {
      sock_filter{BPF_LD | BPF_B | BPF_ABS, 0, 0, 0},          // 0: first byte
      sock_filter{BPF_JMP | BPF_JSET | BPF_K, 0, 5, 0x80},     // 1: long header? 2 : 7
      sock_filter{BPF_LD | BPF_B | BPF_ABS, 0, 0, 5},          // 2: DCID length
      sock_filter{BPF_JMP | BPF_JEQ | BPF_K, 0, 2, cid_len},   // 3: ours? 4 : 6
      sock_filter{BPF_LD | BPF_H | BPF_ABS, 0, 0, 7},          // 4: DCID bytes 1-2
      sock_filter{BPF_JMP | BPF_JA, 0, 0, 2},                  // 5: -> 8
      sock_filter{BPF_RET | BPF_K, 0, 0, 0xffffffffu},         // 6: the kernel's hash
      sock_filter{BPF_LD | BPF_H | BPF_ABS, 0, 0, 2},          // 7: short: DCID bytes 1-2
      sock_filter{BPF_ALU | BPF_AND | BPF_K, 0, 0, mask},      // 8: the shard's bits
      sock_filter{BPF_RET | BPF_A, 0, 0, 0},                   // 9
  };
}

int attach_dcid_cbpf(int fd, uint32_t count, uint32_t cid_len, std::string* err) {
  if (count == 0 || (count & (count - 1)) != 0) {
    *err = "DcidDispatch needs a power-of-two shard count (the shard id is the low bits of the connection id's slot)";
    return -EINVAL;
  }
  std::vector<sock_filter> p = assemble_dcid_cbpf(count, cid_len);
  sock_fprog prog{static_cast<unsigned short>(p.size()), p.data()};
  if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog, sizeof prog) < 0) {
    int e = errno;
    *err = std::string("setsockopt(SO_ATTACH_REUSEPORT_CBPF) of the DCID program failed: ") + strerror(e);
    return -e;
  }
  return 0;
}

namespace {
bpf_insn insn(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
  bpf_insn i{};
  i.code = code;
  i.dst_reg = dst & 0xf;
  i.src_reg = src & 0xf;
  i.off = off;
  i.imm = imm;
  return i;
}
}  // namespace

// r0 = bpf_get_smp_processor_id(); pinned CPUs map to their member; else r0 % count.
std::vector<bpf_insn> assemble_ebpf(const Steering& s) {
  std::vector<bpf_insn> p;
  p.push_back(insn(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_get_smp_processor_id));
  for (const auto& [cpu, member] : s.pinned) {
    p.push_back(insn(BPF_JMP | BPF_JNE | BPF_K, BPF_REG_0, 0, 2, static_cast<int32_t>(cpu)));
    p.push_back(insn(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, static_cast<int32_t>(member)));
    p.push_back(insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0));
  }
  p.push_back(insn(BPF_ALU64 | BPF_MOD | BPF_K, BPF_REG_0, 0, 0, static_cast<int32_t>(s.count ? s.count : 1)));
  p.push_back(insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0));
  return p;
}

int attach_steering_cbpf(int fd, const Steering& s, std::string* err) {
  std::vector<sock_filter> p = assemble_cbpf(s);
  sock_fprog prog{static_cast<unsigned short>(p.size()), p.data()};
  if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog, sizeof prog) < 0) {
    int e = errno;
    *err = std::string("setsockopt(SO_ATTACH_REUSEPORT_CBPF) failed: ") + strerror(e);
    return -e;
  }
  return 0;
}

int attach_steering_ebpf(int fd, const Steering& s, std::string* err) {
  std::vector<bpf_insn> p = assemble_ebpf(s);
  char log[4096] = {0};
  static const char kLicense[] = "Dual BSD/GPL";
  bpf_attr attr{};
  attr.prog_type = BPF_PROG_TYPE_SOCKET_FILTER;
  attr.insns = reinterpret_cast<uint64_t>(p.data());
  attr.insn_cnt = static_cast<uint32_t>(p.size());
  attr.license = reinterpret_cast<uint64_t>(kLicense);
  attr.log_buf = reinterpret_cast<uint64_t>(log);
  attr.log_size = sizeof log;
  attr.log_level = 1;
  strncpy(attr.prog_name, "zio_steer", sizeof attr.prog_name - 1);
  // The verifier gives up with EAGAIN when a signal is pending (a busy process: timers,
  // children); libbpf retries such loads too.
  int prog = -1;
  for (int attempt = 0; attempt < 5; ++attempt) {
    log[0] = 0;
    prog = static_cast<int>(syscall(__NR_bpf, BPF_PROG_LOAD, &attr, sizeof attr));
    if (prog >= 0 || errno != EAGAIN) break;
  }
  if (prog < 0) {
    int e = errno;
    *err = std::string("bpf(BPF_PROG_LOAD) of the reuseport steering program failed: ") +
           strerror(e) +
           (e == EPERM ? " (needs CAP_BPF or sysctl kernel.unprivileged_bpf_disabled=0; "
                         "routing ReusePortCbpf needs neither)"
                       : "") +
           (log[0] ? std::string("; verifier: ") + log : std::string());
    return -e;
  }
  int r = setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_EBPF, &prog, sizeof prog);
  int e = errno;
  close(prog);  // the group holds its own reference
  if (r < 0) {
    *err = std::string("setsockopt(SO_ATTACH_REUSEPORT_EBPF) failed: ") + strerror(e);
    return -e;
  }
  return 0;
}

int thread_affinity(std::vector<int>* cpus) {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) < 0) return -errno;
  cpus->clear();
  for (int c = 0; c < CPU_SETSIZE; ++c)
    if (CPU_ISSET(c, &set)) cpus->push_back(c);
  return 0;
}

int set_thread_affinity(const std::vector<int>& cpus) {
  cpu_set_t set;
  CPU_ZERO(&set);
  for (int c : cpus) {
    if (c < 0 || c >= CPU_SETSIZE) return -EINVAL;
    CPU_SET(c, &set);
  }
  return sched_setaffinity(0, sizeof set, &set) < 0 ? -errno : 0;
}

}  // namespace zio

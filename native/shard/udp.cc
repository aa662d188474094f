// native/shard/udp.cc — UDP endpoints of a shard: bind, multishot recvmsg into pool slots,
// queued sendmsg (with UDP GSO), multicast membership (any-source and source-specific).
//
// A UDP endpoint lives in the endpoint table (it has an EndpointId, not a ConnId). Its
// datagrams arrive as kEvUdpRecv events whose payload and sender address sit in the same RX
// slot (io_uring_recvmsg_out header | sockaddr | payload), borrowed until the next tick.
// Sends are prepared at once (one sendmsg SQE per datagram, or per GSO train) and their slots
// are held until the completion; the per-endpoint queue bounds what can be in flight.
#include <netinet/in.h>
#include <netinet/udp.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "shard/shard.h"

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif

namespace zio {

namespace {
constexpr uint32_t kEpBits = 12;  // user_data index = entry << kEpBits | endpoint
constexpr size_t kUdpMaxPayload = 65535 - 8;  // the UDP length field, minus its header
}  // namespace

void probe_udp(UdpProbe* out) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return;
  int v = 1200;
  out->gso = setsockopt(fd, SOL_UDP, UDP_SEGMENT, &v, sizeof v) == 0;
  v = 1;
  out->gro = setsockopt(fd, SOL_UDP, UDP_GRO, &v, sizeof v) == 0;
  ::close(fd);
}

const Endpoint* Shard::endpoint(uint32_t index, uint32_t gen) const {
  if (index >= endpoints_.size()) return nullptr;
  const Endpoint& e = endpoints_[index];
  return e.gen == gen && e.open ? &e : nullptr;
}

size_t Shard::udp_max_receive(const Endpoint& e) const {
  size_t buf = e.gro ? kGroBufSize : pool_->slot_size();
  return buf - sizeof(io_uring_recvmsg_out) - e.rx_msg.msg_namelen - e.rx_msg.msg_controllen;
}

size_t Shard::udp_max_datagram() const {
  return std::min<size_t>(kUdpMaxPayload, static_cast<size_t>(kIovMax) * pool_->slot_size());
}

int udp_socket(int family, const UdpOptions& o, const char** err_op) {
  int fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) { *err_op = "socket"; return -errno; }
  auto fail = [&](const char* op) -> int {
    int r = -errno;
    *err_op = op;
    ::close(fd);
    return r;
  };
  int one = 1;
  if (o.reuse_addr && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0)
    return fail("setsockopt(SO_REUSEADDR)");
  if (o.reuse_port && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0)
    return fail("setsockopt(SO_REUSEPORT)");
  if (o.broadcast && setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &one, sizeof one) < 0)
    return fail("setsockopt(SO_BROADCAST)");
  if (o.rcvbuf > 0 && setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &o.rcvbuf, sizeof o.rcvbuf) < 0)
    return fail("setsockopt(SO_RCVBUF)");
  if (o.sndbuf > 0 && setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &o.sndbuf, sizeof o.sndbuf) < 0)
    return fail("setsockopt(SO_SNDBUF)");
  if (family == AF_INET6 && o.ipv6_only >= 0 &&
      setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &o.ipv6_only, sizeof o.ipv6_only) < 0)
    return fail("setsockopt(IPV6_V6ONLY)");
  bool v6 = family == AF_INET6;
  if (o.ttl >= 0 && setsockopt(fd, v6 ? IPPROTO_IPV6 : IPPROTO_IP, v6 ? IPV6_UNICAST_HOPS : IP_TTL,
                               &o.ttl, sizeof o.ttl) < 0)
    return fail(v6 ? "setsockopt(IPV6_UNICAST_HOPS)" : "setsockopt(IP_TTL)");
  if (o.multicast_ttl >= 0 &&
      setsockopt(fd, v6 ? IPPROTO_IPV6 : IPPROTO_IP, v6 ? IPV6_MULTICAST_HOPS : IP_MULTICAST_TTL,
                 &o.multicast_ttl, sizeof o.multicast_ttl) < 0)
    return fail(v6 ? "setsockopt(IPV6_MULTICAST_HOPS)" : "setsockopt(IP_MULTICAST_TTL)");
  if (o.multicast_loop >= 0 &&
      setsockopt(fd, v6 ? IPPROTO_IPV6 : IPPROTO_IP, v6 ? IPV6_MULTICAST_LOOP : IP_MULTICAST_LOOP,
                 &o.multicast_loop, sizeof o.multicast_loop) < 0)
    return fail(v6 ? "setsockopt(IPV6_MULTICAST_LOOP)" : "setsockopt(IP_MULTICAST_LOOP)");
  if (o.multicast_if) {
    if (v6) {
      int idx = static_cast<int>(o.multicast_if);
      if (setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, &idx, sizeof idx) < 0)
        return fail("setsockopt(IPV6_MULTICAST_IF)");
    } else {
      ip_mreqn m{};
      m.imr_ifindex = static_cast<int>(o.multicast_if);
      if (setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &m, sizeof m) < 0)
        return fail("setsockopt(IP_MULTICAST_IF)");
    }
  }
  return fd;
}

int64_t Shard::udp_bind(const sockaddr* sa, socklen_t len, const UdpOptions& o,
                        const char** err_op) {
  int64_t ep = free_endpoint();
  if (ep < 0) return ep;
  if (static_cast<uint64_t>(ep) >= (1u << kEpBits)) return kErrTableFull;
  int fd = udp_socket(sa->sa_family, o, err_op);
  if (fd < 0) return fd;
  if (bind(fd, sa, len) < 0) {
    int r = -errno;
    *err_op = "bind";
    ::close(fd);
    return r;
  }
  int64_t r = udp_adopt(fd, o);
  if (r < 0) {
    *err_op = o.gro ? "setsockopt(UDP_GRO)" : "socket";
    ::close(fd);
  }
  return r;
}

int64_t Shard::udp_adopt(int fd, const UdpOptions& o) {
  int64_t ep = free_endpoint();
  if (ep < 0) return ep;
  if (static_cast<uint64_t>(ep) >= (1u << kEpBits)) return kErrTableFull;
  sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &sl) < 0) return -errno;
  int type = 0;
  socklen_t tl = sizeof type;
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) < 0) return -errno;
  if (type != SOCK_DGRAM || (ss.ss_family != AF_INET && ss.ss_family != AF_INET6)) return -EINVAL;
  if (o.gro) {
    if (!gro_available()) return -EOPNOTSUPP;
    int one = 1;
    if (setsockopt(fd, SOL_UDP, UDP_GRO, &one, sizeof one) < 0) return -errno;
  }
  Endpoint& e = claim_endpoint(static_cast<uint32_t>(ep), fd, EpKind::Udp, kProtoUdp);
  e.family = ss.ss_family;
  e.gro = o.gro;
  // Each RX buffer holds: io_uring_recvmsg_out | sockaddr_in6 | [cmsg] | payload (DESIGN.md
  // section 2: the sender's address is decoded by JS only when read). GRO endpoints receive
  // into the GRO buffers, with room for the UDP_GRO control message.
  // With GRO a control message follows the name: the name area is rounded up to 8 bytes so the
  // cmsghdr after it is aligned (28 would leave it at offset 44 of the buffer).
  e.rx_msg.msg_namelen = o.gro ? (sizeof(sockaddr_in6) + 7) & ~size_t{7} : sizeof(sockaddr_in6);
  e.rx_msg.msg_controllen = o.gro ? CMSG_SPACE(sizeof(int)) : 0;
  uint32_t q = std::clamp<uint32_t>(o.send_queue, 1, 1u << (31 - kEpBits));
  e.udp_tx.resize(q);
  for (uint32_t i = 0; i < q; ++i) e.udp_tx[i].next_free = i + 1;
  e.udp_free = 0;
  arm_udp_recv(static_cast<uint32_t>(ep));
  drv_.submit();
  return ep;
}

void Shard::arm_udp_recv(uint32_t ep) {
  Endpoint& e = endpoints_[ep];
  io_uring_sqe* sqe = drv_.get_sqe();
  io_uring_prep_recvmsg_multishot(sqe, e.fd, &e.rx_msg, 0);
  sqe->flags |= IOSQE_BUFFER_SELECT;
  sqe->buf_group = e.gro ? kGroBufGroup : kBufGroup;
  io_uring_sqe_set_data64(sqe, ud_encode(e.gro ? kOpUdpRecvGro : kOpUdpRecv, ep, e.gen));
  e.recv_armed = true;
  ++e.inflight;
}

// Common checks of the UDP send paths: a live UDP endpoint with a free send-queue entry.
int Shard::udp_check(uint32_t ep, uint32_t gen, socklen_t tolen) {
  if (ep >= endpoints_.size()) return kErrStaleId;
  Endpoint& e = endpoints_[ep];
  if (e.gen != gen || !e.open) return kErrStaleId;
  if (e.kind != EpKind::Udp) return kErrWrongKind;
  if (e.closing) return kErrClosing;
  if (tolen > sizeof(sockaddr_in6)) return -EINVAL;
  if (e.udp_free >= e.udp_tx.size()) {
    ++counters_.udp_tx_refused;
    return kErrQueueFull;
  }
  return 0;
}

int Shard::udp_send(uint32_t ep, uint32_t gen, const sockaddr* to, socklen_t tolen,
                    const uint8_t* data, size_t len, uint16_t gso) {
  if (len > udp_max_datagram() && !(gso && len <= kIovMax * pool_->slot_size())) return -EMSGSIZE;
  int r = udp_check(ep, gen, tolen);
  if (r < 0) return r;
  Endpoint& e = endpoints_[ep];
  const uint32_t ss = pool_->slot_size();
  uint32_t need = len == 0 ? 1 : static_cast<uint32_t>((len + ss - 1) / ss);
  if (!bulk_allowed(need)) {
    ++counters_.udp_tx_refused;
    return kErrPoolExhausted;
  }
  uint32_t entry = e.udp_free;
  UdpTx& t = e.udp_tx[entry];
  t.nslots = 0;
  t.shared = false;
  for (uint32_t i = 0; i < need; ++i) {
    int64_t s = pool_->acquire();
    if (s < 0) {
      for (uint32_t j = 0; j < t.nslots; ++j) pool_->release(t.slots[j]);
      gauges_.tx_ring.sub(t.nslots);
      t.nslots = 0;
      ++counters_.udp_tx_refused;
      wake_pool_waiters();
      return kErrPoolExhausted;
    }
    t.slots[t.nslots++] = static_cast<uint32_t>(s);
    gauges_.tx_ring.add(1);
    size_t off = static_cast<size_t>(i) * ss;
    size_t n = std::min<size_t>(ss, len - std::min(len, off));
    if (n) memcpy(pool_->slot_ptr(static_cast<uint32_t>(s)), data + off, n);
    t.iov[i].iov_base = pool_->slot_ptr(static_cast<uint32_t>(s));
    t.iov[i].iov_len = n;
  }
  return udp_submit(ep, entry, to, tolen, gso);
}

int Shard::udp_send_slot(uint32_t ep, uint32_t gen, const sockaddr* to, socklen_t tolen,
                         uint32_t slot, uint32_t off, uint32_t len) {
  int r = udp_check(ep, gen, tolen);
  if (r < 0) return r;
  Endpoint& e = endpoints_[ep];
  if (!pool_->held(slot) || off + len > pool_->slot_size()) return kErrWrongKind;
  // No bulk-TX budget check: the reference takes no pool slot (see TxChunk::shared).
  if (!pool_->retain(slot)) {
    ++counters_.udp_tx_refused;
    return kErrQueueFull;
  }
  uint32_t entry = e.udp_free;
  UdpTx& t = e.udp_tx[entry];
  t.slots[0] = slot;
  t.nslots = 1;
  t.shared = true;
  t.iov[0].iov_base = pool_->slot_ptr(slot) + off;
  t.iov[0].iov_len = len;
  return udp_submit(ep, entry, to, tolen, 0);
}

// Takes the free queue entry `entry` (its slots and iov already set) and prepares its sendmsg.
int Shard::udp_submit(uint32_t ep, uint32_t entry, const sockaddr* to, socklen_t tolen,
                      uint16_t gso, uint64_t txtime_ns) {
  Endpoint& e = endpoints_[ep];
  UdpTx& t = e.udp_tx[entry];
  e.udp_free = t.next_free;
  ++e.udp_queued;
  memcpy(&t.to, to, tolen);
  t.msg = msghdr{};
  t.msg.msg_name = &t.to;
  t.msg.msg_namelen = tolen;
  t.msg.msg_iov = t.iov;
  t.msg.msg_iovlen = t.nslots;
  if (gso || txtime_ns) {
    t.msg.msg_control = t.cmsg;
    t.msg.msg_controllen = (gso ? CMSG_SPACE(sizeof(uint16_t)) : 0) + (txtime_ns ? CMSG_SPACE(sizeof(uint64_t)) : 0);
    cmsghdr* cm = CMSG_FIRSTHDR(&t.msg);
    if (gso) {
      cm->cmsg_level = SOL_UDP;
      cm->cmsg_type = UDP_SEGMENT;
      cm->cmsg_len = CMSG_LEN(sizeof(uint16_t));
      memcpy(CMSG_DATA(cm), &gso, sizeof gso);
      cm = CMSG_NXTHDR(&t.msg, cm);
    }
    if (txtime_ns) {
      cm->cmsg_level = SOL_SOCKET;
      cm->cmsg_type = SCM_TXTIME;
      cm->cmsg_len = CMSG_LEN(sizeof(uint64_t));
      memcpy(CMSG_DATA(cm), &txtime_ns, sizeof txtime_ns);
    }
  }
  io_uring_sqe* sqe = drv_.get_sqe();
  io_uring_prep_sendmsg(sqe, e.fd, &t.msg, 0);
  io_uring_sqe_set_data64(sqe, ud_encode(kOpUdpSend, (entry << kEpBits) | ep, e.gen));
  ++e.inflight;
  return 0;
}

int Shard::udp_multicast(uint32_t ep, uint32_t gen, bool join, const sockaddr_storage& group,
                         const sockaddr_storage* source, uint32_t ifindex, const char** err_op) {
  if (ep >= endpoints_.size()) return kErrStaleId;
  Endpoint& e = endpoints_[ep];
  if (e.gen != gen || !e.open) return kErrStaleId;
  if (e.kind != EpKind::Udp) return kErrWrongKind;
  // RFC 3678 protocol-independent options: IPv4 groups also work on a dual-stack IPv6 socket.
  int level = e.family == AF_INET6 ? IPPROTO_IPV6 : IPPROTO_IP;
  int r;
  if (source) {
    group_source_req g{};
    g.gsr_interface = ifindex;
    memcpy(&g.gsr_group, &group, sizeof group);
    memcpy(&g.gsr_source, source, sizeof *source);
    *err_op = join ? "setsockopt(MCAST_JOIN_SOURCE_GROUP)" : "setsockopt(MCAST_LEAVE_SOURCE_GROUP)";
    r = setsockopt(e.fd, level, join ? MCAST_JOIN_SOURCE_GROUP : MCAST_LEAVE_SOURCE_GROUP, &g, sizeof g);
  } else {
    group_req g{};
    g.gr_interface = ifindex;
    memcpy(&g.gr_group, &group, sizeof group);
    *err_op = join ? "setsockopt(MCAST_JOIN_GROUP)" : "setsockopt(MCAST_LEAVE_GROUP)";
    r = setsockopt(e.fd, level, join ? MCAST_JOIN_GROUP : MCAST_LEAVE_GROUP, &g, sizeof g);
  }
  return r < 0 ? -errno : 0;
}

void Shard::on_udp_recv(uint32_t ep, uint32_t gen, int res, uint32_t flags, bool gro) {
  Endpoint& e = endpoints_[ep];
  bool more = flags & IORING_CQE_F_MORE;
  if (flags & IORING_CQE_F_BUFFER) {
    uint16_t bid = flags >> IORING_CQE_BUFFER_SHIFT;
    uint8_t* buf = gro ? gro_ptr(bid) : pool_->slot_ptr(bid);
    if (e.gen != gen) {  // stale: give the buffer back (to its own group), touch nothing else
      if (gro) {
        drv_.buf_add(buf, kGroBufSize, bid, kGroBufGroup);
        drv_.buf_commit(kGroBufGroup);
      } else {
        drv_.buf_add(buf, pool_->slot_size(), bid);
        drv_.buf_commit();
      }
      ++counters_.stale_cqes;
      return;
    }
    if (gro) {
      --gro_in_ring_;
      loaned_.push_back(static_cast<uint16_t>(bid | kLoanGro));
    } else {
      --rx_in_ring_;
      gauges_.fill_ring.add(1);
      loaned_.push_back(bid);
    }
    if (res > 0 && !e.closing) {
      io_uring_recvmsg_out* o = io_uring_recvmsg_validate(buf, res, &e.rx_msg);
      if (o) {
        auto* payload = static_cast<uint8_t*>(io_uring_recvmsg_payload(o, &e.rx_msg));
        uint32_t plen = io_uring_recvmsg_payload_length(o, res, &e.rx_msg);
        uint32_t name_off = static_cast<uint32_t>(buf + sizeof *o - pool_->base());
        uint32_t off = static_cast<uint32_t>(payload - pool_->base());
        bool trunc = o->flags & MSG_TRUNC;
        // GRO: the kernel coalesced a train of equal-size datagrams (the last may be shorter)
        // and says the segment size in a UDP_GRO control message.
        int32_t seg = 0;
        if (gro) {
          for (cmsghdr* cm = io_uring_recvmsg_cmsg_firsthdr(o, &e.rx_msg); cm;
               cm = io_uring_recvmsg_cmsg_nexthdr(o, &e.rx_msg, cm)) {
            if (cm->cmsg_level == SOL_UDP && cm->cmsg_type == UDP_GRO) {
              int v = 0;
              memcpy(&v, CMSG_DATA(cm), sizeof v);
              seg = v;
            }
          }
          if (seg > 0 && static_cast<uint32_t>(seg) < plen) {
            ++counters_.udp_rx_gro_trains;
            counters_.udp_rx_gro_segments += (plen + seg - 1) / seg;
          } else {
            seg = 0;  // one datagram
          }
        }
        ++e.rx_datagrams;
        ++counters_.udp_rx;
        counters_.rx_bytes += plen;
        if (trunc) { ++e.rx_truncated; ++counters_.udp_rx_truncated; }
        if (e.quic) {  // a QUIC endpoint: the packets go to its connections, not to JS
          if (!trunc)
            quic_recv(ep, reinterpret_cast<const sockaddr*>(buf + sizeof *o), o->namelen, payload,
                      plen, static_cast<uint32_t>(seg));
        } else {
          emit(kEvUdpRecv, ep, e.gen, seg, off, plen, trunc ? kUdpTruncated : 0,
               static_cast<int32_t>(off - name_off));
        }
      }
    }
  } else if (e.gen != gen) {
    ++counters_.stale_cqes;
    return;
  }
  if (!more) {
    e.recv_armed = false;
    --e.inflight;
  }
  if (e.closing) {
    if (e.inflight == 0) endpoint_finish(ep);
    return;
  }
  if (more || e.recv_armed) return;
  if (res == -ENOBUFS) {
    ++counters_.rx_enobufs;
    if (!e.parked) {
      e.parked = true;
      parked_.push_back(ep | 0x80000000u);
    }
    return;
  }
  if (res < 0 && res != -ECANCELED) {
    // An unexpected error ended the multishot recv: retry in 10 ms rather than spin.
    if (e.timer == TimerWheel::kNone) e.timer = timers_.add(now_ms() + 10, kTimerAcceptRetry, ep, e.gen);
    return;
  }
  ++counters_.rx_rearm;
  arm_udp_recv(ep);  // multishot ended (e.g. the kernel's CQ overflow guard): re-arm
}

void Shard::on_udp_send(uint32_t ep, uint32_t entry, uint32_t gen, int res) {
  Endpoint& e = endpoints_[ep];
  if (e.gen != gen || entry >= e.udp_tx.size()) {
    ++counters_.stale_cqes;
    return;
  }
  UdpTx& t = e.udp_tx[entry];
  for (uint32_t j = 0; j < t.nslots; ++j) pool_->release(t.slots[j]);
  if (!t.shared) gauges_.tx_ring.sub(t.nslots);
  t.nslots = 0;
  t.next_free = e.udp_free;
  e.udp_free = entry;
  --e.udp_queued;
  --e.inflight;
  if (res >= 0) {
    ++e.tx_datagrams;
    ++counters_.udp_tx;
    counters_.tx_bytes += res;
  } else if (res != -ECANCELED) {
    ++e.tx_errors;
    ++counters_.udp_tx_errors;
    e.tx_last_errno = -res;
  }
  wake_pool_waiters();
  if (e.quic && !e.closing) quic_wake_tx(ep);
  if (e.closing && e.inflight == 0) endpoint_finish(ep);
}

void Shard::endpoint_finish(uint32_t ep) {
  Endpoint& e = endpoints_[ep];
  ::close(e.fd);
  if (!e.path.empty()) unlink(e.path.c_str());
  e.fd = -1;
  e.open = false;
  e.gen = (e.gen + 1) & 0xffffff;
  if (e.gen == 0) e.gen = 1;
  e.udp_tx.clear();
  e.udp_tx.shrink_to_fit();
  e.quic.reset();
}

}  // namespace zio

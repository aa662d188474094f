// native/shard/qdisc.cc — SO_TXTIME for QUIC pacing: the kernel keeps a send time only under the
// fq qdisc (etf wants CLOCK_TAI and drops what has none), so the root qdiscs of this network
// namespace are read over rtnetlink (RTM_GETQDISC) before the socket is told to carry send times:
// every interface but loopback must have fq at its root (an mq root with fq below is not seen).
#include <linux/net_tstamp.h>
#include <linux/netlink.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "shard/shard.h"

namespace zio {

namespace {

// The root qdisc of each interface but loopback ("fq", "noqueue", ...); false when rtnetlink
// cannot be asked.
bool root_qdiscs(std::vector<std::string>* kinds) {
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd < 0) return false;
  struct {
    nlmsghdr h;
    tcmsg t;
  } req{};
  req.h.nlmsg_len = NLMSG_LENGTH(sizeof(tcmsg));
  req.h.nlmsg_type = RTM_GETQDISC;
  req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  req.h.nlmsg_seq = 1;
  req.t.tcm_family = AF_UNSPEC;
  bool ok = send(fd, &req, req.h.nlmsg_len, 0) == static_cast<ssize_t>(req.h.nlmsg_len);
  alignas(nlmsghdr) char buf[16384];
  bool done = false;
  while (ok && !done) {
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) { ok = false; break; }
    for (auto* h = reinterpret_cast<nlmsghdr*>(buf); NLMSG_OK(h, static_cast<size_t>(n)); h = NLMSG_NEXT(h, n)) {
      if (h->nlmsg_type == NLMSG_DONE) { done = true; break; }
      if (h->nlmsg_type == NLMSG_ERROR) { ok = false; break; }
      if (h->nlmsg_type != RTM_NEWQDISC) continue;
      auto* t = static_cast<tcmsg*>(NLMSG_DATA(h));
      if (t->tcm_parent != TC_H_ROOT || t->tcm_ifindex == 1) continue;  // 1: loopback
      int len = static_cast<int>(h->nlmsg_len) - static_cast<int>(NLMSG_LENGTH(sizeof(tcmsg)));
      for (auto* a = reinterpret_cast<rtattr*>(reinterpret_cast<char*>(t) + NLMSG_ALIGN(sizeof(tcmsg)));
           RTA_OK(a, len); a = RTA_NEXT(a, len)) {
        if (a->rta_type == TCA_KIND) kinds->emplace_back(static_cast<const char*>(RTA_DATA(a)));
      }
    }
  }
  close(fd);
  return ok;
}

}  // namespace

bool Shard::udp_enable_txtime(uint32_t ep, std::string* why) {
  std::vector<std::string> kinds;
  if (!root_qdiscs(&kinds)) {
    *why = "txtime: the root qdiscs could not be read (rtnetlink)";
    return false;
  }
  bool all_fq = !kinds.empty();
  std::string seen;
  for (const std::string& k : kinds) {
    if (k != "fq") all_fq = false;
    if (seen.find(k) == std::string::npos) seen += (seen.empty() ? "" : ", ") + k;
  }
  if (!all_fq) {
    *why = "txtime: not every interface has the fq qdisc at its root (root qdiscs here: " +
           (seen.empty() ? std::string("none but loopback") : seen) + "); the kernel would send at once";
    return false;
  }
  sock_txtime st{};
  st.clockid = CLOCK_MONOTONIC;  // quiche's send times are Instants: CLOCK_MONOTONIC
  if (setsockopt(endpoints_[ep].fd, SOL_SOCKET, SO_TXTIME, &st, sizeof st) < 0) {
    *why = std::string("txtime: setsockopt(SO_TXTIME): ") + strerror(errno);
    return false;
  }
  return true;
}

}  // namespace zio

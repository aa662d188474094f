// native/shard/tcp_info.cc — reads TCP_INFO with the kernel's own struct (<linux/tcp.h>), which
// carries fields glibc's <netinet/tcp.h> lacks (min RTT, byte counters, delivery rate).
#include <linux/tcp.h>
#include <sys/socket.h>

#include <cerrno>

#include "shard/shard.h"

namespace zio {

int read_tcp_info(int fd, TcpStats* out) {
  tcp_info ti{};
  socklen_t len = sizeof ti;
  if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0) return -errno;
  out->rtt_us = ti.tcpi_rtt;
  out->rttvar_us = ti.tcpi_rttvar;
  out->min_rtt_us = ti.tcpi_min_rtt;
  out->cwnd = ti.tcpi_snd_cwnd;
  out->ssthresh = ti.tcpi_snd_ssthresh;
  out->mss = ti.tcpi_snd_mss;
  out->retransmits = ti.tcpi_total_retrans;
  out->lost = ti.tcpi_lost;
  out->unacked = ti.tcpi_unacked;
  out->bytes_sent = ti.tcpi_bytes_sent;
  out->bytes_retrans = ti.tcpi_bytes_retrans;
  out->bytes_acked = ti.tcpi_bytes_acked;
  out->bytes_received = ti.tcpi_bytes_received;
  out->delivery_rate = ti.tcpi_delivery_rate;
  return 0;
}

}  // namespace zio

// Tests for native/shard against real kernel sockets (loopback), driven by blocking clients.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "shard/shard.h"
#include "tests/test_config.h"

using namespace zio;

namespace {

using zio::testing::base_cfg;

struct Harness {
  Shard sh;
  uint32_t ep = 0, ep_gen = 0;
  uint16_t port = 0;
  void start(const ShardConfig& cfg) {
    std::string kind, err;
    ASSERT_EQ(sh.init(cfg, &kind, &err), 0) << kind << ": " << err;
    ASSERT_TRUE(zio::testing::listen_loopback(sh, &ep, &ep_gen, &port));
  }
  int client() {
    int fd = zio::testing::connect_loopback(port, false);
    EXPECT_GE(fd, 0);
    return fd;
  }
  // Ticks until an event of `type` shows up; returns it.
  EventRec wait_for(int32_t type, int max_ticks = 200) {
    for (int i = 0; i < max_ticks; ++i) {
      int n = sh.tick(10);
      for (int k = 0; k < n; ++k)
        if (sh.events()[k].type == type) return sh.events()[k];
    }
    ADD_FAILURE() << "no event of type " << type;
    return EventRec{};
  }
};

std::string read_exact(int fd, size_t n) {
  std::string out(n, '\0');
  size_t got = 0;
  while (got < n) {
    ssize_t r = read(fd, &out[got], n - got);
    if (r <= 0) break;
    got += r;
  }
  out.resize(got);
  return out;
}

}  // namespace

TEST(Shard, AcceptRecvEchoAndClose) {
  Harness h;
  ShardConfig cfg = base_cfg();
  cfg.pool_slot_count = 64;
  cfg.max_connections = 8;
  h.start(cfg);
  int fd = h.client();
  EventRec c = h.wait_for(kEvConnected);
  EXPECT_EQ(c.aux, static_cast<int32_t>(h.ep));
  EXPECT_EQ(c.off, h.ep_gen) << "Connected carries the endpoint generation";
  ASSERT_EQ(write(fd, "hello", 5), 5);
  EventRec f = h.wait_for(kEvStreamFrame);
  ASSERT_EQ(f.len, 5u);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(h.sh.pool()->base() + f.off), 5), "hello");
  EXPECT_EQ(h.sh.conn_write(f.index, f.gen, h.sh.pool()->base() + f.off, 5), 5);
  h.sh.tick(0);
  EXPECT_EQ(read_exact(fd, 5), "hello");
  // Local close: Disconnected with code 0, then the id is stale.
  EXPECT_EQ(h.sh.conn_close(f.index, f.gen), 0);
  EventRec d = h.wait_for(kEvDisconnected);
  EXPECT_EQ(d.code, 0);
  // Within the batch that carried Disconnected the id still resolves (writes are refused)...
  EXPECT_EQ(h.sh.conn_write(f.index, f.gen, reinterpret_cast<const uint8_t*>("x"), 1), kErrClosing);
  h.sh.tick(0);
  // ...after it, the generation has moved on: the id is stale.
  EXPECT_EQ(h.sh.conn_write(f.index, f.gen, reinterpret_cast<const uint8_t*>("x"), 1), kErrStaleId);
  EXPECT_EQ(h.sh.conn_close(f.index, f.gen), kErrStaleId);
  char b;
  EXPECT_EQ(read(fd, &b, 1), 0) << "the peer sees EOF";
  close(fd);
}

TEST(Shard, PeerResetReportsErrno) {
  Harness h;
  ShardConfig cfg = base_cfg();
  cfg.pool_slot_count = 64;
  h.start(cfg);
  int fd = h.client();
  h.wait_for(kEvConnected);
  linger lg{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  close(fd);  // RST
  EventRec d = h.wait_for(kEvDisconnected);
  EXPECT_EQ(d.code, ECONNRESET);
}

TEST(Shard, EnobufsParksAndRearmsWithoutLoss) {
  Harness h;
  ShardConfig cfg = base_cfg();
  cfg.pool_slot_count = 8;  // 4 RX slots: a 256 KiB burst must exhaust them
  cfg.pool_slot_size = 2048;
  cfg.max_events_per_poll = 8;
  h.start(cfg);
  int fd = h.client();
  h.wait_for(kEvConnected);
  std::string payload(256 * 1024, '\0');
  for (size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<char>(i * 31 + 7);
  ASSERT_EQ(write(fd, payload.data(), payload.size()), static_cast<ssize_t>(payload.size()));
  std::string got;
  for (int i = 0; i < 20000 && got.size() < payload.size(); ++i) {
    int n = h.sh.tick(10);
    for (int k = 0; k < n; ++k) {
      const EventRec& e = h.sh.events()[k];
      if (e.type == kEvStreamFrame)
        got.append(reinterpret_cast<char*>(h.sh.pool()->base() + e.off), e.len);
    }
  }
  ASSERT_EQ(got.size(), payload.size());
  EXPECT_TRUE(got == payload) << "bytes were reordered or corrupted";
  EXPECT_GT(h.sh.counters().rx_enobufs, 0u) << "the test did not exercise ENOBUFS";
  close(fd);
}

TEST(Shard, WriteQueueLimitAndWritable) {
  Harness h;
  ShardConfig cfg = base_cfg();
  cfg.pool_slot_count = 256;
  cfg.max_write_queue_bytes = 16 * 1024;
  h.start(cfg);
  int fd = h.client();
  int small = 4096;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  EventRec c = h.wait_for(kEvConnected);
  std::vector<uint8_t> chunk(64 * 1024, 0xab);
  // The peer does not read: the kernel buffers fill, then our queue hits its limit.
  int64_t total = 0;
  bool partial = false;
  for (int i = 0; i < 200 && !partial; ++i) {
    int64_t r = h.sh.conn_write(c.index, c.gen, chunk.data(), chunk.size());
    ASSERT_GE(r, 0);
    total += r;
    partial = r < static_cast<int64_t>(chunk.size());
    h.sh.tick(1);
  }
  ASSERT_TRUE(partial) << "the write queue limit never applied";
  // Now read everything: a Writable event must follow, and the byte count must match.
  int64_t got = 0;
  bool writable = false;
  std::vector<char> buf(65536);
  for (int i = 0; i < 2000 && (got < total || !writable); ++i) {
    ssize_t r = recv(fd, buf.data(), buf.size(), MSG_DONTWAIT);
    if (r > 0) got += r;
    int n = h.sh.tick(1);
    for (int k = 0; k < n; ++k)
      if (h.sh.events()[k].type == kEvWritable) writable = true;
  }
  EXPECT_EQ(got, total);
  EXPECT_TRUE(writable);
  close(fd);
}

TEST(Shard, ConnectRefusedAndHappyEyeballsFallsThrough) {
  Harness h;
  ShardConfig cfg = base_cfg();
  cfg.pool_slot_count = 64;
  h.start(cfg);
  // Candidate 1: a closed port on ::1 (refused); candidate 2: our listener on 127.0.0.1.
  sockaddr_in6 addrs[2]{};
  addrs[0].sin6_family = AF_INET6;
  addrs[0].sin6_addr = in6addr_loopback;
  addrs[0].sin6_port = htons(1);
  auto* a4 = reinterpret_cast<sockaddr_in*>(&addrs[1]);
  a4->sin_family = AF_INET;
  a4->sin_port = htons(h.port);
  a4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int64_t idx = h.sh.conn_reserve(kProtoTcp);
  ASSERT_GE(idx, 0);
  uint32_t gen = h.sh.conn_gen(static_cast<uint32_t>(idx));
  ASSERT_EQ(h.sh.conn_connect(static_cast<uint32_t>(idx), gen, addrs, 2, 250), 0);
  bool out_connected = false;
  for (int i = 0; i < 200 && !out_connected; ++i) {
    int n = h.sh.tick(10);
    for (int k = 0; k < n; ++k) {
      const EventRec& e = h.sh.events()[k];
      if (e.type == kEvConnected && e.aux == -1 && e.index == idx) out_connected = true;
      ASSERT_NE(e.type, kEvDisconnected);
    }
  }
  EXPECT_TRUE(out_connected);
  // Only a refused candidate: Disconnected(ECONNREFUSED).
  int64_t idx2 = h.sh.conn_reserve(kProtoTcp);
  uint32_t gen2 = h.sh.conn_gen(static_cast<uint32_t>(idx2));
  ASSERT_EQ(h.sh.conn_connect(static_cast<uint32_t>(idx2), gen2, addrs, 1, 250), 0);
  EventRec d = h.wait_for(kEvDisconnected);
  EXPECT_EQ(d.index, idx2);
  EXPECT_EQ(d.code, ECONNREFUSED);
}

TEST(Shard, NativeStatePerConnectionStaysUnderFourKiB) {
  // PERF.md: <= 4 KiB of native state per idle TCP connection with the default config; the pool
  // is the only large allocation.
  Shard sh;
  ShardConfig cfg = base_cfg();  // defaults: 2048-byte slots, 256 KiB write queue
  std::string kind, err;
  ASSERT_EQ(sh.init(cfg, &kind, &err), 0) << err;
  EXPECT_LE(sh.bytes_per_conn(), 4096u) << "sizeof(Conn)=" << sizeof(Conn);
}

// UDP: a datagram from a plain socket arrives as kEvUdpRecv with the sender's sockaddr `aux`
// bytes before the payload in the same slot; a reply via udp_send reaches the sender; the queue
// bound and stale ids are enforced.
TEST(ShardUdp, ReceiveNameAndPayloadThenReply) {
  Shard sh;
  ShardConfig cfg = base_cfg();
  cfg.pool_slot_count = 64;
  std::string kind, err;
  ASSERT_EQ(sh.init(cfg, &kind, &err), 0) << err;
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  UdpOptions o;
  o.send_queue = 2;
  const char* op = nullptr;
  int64_t ep = sh.udp_bind(reinterpret_cast<sockaddr*>(&sa), sizeof sa, o, &op);
  ASSERT_GE(ep, 0);
  uint32_t gen = sh.endpoint_gen(ep);
  sockaddr_storage local;
  socklen_t ll;
  ASSERT_EQ(sh.endpoint_local(ep, gen, &local, &ll), 0);

  int c = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in ca{};
  ca.sin_family = AF_INET;
  ca.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(c, reinterpret_cast<sockaddr*>(&ca), sizeof ca), 0);
  socklen_t cl = sizeof ca;
  getsockname(c, reinterpret_cast<sockaddr*>(&ca), &cl);
  ASSERT_EQ(sendto(c, "hello", 5, 0, reinterpret_cast<sockaddr*>(&local), ll), 5);

  EventRec ev{};
  for (int i = 0; i < 100 && ev.type != kEvUdpRecv; ++i) {
    int n = sh.tick(10);
    for (int k = 0; k < n; ++k) if (sh.events()[k].type == kEvUdpRecv) ev = sh.events()[k];
  }
  ASSERT_EQ(ev.type, kEvUdpRecv);
  EXPECT_EQ(ev.index, ep);
  EXPECT_EQ(ev.len, 5u);
  EXPECT_EQ(ev.code, 0);
  EXPECT_EQ(memcmp(sh.pool()->base() + ev.off, "hello", 5), 0);
  sockaddr_in from;
  memcpy(&from, sh.pool()->base() + ev.off - ev.aux, sizeof from);
  EXPECT_EQ(from.sin_family, AF_INET);
  EXPECT_EQ(from.sin_port, ca.sin_port);

  ASSERT_EQ(sh.udp_send(ep, gen, reinterpret_cast<sockaddr*>(&from), sizeof from,
                        reinterpret_cast<const uint8_t*>("world"), 5, 0), 0);
  ASSERT_EQ(sh.udp_send(ep, gen, reinterpret_cast<sockaddr*>(&from), sizeof from,
                        reinterpret_cast<const uint8_t*>("again"), 5, 0), 0);
  EXPECT_EQ(sh.udp_send(ep, gen, reinterpret_cast<sockaddr*>(&from), sizeof from,
                        reinterpret_cast<const uint8_t*>("over"), 4, 0), kErrQueueFull);
  EXPECT_EQ(sh.udp_send(ep, gen + 1, reinterpret_cast<sockaddr*>(&from), sizeof from,
                        reinterpret_cast<const uint8_t*>("x"), 1, 0), kErrStaleId);
  sh.tick(0);
  char buf[16];
  EXPECT_EQ(recv(c, buf, sizeof buf, 0), 5);
  EXPECT_EQ(memcmp(buf, "world", 5), 0);
  EXPECT_EQ(recv(c, buf, sizeof buf, 0), 5);
  EXPECT_EQ(memcmp(buf, "again", 5), 0);
  for (int i = 0; i < 20 && sh.endpoint(ep, gen)->udp_queued; ++i) sh.tick(10);
  EXPECT_EQ(sh.endpoint(ep, gen)->udp_queued, 0u);
  EXPECT_EQ(sh.pool()->free_stack.current, 0u);  // every TX slot came back
  EXPECT_EQ(sh.endpoint_close(ep, gen), 0);
  for (int i = 0; i < 20 && sh.endpoint(ep, gen); ++i) sh.tick(10);
  EXPECT_EQ(sh.endpoint(ep, gen), nullptr);
  close(c);
}

// The backend asked for is the one running, and an epoll shard reports no ring flags.
TEST(Shard, ReportsTheBackendItRuns) {
  for (Backend b : {Backend::IoUring, Backend::Epoll}) {
    Shard sh;
    ShardConfig cfg;
    cfg.backend = b;
    std::string kind, err;
    ASSERT_EQ(sh.init(cfg, &kind, &err), 0) << err;
    EXPECT_EQ(sh.backend(), b);
    EXPECT_TRUE(sh.fallback_reason().empty());
    if (b == Backend::Epoll) {
      EXPECT_EQ(sh.driver().setup_flags(), 0u);
    }
    EXPECT_GE(sh.driver().poll_fd(), 0);
  }
}

// Every creation step can fail (ZERO_IO_FAULT_INIT): init reports the step's error kind and
// message, and the half-built shard is destroyed without touching what was never set up
// (a failed pool used to crash in ~Shard on a ring that did not exist). Runs under ASan too.
TEST(ShardInitFault, EachStepFailsCleanly) {
  struct Step { const char* name; const char* kind; };
  const Step steps[] = {{"pool", "PoolSetup"}, {"ring", "NotSupportedOnBackend"},
                        {"bufring", "NotSupportedOnBackend"}, {"eventfd", "NotSupportedOnBackend"},
                        {"handle", "NotSupportedOnBackend"}, {"tables", "PoolSetup"}};
  for (const Step& st : steps) {
    SCOPED_TRACE(st.name);
    setenv("ZERO_IO_FAULT_INIT", st.name, 1);
    {
      Shard sh;
      std::string kind, err;
      EXPECT_LT(sh.init(base_cfg(), &kind, &err), 0);
      EXPECT_EQ(kind, st.kind);
      EXPECT_FALSE(err.empty());
    }  // ~Shard on the half-built shard
    unsetenv("ZERO_IO_FAULT_INIT");
  }
  // The real huge-page failure path (no pages reserved) when this machine has none.
  FILE* f = fopen("/proc/sys/vm/nr_hugepages", "r");
  long pages = -1;
  if (f) { if (fscanf(f, "%ld", &pages) != 1) pages = -1; fclose(f); }
  ShardConfig c = base_cfg();
  c.huge_pages = HugePages::On;
  Shard sh;
  std::string kind, err;
  int r = sh.init(c, &kind, &err);
  if (pages == 0) {
    EXPECT_LT(r, 0);
    EXPECT_EQ(kind, "PoolSetup");
    EXPECT_NE(err.find("MAP_HUGETLB"), std::string::npos) << err;
  }
  // After every failure a normal shard still comes up in the same process.
  Shard ok;
  EXPECT_EQ(ok.init(base_cfg(), &kind, &err), 0) << err;
}

// IoCluster steering against the real kernel: a reuseport group with the CPU -> member program
// attached, connections / datagrams sent from threads pinned to each CPU, and the member that
// received them checked. The map is inverted (CPU 0 -> member 1, CPU 1 -> member 0) so that
// the kernel's default hash could not pass the test by luck.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>
#include <vector>

#include "shard/reuseport.h"
#include "tests/test_config.h"

using namespace zio;

namespace {

using zio::testing::loopback;

uint16_t port_of(int fd) {
  sockaddr_in sa{};
  socklen_t l = sizeof sa;
  getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &l);
  return ntohs(sa.sin_port);
}

// Runs f on a thread pinned to `cpu`.
template <class F>
void on_cpu(int cpu, F f) {
  std::thread t([&] {
    ASSERT_EQ(set_thread_affinity({cpu}), 0);
    f();
  });
  t.join();
}

// Waits up to 2 s for `fd` to become readable (a connection queued, a datagram arrived): on a
// loaded host the kernel may finish a loopback handshake or delivery after connect()/sendto()
// returned, so a non-blocking look right away could miss it.
bool readable(int fd, int timeout_ms = 2000) {
  pollfd p{fd, POLLIN, 0};
  return poll(&p, 1, timeout_ms) == 1;
}

int pending_accept(int fd, int timeout_ms = 2000) {
  if (!readable(fd, timeout_ms)) return 0;
  int c = accept4(fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (c >= 0) close(c);
  return c >= 0 ? 1 : 0;
}

bool two_cpus() {
  std::vector<int> cpus;
  return thread_affinity(&cpus) == 0 && cpus.size() >= 2 && cpus[0] == 0 && cpus[1] == 1;
}

using Attach = int (*)(int, const Steering&, std::string*);

void check_tcp(Attach attach) {
  std::vector<int> fds;
  const char* op = nullptr;
  sockaddr_in sa = loopback(0);
  ASSERT_EQ(reuseport_group(true, reinterpret_cast<sockaddr*>(&sa), sizeof sa, 2, 64, UdpOptions{}, &fds, &op), 0) << op;
  ASSERT_EQ(fds.size(), 2u);
  for (int fd : fds) {  // non-blocking accepts below
    int one = 1;
    ioctl(fd, FIONBIO, &one);
  }
  EXPECT_EQ(port_of(fds[0]), port_of(fds[1]));
  Steering s;
  s.count = 2;
  s.pinned = {{0, 1}, {1, 0}};
  std::string err;
  int r = attach(fds[0], s, &err);
  if (r == -EPERM) {
    for (int fd : fds) close(fd);
    GTEST_SKIP() << err;
  }
  ASSERT_EQ(r, 0) << err;
  uint16_t port = port_of(fds[0]);
  for (int cpu : {0, 1}) {
    std::vector<int> clients;
    on_cpu(cpu, [&] {
      for (int i = 0; i < 8; ++i) {
        int c = socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in to = loopback(port);
        ASSERT_EQ(connect(c, reinterpret_cast<sockaddr*>(&to), sizeof to), 0);
        clients.push_back(c);
      }
    });
    int want = cpu == 0 ? 1 : 0;
    int got_want = 0, got_other = 0;
    for (int i = 0; i < 8; ++i) got_want += pending_accept(fds[want]);
    // All 8 arrived where they belong; anything misrouted would be queued by now.
    for (int i = 0; i < 8; ++i) got_other += pending_accept(fds[1 - want], 0);
    EXPECT_EQ(got_want, 8) << "connections from CPU " << cpu << " must reach member " << want;
    EXPECT_EQ(got_other, 0);
    for (int c : clients) close(c);
  }
  for (int fd : fds) close(fd);
}

}  // namespace

TEST(Reuseport, AssemblesOneTestPerPinnedCpu) {
  Steering s;
  s.count = 4;
  s.pinned = {{2, 0}, {3, 1}, {7, 2}};
  auto c = assemble_cbpf(s);
  ASSERT_EQ(c.size(), 1 + 2 * 3 + 2u);
  EXPECT_EQ(c[0].k, static_cast<uint32_t>(SKF_AD_OFF + SKF_AD_CPU));
  EXPECT_EQ(c[1].k, 2u);
  EXPECT_EQ(c[2].k, 0u);
  EXPECT_EQ(c[7].k, 4u);  // the modulo for CPUs no shard is pinned to
  auto e = assemble_ebpf(s);
  ASSERT_EQ(e.size(), 1 + 3 * 3 + 2u);
  EXPECT_EQ(e[0].imm, BPF_FUNC_get_smp_processor_id);
  EXPECT_EQ(e[4].imm, 3);
  EXPECT_EQ(e[5].imm, 1);
  EXPECT_EQ(e[10].imm, 4);
}

TEST(Reuseport, GroupMembersShareThePortAndJoinInOrder) {
  std::vector<int> fds;
  const char* op = nullptr;
  sockaddr_in sa = loopback(0);
  ASSERT_EQ(reuseport_group(false, reinterpret_cast<sockaddr*>(&sa), sizeof sa, 3, 0, UdpOptions{}, &fds, &op), 0) << op;
  ASSERT_EQ(fds.size(), 3u);
  EXPECT_NE(port_of(fds[0]), 0);
  EXPECT_EQ(port_of(fds[0]), port_of(fds[2]));
  for (int fd : fds) close(fd);
  // A port someone else holds without SO_REUSEPORT: the group fails whole, nothing stays open.
  int other = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in any = loopback(0);
  ASSERT_EQ(bind(other, reinterpret_cast<sockaddr*>(&any), sizeof any), 0);
  ASSERT_EQ(listen(other, 1), 0);
  sockaddr_in taken = loopback(port_of(other));
  EXPECT_EQ(reuseport_group(true, reinterpret_cast<sockaddr*>(&taken), sizeof taken, 2, 8, UdpOptions{}, &fds, &op), -EADDRINUSE);
  EXPECT_STREQ(op, "bind");
  EXPECT_TRUE(fds.empty());
  close(other);
}

TEST(Reuseport, CbpfSteersConnectionsByCpu) {
  if (!two_cpus()) GTEST_SKIP() << "needs CPUs 0 and 1";
  check_tcp(attach_steering_cbpf);
}

TEST(Reuseport, EbpfSteersConnectionsByCpu) {
  if (!two_cpus()) GTEST_SKIP() << "needs CPUs 0 and 1";
  check_tcp(attach_steering_ebpf);
}

TEST(Reuseport, CbpfSteersDatagramsByCpu) {
  if (!two_cpus()) GTEST_SKIP() << "needs CPUs 0 and 1";
  std::vector<int> fds;
  const char* op = nullptr;
  sockaddr_in sa = loopback(0);
  ASSERT_EQ(reuseport_group(false, reinterpret_cast<sockaddr*>(&sa), sizeof sa, 2, 0, UdpOptions{}, &fds, &op), 0);
  Steering s;
  s.count = 2;
  s.pinned = {{0, 1}, {1, 0}};
  std::string err;
  ASSERT_EQ(attach_steering_cbpf(fds[1], s, &err), 0) << err;
  sockaddr_in to = loopback(port_of(fds[0]));
  for (int cpu : {0, 1}) {
    on_cpu(cpu, [&] {
      // One socket per datagram: distinct flows, so a hash could not route them all alike.
      for (int i = 0; i < 8; ++i) {
        int c = socket(AF_INET, SOCK_DGRAM, 0);
        sendto(c, "x", 1, 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
        close(c);
      }
    });
    int want = cpu == 0 ? 1 : 0;
    char b[4];
    int got = 0;
    while (got < 8 && readable(fds[want]) && recv(fds[want], b, sizeof b, MSG_DONTWAIT) == 1) ++got;
    EXPECT_EQ(got, 8);
    EXPECT_EQ(recv(fds[1 - want], b, sizeof b, MSG_DONTWAIT), -1);
  }
  for (int fd : fds) close(fd);
}

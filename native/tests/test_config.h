// native/tests/test_config.h — what the shard tests share: the backend under test, and loopback
// sockets (a listener on port 0, clients, reading what arrived).
#pragma once
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "shard/shard.h"

namespace zio::testing {

// The shard suites run once per backend: ctest registers them a second time with
// ZERO_IO_BACKEND=epoll (CMakeLists.txt), like the TypeScript suite.
inline ShardConfig base_cfg() {
  ShardConfig c;
  const char* b = getenv("ZERO_IO_BACKEND");
  if (b && strcmp(b, "epoll") == 0) c.backend = Backend::Epoll;
  if (b && strcmp(b, "io_uring") == 0) c.backend = Backend::IoUring;
  return c;
}

// 127.0.0.1:port as a sockaddr_in.
inline sockaddr_in loopback(uint16_t port) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return sa;
}

// A TCP listener on 127.0.0.1:0: its endpoint, generation and the port the kernel chose.
inline bool listen_loopback(Shard& sh, uint32_t* ep, uint32_t* gen, uint16_t* port) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const char* op = nullptr;
  int64_t r = sh.tcp_listen(reinterpret_cast<sockaddr*>(&sa), sizeof sa, 128, false, &op);
  if (r < 0) return false;
  *ep = static_cast<uint32_t>(r);
  *gen = sh.endpoint_gen(*ep);
  sockaddr_storage ss;
  socklen_t len;
  if (sh.endpoint_local(*ep, *gen, &ss, &len) != 0) return false;
  *port = ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  return true;
}

// A client connected to 127.0.0.1:port (-1 when the connect failed), optionally non-blocking.
inline int connect_loopback(uint16_t port, bool nonblock) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    close(fd);
    return -1;
  }
  if (nonblock) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  return fd;
}

// Everything a non-blocking socket has to read now.
inline std::string drain(int fd) {
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t r = read(fd, buf, sizeof buf);
    if (r <= 0) break;
    out.append(buf, static_cast<size_t>(r));
  }
  return out;
}

}  // namespace zio::testing

// Tests for shard/http1_conn.cc against real loopback sockets: request records, answers in
// order, and a fuzz run of mutated request streams cut into random pieces (run under ASan and
// UBSan by the test command) after which the shard still answers a well-formed request.
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "shard/shard.h"
#include "tests/test_config.h"

using namespace zio;

namespace {

ShardConfig cfg_for_backend() {
  ShardConfig c = zio::testing::base_cfg();
  c.max_connections = 64;
  return c;
}

uint32_t rd32(const uint8_t* p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
}

struct HttpHarness {
  Shard sh;
  uint32_t ep = 0, ep_gen = 0;
  uint16_t port = 0;
  uint64_t answered = 0;
  void start(HttpConfig hc = HttpConfig{}) {
    std::string kind, err;
    ASSERT_EQ(sh.init(cfg_for_backend(), &kind, &err), 0) << kind << ": " << err;
    ASSERT_TRUE(zio::testing::listen_loopback(sh, &ep, &ep_gen, &port));
    ASSERT_EQ(sh.endpoint_set_http(ep, ep_gen, hc), 0);
  }
  int client(bool nonblock) {
    int fd = zio::testing::connect_loopback(port, nonblock);
    EXPECT_GE(fd, 0);
    return fd;
  }
  // One tick; answers every request (at once, or at its body's end) with its path.
  int tick(int64_t ms, std::vector<std::string>* paths = nullptr) {
    int n = sh.tick(ms);
    for (int k = 0; k < n; ++k) {
      const EventRec& e = sh.events()[k];
      if (e.type == kEvHttpRequest) {
        const uint8_t* rec = sh.pool()->base() + e.off;
        // The record's words point inside the record.
        EXPECT_LE(rd32(rec + 16) + rd32(rec + 20), e.len);
        EXPECT_LE(rd32(rec + 32) + rd32(rec + 36), e.len);
        std::string path(reinterpret_cast<const char*>(rec) + rd32(rec + 16), rd32(rec + 20));
        if (paths) paths->push_back(path);
        if (!((static_cast<uint32_t>(e.kind) >> 16) & kReqStreamed)) answer(e, path);
      } else if (e.type == kEvHttpBody && (e.kind & 1)) {
        answer(e, "body");
      }
    }
    sh.end_batch();
    return n;
  }
  void answer(const EventRec& e, const std::string& body) {
    http1::Field f{"X-T", 3, "1", 1};
    int64_t r = sh.http_respond(static_cast<uint32_t>(e.index), static_cast<uint32_t>(e.gen),
                                static_cast<uint32_t>(e.code), 200, &f, 1,
                                reinterpret_cast<const uint8_t*>(body.data()), body.size(), false);
    if (r > 0) ++answered;
  }
};

using zio::testing::drain;

TEST(Http1Conn, PipelinedRequestsAreAnsweredInOrder) {
  HttpHarness h;
  h.start();
  int fd = h.client(true);
  std::string req =
      "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
      "POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
      "GET /c?q=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  ASSERT_EQ(write(fd, req.data(), req.size()), static_cast<ssize_t>(req.size()));
  std::vector<std::string> paths;
  std::string got;
  for (int i = 0; i < 300 && got.find("\r\n\r\n/c") == std::string::npos; ++i) {
    h.tick(5, &paths);
    got += drain(fd);
  }
  EXPECT_EQ(paths, (std::vector<std::string>{"/a", "/b", "/c"}));
  size_t a = got.find("\r\n\r\n/a"), b = got.find("\r\n\r\n/b"), c = got.find("\r\n\r\n/c");
  ASSERT_NE(a, std::string::npos) << got;
  ASSERT_NE(b, std::string::npos) << got;
  ASSERT_NE(c, std::string::npos) << got;
  EXPECT_LT(a, b);
  EXPECT_LT(b, c);
  EXPECT_NE(got.find("Connection: close\r\n"), std::string::npos);
  close(fd);
}

// The committed seed corpus of the parser's fuzzer, plus bodies and a few framing shapes.
std::vector<std::string> seeds() {
  std::vector<std::string> out = {
      "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
      "POST /u HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nT: 1\r\n\r\n",
      "PUT /p HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r\n0123456789",
      "GET /x HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
      "HEAD /h HTTP/1.1\r\nHost: x\r\n\r\n",
  };
  if (DIR* d = opendir(ZIO_TEST_CORPUS "/http1")) {
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] == '.') continue;
      std::ifstream f(std::string(ZIO_TEST_CORPUS "/http1/") + e->d_name, std::ios::binary);
      std::stringstream ss;
      ss << f.rdbuf();
      out.push_back(ss.str());
    }
    closedir(d);
  }
  return out;
}

TEST(Http1Conn, FuzzedStreamsInRandomPiecesNeverHurtTheShard) {
  HttpHarness h;
  HttpConfig hc;
  hc.request_timeout_ms = 200;
  hc.keepalive_timeout_ms = 200;
  hc.body_inline_max = 16;
  h.start(hc);
  auto corpus = seeds();
  uint32_t x = 0x9e3779b9u;
  auto rnd = [&x]() { x ^= x << 13; x ^= x >> 17; x ^= x << 5; return x; };
  const char specials[] = {'\r', '\n', '\0', ' ', ':', '\t', '0', 'f', ';', '\x80'};
  for (int iter = 0; iter < 300; ++iter) {
    std::string s;
    int nreq = 1 + static_cast<int>(rnd() % 4);  // pipelined
    for (int k = 0; k < nreq; ++k) s += corpus[rnd() % corpus.size()];
    int muts = static_cast<int>(rnd() % 4);
    for (int m = 0; m < muts && !s.empty(); ++m) {
      size_t at = rnd() % s.size();
      switch (rnd() % 4) {
        case 0: s[at] = specials[rnd() % sizeof specials]; break;
        case 1: s.insert(at, 1, specials[rnd() % sizeof specials]); break;
        case 2: s.erase(at, 1 + rnd() % 8); break;
        default: s.insert(at, s.substr(at, rnd() % 32)); break;
      }
    }
    int fd = h.client(true);
    size_t at = 0;
    while (at < s.size()) {
      size_t n = std::min<size_t>(s.size() - at, 1 + rnd() % 64);
      ssize_t w = send(fd, s.data() + at, n, MSG_NOSIGNAL);  // the server may have closed: EPIPE, not SIGPIPE
      if (w > 0) at += static_cast<size_t>(w);
      else if (w < 0 && errno != EAGAIN) break;  // the server closed after an error answer
      h.tick(0);
      drain(fd);
    }
    if (rnd() % 2) shutdown(fd, SHUT_WR);  // half of them end their side
    for (int i = 0; i < 10; ++i) {
      h.tick(1);
      drain(fd);
    }
    close(fd);
  }
  // Whatever came before, a well-formed request on a new connection is answered.
  for (int i = 0; i < 400 && h.sh.conns_open() > 0; ++i) h.tick(2);
  int fd = h.client(true);
  std::string req = "GET /after HTTP/1.1\r\nHost: x\r\n\r\n";
  ASSERT_EQ(write(fd, req.data(), req.size()), static_cast<ssize_t>(req.size()));
  std::string got;
  for (int i = 0; i < 300 && got.find("/after") == std::string::npos; ++i) {
    h.tick(5);
    got += drain(fd);
  }
  EXPECT_EQ(got.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << got;
  EXPECT_NE(got.find("\r\n\r\n/after"), std::string::npos);
  EXPECT_GT(h.answered, 100u);  // most fuzzed streams still carried requests
  const HttpCounters* st = h.sh.endpoint_http_stats(h.ep, h.ep_gen);
  ASSERT_NE(st, nullptr);
  EXPECT_GT(st->parse_errors + st->limit_hits, 0u);
  close(fd);
}

}  // namespace

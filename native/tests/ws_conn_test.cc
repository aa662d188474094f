// Tests for shard/ws_conn.cc and ws_pubsub.cc against real loopback sockets: the opening
// handshake, an echo through the engine, and a fuzz run of upgrades followed by mutated frame
// streams cut into random pieces, with echoes, publishes and closes mixed in (run under ASan and
// UBSan by the test command), after which a well-formed WebSocket still echoes.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "shard/shard.h"
#include "tests/test_config.h"

using namespace zio;

namespace {

constexpr char kUpgrade[] =
    "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
    "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
// The same with a permessage-deflate offer (the listener accepts it when configured to).
constexpr char kUpgradeDeflate[] =
    "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
    "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n";

struct WsHarness {
  Shard sh;
  uint32_t ep = 0, ep_gen = 0;
  uint16_t port = 0;
  uint64_t messages = 0, opens = 0;
  uint32_t rnd_state = 0x12345678u;
  bool chaos = false;  // close, publish and unsubscribe at random while echoing
  uint32_t rnd() { uint32_t& x = rnd_state; x ^= x << 13; x ^= x >> 17; x ^= x << 5; return x; }
  void start(WsConfig wc = WsConfig{}) {
    std::string kind, err;
    ShardConfig c = zio::testing::base_cfg();
    c.max_connections = 64;
    ASSERT_EQ(sh.init(c, &kind, &err), 0) << kind << ": " << err;
    ASSERT_TRUE(zio::testing::listen_loopback(sh, &ep, &ep_gen, &port));
    HttpConfig hc;
    hc.http2 = false;
    hc.request_timeout_ms = 300;
    ASSERT_EQ(sh.endpoint_set_http(ep, ep_gen, hc), 0);
    ASSERT_EQ(sh.endpoint_set_ws(ep, ep_gen, wc), 0);
  }
  int client() {
    int fd = zio::testing::connect_loopback(port, true);
    EXPECT_GE(fd, 0);
    return fd;
  }
  // One tick: every message is echoed (and, with chaos, published or answered by a close).
  void tick(int64_t ms) {
    int n = sh.tick(ms);
    const uint8_t* base = sh.pool()->base();
    for (int k = 0; k < n; ++k) {
      const EventRec& e = sh.events()[k];
      uint32_t idx = static_cast<uint32_t>(e.index), gen = static_cast<uint32_t>(e.gen);
      if (e.type == kEvWsOpen) {
        ++opens;
        EXPECT_GT(e.len, kHttpRecordHeader);
        sh.ws_subscribe(idx, gen, "t", true);
      } else if (e.type == kEvStreamFrame && (e.kind == kKindWsText || e.kind == kKindWsBinary)) {
        ++messages;
        EXPECT_LE(static_cast<uint64_t>(e.off) + e.len, sh.pool()->bytes());
        const uint8_t* p = base + e.off;
        uint32_t r = chaos ? rnd() % 16 : 1;
        if (r == 0) {
          sh.ws_close(idx, gen, 4000, reinterpret_cast<const uint8_t*>("x"), 1);
        } else if (r == 1 || r > 3) {
          sh.ws_send(idx, gen, e.kind == kKindWsText, p, e.len);
        } else if (r == 2) {
          uint32_t counts[3];
          sh.ws_publish("t", false, p, e.len, counts);
        } else {
          sh.ws_subscribe(idx, gen, "t", false);
        }
      }
    }
    sh.end_batch();
  }
};

using zio::testing::drain;

std::string client_frame(uint8_t opcode, bool fin, const std::string& payload, uint32_t key, bool rsv1 = false) {
  uint8_t h[ws::kHeaderMax];
  uint8_t k[4];
  memcpy(k, &key, 4);
  size_t n = ws::write_header(h, opcode, fin, payload.size(), k);
  if (rsv1) h[0] |= 0x40;
  std::string p = payload;
  ws::unmask(reinterpret_cast<uint8_t*>(p.data()), p.size(), k, 0);
  return std::string(reinterpret_cast<char*>(h), n) + p;
}

TEST(WsConn, HandshakeAndEcho) {
  WsHarness h;
  h.start();
  int fd = h.client();
  ASSERT_EQ(write(fd, kUpgrade, sizeof kUpgrade - 1), static_cast<ssize_t>(sizeof kUpgrade - 1));
  std::string got;
  for (int i = 0; i < 200 && got.find("\r\n\r\n") == std::string::npos; ++i) {
    h.tick(2);
    got += drain(fd);
  }
  // RFC 6455 section 1.3's example key and answer.
  EXPECT_EQ(got.rfind("HTTP/1.1 101 Switching Protocols\r\n", 0), 0u) << got;
  EXPECT_NE(got.find("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"), std::string::npos) << got;
  std::string f = client_frame(ws::kText, true, "hello", 0x01020304);
  ASSERT_EQ(write(fd, f.data(), f.size()), static_cast<ssize_t>(f.size()));
  got.clear();
  for (int i = 0; i < 200 && got.size() < 7; ++i) {
    h.tick(2);
    got += drain(fd);
  }
  EXPECT_EQ(got, std::string("\x81\x05hello", 7));
  EXPECT_EQ(h.messages, 1u);
  close(fd);
}

// `pieces`: the listener streams messages in pieces (messageDelivery: 'pieces').
void FuzzFrames(bool pieces) {
  WsHarness h;
  WsConfig wc;
  wc.pieces = pieces;
  wc.max_message = 8192;
  wc.ping_interval_ms = 50;
  wc.close_timeout_ms = 50;
  wc.send_max = 16 * 1024;
  wc.deflate = true;  // half the connections offer permessage-deflate
  wc.deflate_min = 16;
  h.start(wc);
  h.chaos = true;
  ws::Deflater z;  // valid compressed payloads for some frames
  z.configure(3, 15, 8);
  const char specials[] = {'\x00', '\x80', '\x81', '\x82', '\x88', '\x89', '\x7e', '\x7f', '\xff', '\x0a'};
  for (int iter = 0; iter < 250; ++iter) {
    bool deflate = iter % 2 == 1;
    std::string s = deflate ? kUpgradeDeflate : kUpgrade;
    int nframes = 1 + static_cast<int>(h.rnd() % 12);
    bool in_msg = false;
    for (int k = 0; k < nframes; ++k) {
      uint32_t kind = h.rnd() % 6;
      std::string payload(h.rnd() % (kind == 5 ? 3000 : 200), static_cast<char>('a' + h.rnd() % 26));
      if (h.rnd() % 5 == 0 && !payload.empty()) payload[h.rnd() % payload.size()] = '\xc3';  // may break UTF-8
      uint8_t op;
      bool fin = true;
      switch (kind) {
        case 0: op = ws::kPing; payload.resize(std::min<size_t>(payload.size(), 125)); break;
        case 1: op = in_msg ? ws::kContinuation : ws::kText; fin = h.rnd() % 2; in_msg = !fin; break;
        case 2: op = in_msg ? ws::kContinuation : ws::kBinary; fin = h.rnd() % 2; in_msg = !fin; break;
        case 3: op = ws::kPong; payload.resize(std::min<size_t>(payload.size(), 125)); break;
        case 4: op = h.rnd() % 8 == 0 ? ws::kClose : ws::kBinary; if (op == ws::kClose) payload = std::string("\x03\xe8", 2); break;
        default: op = in_msg ? ws::kContinuation : ws::kBinary; break;
      }
      // With deflate, a new data message may be compressed: valid data, or (sometimes) garbage.
      bool rsv1 = deflate && (op == ws::kText || op == ws::kBinary) && h.rnd() % 2;
      if (rsv1 && h.rnd() % 4) {
        std::string zout;
        z.compress(reinterpret_cast<const uint8_t*>(payload.data()), payload.size(), &zout, true);
        payload = zout;
      }
      s += client_frame(op, fin, payload, h.rnd(), rsv1);
    }
    int muts = static_cast<int>(h.rnd() % 4);
    for (int m = 0; m < muts; ++m) {
      size_t head = deflate ? sizeof kUpgradeDeflate - 1 : sizeof kUpgrade - 1;
      size_t at = head + h.rnd() % (s.size() - head);
      if (at >= s.size()) continue;
      switch (h.rnd() % 3) {
        case 0: s[at] = specials[h.rnd() % sizeof specials]; break;
        case 1: s.insert(at, 1, specials[h.rnd() % sizeof specials]); break;
        default: s.erase(at, 1 + h.rnd() % 8); break;
      }
    }
    int fd = h.client();
    size_t at = 0;
    while (at < s.size()) {
      size_t n = std::min<size_t>(s.size() - at, 1 + h.rnd() % 700);
      ssize_t w = send(fd, s.data() + at, n, MSG_NOSIGNAL);
      if (w > 0) at += static_cast<size_t>(w);
      else if (w < 0 && errno != EAGAIN) break;
      h.tick(0);
      if (h.rnd() % 3) drain(fd);  // sometimes a slow reader
    }
    if (h.rnd() % 2) shutdown(fd, SHUT_WR);
    for (int i = 0; i < 6; ++i) {
      h.tick(1);
      drain(fd);
    }
    if (h.rnd() % 2) close(fd);
    else { drain(fd); close(fd); }
  }
  for (int i = 0; i < 500 && h.sh.conns_open() > 0; ++i) h.tick(2);
  EXPECT_EQ(h.sh.conns_open(), 0u);
  // Whatever came before, a well-formed WebSocket echoes.
  h.chaos = false;
  int fd = h.client();
  std::string s = std::string(kUpgrade) + client_frame(ws::kBinary, true, "after", 7);
  ASSERT_EQ(write(fd, s.data(), s.size()), static_cast<ssize_t>(s.size()));
  std::string got;
  for (int i = 0; i < 300 && got.find("after") == std::string::npos; ++i) {
    h.tick(2);
    got += drain(fd);
  }
  EXPECT_NE(got.find(std::string("\x82\x05" "after", 7)), std::string::npos);
  EXPECT_GT(h.opens, 200u);
  EXPECT_GT(h.messages, 200u);
  const WsCounters* st = h.sh.endpoint_ws_stats(h.ep, h.ep_gen);
  ASSERT_NE(st, nullptr);
  EXPECT_GT(st->protocol_errors, 0u);
  // Every pool slot is back once the connections are gone (no record, message or frame leaked).
  close(fd);
  for (int i = 0; i < 200 && h.sh.conns_open() > 0; ++i) h.tick(2);
  h.tick(0);
  EXPECT_EQ(h.sh.pool()->free_stack.current, 0u);
}

TEST(WsConn, FuzzedFrameStreamsInRandomPiecesNeverHurtTheShard) { FuzzFrames(false); }
TEST(WsConn, FuzzedFrameStreamsNeverHurtTheShardInPiecesMode) { FuzzFrames(true); }

}  // namespace

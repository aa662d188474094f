// native/tests/quic_test.cc — QUIC: the sans-IO pieces (the first look at a datagram, retry
// tokens, connection ids) and the packet entry of a real shard under fuzz — random datagrams,
// real Initials from a quiche client mutated and cut, unknown versions — after which the shard
// still completes a real handshake with its own client and carries stream data both ways. Run
// under ASan/UBSan by the test command, on both backends.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/rand.h>
#include <quiche.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "proto/quic/quic.h"
#include "shard/shard.h"
#include "tests/test_certs.h"
#include "tests/test_config.h"

using namespace zio;

namespace {

uint32_t rnd_state = 0x2545f491u;
uint32_t rnd() {
  uint32_t& x = rnd_state;
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  return x;
}

using zio::testing::loopback;

// A real client Initial (1200+ bytes) from a fresh quiche client connection.
std::vector<uint8_t> real_initial() {
  quic::Settings s;
  s.server = false;
  s.verify_peer = false;
  s.alpn = {"zio-test"};
  std::string err;
  quiche_config* cfg = quic::make_config(s, &err);
  EXPECT_TRUE(cfg) << err;
  uint8_t scid[16];
  RAND_bytes(scid, sizeof scid);
  sockaddr_in local = loopback(40000), peer = loopback(40001);
  quiche_conn* c = quiche_connect("a.test", scid, sizeof scid, reinterpret_cast<sockaddr*>(&local), sizeof local,
                                  reinterpret_cast<sockaddr*>(&peer), sizeof peer, cfg);
  std::vector<uint8_t> out(1500);
  quiche_send_info si;
  ssize_t n = c ? quiche_conn_send(c, out.data(), out.size(), &si) : -1;
  out.resize(n > 0 ? static_cast<size_t>(n) : 0);
  if (c) quiche_conn_free(c);
  quiche_config_free(cfg);
  return out;
}

}  // namespace

TEST(QuicProto, HeaderOfARealInitialAndOfJunk) {
  std::vector<uint8_t> ini = real_initial();
  ASSERT_GE(ini.size(), 1200u);
  quic::Header h;
  ASSERT_TRUE(quic::parse_header(ini.data(), ini.size(), &h));
  EXPECT_EQ(h.type, quic::PacketType::Initial);
  EXPECT_EQ(h.version, 1u);
  EXPECT_EQ(h.dcid_len, 16u);
  EXPECT_EQ(h.scid_len, 16u);
  // Mutations and cuts of it, and random bytes: never a crash, never an out-of-range length.
  for (int i = 0; i < 20000; ++i) {
    std::vector<uint8_t> b = ini;
    if (i % 3 == 0) {
      b.resize(rnd() % (ini.size() + 1));
    } else if (i % 3 == 1) {
      for (int k = 0; k < 1 + static_cast<int>(rnd() % 8); ++k) b[rnd() % b.size()] = static_cast<uint8_t>(rnd());
    } else {
      b.resize(rnd() % 1500);
      for (auto& x : b) x = static_cast<uint8_t>(rnd());
      if (!b.empty() && (rnd() & 1)) b[0] |= 0xc0;
    }
    quic::Header g;
    if (quic::parse_header(b.data(), b.size(), &g)) {
      EXPECT_LE(g.dcid_len, 20u);
      EXPECT_LE(g.scid_len, 20u);
      EXPECT_LE(g.token_len, sizeof g.token);
    }
  }
  // An unknown version is still read (for Version Negotiation), and answered.
  std::vector<uint8_t> vn = ini;
  vn[1] = 0x1a; vn[2] = 0x2a; vn[3] = 0x3a; vn[4] = 0x4a;
  ASSERT_TRUE(quic::parse_header(vn.data(), vn.size(), &h));
  EXPECT_FALSE(quic::version_supported(h.version));
  uint8_t out[1500];
  long w = quic::negotiate_version(h, out, sizeof out);
  ASSERT_GT(w, 7);
  EXPECT_EQ(out[1] | out[2] | out[3] | out[4], 0);  // version 0
}

TEST(QuicProto, RetryTokensBindAddressAndExpire) {
  quic::RetryTokens t(1000);
  sockaddr_in a = loopback(5000), b = loopback(5001);
  const auto* pa = reinterpret_cast<const uint8_t*>(&a);
  const auto* pb = reinterpret_cast<const uint8_t*>(&b);
  uint8_t odcid[16], tok[96], got[20];
  RAND_bytes(odcid, sizeof odcid);
  size_t n = t.mint(pa, sizeof a, odcid, sizeof odcid, 10000, tok, sizeof tok);
  ASSERT_GT(n, 0u);
  ASSERT_EQ(t.check(tok, n, pa, sizeof a, 10500, got), sizeof odcid);
  EXPECT_EQ(memcmp(got, odcid, sizeof odcid), 0);
  EXPECT_EQ(t.check(tok, n, pb, sizeof b, 10500, got), 0u);   // another address
  EXPECT_EQ(t.check(tok, n, pa, sizeof a, 11001, got), 0u);   // expired
  for (size_t i = 0; i < n; ++i) {                             // any flipped bit
    tok[i] ^= 1;
    EXPECT_EQ(t.check(tok, n, pa, sizeof a, 10500, got), 0u) << i;
    tok[i] ^= 1;
  }
  EXPECT_EQ(t.check(tok, n - 1, pa, sizeof a, 10500, got), 0u);
  t.rotate(10600);  // the previous key still checks...
  EXPECT_EQ(t.check(tok, n, pa, sizeof a, 10700, got), sizeof odcid);
  t.rotate(10800);  // ...but not the one before it
  EXPECT_EQ(t.check(tok, n, pa, sizeof a, 10900, got), 0u);
}

TEST(QuicProto, ConnectionIdsCarryTheirSlot) {
  for (uint32_t slot : {0u, 1u, 0x155u, 0x3fffu}) {
    uint8_t id[quic::kCidLen];
    quic::make_cid(id, static_cast<uint16_t>(slot));
    EXPECT_EQ(quic::cid_slot(id, sizeof id), slot);
  }
}

TEST(QuicProto, StatelessResetsAreSmallerThanTheirTriggerAndEndInTheToken) {
  const uint8_t key[32] = {1, 2, 3};
  uint8_t id[quic::kCidLen], t1[16], t2[16], t3[16];
  quic::make_cid(id, 7);
  quic::reset_token(key, sizeof key, id, sizeof id, t1);
  quic::reset_token(key, sizeof key, id, sizeof id, t2);
  EXPECT_EQ(memcmp(t1, t2, 16), 0);  // the same id and key: the same token (after a restart too)
  id[5] ^= 1;
  quic::reset_token(key, sizeof key, id, sizeof id, t3);
  EXPECT_NE(memcmp(t1, t3, 16), 0);  // another id: another token
  const uint8_t other[32] = {9};
  id[5] ^= 1;
  quic::reset_token(other, sizeof other, id, sizeof id, t3);
  EXPECT_NE(memcmp(t1, t3, 16), 0);  // another key: another token
  // Section 10.3.3: smaller than the packet that triggered it, never below 21 bytes.
  EXPECT_EQ(quic::reset_size(21), 0u);
  EXPECT_EQ(quic::reset_size(22), 21u);
  EXPECT_EQ(quic::reset_size(40), 39u);
  EXPECT_EQ(quic::reset_size(1350), 64u);
  uint8_t pkt[64];
  for (size_t size : {size_t{21}, size_t{39}, size_t{64}}) {
    quic::make_stateless_reset(t1, size, pkt);
    EXPECT_EQ(pkt[0] & 0xc0, 0x40) << size;  // a short header: form 0, fixed bit 1
    EXPECT_EQ(memcmp(pkt + size - 16, t1, 16), 0) << size;
  }
}

namespace {

struct QuicHarness {
  Shard sh;
  uint32_t ep = 0, ep_gen = 0;
  uint16_t port = 0;
  uint64_t server_connected = 0, client_connected = 0, echoed = 0;
  int64_t client = -1;
  void start() {
    std::string kind, err;
    ShardConfig c = zio::testing::base_cfg();
    c.max_connections = 256;
    ASSERT_EQ(sh.init(c, &kind, &err), 0) << kind << ": " << err;
    sockaddr_in a = loopback(0);
    UdpOptions o;
    const char* op = nullptr;
    int64_t r = sh.udp_bind(reinterpret_cast<sockaddr*>(&a), sizeof a, o, &op);
    ASSERT_GE(r, 0);
    ep = static_cast<uint32_t>(r);
    ep_gen = sh.endpoint_gen(ep);
    tls::ServerOptions so;
    so.certs.push_back({zio::testing::certs().cert, zio::testing::certs().key, {}});
    so.alpn = {"zio-test"};
    auto ctx = tls::Context::server(so, &err);
    ASSERT_TRUE(ctx) << err;
    auto q = std::make_shared<QuicEndpoint>();
    q->settings.alpn = {"zio-test"};
    q->settings.idle_timeout_ms = 300;  // the handshakes the fuzz starts and abandons expire soon
    q->certs = std::make_shared<tls::CertSlot>(ctx);
    q->max_handshakes = 64;
    q->cfg_hold = quic::shared_config(q->settings, &err);
    ASSERT_TRUE(q->cfg_hold) << err;
    q->cfg = q->cfg_hold.get();
    ASSERT_EQ(sh.quic_listen(ep, ep_gen, q), 0);
    sockaddr_storage ss;
    socklen_t len;
    ASSERT_EQ(sh.endpoint_local(ep, ep_gen, &ss, &len), 0);
    port = ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  }
  std::string pending;  // the server's echo not yet taken
  bool pending_fin = false;
  void flush_echo(uint32_t idx, uint32_t gen, uint32_t stream) {
    int64_t w = sh.quic_stream_write(idx, gen, stream, reinterpret_cast<const uint8_t*>(pending.data()), pending.size(),
                                     pending_fin);
    if (w > 0) pending.erase(0, static_cast<size_t>(w));
  }
    // One tick: the server echoes stream data; Connected events are counted.
  void tick(int64_t ms) {
    int n = sh.tick(ms);
    ASSERT_GE(n, 0);
    const uint8_t* base = sh.pool()->base();
    for (int k = 0; k < n; ++k) {
      const EventRec& e = sh.events()[k];
      uint32_t idx = static_cast<uint32_t>(e.index), gen = static_cast<uint32_t>(e.gen);
      if (e.type == kEvConnected) (static_cast<int64_t>(idx) == client ? client_connected : server_connected)++;
      if (e.type == kEvStreamFrame) {
        ASSERT_LE(static_cast<uint64_t>(e.off) + e.len, sh.pool()->bytes());
        if (static_cast<int64_t>(idx) == client) {
          echoed += e.len;
        } else {  // the echo keeps what flow control (or the congestion window) did not take yet
          pending.append(reinterpret_cast<const char*>(base + e.off), e.len);
          pending_fin = pending_fin || (e.aux & kQuicFin) != 0;
          flush_echo(idx, gen, static_cast<uint32_t>(e.code));
        }
      }
      if (e.type == kEvWritable && static_cast<int64_t>(idx) != client && e.code >= 0) flush_echo(idx, gen, static_cast<uint32_t>(e.code));
    }
    sh.end_batch();
  }
};

}  // namespace

TEST(QuicConn, FuzzedDatagramsNeverHurtTheShardAndAHandshakeStillWorks) {
  QuicHarness h;
  h.start();
  if (HasFatalFailure()) return;
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in to = loopback(h.port);
  auto send = [&](const std::vector<uint8_t>& b) {
    sendto(fd, b.data(), b.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
  };
  for (int i = 0; i < 600; ++i) {
    std::vector<uint8_t> b;
    switch (i % 4) {
      case 0:  // random bytes, any length
        b.resize(1 + rnd() % 1400);
        for (auto& x : b) x = static_cast<uint8_t>(rnd());
        break;
      case 1:  // a real Initial with a few bytes changed (its header or its protected payload)
        b = real_initial();
        for (int k = 0; k < 1 + static_cast<int>(rnd() % 6); ++k) b[rnd() % b.size()] = static_cast<uint8_t>(rnd());
        break;
      case 2:  // a real Initial cut short, or a short header for an unknown id
        b = real_initial();
        b.resize(rnd() % b.size());
        if (rnd() & 1) { b.assign(60, 0); b[0] = 0x40; for (size_t k = 1; k < b.size(); ++k) b[k] = static_cast<uint8_t>(rnd()); }
        break;
      default:  // a real Initial: a handshake that is started and then abandoned
        b = real_initial();
        if (i % 40 == 3) { b[1] = 0x0a; b[2] = 0x1a; }  // now and then an unknown version
        break;
    }
    if (!b.empty()) send(b);
    h.tick(0);
  }
  for (int i = 0; i < 50; ++i) h.tick(2);
  const QuicCounters* st = h.sh.endpoint_quic_stats(h.ep, h.ep_gen);
  ASSERT_NE(st, nullptr);
  EXPECT_GT(st->dropped + st->unknown_cid, 200u);
  EXPECT_GT(st->version_negotiations, 0u);
  EXPECT_EQ(h.server_connected, 0u);
  // The abandoned handshakes end by the idle timeout: the table empties.
  // (quiche's handshake idle timeout is at least 3 PTOs: about 3 s with no RTT sample)
  for (int i = 0; i < 2000 && h.sh.conns_open() > 0; ++i) h.tick(5);
  EXPECT_EQ(h.sh.conns_open(), 0u);
  close(fd);

  // A real handshake, the shard's own client against the fuzzed listener, and an echo.
  tls::ClientOptions co;
  co.servername = "a.test";
  co.alpn = {"zio-test"};
  co.ca_pem = zio::testing::certs().cert;
  std::string err;
  auto cctx = tls::Context::client(co, &err);
  ASSERT_TRUE(cctx) << err;
  auto q = std::make_shared<QuicEndpoint>();
  q->settings.server = false;
  q->settings.alpn = {"zio-test"};
  q->client = cctx;
  q->cfg_hold = quic::shared_config(q->settings, &err);
  ASSERT_TRUE(q->cfg_hold) << err;
  q->cfg = q->cfg_hold.get();
  h.client = h.sh.quic_connect(reinterpret_cast<sockaddr*>(&to), sizeof to, q, &err);
  ASSERT_GE(h.client, 0) << err;
  uint32_t cg = h.sh.conn_gen(static_cast<uint32_t>(h.client));
  for (int i = 0; i < 500 && !(h.client_connected && h.server_connected); ++i) h.tick(2);
  ASSERT_EQ(h.client_connected, 1u);
  ASSERT_EQ(h.server_connected, 1u);
  std::string msg(100000, 'q');
  size_t off = 0;
  for (int i = 0; i < 2000 && h.echoed < msg.size(); ++i) {
    if (off < msg.size()) {
      int64_t w = h.sh.quic_stream_write(static_cast<uint32_t>(h.client), cg, 0,
                                         reinterpret_cast<const uint8_t*>(msg.data()) + off, msg.size() - off, false);
      ASSERT_GE(w, 0);
      off += static_cast<size_t>(w);
      if (off == msg.size()) h.sh.quic_stream_write(static_cast<uint32_t>(h.client), cg, 0, nullptr, 0, true);
    }
    h.tick(2);
  }
  EXPECT_EQ(h.echoed, msg.size());
  h.sh.conn_close(static_cast<uint32_t>(h.client), cg);
  // The server's side drains for 3 PTOs after the peer's CONNECTION_CLOSE (RFC 9000 section 10.2).
  for (int i = 0; i < 2000 && h.sh.conns_open() > 0; ++i) h.tick(5);
  EXPECT_EQ(h.sh.conns_open(), 0u);
}

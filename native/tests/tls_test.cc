// native/tests/tls_test.cc — the TLS machine (proto/tls) on its own: two sessions wired
// back to back in memory, certificates made by the openssl CLI.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "proto/tls/tls.h"
#include "tests/test_certs.h"

using namespace zio::tls;
using zio::testing::certs;

namespace {

struct Pipe : Sink {
  std::string buf;
  size_t put(const uint8_t* d, size_t n) override {
    buf.append(reinterpret_cast<const char*>(d), n);
    return n;
  }
};

// Moves bytes both ways until neither side has anything to say. Returns plaintext read.
void pump(Session& a, Pipe& ao, Session& b, Pipe& bo, std::string* a_got, std::string* b_got) {
  for (int i = 0; i < 20; ++i) {
    std::string x = ao.buf, y = bo.buf;
    ao.buf.clear();
    bo.buf.clear();
    if (x.empty() && y.empty()) break;
    uint8_t out[4096];
    b.feed(reinterpret_cast<const uint8_t*>(x.data()), x.size());
    for (int n; (n = b.read(out, sizeof out)) > 0;) b_got->append(reinterpret_cast<char*>(out), n);
    b.keep_input();
    a.feed(reinterpret_cast<const uint8_t*>(y.data()), y.size());
    for (int n; (n = a.read(out, sizeof out)) > 0;) a_got->append(reinterpret_cast<char*>(out), n);
    a.keep_input();
  }
}

// A client and a server session wired back to back in memory.
struct Link {
  Session srv, cli;
  Pipe so, co;              // what each end sent, not yet delivered
  std::string err, sg, cg;  // the last start error; the plaintext each end received
  // Starts both ends, the server first (what the shard does at accept); false with err when
  // either refuses.
  bool start(std::shared_ptr<Context> server, std::shared_ptr<Context> client) {
    return srv.start(std::move(server), &so, &err) == 0 && cli.start(std::move(client), &co, &err) == 0;
  }
  void pump() { ::pump(cli, co, srv, so, &cg, &sg); }
};

std::shared_ptr<Context> server_ctx(ServerOptions o = {}) {
  if (o.certs.empty()) o.certs.push_back({certs().cert, certs().key, {}});
  std::string err;
  auto c = Context::server(o, &err);
  EXPECT_TRUE(c) << err;
  return c;
}

std::shared_ptr<Context> client_ctx(const std::string& name, const std::string& ca) {
  ClientOptions o;
  o.servername = name;
  o.ca_pem = ca;
  std::string err;
  auto c = Context::client(o, &err);
  EXPECT_TRUE(c) << err;
  return c;
}

}  // namespace

TEST(Tls, HandshakeAndDataBothWays) {
  Link l;
  ASSERT_TRUE(l.start(server_ctx(), client_ctx("a.test", certs().cert))) << l.err;
  EXPECT_EQ(l.cli.write(reinterpret_cast<const uint8_t*>("early"), 5, 100), 5);  // held until done
  l.pump();
  EXPECT_EQ(l.srv.phase(), Phase::Open);
  EXPECT_EQ(l.cli.phase(), Phase::Open);
  EXPECT_STREQ(l.cli.version(), "TLSv1.3");
  EXPECT_EQ(l.sg, "early");
  std::string big(100000, 'x');
  EXPECT_EQ(l.srv.write(reinterpret_cast<const uint8_t*>(big.data()), big.size(), 0), 100000);
  pump(l.srv, l.so, l.cli, l.co, &l.sg, &l.cg);  // the server speaks first this time
  EXPECT_EQ(l.cg, big);
  EXPECT_EQ(l.cli.peer_subject(), "/CN=a.test");
  EXPECT_TRUE(l.cli.peer_verified());
}

TEST(Tls, WrongNameFailsVerification) {
  Link l;
  ASSERT_TRUE(l.start(server_ctx(), client_ctx("other.test", certs().cert))) << l.err;
  l.pump();
  EXPECT_EQ(l.cli.phase(), Phase::Failed);
  EXPECT_NE(l.cli.reason().find("certificate verification failed"), std::string::npos) << l.cli.reason();
  EXPECT_EQ(l.cli.alert(), 42 /* bad_certificate */) << l.cli.reason();
  EXPECT_EQ(l.srv.phase(), Phase::Failed);
  EXPECT_TRUE(l.srv.alert_received());
}

TEST(Tls, GarbageInsteadOfClientHello) {
  Session srv;
  Pipe so;
  std::string err;
  ASSERT_EQ(srv.start(server_ctx(), &so, &err), 0);
  const char* junk = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  srv.feed(reinterpret_cast<const uint8_t*>(junk), strlen(junk));
  uint8_t out[256];
  EXPECT_EQ(srv.read(out, sizeof out), kTlsHandshakeFailed);
  EXPECT_EQ(srv.phase(), Phase::Failed);
  EXPECT_FALSE(srv.reason().empty());
}

TEST(Tls, TruncatedRecordWaitsThenCorruptRecordFails) {
  Link l;
  ASSERT_TRUE(l.start(server_ctx(), client_ctx("a.test", certs().cert))) << l.err;
  l.pump();
  ASSERT_EQ(l.cli.write(reinterpret_cast<const uint8_t*>("hello"), 5, 0), 5);
  std::string rec = l.co.buf;
  l.co.buf.clear();
  Session& srv = l.srv;
  uint8_t out[256];
  srv.feed(reinterpret_cast<const uint8_t*>(rec.data()), rec.size() - 3);  // truncated
  EXPECT_EQ(srv.read(out, sizeof out), kTlsNeedInput);
  srv.keep_input();
  std::string tail = rec.substr(rec.size() - 3);
  tail[0] ^= 0x55;  // corrupt the tag
  srv.feed(reinterpret_cast<const uint8_t*>(tail.data()), tail.size());
  EXPECT_EQ(srv.read(out, sizeof out), kTlsProtocolError);
  EXPECT_EQ(srv.phase(), Phase::Failed);
}

TEST(Tls, SniPicksCertificateAndReloadKeepsTickets) {
  ServerOptions o;
  o.certs.push_back({certs().cert, certs().key, {}});
  o.certs.push_back({certs().cert2, certs().key2, {"b.test"}});
  auto sctx = server_ctx(o);
  Link l;
  ASSERT_TRUE(l.start(sctx, client_ctx("b.test", certs().cert2))) << l.err;
  l.pump();
  EXPECT_EQ(l.cli.phase(), Phase::Open) << l.cli.reason();
  EXPECT_EQ(l.cli.peer_subject(), "/CN=b.test");
  EXPECT_EQ(l.srv.servername(), "b.test");

  // A bad PEM is refused and the slot keeps its context.
  CertSlot slot(sctx);
  std::string rerr;
  EXPECT_EQ(slot.reload({{"not a pem", "nor this", {}}}, &rerr), -1);
  EXPECT_NE(rerr.find("certificate"), std::string::npos);
  EXPECT_EQ(slot.get(), sctx);
  // A key that does not match the certificate is refused too.
  EXPECT_EQ(slot.reload({{certs().cert, certs().key2, {}}}, &rerr), -1);
  EXPECT_NE(rerr.find("does not match"), std::string::npos) << rerr;
  EXPECT_EQ(slot.reload({{certs().cert2, certs().key2, {}}}, &rerr), 0) << rerr;
  EXPECT_NE(slot.get(), sctx);
  EXPECT_EQ(slot.generation(), 2u);
}

TEST(Tls, KtlsKeysOnlyForTls12Gcm) {
  ClientOptions co12;
  co12.servername = "a.test";
  co12.ca_pem = certs().cert;
  co12.max_version = kTls12;
  std::string err;
  auto c12 = Context::client(co12, &err);
  ASSERT_TRUE(c12) << err;
  Link l;
  ASSERT_TRUE(l.start(server_ctx(), c12)) << l.err;
  l.pump();
  ASSERT_EQ(l.cli.phase(), Phase::Open) << l.cli.reason();
  EXPECT_STREQ(l.cli.version(), "TLSv1.2");
  KtlsKeys kc, ks;
  const char* why = nullptr;
  ASSERT_TRUE(l.cli.ktls_keys(&kc, &why)) << why;
  ASSERT_TRUE(l.srv.ktls_keys(&ks, &why)) << why;
  EXPECT_EQ(memcmp(kc.tx_key, ks.rx_key, kc.key_len), 0);  // the two ends agree
  EXPECT_EQ(memcmp(kc.rx_iv, ks.tx_iv, 4), 0);
  EXPECT_EQ(kc.tx_seq, ks.rx_seq);

  Link l13;
  ASSERT_TRUE(l13.start(server_ctx(), client_ctx("a.test", certs().cert))) << l13.err;
  l13.pump();
  EXPECT_FALSE(l13.cli.ktls_keys(&kc, &why));
  EXPECT_NE(std::string(why).find("TLS 1.3"), std::string::npos);
}

TEST(Tls, HandshakeInProgressFinishesOnTheOldCertificate) {
  CertSlot slot(server_ctx());
  Link l;
  ASSERT_TRUE(l.start(slot.get(), client_ctx("a.test", certs().cert))) << l.err;
  std::string rerr;
  ASSERT_EQ(slot.reload({{certs().cert2, certs().key2, {}}}, &rerr), 0) << rerr;  // mid-handshake
  l.pump();
  EXPECT_EQ(l.cli.phase(), Phase::Open) << l.cli.reason();
  EXPECT_EQ(l.cli.peer_subject(), "/CN=a.test");  // the old one
  Link l2;
  ASSERT_TRUE(l2.start(slot.get(), client_ctx("b.test", certs().cert2))) << l2.err;
  l2.pump();
  EXPECT_EQ(l2.cli.peer_subject(), "/CN=b.test");  // the next one gets the new one
}

// A mutation fuzzer over the server's input (run on every test pass, and under ASan/UBSan in
// the sanitizer build): real ClientHellos and records, bit-flipped, truncated, spliced and
// chunked at random. Every input must end Open, Failed or waiting for more — never a crash,
// and never a read loop that does not terminate.
TEST(TlsFuzz, MutatedClientHellosAndRecords) {
  // A real transcript to mutate: one client's first flight and an application record.
  Session srv0, cli0;
  Pipe so0, co0;
  std::string err, sg, cg;
  ASSERT_EQ(cli0.start(client_ctx("a.test", certs().cert), &co0, &err), 0);
  std::string hello = co0.buf;
  ASSERT_EQ(srv0.start(server_ctx(), &so0, &err), 0);
  pump(cli0, co0, srv0, so0, &cg, &sg);
  ASSERT_EQ(cli0.write(reinterpret_cast<const uint8_t*>("payload"), 7, 0), 7);
  std::string record = co0.buf;
  auto sctx = server_ctx();
  uint64_t x = 0x9e3779b97f4a7c15ull;
  auto rnd = [&x]() { x ^= x << 13; x ^= x >> 7; x ^= x << 17; return x; };
  int failed = 0, open = 0, waiting = 0;
  for (int iter = 0; iter < 3000; ++iter) {
    std::string in = (iter % 3 == 2) ? hello + record : hello;
    int muts = 1 + static_cast<int>(rnd() % 4);
    for (int m = 0; m < muts && !in.empty(); ++m) {
      size_t at = rnd() % in.size();
      switch (rnd() % 4) {
        case 0: in[at] ^= static_cast<char>(1 << (rnd() % 8)); break;        // bit flip
        case 1: in.resize(at); break;                                          // truncate
        case 2: in.insert(at, std::string(1 + rnd() % 64, static_cast<char>(rnd()))); break;
        default: in[at] = static_cast<char>(rnd()); break;                     // byte
      }
    }
    Session s;
    Pipe out;
    ASSERT_EQ(s.start(sctx, &out, &err), 0);
    uint8_t buf[1024];
    size_t pos = 0;
    int r = kTlsNeedInput;
    while (pos < in.size() && s.phase() != Phase::Failed) {
      size_t n = std::min<size_t>(1 + rnd() % 300, in.size() - pos);
      s.feed(reinterpret_cast<const uint8_t*>(in.data() + pos), n);
      pos += n;
      for (int guard = 0; guard < 1000 && (r = s.read(buf, sizeof buf)) > 0; ++guard) {}
      s.keep_input();
    }
    if (s.phase() == Phase::Failed) {
      ++failed;
      EXPECT_FALSE(s.reason().empty());
    } else if (s.phase() == Phase::Open) {
      ++open;
    } else {
      ++waiting;
    }
  }
  EXPECT_GT(failed, 1000);  // most mutations are caught, each with a reason
  EXPECT_EQ(failed + open + waiting, 3000);
}

TEST(Tls, TicketsResumeAcrossReload) {
  CertSlot slot(server_ctx());
  auto cctx = client_ctx("a.test", certs().cert);  // resume: on by default
  std::string err;
  auto handshake = [&](bool* resumed) {
    Link l;
    ASSERT_TRUE(l.start(slot.get(), cctx)) << l.err;
    l.pump();  // TLS 1.3: the ticket arrives after the handshake
    ASSERT_EQ(l.cli.phase(), Phase::Open) << l.cli.reason();
    *resumed = l.cli.resumed();
  };
  bool resumed = true;
  handshake(&resumed);
  EXPECT_FALSE(resumed);
  handshake(&resumed);
  EXPECT_TRUE(resumed);
  ASSERT_EQ(slot.reload({{certs().cert, certs().key, {}}}, &err), 0) << err;
  handshake(&resumed);
  EXPECT_TRUE(resumed) << "a ticket issued before the reload resumes after it";
}

TEST(Tls, TicketKeysRotateAndTheOldKeyStillDecrypts) {
  TicketKeys keys;
  const int64_t t0 = 1'000'000;
  TicketKeys::Key k1 = keys.current(t0);
  EXPECT_EQ(memcmp(keys.current(t0 + 60).name, k1.name, 16), 0);  // not due yet
  TicketKeys::Key k2 = keys.current(t0 + TicketKeys::kRotateSeconds);
  EXPECT_NE(memcmp(k2.name, k1.name, 16), 0);
  TicketKeys::Key f;
  bool renew = false;
  ASSERT_TRUE(keys.find(k1.name, &f, &renew));
  EXPECT_TRUE(renew);  // decrypts, and the client gets a ticket under the new key
  EXPECT_EQ(memcmp(f.aes, k1.aes, sizeof f.aes), 0);
  ASSERT_TRUE(keys.find(k2.name, &f, &renew));
  EXPECT_FALSE(renew);
  keys.current(t0 + 2 * TicketKeys::kRotateSeconds);
  EXPECT_FALSE(keys.find(k1.name, &f, &renew));  // two periods old: a full handshake
}

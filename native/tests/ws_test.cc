// The WebSocket frame machine (native/proto/ws): framing round trips at every length encoding,
// fragmentation with control frames between fragments, every RFC 6455 violation and the close
// code it calls for, UTF-8 checking across fragments, input cut anywhere, and a fuzz run.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "proto/ws/deflate.h"
#include "proto/ws/ws.h"

using namespace zio::ws;

namespace {

struct Got : Events {
  std::string data, pings, pongs, close_reason;
  std::vector<std::string> messages;
  std::vector<bool> text;
  uint16_t close_code = 0;
  void on_data(const uint8_t* p, size_t n, bool) override { data.append(reinterpret_cast<const char*>(p), n); }
  void on_message_end(bool t) override {
    messages.push_back(data);
    text.push_back(t);
    data.clear();
  }
  void on_ping(const uint8_t* p, size_t n) override { pings.append(reinterpret_cast<const char*>(p), n); pings += '|'; }
  void on_pong(const uint8_t* p, size_t n) override { pongs.append(reinterpret_cast<const char*>(p), n); }
  void on_close(uint16_t c, const uint8_t* p, size_t n) override {
    close_code = c;
    close_reason.assign(reinterpret_cast<const char*>(p), n);
  }
};

const uint8_t kKey[4] = {0x37, 0xfa, 0x21, 0x3d};

// A frame as a client sends it (masked), or unmasked (server) with key == nullptr.
std::string frame(uint8_t op, bool fin, const std::string& payload, const uint8_t* key = kKey) {
  uint8_t h[kHeaderMax];
  size_t n = write_header(h, op, fin, payload.size(), key);
  std::string f(reinterpret_cast<char*>(h), n);
  std::string p = payload;
  if (key) unmask(reinterpret_cast<uint8_t*>(p.data()), p.size(), key, 0);
  return f + p;
}

// Feeds `in` in pieces of the given size, keeping what the reader leaves (a cut header).
void feed(Reader& r, const std::string& in, size_t piece = SIZE_MAX) {
  std::string pending;
  for (size_t at = 0; at < in.size() && !r.failed() && !r.closed();) {
    size_t k = std::min(piece, in.size() - at);
    pending.append(in, at, k);
    at += k;
    size_t used = r.feed(reinterpret_cast<uint8_t*>(pending.data()), pending.size());
    pending.erase(0, used);
  }
}

uint16_t violation(const std::string& in, bool server = true, uint64_t max = 1 << 20) {
  Got g;
  Limits lim;
  lim.server = server;
  lim.max_message = max;
  Reader r(lim, &g);
  feed(r, in);
  return r.failed();
}

}  // namespace

TEST(WsFrames, RoundTripsAtEveryLengthEncoding) {
  for (size_t n : {size_t{0}, size_t{1}, size_t{125}, size_t{126}, size_t{65535}, size_t{65536}, size_t{1} << 20}) {
    std::string payload(n, '\0');
    for (size_t i = 0; i < n; ++i) payload[i] = static_cast<char>(i * 31 + 7);
    for (size_t piece : {size_t{1} << 30, size_t{7}, size_t{1}}) {
      if (piece == 1 && n > 70000) continue;
      Got g;
      Reader r(Limits{}, &g);
      feed(r, frame(kBinary, true, payload), piece);
      ASSERT_EQ(r.failed(), 0) << r.why();
      ASSERT_EQ(g.messages.size(), 1u) << n << " piece " << piece;
      EXPECT_EQ(g.messages[0], payload);
      EXPECT_FALSE(g.text[0]);
    }
  }
  uint8_t h[kHeaderMax];
  EXPECT_EQ(write_header(h, kText, true, 125, nullptr), 2u);
  EXPECT_EQ(write_header(h, kText, true, 126, nullptr), 4u);
  EXPECT_EQ(write_header(h, kText, true, 70000, kKey), 14u);
}

TEST(WsFrames, FragmentsWithControlFramesBetweenThem) {
  std::string euro = "\xe2\x82\xac";  // U+20AC, cut across fragments below
  std::string in = frame(kText, false, "price " + euro.substr(0, 1)) + frame(kPing, true, "p1") +
                   frame(kContinuation, false, euro.substr(1, 1)) + frame(kPong, true, "q") +
                   frame(kContinuation, true, euro.substr(2) + " 42") + frame(kBinary, true, "\x01\x02") +
                   frame(kClose, true, std::string("\x03\xe8", 2) + "bye");
  for (size_t piece : {size_t{1} << 20, size_t{3}, size_t{1}}) {
    Got g;
    Reader r(Limits{}, &g);
    feed(r, in, piece);
    ASSERT_EQ(r.failed(), 0) << r.why();
    ASSERT_EQ(g.messages.size(), 2u);
    EXPECT_EQ(g.messages[0], "price " + euro + " 42");
    EXPECT_TRUE(g.text[0]);
    EXPECT_EQ(g.messages[1], "\x01\x02");
    EXPECT_EQ(g.pings, "p1|");
    EXPECT_EQ(g.pongs, "q");
    EXPECT_TRUE(r.closed());
    EXPECT_EQ(g.close_code, 1000);
    EXPECT_EQ(g.close_reason, "bye");
  }
}

TEST(WsFrames, ViolationsGetTheirCloseCode) {
  std::string ok = frame(kText, true, "hi");
  EXPECT_EQ(violation(ok), 0);
  std::string rsv = ok;
  rsv[0] = static_cast<char>(rsv[0] | 0x40);
  EXPECT_EQ(violation(rsv), kProtocolError);                             // RSV1 without an extension
  std::string op = ok;
  op[0] = static_cast<char>((op[0] & 0xF0) | 0x3);
  EXPECT_EQ(violation(op), kProtocolError);                              // reserved opcode 3
  EXPECT_EQ(violation(frame(kText, true, "hi", nullptr)), kProtocolError);        // unmasked from a client
  EXPECT_EQ(violation(frame(kText, true, "hi"), false), kProtocolError);          // masked from a server
  EXPECT_EQ(violation(frame(kText, true, "hi", nullptr), false), 0);
  EXPECT_EQ(violation(frame(kPing, false, "x")), kProtocolError);                 // fragmented control
  EXPECT_EQ(violation(frame(kPing, true, std::string(126, 'x'))), kProtocolError);  // control > 125
  EXPECT_EQ(violation(frame(kContinuation, true, "x")), kProtocolError);          // nothing to continue
  EXPECT_EQ(violation(frame(kText, false, "a") + frame(kText, true, "b")), kProtocolError);  // new before end
  std::string loose("\x82\x7e\x00\x05", 4);  // 5 bytes in the 16-bit form
  EXPECT_EQ(violation(loose + std::string(4, '\0') + "hello", true), kProtocolError);
  EXPECT_EQ(violation(std::string("\x82\x7e\x00\x05", 4) + "hello", false), kProtocolError);
  EXPECT_EQ(violation(frame(kBinary, true, std::string(2000, 'x')), true, 1000), kTooBig);
  EXPECT_EQ(violation(frame(kBinary, false, std::string(600, 'x')) + frame(kContinuation, true, std::string(600, 'x')), true, 1000), kTooBig);
  for (const char* bad : {"\xc0\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xff", "\xe2\x82"})  // overlong, surrogate, > U+10FFFF, 0xFF, cut
    EXPECT_EQ(violation(frame(kText, true, bad)), kInvalidPayload) << bad;
  EXPECT_EQ(violation(frame(kBinary, true, "\xc0\x80")), 0);  // binary: no UTF-8 rules
  EXPECT_EQ(violation(frame(kClose, true, "\x03")), kProtocolError);                      // 1-byte close payload
  for (uint16_t code : {999, 1004, 1005, 1006, 1015, 2999, 5000}) {
    std::string p = {static_cast<char>(code >> 8), static_cast<char>(code & 0xff)};
    EXPECT_EQ(violation(frame(kClose, true, p)), kProtocolError) << code;
  }
  EXPECT_EQ(violation(frame(kClose, true, std::string("\x03\xe8", 2) + "\xff")), kInvalidPayload);
  EXPECT_EQ(violation(frame(kClose, true, "")), 0);  // no code: 1005 reported, not sent
}

TEST(WsFrames, Utf8AgreesWithAReferenceDecoder) {
  // The reference: decode code point by code point (a different method), then check ranges.
  auto reference = [](const std::string& s) {
    size_t i = 0;
    while (i < s.size()) {
      uint8_t b = static_cast<uint8_t>(s[i]);
      int n = b < 0x80 ? 0 : (b >> 5) == 6 ? 1 : (b >> 4) == 14 ? 2 : (b >> 3) == 30 ? 3 : -1;
      if (n < 0 || i + n >= s.size() + (n == 0 ? 1 : 0)) {
        if (n < 0 || i + static_cast<size_t>(n) >= s.size()) return n == 0;
      }
      uint32_t cp = n == 0 ? b : b & (0x3F >> n);
      for (int k = 1; k <= n; ++k) {
        uint8_t c = static_cast<uint8_t>(s[i + k]);
        if ((c >> 6) != 2) return false;
        cp = (cp << 6) | (c & 0x3F);
      }
      static const uint32_t kMin[4] = {0, 0x80, 0x800, 0x10000};
      if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
      i += static_cast<size_t>(n) + 1;
    }
    return true;
  };
  std::mt19937 rng(6455);
  for (int t = 0; t < 200000; ++t) {
    std::string s(1 + rng() % 6, '\0');
    for (char& c : s) c = static_cast<char>(rng() % 4 == 0 ? rng() % 0x80 : 0x80 + rng() % 0x80);
    Utf8 u;
    bool ours = u.feed(reinterpret_cast<const uint8_t*>(s.data()), s.size()) && u.complete();
    ASSERT_EQ(ours, reference(s)) << t;
    Utf8 split;  // the same cut in two
    size_t cut = rng() % (s.size() + 1);
    bool a = split.feed(reinterpret_cast<const uint8_t*>(s.data()), cut);
    bool b = a && split.feed(reinterpret_cast<const uint8_t*>(s.data()) + cut, s.size() - cut);
    ASSERT_EQ(b && split.complete(), ours) << t;
  }
}

// Fuzz: valid client streams mutated and fed in random pieces: every run ends cleanly (events,
// a close, or a violation with its code); under ASan/UBSan in the test command.
TEST(WsFrames, FuzzedStreamsFailCleanly) {
  std::vector<std::string> seeds = {
      frame(kText, true, "hello") + frame(kPing, true, "x") + frame(kBinary, true, std::string(300, 'b')),
      frame(kText, false, "he") + frame(kContinuation, true, "llo") + frame(kClose, true, std::string("\x03\xe8", 2)),
      frame(kBinary, true, std::string(70000, 'z')) + frame(kPong, true, ""),
  };
  std::mt19937 rng(20261203);
  size_t failed = 0, clean = 0;
  for (int iter = 0; iter < 3000; ++iter) {
    std::string s = seeds[rng() % seeds.size()];
    for (int m = 0, muts = 1 + static_cast<int>(rng() % 4); m < muts && !s.empty(); ++m) {
      size_t at = rng() % s.size();
      switch (rng() % 4) {
        case 0: s[at] = static_cast<char>(rng()); break;
        case 1: s.insert(s.begin() + static_cast<long>(at), static_cast<char>(rng())); break;
        case 2: s.erase(at, 1 + rng() % 8); break;
        default: s.resize(at); break;
      }
    }
    Got g;
    Limits lim;
    lim.max_message = 1 << 16;
    Reader r(lim, &g);
    feed(r, s, 1 + rng() % 200);
    (r.failed() ? failed : clean)++;
    if (r.failed()) {
      EXPECT_TRUE(r.failed() == kProtocolError || r.failed() == kInvalidPayload || r.failed() == kTooBig) << r.failed();
    }
  }
  EXPECT_GT(failed, 0u);
  EXPECT_GT(clean, 0u);
}

// ---- permessage-deflate (RFC 7692) ----

namespace {
bool Negotiate(const char* offer, const DeflateConfig& cfg, DeflateParams* p, std::string* answer) {
  return negotiate(reinterpret_cast<const uint8_t*>(offer), strlen(offer), cfg, p, answer);
}
}  // namespace

TEST(WsDeflate, NegotiatesTheFirstAcceptableOffer) {
  DeflateConfig cfg;  // server_no_context_takeover by default
  DeflateParams p;
  std::string a;
  ASSERT_TRUE(Negotiate("permessage-deflate; client_max_window_bits", cfg, &p, &a));
  EXPECT_EQ(a, "permessage-deflate; server_no_context_takeover");
  EXPECT_TRUE(p.server_no_context_takeover);
  EXPECT_EQ(p.client_max_window_bits, 15);
  cfg.client_max_window_bits = 10;
  ASSERT_TRUE(Negotiate("permessage-deflate; client_max_window_bits", cfg, &p, &a));
  EXPECT_EQ(a, "permessage-deflate; server_no_context_takeover; client_max_window_bits=10");
  EXPECT_EQ(p.client_max_window_bits, 10);
  // Without client_max_window_bits in the offer we may not answer it.
  ASSERT_TRUE(Negotiate("permessage-deflate", cfg, &p, &a));
  EXPECT_EQ(a.find("client_max_window_bits"), std::string::npos);
  EXPECT_EQ(p.client_max_window_bits, 15);
  // The client limits our window; a quoted value; case-insensitive names.
  ASSERT_TRUE(Negotiate("Permessage-Deflate; server_max_window_bits=\"10\"", cfg, &p, &a));
  EXPECT_EQ(p.server_max_window_bits, 10);
  EXPECT_NE(a.find("server_max_window_bits=10"), std::string::npos);
  // A bad first offer is skipped for the next one; unknown extensions are ignored.
  ASSERT_TRUE(Negotiate("x-foo, permessage-deflate; bogus, permessage-deflate; client_no_context_takeover", cfg, &p, &a));
  EXPECT_TRUE(p.client_no_context_takeover);
  EXPECT_NE(a.find("client_no_context_takeover"), std::string::npos);
  // Declined: repeated or malformed parameters, 8-bit windows (zlib cannot deflate with them).
  EXPECT_FALSE(Negotiate("permessage-deflate; server_no_context_takeover; server_no_context_takeover", cfg, &p, &a));
  EXPECT_FALSE(Negotiate("permessage-deflate; server_max_window_bits=16", cfg, &p, &a));
  EXPECT_FALSE(Negotiate("permessage-deflate; server_max_window_bits", cfg, &p, &a));
  EXPECT_FALSE(Negotiate("permessage-deflate; server_max_window_bits=8", cfg, &p, &a));
  EXPECT_FALSE(Negotiate("permessage-deflate; client_max_window_bits=07", cfg, &p, &a));
  EXPECT_FALSE(Negotiate("x-webkit-deflate-frame", cfg, &p, &a));
  // The client side reads answers.
  DeflateConfig cc;
  cc.server_no_context_takeover = false;
  const char* ans = "permessage-deflate; server_no_context_takeover; client_max_window_bits=12";
  ASSERT_TRUE(accept_answer(reinterpret_cast<const uint8_t*>(ans), strlen(ans), cc, &p));
  EXPECT_TRUE(p.server_no_context_takeover);
  EXPECT_EQ(p.client_max_window_bits, 12);
  const char* bad = "permessage-deflate; whatever";
  EXPECT_FALSE(accept_answer(reinterpret_cast<const uint8_t*>(bad), strlen(bad), cc, &p));
  // A client that asked for server_max_window_bits=10 and client_max_window_bits=9.
  DeflateConfig lim;
  lim.server_no_context_takeover = false;
  lim.server_max_window_bits = 10;
  lim.client_max_window_bits = 9;
  EXPECT_EQ(client_offer(lim), "permessage-deflate; client_max_window_bits=9; server_max_window_bits=10");
  auto ok = [&](const char* a) { return accept_answer(reinterpret_cast<const uint8_t*>(a), strlen(a), lim, &p); };
  EXPECT_FALSE(ok("permessage-deflate"));                                   // our server bound unanswered
  EXPECT_FALSE(ok("permessage-deflate; server_max_window_bits=12"));        // raised
  ASSERT_TRUE(ok("permessage-deflate; server_max_window_bits=9"));
  EXPECT_EQ(p.server_max_window_bits, 9);
  EXPECT_EQ(p.client_max_window_bits, 9);                                   // our offer's bound
  EXPECT_FALSE(ok("permessage-deflate; server_max_window_bits=10; client_max_window_bits=12"));
}

TEST(WsDeflate, RoundTripsWithAndWithoutContextAndStopsBombs) {
  std::mt19937 rng(7);
  for (bool takeover : {false, true}) {
    Deflater d;
    d.configure(3, 11, 8);
    Inflater in;
    in.set_window_bits(11);
    for (int m = 0; m < 200; ++m) {
      std::string msg;
      size_t n = rng() % 5000;
      for (size_t i = 0; i < n; ++i) msg.push_back(static_cast<char>('a' + (rng() % (1 + m % 26))));
      std::string z, back;
      ASSERT_TRUE(d.compress(reinterpret_cast<const uint8_t*>(msg.data()), msg.size(), &z, !takeover));
      const char* why = "";
      // Fed in random pieces, as frames arrive.
      size_t at = 0;
      while (at < z.size()) {
        size_t k = std::min<size_t>(z.size() - at, 1 + rng() % 300);
        ASSERT_EQ(in.feed(reinterpret_cast<const uint8_t*>(z.data()) + at, k, &back, 1 << 20, &why), Inflater::kInflateOk) << why;
        at += k;
      }
      ASSERT_EQ(in.finish(&back, 1 << 20, !takeover, &why), Inflater::kInflateOk) << why;
      ASSERT_EQ(back, msg) << "message " << m << " takeover " << takeover;
    }
  }
  // A bomb: 16 MiB of zeros in a few KiB, against a 1 MiB limit.
  Deflater d;
  d.configure(9, 15, 8);
  std::string zeros(16 << 20, '\0'), z, out;
  ASSERT_TRUE(d.compress(reinterpret_cast<const uint8_t*>(zeros.data()), zeros.size(), &z, true));
  EXPECT_LT(z.size(), 40000u);
  Inflater in;
  const char* why = "";
  EXPECT_EQ(in.feed(reinterpret_cast<const uint8_t*>(z.data()), z.size(), &out, 1 << 20, &why), Inflater::kInflateTooBig);
  EXPECT_LE(out.size(), 1u << 20);
  // Garbage is refused, never crashes (3,000 random inputs).
  for (int i = 0; i < 3000; ++i) {
    Inflater g;
    std::string junk(rng() % 64, '\0'), sink;
    for (char& c : junk) c = static_cast<char>(rng());
    g.feed(reinterpret_cast<const uint8_t*>(junk.data()), junk.size(), &sink, 1 << 16, &why);
    g.finish(&sink, 1 << 16, true, &why);
  }
}

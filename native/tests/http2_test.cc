// Tests for native/proto/http2 against nghttp2's own client session, in memory: requests and
// answers, bodies both ways, many streams, and the defences (rapid reset, a huge head, a bad
// preface, a memory bound, graceful shutdown).
#include <dirent.h>
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <nghttp2/nghttp2.h>

#include <map>
#include <string>
#include <vector>

#include "proto/http2/http2.h"

using namespace zio;

namespace {

struct Got {
  int32_t stream;
  std::string method, path, authority;
  std::vector<std::pair<std::string, std::string>> fields;
  bool end_stream;
  std::string body;
  bool body_end = false;
};

struct Server : http2::Events {
  http2::Server sv;
  std::map<int32_t, Got> reqs;
  std::vector<std::pair<int32_t, uint32_t>> resets;
  bool answer_at_end = true;  // answer each request once its body is complete
  void on_request(const http2::Head& h) override {
    if (h.too_large) {  // the contract: such a head is answered 431, never handled
      EXPECT_EQ(sv.respond(h.stream, 431, nullptr, 0, nullptr, 0, 1700000000), http2::kOk);
      return;
    }
    Got g{h.stream, std::string(h.method), std::string(h.path), std::string(h.authority), {}, h.end_stream, "", h.end_stream};
    for (uint32_t i = 0; i < h.field_count; ++i) g.fields.emplace_back(h.fields[i].first, h.fields[i].second);
    reqs[h.stream] = g;
    if (h.end_stream && answer_at_end) answer(h.stream);
  }
  void on_data(int32_t stream, const uint8_t* d, size_t n, bool end) override {
    Got& g = reqs[stream];
    g.body.append(reinterpret_cast<const char*>(d), n);
    if (end) {
      g.body_end = true;
      if (answer_at_end) answer(stream);
    }
  }
  void on_reset(int32_t stream, uint32_t code) override { resets.emplace_back(stream, code); }
  void answer(int32_t stream) {
    const Got& g = reqs[stream];
    std::string body = g.method + " " + g.path + " " + std::to_string(g.body.size());
    http1::Field f{"X-Echo", 6, "yes", 3};
    EXPECT_EQ(sv.respond(stream, 200, &f, 1, reinterpret_cast<const uint8_t*>(body.data()), body.size(), 1700000000), http2::kOk);
  }
};

struct Resp {
  std::map<std::string, std::string> headers;
  std::string body;
  bool closed = false;
  uint32_t code = 0;
};

struct Client {
  nghttp2_session* s = nullptr;
  std::map<int32_t, Resp> resp;
  uint32_t goaway = UINT32_MAX;
  Client() {
    nghttp2_session_callbacks* cb;
    nghttp2_session_callbacks_new(&cb);
    nghttp2_session_callbacks_set_on_header_callback(cb, [](nghttp2_session*, const nghttp2_frame* f, const uint8_t* n, size_t nl,
                                                            const uint8_t* v, size_t vl, uint8_t, void* ud) {
      static_cast<Client*>(ud)->resp[f->hd.stream_id].headers[std::string(reinterpret_cast<const char*>(n), nl)] =
          std::string(reinterpret_cast<const char*>(v), vl);
      return 0;
    });
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, [](nghttp2_session*, uint8_t, int32_t id, const uint8_t* d,
                                                                     size_t n, void* ud) {
      static_cast<Client*>(ud)->resp[id].body.append(reinterpret_cast<const char*>(d), n);
      return 0;
    });
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, [](nghttp2_session*, int32_t id, uint32_t code, void* ud) {
      auto& r = static_cast<Client*>(ud)->resp[id];
      r.closed = true;
      r.code = code;
      return 0;
    });
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, [](nghttp2_session*, const nghttp2_frame* f, void* ud) {
      if (f->hd.type == NGHTTP2_GOAWAY) static_cast<Client*>(ud)->goaway = f->goaway.error_code;
      return 0;
    });
    nghttp2_session_client_new(&s, cb, this);
    nghttp2_session_callbacks_del(cb);
    nghttp2_submit_settings(s, NGHTTP2_FLAG_NONE, nullptr, 0);
  }
  ~Client() { nghttp2_session_del(s); }
  int32_t get(const std::string& path, const char* method = "GET", std::vector<std::pair<std::string, std::string>> extra = {}) {
    std::vector<std::pair<std::string, std::string>> h = {{":method", method}, {":path", path}, {":scheme", "http"}, {":authority", "x"}};
    for (auto& e : extra) h.push_back(e);
    std::vector<nghttp2_nv> nva;
    for (auto& kv : h)
      nva.push_back({reinterpret_cast<uint8_t*>(kv.first.data()), reinterpret_cast<uint8_t*>(kv.second.data()), kv.first.size(),
                     kv.second.size(), NGHTTP2_NV_FLAG_NONE});
    return nghttp2_submit_request2(s, nullptr, nva.data(), nva.size(), nullptr, nullptr);
  }
  std::string body_src;
  size_t body_off = 0;
  int32_t post(const std::string& path, const std::string& body) {
    body_src = body;
    body_off = 0;
    std::string m = "POST", p = path, sc = "http", a = "x";
    nghttp2_nv nva[] = {{(uint8_t*)":method", (uint8_t*)m.data(), 7, m.size(), 0}, {(uint8_t*)":path", (uint8_t*)p.data(), 5, p.size(), 0},
                        {(uint8_t*)":scheme", (uint8_t*)sc.data(), 7, sc.size(), 0}, {(uint8_t*)":authority", (uint8_t*)a.data(), 10, a.size(), 0}};
    nghttp2_data_provider2 dp{};
    dp.source.ptr = this;
    dp.read_callback = [](nghttp2_session*, int32_t, uint8_t* buf, size_t len, uint32_t* flags, nghttp2_data_source* src, void*) -> nghttp2_ssize {
      auto* c = static_cast<Client*>(src->ptr);
      size_t n = std::min(len, c->body_src.size() - c->body_off);
      memcpy(buf, c->body_src.data() + c->body_off, n);
      c->body_off += n;
      if (c->body_off == c->body_src.size()) *flags |= NGHTTP2_DATA_FLAG_EOF;
      return static_cast<nghttp2_ssize>(n);
    };
    return nghttp2_submit_request2(s, nullptr, nva, 4, &dp, nullptr);
  }
};

// Moves bytes both ways until neither side has anything to send. False when the server failed.
// The clock stands still: a flood here is as fast as it gets.
uint64_t now_ms = 1000;
bool pump(Server& sv, Client& c, int rounds = 1000) {
  bool ok = true;
  for (int i = 0; i < rounds; ++i) {
    bool moved = false;
    const uint8_t* p;
    nghttp2_ssize n;
    while ((n = nghttp2_session_mem_send2(c.s, &p)) > 0) {
      moved = true;
      if (sv.sv.recv(p, static_cast<size_t>(n), now_ms) != http2::kOk) ok = false;
    }
    std::string out;
    sv.sv.send(&out);
    if (!out.empty()) {
      moved = true;
      nghttp2_session_mem_recv2(c.s, reinterpret_cast<const uint8_t*>(out.data()), out.size());
    }
    if (!moved) break;
  }
  return ok;
}

Server* make(http2::Limits lim = {}) {
  auto* s = new Server;
  std::string err;
  EXPECT_EQ(s->sv.init(lim, s, &err), http2::kOk) << err;
  return s;
}

TEST(Http2Server, AnswersRequestsAndBodies) {
  std::unique_ptr<Server> sv(make());
  Client c;
  int32_t a = c.get("/a?x=1");
  int32_t b = c.post("/upload", std::string(200000, 'z'));  // more than one window: flow control
  ASSERT_TRUE(pump(*sv, c));
  ASSERT_EQ(sv->reqs[a].method, "GET");
  EXPECT_EQ(sv->reqs[a].path, "/a?x=1");
  EXPECT_EQ(sv->reqs[a].authority, "x");
  EXPECT_EQ(c.resp[a].headers[":status"], "200");
  EXPECT_EQ(c.resp[a].headers["x-echo"], "yes");  // lowercased for HTTP/2
  EXPECT_EQ(c.resp[a].headers["date"], "Tue, 14 Nov 2023 22:13:20 GMT");
  EXPECT_EQ(c.resp[a].body, "GET /a?x=1 0");
  EXPECT_EQ(c.resp[b].body, "POST /upload 200000");
  EXPECT_EQ(c.resp[b].headers["content-length"], "19");
  EXPECT_TRUE(c.resp[b].closed);
  EXPECT_TRUE(sv->resets.empty());
}

TEST(Http2Server, ManyStreamsAndALateAnswer) {
  std::unique_ptr<Server> sv(make());
  sv->answer_at_end = false;
  Client c;
  std::vector<int32_t> ids;
  for (int i = 0; i < 50; ++i) ids.push_back(c.get("/s" + std::to_string(i)));
  ASSERT_TRUE(pump(*sv, c));
  EXPECT_EQ(sv->reqs.size(), 50u);
  for (int i = 49; i >= 0; --i) sv->answer(ids[i]);  // any order: streams are independent
  ASSERT_TRUE(pump(*sv, c));
  for (int i = 0; i < 50; ++i) EXPECT_EQ(c.resp[ids[i]].body, "GET /s" + std::to_string(i) + " 0");
  EXPECT_EQ(sv->sv.respond(ids[0], 200, nullptr, 0, nullptr, 0, 0), http2::kStreamGone);  // answered already
}

TEST(Http2Server, AHugeHeadIsAnswered431OnItsStreamOnly) {
  http2::Limits lim;
  lim.header_list_bytes_max = 4096;
  std::unique_ptr<Server> sv(make(lim));
  Client c;
  int32_t big = c.get("/big", "GET", {{"x-big", std::string(8000, 'a')}});
  int32_t ok = c.get("/ok");
  pump(*sv, c);
  EXPECT_EQ(sv->reqs.count(big), 0u);  // never delivered
  EXPECT_TRUE(c.resp[big].closed);
  EXPECT_EQ(c.resp[big].headers[":status"], "431");
  EXPECT_EQ(c.resp[ok].body, "GET /ok 0");
}

TEST(Http2Server, ABadPrefaceEndsTheSession) {
  std::unique_ptr<Server> sv(make());
  std::string junk = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  EXPECT_EQ(sv->sv.recv(reinterpret_cast<const uint8_t*>(junk.data()), junk.size(), 0), http2::kFatal);
  EXPECT_STRNE(sv->sv.error(), "");
}

TEST(Http2Server, RapidResetIsStopped) {
  http2::Limits lim;
  lim.resets_burst = 50;
  lim.resets_per_sec = 1;
  std::unique_ptr<Server> sv(make(lim));
  sv->answer_at_end = false;  // streams stay open: each reset cancels work in flight
  Client c;
  for (int i = 0; i < 400 && c.goaway == UINT32_MAX; ++i) {
    int32_t id = c.get("/r");
    pump(*sv, c, 2);  // the HEADERS reach the server
    nghttp2_submit_rst_stream(c.s, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
    pump(*sv, c, 2);
  }
  pump(*sv, c);
  EXPECT_EQ(c.goaway, static_cast<uint32_t>(NGHTTP2_ENHANCE_YOUR_CALM)) << sv->sv.error() << " resets " << sv->resets.size();
  EXPECT_GT(sv->resets.size(), 40u) << sv->sv.error();  // each cancelled request was reported before the limit hit
}

TEST(Http2Server, MemoryIsBounded) {
  http2::Limits lim;
  lim.memory_bytes_max = 64 * 1024;
  std::unique_ptr<Server> sv(make(lim));
  sv->answer_at_end = false;
  Client c;
  for (int i = 0; i < 200; ++i) c.get("/m" + std::to_string(i), "GET", {{"x-pad", std::string(200, 'p')}});
  pump(*sv, c);
  EXPECT_LE(sv->sv.memory_bytes(), lim.memory_bytes_max);
}

TEST(Http2Server, GracefulShutdownLetsStreamsFinish) {
  std::unique_ptr<Server> sv(make());
  sv->answer_at_end = false;
  Client c;
  int32_t a = c.get("/inflight");
  ASSERT_TRUE(pump(*sv, c));
  sv->sv.shutdown();
  pump(*sv, c);
  EXPECT_EQ(c.goaway, static_cast<uint32_t>(NGHTTP2_NO_ERROR));
  sv->answer(a);
  pump(*sv, c);
  EXPECT_EQ(c.resp[a].body, "GET /inflight 0");
}

}  // namespace

namespace {

std::string frame(uint8_t type, uint8_t flags, uint32_t stream, const std::string& payload) {
  std::string f;
  f.push_back(static_cast<char>(payload.size() >> 16));
  f.push_back(static_cast<char>(payload.size() >> 8));
  f.push_back(static_cast<char>(payload.size()));
  f.push_back(static_cast<char>(type));
  f.push_back(static_cast<char>(flags));
  for (int i = 3; i >= 0; --i) f.push_back(static_cast<char>(stream >> (8 * i)));
  return f + payload;
}

// The error code of the GOAWAY in what the server sent, or -1.
int64_t goaway_in(const std::string& out) {
  for (size_t at = 0; at + 9 <= out.size();) {
    size_t len = (static_cast<uint8_t>(out[at]) << 16) | (static_cast<uint8_t>(out[at + 1]) << 8) | static_cast<uint8_t>(out[at + 2]);
    if (out[at + 3] == 7 && at + 9 + 8 <= out.size()) {
      const uint8_t* p = reinterpret_cast<const uint8_t*>(out.data()) + at + 9 + 4;
      return (int64_t{p[0]} << 24) | (p[1] << 16) | (p[2] << 8) | p[3];
    }
    at += 9 + len;
  }
  return -1;
}

const std::string kPreface = std::string("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n") + frame(4, 0, 0, "");
const std::string kGetBlock = "\x82\x84\x86\x41\x01x";  // :method GET, :path /, :scheme http, :authority x

}  // namespace

TEST(Http2Server, ContinuationFloodEndsTheSession) {
  std::unique_ptr<Server> sv(make());
  std::string in = kPreface + frame(1, 0, 1, kGetBlock);  // HEADERS without END_HEADERS
  for (int i = 0; i < 64; ++i) in += frame(9, 0, 1, "");   // empty CONTINUATIONs (CVE-2024-27316 class)
  int r = sv->sv.recv(reinterpret_cast<const uint8_t*>(in.data()), in.size(), 0);
  std::string out;
  sv->sv.send(&out);
  EXPECT_EQ(r, http2::kFatal);
  EXPECT_NE(goaway_in(out), -1);
  EXPECT_NE(goaway_in(out), 0);  // an error code, not a graceful GOAWAY
  EXPECT_TRUE(sv->reqs.empty());
}

TEST(Http2Server, PingFloodWithoutReadingIsStopped) {
  std::unique_ptr<Server> sv(make());
  std::string in = kPreface;
  for (int i = 0; i < 5000; ++i) in += frame(6, 0, 0, std::string(8, static_cast<char>(i)));  // PINGs, ACKs never read
  int r = sv->sv.recv(reinterpret_cast<const uint8_t*>(in.data()), in.size(), 0);
  std::string out;
  sv->sv.send(&out, 1 << 20);
  EXPECT_EQ(r, http2::kFatal);
  EXPECT_LE(sv->sv.memory_bytes(), http2::Limits{}.memory_bytes_max);
  EXPECT_EQ(goaway_in(out), NGHTTP2_ENHANCE_YOUR_CALM);  // the flooder is told why
}

TEST(Http2Server, ResetsAtAModestRateAreFine) {
  http2::Limits lim;
  lim.resets_burst = 10;
  lim.resets_per_sec = 100;
  std::unique_ptr<Server> sv(make(lim));
  sv->answer_at_end = false;
  Client c;
  for (int i = 0; i < 100; ++i) {
    int32_t id = c.get("/r");
    pump(*sv, c, 2);
    nghttp2_submit_rst_stream(c.s, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
    pump(*sv, c, 2);
    now_ms += 20;  // 50 resets a second, under the 100 allowed
  }
  int32_t ok = c.get("/still");
  pump(*sv, c);
  EXPECT_EQ(c.goaway, UINT32_MAX);
  sv->answer(ok);
  pump(*sv, c);
  EXPECT_EQ(c.resp[ok].body, "GET /still 0");
}

TEST(Http2Server, FramesOnClosedOrOlderStreamsEndTheSession) {
  {  // HEADERS again on a stream that was answered and closed: STREAM_CLOSED (RFC 9113 5.1)
    std::unique_ptr<Server> sv(make());
    std::string in = kPreface + frame(1, 0x5, 1, kGetBlock);  // END_STREAM | END_HEADERS
    ASSERT_EQ(sv->sv.recv(reinterpret_cast<const uint8_t*>(in.data()), in.size(), 0), http2::kOk);
    std::string out;
    sv->sv.send(&out);
    ASSERT_EQ(sv->reqs.size(), 1u);  // answered: the stream is closed
    std::string again = frame(1, 0x5, 1, kGetBlock);
    EXPECT_EQ(sv->sv.recv(reinterpret_cast<const uint8_t*>(again.data()), again.size(), 0), http2::kFatal);
    out.clear();
    sv->sv.send(&out);
    EXPECT_EQ(goaway_in(out), NGHTTP2_STREAM_CLOSED);
  }
  {  // a new stream id below one used before: PROTOCOL_ERROR (5.1.1)
    std::unique_ptr<Server> sv(make());
    sv->answer_at_end = false;
    std::string in = kPreface + frame(1, 0x5, 5, kGetBlock) + frame(1, 0x5, 3, kGetBlock);
    EXPECT_EQ(sv->sv.recv(reinterpret_cast<const uint8_t*>(in.data()), in.size(), 0), http2::kFatal);
    std::string out;
    sv->sv.send(&out);
    EXPECT_EQ(goaway_in(out), NGHTTP2_PROTOCOL_ERROR);
    EXPECT_EQ(sv->reqs.size(), 1u);
  }
}

// The frame scanner in front of nghttp2: what nghttp2 1.68 drops or treats differently.
TEST(Http2Server, FrameScannerChecks) {
  auto feed_bytewise = [](Server& sv, const std::string& in) {
    int r = http2::kOk;
    for (size_t i = 0; i < in.size() && r == http2::kOk; ++i)
      r = sv.sv.recv(reinterpret_cast<const uint8_t*>(in.data()) + i, 1, 0);  // headers split anywhere
    return r;
  };
  {  // DATA on a stream that was answered and closed: STREAM_CLOSED (5.1), fed a byte at a time
    std::unique_ptr<Server> sv(make());
    std::string in = kPreface + frame(1, 0x5, 1, kGetBlock);
    ASSERT_EQ(feed_bytewise(*sv, in), http2::kOk);
    std::string out;
    sv->sv.send(&out);
    ASSERT_EQ(sv->reqs.size(), 1u);
    EXPECT_EQ(feed_bytewise(*sv, frame(0, 0x1, 1, "data")), http2::kFatal);
    out.clear();
    sv->sv.send(&out);
    EXPECT_EQ(goaway_in(out), NGHTTP2_STREAM_CLOSED);
  }
  {  // PRIORITY making a stream depend on itself: PROTOCOL_ERROR (5.3.1)
    std::unique_ptr<Server> sv(make());
    std::string in = kPreface + frame(2, 0, 3, std::string("\0\0\0\x03\x10", 5));
    EXPECT_EQ(feed_bytewise(*sv, in), http2::kFatal);
    std::string out;
    sv->sv.send(&out);
    EXPECT_EQ(goaway_in(out), NGHTTP2_PROTOCOL_ERROR);
  }
  {  // a stream's window pushed past 2^31-1: RST_STREAM FLOW_CONTROL_ERROR, the session goes on (6.9.1)
    std::unique_ptr<Server> sv(make());
    sv->answer_at_end = false;
    std::string inc = std::string("\x7f\xff\xff\xff", 4);
    std::string in = kPreface + frame(1, 0x4, 1, kGetBlock) + frame(8, 0, 1, inc) + frame(8, 0, 1, inc);
    EXPECT_EQ(feed_bytewise(*sv, in), http2::kOk);
    std::string out;
    sv->sv.send(&out);
    EXPECT_EQ(goaway_in(out), -1);
    bool rst = false;
    for (size_t at = 0; at + 9 <= out.size();) {
      size_t len = (static_cast<uint8_t>(out[at]) << 16) | (static_cast<uint8_t>(out[at + 1]) << 8) | static_cast<uint8_t>(out[at + 2]);
      if (out[at + 3] == 3 && len == 4 && static_cast<uint8_t>(out[at + 12]) == NGHTTP2_FLOW_CONTROL_ERROR) rst = true;
      at += 9 + len;
    }
    EXPECT_TRUE(rst);
    std::string next = frame(1, 0x5, 3, kGetBlock);  // another stream still works
    EXPECT_EQ(sv->sv.recv(reinterpret_cast<const uint8_t*>(next.data()), next.size(), 0), http2::kOk);
    EXPECT_EQ(sv->reqs.size(), 2u);
  }
}

TEST(Http2Server, UpgradedRequestIsStreamOne) {
  std::unique_ptr<Server> sv(make());
  // HTTP2-Settings of curl: SETTINGS_MAX_CONCURRENT_STREAMS 100, INITIAL_WINDOW_SIZE 33554432, ENABLE_PUSH 0.
  const uint8_t settings[] = {0, 3, 0, 0, 0, 100, 0, 4, 2, 0, 0, 0, 0, 2, 0, 0, 0, 0};
  ASSERT_EQ(sv->sv.upgrade(settings, sizeof settings, false), http2::kOk);
  EXPECT_EQ(sv->sv.respond(1, 200, nullptr, 0, reinterpret_cast<const uint8_t*>("up"), 2, 0), http2::kOk);
  std::string out;
  sv->sv.send(&out);
  std::string in = kPreface;  // the client's preface after the 101
  EXPECT_EQ(sv->sv.recv(reinterpret_cast<const uint8_t*>(in.data()), in.size(), 0), http2::kOk);
  sv->sv.send(&out);
  EXPECT_GT(out.size(), 30u);
}

// A fuzz run of the frame entry (run under ASan and UBSan by the test command): byte streams of
// real client sessions (nghttp2's client: requests, bodies, PINGs, window updates, resets),
// mutated and fed in random pieces. Whatever comes, the machine answers or fails cleanly, stays
// within its memory bound, and a fresh session still works afterwards.
TEST(Http2Server, FuzzedFrameStreamsFailCleanly) {
  std::vector<std::string> seeds;
  for (int k = 0; k < 4; ++k) {  // record what a client sends
    Client c;
    c.get("/a?x=" + std::to_string(k), "GET", {{"x-k", std::string(k * 40, 'k')}});
    c.post("/b", std::string(1000 * (k + 1), 'b'));
    if (k & 1) nghttp2_submit_ping(c.s, NGHTTP2_FLAG_NONE, nullptr);
    if (k & 2) nghttp2_submit_window_update(c.s, NGHTTP2_FLAG_NONE, 0, 100000);
    std::string bytes;
    const uint8_t* p;
    nghttp2_ssize n;
    while ((n = nghttp2_session_mem_send2(c.s, &p)) > 0) bytes.append(reinterpret_cast<const char*>(p), static_cast<size_t>(n));
    seeds.push_back(bytes);
  }
  // The committed seeds (native/tests/corpus/http2, made by make_corpus.py with Python's
  // hyperframe: CONTINUATION, padding, trailers, PRIORITY, RST_STREAM, GOAWAY...). Unmutated,
  // each is a valid session: the server takes it whole.
  size_t committed = 0;
  if (DIR* d = opendir(ZIO_TEST_CORPUS "/http2")) {
    while (dirent* e = readdir(d)) {
      std::string name = e->d_name;
      if (name.size() < 4 || name.compare(name.size() - 3, 3, ".h2") != 0) continue;
      std::ifstream f(std::string(ZIO_TEST_CORPUS "/http2/") + name, std::ios::binary);
      std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
      std::unique_ptr<Server> sv(make());
      EXPECT_EQ(sv->sv.recv(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), 0), http2::kOk) << name;
      seeds.push_back(bytes);
      ++committed;
    }
    closedir(d);
  }
  EXPECT_GE(committed, 6u);
  uint32_t x = 0x2545f491u;
  auto rnd = [&x]() { x ^= x << 13; x ^= x >> 17; x ^= x << 5; return x; };
  http2::Limits lim;
  lim.memory_bytes_max = 256 * 1024;
  size_t fatal = 0, ok = 0;
  for (int iter = 0; iter < 400; ++iter) {
    std::string s = seeds[rnd() % seeds.size()];
    int muts = static_cast<int>(rnd() % 6);
    for (int m = 0; m < muts; ++m) {
      size_t at = 24 + rnd() % (s.size() - 24);  // keep the preface most of the time
      switch (rnd() % 5) {
        case 0: s[at] = static_cast<char>(rnd()); break;
        case 1: s.insert(at, 1, static_cast<char>(rnd())); break;
        case 2: s.erase(at, 1 + rnd() % 16); break;
        case 3: s.insert(at, s.substr(at, rnd() % 64)); break;  // duplicated frame bytes
        default: s.resize(at); break;                          // cut short
      }
      if (s.size() <= 24) break;
    }
    std::unique_ptr<Server> sv(make(lim));
    size_t at = 0;
    int r = http2::kOk;
    while (at < s.size() && r == http2::kOk) {
      size_t n = std::min<size_t>(s.size() - at, 1 + rnd() % 300);
      r = sv->sv.recv(reinterpret_cast<const uint8_t*>(s.data()) + at, n, iter);
      at += n;
      std::string out;
      sv->sv.send(&out);
    }
    EXPECT_LE(sv->sv.memory_bytes(), lim.memory_bytes_max);
    (r == http2::kOk ? ok : fatal)++;
  }
  EXPECT_GT(ok, 0u);
  EXPECT_GT(fatal, 0u);
  std::unique_ptr<Server> sv(make());
  Client c;
  int32_t id = c.get("/after");
  ASSERT_TRUE(pump(*sv, c));
  EXPECT_EQ(c.resp[id].body, "GET /after 0");
}

// RFC 9113 8.1: an answer complete before the request body ended is followed by RST_STREAM
// NO_ERROR (the client stops sending); no reset is reported to the application.
TEST(Http2Server, AnEarlyAnswerStopsTheRequestBody) {
  std::unique_ptr<Server> sv(make());
  sv->answer_at_end = false;
  std::string in = kPreface + frame(1, 0x4, 1, std::string("\x83\x84\x86\x41\x01x", 6));  // POST, no END_STREAM
  ASSERT_EQ(sv->sv.recv(reinterpret_cast<const uint8_t*>(in.data()), in.size(), 0), http2::kOk);
  ASSERT_EQ(sv->reqs.size(), 1u);
  const char body[] = "too large";
  ASSERT_EQ(sv->sv.respond(1, 413, nullptr, 0, reinterpret_cast<const uint8_t*>(body), 9, 0), http2::kOk);
  std::string out;
  sv->sv.send(&out);
  sv->sv.send(&out);  // the RST follows the answer's last frame
  bool rst_no_error = false;
  for (size_t at = 0; at + 9 <= out.size();) {
    size_t len = (static_cast<uint8_t>(out[at]) << 16) | (static_cast<uint8_t>(out[at + 1]) << 8) | static_cast<uint8_t>(out[at + 2]);
    if (out[at + 3] == 3 && len == 4 && out.substr(at + 9, 4) == std::string(4, '\0')) rst_no_error = true;
    at += 9 + len;
  }
  EXPECT_TRUE(rst_no_error);
  EXPECT_TRUE(sv->resets.empty());
}

// native/shard/ws_client.cc — the client side of a WebSocket connection (see ws_conn.h): a
// connection reserved by conn_reserve becomes a WebSocket client. Its opening handshake is queued
// at once (sent when TCP, or TLS, is up); the server's answer is checked (ws::parse_response: 101,
// Upgrade, Connection, Sec-WebSocket-Accept, the subprotocol and the permessage-deflate answer
// against our offer), then WsOpen; a failed handshake ends the connection with kErrWsHandshake
// and the reason (ws_close_info).
#include <cstring>
#include <string>

#include "shard/shard.h"

namespace zio {

int Shard::ws_client_start(uint32_t index, uint32_t gen, const WsConfig& cfg, const std::string& host,
                           const std::string& path, const std::string& extra) {
  Conn* c = lookup(index, gen);
  if (!c) return kErrStaleId;
  if (c->ws || c->http || c->quic || c->endpoint >= 0) return kErrWrongKind;
  if (c->state != ConnState::Resolving && c->state != ConnState::Connecting && c->state != ConnState::Open)
    return kErrStaleId;
  auto we = std::make_shared<WsEndpoint>();
  we->cfg = cfg;
  ConnWs& w = ws_make(index, we, true);
  char key[24];
  ws::client_key(key, w.accept);
  std::string& r = http_scratch_;
  r.assign("GET ").append(path).append(" HTTP/1.1\r\nHost: ").append(host);
  r.append("\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ");
  r.append(key, 24).append("\r\n");
  if (!cfg.protocols.empty()) {
    r.append("Sec-WebSocket-Protocol: ");
    for (size_t i = 0; i < cfg.protocols.size(); ++i) r.append(i ? ", " : "").append(cfg.protocols[i]);
    r.append("\r\n");
  }
  if (cfg.deflate) r.append("Sec-WebSocket-Extensions: ").append(ws::client_offer(cfg.dc)).append("\r\n");
  we->shared.configure(cfg.dc.level, cfg.dc.client_max_window_bits, cfg.dc.mem_level);
  r.append(extra).append("\r\n");
  // Queued now: it goes out when TCP connects (after the TLS handshake for wss://).
  ws_raw(index, reinterpret_cast<const uint8_t*>(r.data()), r.size());
  w.last_in_ms = w.last_msg_ms = now_ms();
  if (cfg.handshake_timeout_ms) w.hs_deadline = w.last_in_ms + cfg.handshake_timeout_ms;
  ws_arm(index);
  return 0;
}

void Shard::ws_client_fail(uint32_t index, const char* why) {
  Conn& c = conns_[index];
  ConnWs& w = *c.ws;
  w.failed = true;
  w.reason = why;
  w.in.clear();
  begin_close(index, kErrWsHandshake, kOriginError);
}

void Shard::ws_client_input(uint32_t index) {
  Conn& c = conns_[index];
  ConnWs& w = *c.ws;
  if (w.failed) return;
  ws::Response rs;
  int64_t r = ws::parse_response(w.in.data(), w.in.size(), w.accept, &rs);
  if (r == 0) {
    if (w.in.size() > 16 * 1024) ws_client_fail(index, "the server's answer to the opening handshake is larger than 16 KiB");
    return;
  }
  const char* why = nullptr;
  if (r < 0) why = "the server's answer to the opening handshake is not HTTP/1.1";
  else if (rs.status != 101) why = nullptr;  // said below with the status
  else if (!rs.upgrade_ok) why = "the server's 101 has no Upgrade: websocket";
  else if (!rs.connection_ok) why = "the server's 101 has no Connection: Upgrade";
  else if (!rs.accept_ok) why = "the server's Sec-WebSocket-Accept does not match our key";
  else if (rs.extensions && !w.ep->cfg.deflate) why = "the server chose an extension we did not offer";
  else if (rs.extensions && !ws::accept_answer(rs.ext, rs.ext_len, w.ep->cfg.dc, &w.dp))
    why = "the server's permessage-deflate answer does not fit our offer";
  if (r > 0 && rs.status != 101) {
    w.reason = "the server answered " + std::to_string(rs.status) + " instead of 101 Switching Protocols";
    w.failed = true;
    w.in.clear();
    begin_close(index, kErrWsHandshake, kOriginError);
    return;
  }
  if (!why && rs.protocol) {
    bool offered = false;
    for (const auto& p : w.ep->cfg.protocols)
      if (p.size() == rs.protocol_len && memcmp(p.data(), rs.protocol, p.size()) == 0) offered = true;
    if (!offered) why = "the server chose a subprotocol we did not offer";
    else w.chosen.assign(reinterpret_cast<const char*>(rs.protocol), rs.protocol_len);
  }
  if (why) {
    ws_client_fail(index, why);
    return;
  }
  if (rs.extensions) {
    w.deflate = true;
    w.rd.set_deflate(true);
  }
  w.upgraded = true;
  w.hs_deadline = 0;
  ++w.ep->stats.upgrades;
  ++w.ep->stats.open;
  int32_t proto = -1;
  for (size_t i = 0; i < w.ep->cfg.protocols.size(); ++i)
    if (w.ep->cfg.protocols[i] == w.chosen && !w.chosen.empty()) proto = static_cast<int32_t>(i);
  w.proto = proto;
  w.open_owed = true;  // WsOpen from flush() (event room there), then the frames after the head
  w.in.erase(w.in.begin(), w.in.begin() + r);
  w.last_in_ms = w.last_msg_ms = now_ms();
  ws_arm(index);
  mark_dirty(index);
}

}  // namespace zio

// native/proto/ws/ws.cc — the WebSocket frame machine (RFC 6455): see ws.h.
#include "proto/ws/ws.h"

#include <openssl/base64.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <cstring>

namespace zio::ws {

bool valid_close_code(uint16_t c) {
  return (c >= 1000 && c <= 1003) || (c >= 1007 && c <= 1014) || (c >= 3000 && c <= 4999);
}

void unmask(uint8_t* data, size_t n, const uint8_t key[4], uint64_t offset) {
  uint8_t k[8];
  for (int i = 0; i < 8; ++i) k[i] = key[(offset + static_cast<uint64_t>(i)) & 3];
  uint64_t k8;
  memcpy(&k8, k, 8);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {  // eight bytes at a time (the key repeats every 4, so every 8)
    uint64_t w;
    memcpy(&w, data + i, 8);
    w ^= k8;
    memcpy(data + i, &w, 8);
  }
  for (; i < n; ++i) data[i] ^= k[i & 7];
}

bool Utf8::feed(const uint8_t* p, size_t n) {
  if (bad_) return false;
  size_t i = 0;
  while (i < n) {
    if (need_ == 0) {
      // ASCII runs, eight bytes at a time.
      while (i + 8 <= n) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        if (w & 0x8080808080808080ull) break;
        i += 8;
      }
      if (i >= n) break;
      uint8_t b = p[i++];
      if (b < 0x80) continue;
      lo_ = 0x80;
      hi_ = 0xBF;
      if (b >= 0xC2 && b <= 0xDF) need_ = 1;
      else if (b == 0xE0) { need_ = 2; lo_ = 0xA0; }
      else if ((b >= 0xE1 && b <= 0xEC) || b == 0xEE || b == 0xEF) need_ = 2;
      else if (b == 0xED) { need_ = 2; hi_ = 0x9F; }  // no UTF-16 surrogates
      else if (b == 0xF0) { need_ = 3; lo_ = 0x90; }  // no overlong 4-byte forms
      else if (b >= 0xF1 && b <= 0xF3) need_ = 3;
      else if (b == 0xF4) { need_ = 3; hi_ = 0x8F; }  // at most U+10FFFF
      else return !(bad_ = true);                     // 0x80-0xC1, 0xF5-0xFF
    } else {
      uint8_t b = p[i++];
      if (b < lo_ || b > hi_) return !(bad_ = true);
      lo_ = 0x80;
      hi_ = 0xBF;
      --need_;
    }
  }
  return true;
}

size_t Reader::fail(uint16_t code, const char* why, size_t used) {
  if (fail_code_ == 0) {
    fail_code_ = code;
    why_ = why;
  }
  return used;
}

size_t Reader::feed(uint8_t* data, size_t len) {
  size_t i = 0;
  while (i < len) {
    if (closed_ || fail_code_) return i;
    if (!in_frame_) {
      if (len - i < 2) return i;
      uint8_t b0 = data[i], b1 = data[i + 1];
      bool fin = b0 & 0x80, mask = b1 & 0x80;
      uint8_t op = b0 & 0x0F;
      uint64_t plen = b1 & 0x7F;
      size_t hlen = 2 + (plen == 126 ? 2 : plen == 127 ? 8 : 0) + (mask ? 4 : 0);
      if (len - i < hlen) return i;  // the header is cut: fed again with what follows
      bool rsv1 = b0 & 0x40;
      if (b0 & 0x30) return fail(kProtocolError, "a reserved bit is set (no extension was negotiated)", i);
      if (rsv1 && !limits_.deflate) return fail(kProtocolError, "a reserved bit is set (no extension was negotiated)", i);
      if (rsv1 && (op == kContinuation || op >= kClose))
        return fail(kProtocolError, "RSV1 on a continuation or control frame (permessage-deflate marks a message's first frame)", i);
      if (op != kContinuation && op != kText && op != kBinary && op != kClose && op != kPing && op != kPong)
        return fail(kProtocolError, "an unknown opcode", i);
      if (mask != limits_.server)
        return fail(kProtocolError, limits_.server ? "an unmasked frame from a client" : "a masked frame from a server", i);
      const uint8_t* q = data + i + 2;
      if (plen == 126) {
        plen = (uint64_t{q[0]} << 8) | q[1];
        if (plen < 126) return fail(kProtocolError, "a length not in its shortest form", i);
        q += 2;
      } else if (plen == 127) {
        plen = 0;
        for (int k = 0; k < 8; ++k) plen = (plen << 8) | q[k];
        if (plen >> 63) return fail(kProtocolError, "a 64-bit length with its top bit set", i);
        if (plen <= 0xFFFF) return fail(kProtocolError, "a length not in its shortest form", i);
        q += 8;
      }
      if (op >= kClose) {
        if (!fin) return fail(kProtocolError, "a fragmented control frame", i);
        if (plen > 125) return fail(kProtocolError, "a control frame longer than 125 bytes", i);
      } else if (op == kContinuation) {
        if (!in_message_) return fail(kProtocolError, "a continuation frame with no message begun", i);
      } else {
        if (in_message_) return fail(kProtocolError, "a new message before the last one ended", i);
        in_message_ = true;
        text_ = op == kText;
        compressed_ = rsv1;
        message_bytes_ = 0;
        utf8_.reset();
      }
      if (op < kClose) {
        if (plen > limits_.max_frame) return fail(kTooBig, "a frame larger than maxFrameSize", i);
        message_bytes_ += plen;
        if (message_bytes_ > limits_.max_message) return fail(kTooBig, "a message larger than maxMessageSize", i);
      }
      if (mask) memcpy(key_, q, 4);
      in_frame_ = true;
      fin_ = fin;
      masked_ = mask;
      opcode_ = op;
      remaining_ = plen;
      offset_ = 0;
      control_len_ = 0;
      i += hlen;
    }
    size_t take = static_cast<size_t>(remaining_ < len - i ? remaining_ : len - i);
    uint8_t* p = data + i;
    if (masked_ && take) unmask(p, take, key_, offset_);
    offset_ += take;
    remaining_ -= take;
    i += take;
    if (opcode_ >= kClose) {
      memcpy(control_ + control_len_, p, take);
      control_len_ += take;
    } else if (take) {
      if (text_ && !compressed_ && !utf8_.feed(p, take)) return fail(kInvalidPayload, "a text message that is not UTF-8", i);
      events_->on_data(p, take, text_);
    }
    if (remaining_ != 0) break;  // the rest of the payload comes with later input
    in_frame_ = false;
    if (opcode_ == kPing) {
      events_->on_ping(control_, control_len_);
    } else if (opcode_ == kPong) {
      events_->on_pong(control_, control_len_);
    } else if (opcode_ == kClose) {
      uint16_t code = kNoStatus;
      if (control_len_ == 1) return fail(kProtocolError, "a close frame with a 1-byte payload", i);
      if (control_len_ >= 2) {
        code = static_cast<uint16_t>((control_[0] << 8) | control_[1]);
        if (!valid_close_code(code)) return fail(kProtocolError, "a close code that may not be sent", i);
        Utf8 u;
        if (!u.feed(control_ + 2, control_len_ - 2) || !u.complete())
          return fail(kInvalidPayload, "a close reason that is not UTF-8", i);
      }
      closed_ = true;
      events_->on_close(code, control_len_ >= 2 ? control_ + 2 : control_, control_len_ >= 2 ? control_len_ - 2 : 0);
      return i;
    } else if (fin_) {
      if (text_ && !compressed_ && !utf8_.complete())
        return fail(kInvalidPayload, "a text message that ends inside a UTF-8 sequence", i);
      in_message_ = false;
      events_->on_message_end(text_);
    }
    if (pause_) {
      pause_ = false;
      return i;
    }
  }
  return i;
}

size_t write_header(uint8_t* out, uint8_t opcode, bool fin, uint64_t len, const uint8_t* key) {
  size_t n = 0;
  out[n++] = static_cast<uint8_t>((fin ? 0x80 : 0) | (opcode & 0x0F));
  uint8_t m = key ? 0x80 : 0;
  if (len < 126) {
    out[n++] = static_cast<uint8_t>(m | len);
  } else if (len <= 0xFFFF) {
    out[n++] = static_cast<uint8_t>(m | 126);
    out[n++] = static_cast<uint8_t>(len >> 8);
    out[n++] = static_cast<uint8_t>(len);
  } else {
    out[n++] = static_cast<uint8_t>(m | 127);
    for (int k = 7; k >= 0; --k) out[n++] = static_cast<uint8_t>(len >> (8 * k));
  }
  if (key) {
    memcpy(out + n, key, 4);
    n += 4;
  }
  return n;
}


bool key_valid(const uint8_t* key, size_t n) {
  if (n != 24 || key[22] != '=' || key[23] != '=') return false;
  for (size_t i = 0; i < 22; ++i) {
    uint8_t c = key[i];
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/'))
      return false;
  }
  // The last character before "==" carries 2 bits of the 16th byte and 4 zero bits.
  static const char kLast[] = "AQgw";
  return strchr(kLast, key[21]) != nullptr;
}

void accept_key(const uint8_t* key, size_t n, char out[28]) {
  static const char kGuid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  SHA_CTX ctx;
  SHA1_Init(&ctx);
  SHA1_Update(&ctx, key, n);
  SHA1_Update(&ctx, kGuid, sizeof kGuid - 1);
  uint8_t digest[SHA_DIGEST_LENGTH];
  SHA1_Final(digest, &ctx);
  uint8_t b64[29];
  EVP_EncodeBlock(b64, digest, SHA_DIGEST_LENGTH);
  memcpy(out, b64, 28);
}

bool list_has(const uint8_t* list, size_t n, const char* token, size_t token_len, bool exact) {
  size_t i = 0;
  while (i < n) {
    while (i < n && (list[i] == ' ' || list[i] == '\t' || list[i] == ',')) ++i;
    size_t start = i;
    while (i < n && list[i] != ',') ++i;
    size_t end = i;
    while (end > start && (list[end - 1] == ' ' || list[end - 1] == '\t')) --end;
    if (end - start == token_len) {
      size_t k = 0;
      for (; k < token_len; ++k) {
        uint8_t a = list[start + k], b = static_cast<uint8_t>(token[k]);
        if (!exact) {
          if (a >= 'A' && a <= 'Z') a = static_cast<uint8_t>(a + 32);
          if (b >= 'A' && b <= 'Z') b = static_cast<uint8_t>(b + 32);
        }
        if (a != b) break;
      }
      if (k == token_len) return true;
    }
  }
  return false;
}


void mask_key(uint8_t key[4]) { RAND_bytes(key, 4); }

void client_key(char key[24], char expect[28]) {
  uint8_t raw[16];
  RAND_bytes(raw, sizeof raw);
  uint8_t b64[25];
  EVP_EncodeBlock(b64, raw, sizeof raw);
  memcpy(key, b64, 24);
  accept_key(b64, 24, expect);
}

namespace {
bool ieq(const uint8_t* a, size_t n, const char* lower) {
  size_t m = strlen(lower);
  if (n != m) return false;
  for (size_t i = 0; i < n; ++i) {
    uint8_t c = a[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<uint8_t>(c + 32);
    if (c != static_cast<uint8_t>(lower[i])) return false;
  }
  return true;
}
}  // namespace

int64_t parse_response(const uint8_t* p, size_t n, const char expect[28], Response* out) {
  *out = Response{};
  size_t end = 0;
  for (size_t i = 0; i + 3 < n; ++i)
    if (p[i] == '\r' && p[i + 1] == '\n' && p[i + 2] == '\r' && p[i + 3] == '\n') {
      end = i + 4;
      break;
    }
  if (end == 0) return 0;
  // Status line: HTTP/1.1 SP 3DIGIT SP reason
  if (end < 16 || memcmp(p, "HTTP/1.1 ", 9) != 0) return -1;
  for (int k = 9; k < 12; ++k)
    if (p[k] < '0' || p[k] > '9') return -1;
  out->status = static_cast<uint16_t>((p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0'));
  size_t i = 0;
  while (i < end && p[i] != '\n') ++i;
  ++i;
  while (i + 2 <= end) {
    size_t ls = i;
    while (i < end && p[i] != '\n') ++i;
    size_t le = i;  // at '\n'
    ++i;
    if (le > ls && p[le - 1] == '\r') --le;
    if (le == ls) break;  // the empty line
    size_t colon = ls;
    while (colon < le && p[colon] != ':') ++colon;
    if (colon == le || colon == ls) return -1;
    size_t vs = colon + 1, ve = le;
    while (vs < ve && (p[vs] == ' ' || p[vs] == '\t')) ++vs;
    while (ve > vs && (p[ve - 1] == ' ' || p[ve - 1] == '\t')) --ve;
    const uint8_t* name = p + ls;
    size_t nl = colon - ls;
    if (ieq(name, nl, "upgrade")) out->upgrade_ok = ieq(p + vs, ve - vs, "websocket");
    else if (ieq(name, nl, "connection")) out->connection_ok = list_has(p + vs, ve - vs, "upgrade", 7, false);
    else if (ieq(name, nl, "sec-websocket-accept")) out->accept_ok = ve - vs == 28 && memcmp(p + vs, expect, 28) == 0;
    else if (ieq(name, nl, "sec-websocket-extensions")) {
      if (out->extensions) return -1;  // more than one line: not what a client that offered one extension expects
      out->extensions = true;
      out->ext = p + vs;
      out->ext_len = ve - vs;
    }
    else if (ieq(name, nl, "sec-websocket-protocol")) {
      out->protocol = p + vs;
      out->protocol_len = ve - vs;
    }
  }
  return static_cast<int64_t>(end);
}

}  // namespace zio::ws


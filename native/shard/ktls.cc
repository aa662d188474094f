// native/shard/ktls.cc — kernel TLS (kTLS) after the handshake, where the kernel has it.
//
// Probe once per process: setsockopt(TCP_ULP, "tls") on a fresh TCP socket gives ENOENT when
// the kernel has no TLS ULP (no CONFIG_TLS, as on this project's machines) and ENOTCONN when
// it has one. ZERO_IO_KTLS=off turns it off (the fallback, forced). The install waits until the
// connection is quiet — nothing queued or in flight to send (the handshake's last flight is
// ciphertext already), the multishot recv cancelled and completed (every byte read so far went
// through the machine) — then sets TCP_ULP, TLS_RX and TLS_TX from the session's key block
// and sequence numbers, and re-arms recv: from then on the kernel en/decrypts and the
// connection is plain TCP to the shard. Only TLS 1.2 AES-GCM sessions are offered (see
// tls::Session::ktls_keys); every other session keeps in-process encryption.
#include <linux/tls.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>

#include "shard/shard.h"

#ifndef SOL_TLS
#define SOL_TLS 282
#endif
#ifndef TCP_ULP
#define TCP_ULP 31
#endif

namespace zio {

bool Shard::ktls_available(std::string* why) {
  // A process-wide fact about the kernel, computed once (not per-shard state).
  static const int probe = [] {
    const char* env = getenv("ZERO_IO_KTLS");
    if (env && strcmp(env, "off") == 0) return -1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return errno;
    int r = setsockopt(fd, IPPROTO_TCP, TCP_ULP, "tls", 3);
    int e = r < 0 ? errno : 0;
    close(fd);
    return e == ENOTCONN || e == 0 ? 0 : e;
  }();
  if (probe == 0) return true;
  if (probe == -1) *why = "turned off (ZERO_IO_KTLS=off)";
  else if (probe == ENOENT)
    *why = "the kernel has no TLS ULP (setsockopt TCP_ULP \"tls\": ENOENT; CONFIG_TLS is not set)";
  else *why = std::string("setsockopt TCP_ULP \"tls\": ") + strerror(probe);
  return false;
}

namespace {

template <typename Info>
void fill(Info* info, uint16_t cipher_type, const uint8_t* key, const uint8_t* salt, uint64_t seq,
          size_t key_len) {
  memset(info, 0, sizeof *info);
  info->info.version = TLS_1_2_VERSION;
  info->info.cipher_type = cipher_type;
  memcpy(info->key, key, key_len);
  memcpy(info->salt, salt, sizeof info->salt);
  // TLS 1.2 GCM explicit nonce: BoringSSL uses the record sequence number.
  uint8_t be[8];
  for (int i = 0; i < 8; ++i) be[i] = static_cast<uint8_t>(seq >> (56 - 8 * i));
  memcpy(info->iv, be, 8);
  memcpy(info->rec_seq, be, 8);
}

int set_dir(int fd, int dir, const tls::KtlsKeys& k, bool tx) {
  const uint8_t* key = tx ? k.tx_key : k.rx_key;
  const uint8_t* salt = tx ? k.tx_iv : k.rx_iv;
  uint64_t seq = tx ? k.tx_seq : k.rx_seq;
  int r;
  if (k.key_len == 16) {
    tls12_crypto_info_aes_gcm_128 ci;
    fill(&ci, TLS_CIPHER_AES_GCM_128, key, salt, seq, 16);
    r = setsockopt(fd, SOL_TLS, dir, &ci, sizeof ci);
  } else {
    tls12_crypto_info_aes_gcm_256 ci;
    fill(&ci, TLS_CIPHER_AES_GCM_256, key, salt, seq, 32);
    r = setsockopt(fd, SOL_TLS, dir, &ci, sizeof ci);
  }
  return r < 0 ? -errno : 0;
}

}  // namespace

void Shard::ktls_try(uint32_t index) {
  Conn& c = conns_[index];
  ConnTls& t = *c.tls;
  if (c.tx_count || c.send_inflight || t.s.pending_out() || t.rx_paused) {  // not quiet
    // Writes came while the recv was being cancelled: read again (a peer that waits for us to
    // read before it reads would otherwise never drain our queue) and try again later.
    if (t.recv_cancel && !c.recv_armed) {
      t.recv_cancel = false;
      c.need_rearm = !c.peer_eof;
      if (++t.ktls_tries >= 8) {
        t.ktls = Ktls::Off;
        t.ktls_why = "the connection did not stay quiet long enough to hand it to the kernel";
      }
    }
    return;
  }
  if (c.recv_armed) {
    if (!t.recv_cancel) {
      cancel_conn_fd(index, c.fd);
      t.recv_cancel = true;
    }
    return;  // the recv's last completion comes first
  }
  t.recv_cancel = false;
  c.need_rearm = !c.peer_eof;
  tls::KtlsKeys k;
  const char* why = nullptr;
  if (!t.s.ktls_keys(&k, &why)) {
    t.ktls = Ktls::Off;
    t.ktls_why = why;
    mark_dirty(index);
    return;
  }
  int r = setsockopt(c.fd, IPPROTO_TCP, TCP_ULP, "tls", 3) < 0 ? -errno : 0;
  if (r == 0) r = set_dir(c.fd, TLS_RX, k, false);
  if (r < 0) {
    // Nothing was handed over (a ULP without keys passes bytes through): keep our machine.
    t.ktls = Ktls::Off;
    t.ktls_why = std::string("kTLS set-up failed: ") + strerror(-r);
    mark_dirty(index);
    return;
  }
  r = set_dir(c.fd, TLS_TX, k, true);
  explicit_bzero(&k, sizeof k);  // the keys live in the kernel now
  if (r < 0) {
    // RX is the kernel's now and TX cannot follow: the connection cannot continue consistently.
    t.ktls = Ktls::Off;
    t.ktls_why = std::string("kTLS TX set-up failed: ") + strerror(-r);
    t.s.abort("kTLS was installed for receiving but not for sending");
    begin_close(index, kErrTlsProtocol, kOriginError);
    return;
  }
  t.s.mark_offloaded();
  t.ktls = Ktls::Active;
  t.ktls_why.clear();
  ++counters_.ktls_active;
  mark_dirty(index);
}

namespace {
// A message of one buffer with room for one SOL_TLS control message of one byte (the record type).
struct RecordMsg {
  msghdr m{};
  iovec iov{};
  alignas(cmsghdr) char cbuf[CMSG_SPACE(sizeof(uint8_t))] = {};
  RecordMsg(void* data, size_t len) {
    iov = {data, len};
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = cbuf;
    m.msg_controllen = sizeof cbuf;
  }
  RecordMsg(const RecordMsg&) = delete;
};
}  // namespace

// A record that is not application data reached a kTLS receive: recv answers EIO and leaves it
// queued (Documentation/networking/tls.rst). Read it with its type and do what the user-space
// machine would: close_notify ends the stream cleanly, a warning alert is skipped, a fatal alert
// or anything else (a TLS 1.2 renegotiation request) fails the connection with the reason.
void Shard::ktls_control_record(uint32_t index) {
  Conn& c = conns_[index];
  ConnTls& t = *c.tls;
  uint8_t buf[16384 + 64];
  RecordMsg rm(buf, sizeof buf);
  msghdr& m = rm.m;
  ssize_t n = recvmsg(c.fd, &m, MSG_DONTWAIT);
  int type = -1;
  for (cmsghdr* h = n >= 0 ? CMSG_FIRSTHDR(&m) : nullptr; h; h = CMSG_NXTHDR(&m, h))
    if (h->cmsg_level == SOL_TLS && h->cmsg_type == TLS_GET_RECORD_TYPE) type = *CMSG_DATA(h);
  if (n < 0) {
    begin_close(index, errno, kOriginError);
    return;
  }
  if (type == 21 && n >= 2) {  // alert: level, description
    if (buf[1] == 0) {         // close_notify
      c.peer_eof = true;
      mark_dirty(index);
      return;
    }
    if (buf[0] == 1 && ++t.ktls_warnings <= 4) {  // a warning: skipped, as BoringSSL does
      c.need_rearm = true;
      mark_dirty(index);
      return;
    }
    t.s.note_alert(buf[1], true);
    t.s.abort(("alert received: " + std::to_string(buf[1])).c_str());
    begin_close(index, kErrTlsProtocol, kOriginPeer);
    return;
  }
  t.s.abort(("kTLS: unexpected TLS record type " + std::to_string(type) +
             " (renegotiation is not supported)").c_str());
  begin_close(index, kErrTlsProtocol, kOriginError);
}

// close_notify through the kernel (TLS_SET_RECORD_TYPE): sent when a graceful close has drained
// the write queue, just before the FIN. Best effort, as in user space: a full socket buffer
// (EAGAIN) skips it.
void Shard::ktls_close_notify(uint32_t index) {
  Conn& c = conns_[index];
  uint8_t alert[2] = {1, 0};  // warning, close_notify
  RecordMsg rm(alert, sizeof alert);
  msghdr& m = rm.m;
  cmsghdr* h = CMSG_FIRSTHDR(&m);
  h->cmsg_level = SOL_TLS;
  h->cmsg_type = TLS_SET_RECORD_TYPE;
  h->cmsg_len = CMSG_LEN(sizeof(uint8_t));
  *CMSG_DATA(h) = 21;
  if (sendmsg(c.fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {}  // best effort
}

}  // namespace zio

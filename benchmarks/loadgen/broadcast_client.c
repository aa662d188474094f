/*
 * broadcast_client: closed-loop broadcast load generator for the zero-io benchmarks.
 *
 * Opens `conns` TCP connections to the server. Connection 0 also carries triggers: one byte
 * per broadcast asked for. On each trigger the server sends one `size`-byte message to every
 * connection. A broadcast is complete when every connection has received its message; `depth`
 * broadcasts are kept outstanding. Every message's bytes follow a pattern (message index) and
 * are checked. Reports broadcasts/s, deliveries/s and the broadcast completion latency.
 *
 * --ws frames: WebSocket instead of raw TCP. Each connection first does the opening handshake;
 * a trigger is a masked one-byte binary frame, and each message a binary frame (header + the
 * same pattern), the header checked too.
 *
 * "measure-start"/"measure-end" on stderr around the measured window; one JSON line on stdout
 * with msgs = deliveries (broadcasts x conns), so CPU per delivered message is comparable.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "loadgen.h"

#define MAXD 64
#define USAGE "broadcast_client --port P [--conns N] [--size BYTES] [--depth 1..64] [--duration S] [--warmup S] [--ws frames]"
static lg_hist hist;

/* The WebSocket opening handshake on a blocking socket: 0 or -1. */
static int ws_handshake(int fd) {
  static const char req[] =
      "GET / HTTP/1.1\r\nHost: bench\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
      "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
  if (write(fd, req, sizeof req - 1) != (ssize_t)(sizeof req - 1)) return -1;
  char head[2048];
  size_t got = 0;
  while (got < sizeof head - 1) {
    ssize_t r = read(fd, head + got, 1);  /* byte by byte: nothing after the head is consumed */
    if (r <= 0) return -1;
    got += (size_t)r;
    if (got >= 4 && memcmp(head + got - 4, "\r\n\r\n", 4) == 0) return strncmp(head, "HTTP/1.1 101", 12) == 0 ? 0 : -1;
  }
  return -1;
}

int main(int argc, char **argv) {
  lg_opts o = {.host = "127.0.0.1", .conns = 1000, .size = 256, .duration = 5, .warmup = 1, .depth = 4};
  lg_parse(argc, argv, &o, USAGE);
  const int conns = o.conns, depth = o.depth;
  const size_t size = o.size;
  if (!o.port || conns < 1 || size < 1 || depth < 1 || depth > MAXD) { fprintf(stderr, "usage: %s\n", USAGE); return 2; }
  /* With --ws a message on the wire is its frame header, then the payload. */
  uint8_t hdr[4];
  size_t hl = 0;
  if (o.ws) {
    hdr[0] = 0x82;
    if (size < 126) { hdr[1] = (uint8_t)size; hl = 2; }
    else if (size <= 0xffff) { hdr[1] = 126; hdr[2] = (uint8_t)(size >> 8); hdr[3] = (uint8_t)size; hl = 4; }
    else { fprintf(stderr, "broadcast_client: --ws supports messages up to 65535 bytes\n"); return 2; }
  }
  const size_t unit = hl + size;
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(o.port)};
  inet_pton(AF_INET, o.host, &sa.sin_addr);
  int ep = epoll_create1(0);
  int *fd = calloc(conns, sizeof *fd);
  uint64_t *got = calloc(conns, sizeof *got);  /* bytes received per connection */
  for (int i = 0; i < conns; i++) {
    int tries = 0;
    for (;;) {
      fd[i] = socket(AF_INET, SOCK_STREAM, 0);
      if (connect(fd[i], (struct sockaddr *)&sa, sizeof sa) == 0) break;
      close(fd[i]);
      if (++tries > 500) { perror("connect"); return 1; }
      usleep(10000);
    }
    int one = 1;
    setsockopt(fd[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (o.ws && ws_handshake(fd[i]) < 0) { fprintf(stderr, "broadcast_client: WebSocket handshake failed on connection %d\n", i); return 1; }
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = i};
    epoll_ctl(ep, EPOLL_CTL_ADD, fd[i], &ev);
  }
  usleep(200000);  /* let the server see every connection before the first trigger */
  uint64_t sent = 0, done = 0, mism = 0, t_trig[MAXD];
  uint32_t *count = calloc(MAXD, sizeof *count);  /* connections that completed broadcast b */
  /* A trigger: one byte, or a masked one-byte binary frame (zero key) with --ws. */
  const char trig_raw[] = "b", trig_ws[] = {(char)0x82, (char)0x81, 0, 0, 0, 0, 'b'};
  const char *trig = o.ws ? trig_ws : trig_raw;
  const size_t tlen = o.ws ? sizeof trig_ws : 1;
  for (int d = 0; d < depth; d++) { t_trig[sent % MAXD] = lg_now_ns(); sent++; if (write(fd[0], trig, tlen) != (ssize_t)tlen) return 1; }
  uint64_t t0 = lg_now_ns(), warm_end = t0 + (uint64_t)(o.warmup * 1e9), end = warm_end + (uint64_t)(o.duration * 1e9);
  int measuring = 0;
  uint64_t mstart = 0, bcasts = 0, conn_err = 0;
  uint8_t *buf = malloc(1 << 16);
  struct epoll_event evs[512];
  for (;;) {
    int n = epoll_wait(ep, evs, 512, 100);
    uint64_t t = lg_now_ns();
    if (!measuring && t >= warm_end) { measuring = 1; mstart = t; lg_mark("measure-start"); }
    if (t >= end) break;
    for (int k = 0; k < n; k++) {
      int i = evs[k].data.u32;
      ssize_t r = read(fd[i], buf, 1 << 16);
      if (r <= 0) { conn_err++; epoll_ctl(ep, EPOLL_CTL_DEL, fd[i], NULL); continue; }
      for (ssize_t j = 0; j < r; j++) {
        uint64_t pos = got[i] + j;
        uint64_t b = pos / unit, at = pos % unit;
        uint8_t want = at < hl ? hdr[at] : (uint8_t)(b * 13 + (at - hl));
        if (buf[j] != want) mism++;
      }
      uint64_t before = got[i] / unit;
      got[i] += r;
      for (uint64_t b = before; b < got[i] / unit; b++) {
        if (++count[b % MAXD] == (uint32_t)conns) {
          count[b % MAXD] = 0;
          done++;
          if (measuring) {
            bcasts++;
            lg_hist_add(&hist, t - t_trig[b % MAXD]);
          }
          t_trig[sent % MAXD] = lg_now_ns();
          sent++;
          if (write(fd[0], trig, tlen) != (ssize_t)tlen) conn_err++;
        }
      }
    }
  }
  uint64_t mend = lg_now_ns();
  lg_mark("measure-end");
  double secs = (mend - mstart) / 1e9;
  printf("{\"msgs\":%llu,\"broadcasts\":%llu,\"seconds\":%.3f,\"msgsPerSec\":%.0f,\"broadcastsPerSec\":%.1f,"
         "\"p50us\":%.0f,\"p99us\":%.0f,\"errors\":%llu,\"mismatches\":%llu,\"connErrors\":%llu}\n",
         (unsigned long long)(bcasts * conns), (unsigned long long)bcasts, secs, bcasts * conns / secs, bcasts / secs,
         lg_hist_pct(&hist, 0.5), lg_hist_pct(&hist, 0.99), (unsigned long long)(mism + conn_err),
         (unsigned long long)mism, (unsigned long long)conn_err);
  return mism ? 3 : conn_err ? 1 : 0;
}

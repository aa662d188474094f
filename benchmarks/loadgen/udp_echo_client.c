/*
 * udp_echo_client: closed-loop UDP echo load generator for the zero-io benchmarks.
 *
 * Single thread, epoll. `flows` UDP sockets, each connect()ed to the server, keep `depth`
 * datagrams of `size` bytes in flight: when a datagram comes back its round-trip time is
 * recorded and a new one is sent. Each datagram carries (flow, sequence) in its first 12
 * bytes and a pattern after them; a reply that differs counts as a mismatch. A flow that has
 * heard nothing for 200 ms re-sends (UDP may drop; counted as `lost`), so a drop never stalls
 * the run.
 *
 * Phases: warmup, measure; "measure-start"/"measure-end" on stderr around the measured window
 * (the runner samples the server's CPU time there). One line of JSON on stdout, with the same
 * fields as echo_client (msgs, seconds, msgsPerSec, p50us, p99us, errors, mismatches,
 * connErrors) plus lost.
 *
 * Usage: udp_echo_client --host H --port P --conns FLOWS --size BYTES --duration S --warmup S
 *        [--depth D]
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "loadgen.h"

#define MAX_DEPTH 64
#define RESEND_NS 200000000ull

typedef struct {
  int fd;
  uint32_t id;
  uint32_t next_seq;
  uint64_t t_send[MAX_DEPTH];  /* by seq % depth */
  uint64_t last_rx;
} flow_t;

static lg_opts g_opt = {.host = "127.0.0.1", .conns = 1, .size = 64, .duration = 5, .warmup = 1, .depth = 1};
static lg_hist g_hist;

static void fill(uint8_t *b, uint32_t flow, uint32_t seq) {
  memcpy(b, &flow, 4);
  memcpy(b + 4, &seq, 4);
  memset(b + 8, 0, 4);
  for (size_t i = 12; i < g_opt.size; i++) b[i] = (uint8_t)(flow * 31 + seq * 7 + i);
}

static int check(const uint8_t *b, ssize_t n, uint32_t flow, uint32_t *seq) {
  if ((size_t)n != g_opt.size) return 0;
  uint32_t f;
  memcpy(&f, b, 4);
  memcpy(seq, b + 4, 4);
  if (f != flow) return 0;
  for (size_t i = 12; i < g_opt.size; i++)
    if (b[i] != (uint8_t)(flow * 31 + *seq * 7 + i)) return 0;
  return 1;
}

#define USAGE "udp_echo_client --port P [--conns FLOWS] [--size >=12] [--depth 1..64] [--duration S] [--warmup S]"

int main(int argc, char **argv) {
  lg_parse(argc, argv, &g_opt, USAGE);
  if (!g_opt.port || g_opt.conns < 1 || g_opt.size < 12 || g_opt.size > 65000 || g_opt.depth < 1 ||
      g_opt.depth > MAX_DEPTH) {
    fprintf(stderr, "usage: %s\n", USAGE);
    return 2;
  }
  struct sockaddr_in sa = {0};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(g_opt.port);
  inet_pton(AF_INET, g_opt.host, &sa.sin_addr);
  int ep = epoll_create1(0);
  flow_t *fl = calloc(g_opt.conns, sizeof *fl);
  uint8_t *buf = malloc(g_opt.size > 2048 ? g_opt.size : 2048);
  uint64_t t0 = lg_now_ns();
  for (int i = 0; i < g_opt.conns; i++) {
    flow_t *f = &fl[i];
    f->id = i;
    f->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    if (f->fd < 0 || connect(f->fd, (struct sockaddr *)&sa, sizeof sa) < 0) { perror("socket/connect"); return 1; }
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = i};
    epoll_ctl(ep, EPOLL_CTL_ADD, f->fd, &ev);
    for (int d = 0; d < g_opt.depth; d++) {
      fill(buf, f->id, f->next_seq);
      f->t_send[f->next_seq % g_opt.depth] = lg_now_ns();
      f->next_seq++;
      send(f->fd, buf, g_opt.size, 0);
    }
    f->last_rx = t0;
  }
  uint64_t warm_end = t0 + (uint64_t)(g_opt.warmup * 1e9);
  uint64_t end = warm_end + (uint64_t)(g_opt.duration * 1e9);
  int measuring = 0;
  uint64_t msgs = 0, mism = 0, lost = 0, conn_err = 0, mstart = 0;
  struct epoll_event evs[256];
  uint64_t last_sweep = t0;
  for (;;) {
    int n = epoll_wait(ep, evs, 256, 10);
    uint64_t t = lg_now_ns();
    if (!measuring && t >= warm_end) {
      measuring = 1;
      mstart = t;
      lg_mark("measure-start");
    }
    if (t >= end) break;
    for (int k = 0; k < n; k++) {
      flow_t *f = &fl[evs[k].data.u32];
      for (;;) {
        ssize_t r = recv(f->fd, buf, g_opt.size + 1, 0);
        if (r < 0) {
          if (errno != EAGAIN && errno != EWOULDBLOCK) conn_err++;
          break;
        }
        uint32_t seq;
        uint64_t tr = lg_now_ns();
        f->last_rx = tr;
        if (!check(buf, r, f->id, &seq)) { mism++; continue; }
        if (seq + (uint32_t)g_opt.depth < f->next_seq) continue;  /* a late reply to a resent datagram */
        if (measuring) {
          msgs++;
          lg_hist_add(&g_hist, tr - f->t_send[seq % g_opt.depth]);
        }
        fill(buf, f->id, f->next_seq);
        f->t_send[f->next_seq % g_opt.depth] = tr;
        f->next_seq++;
        send(f->fd, buf, g_opt.size, 0);
      }
    }
    if (t - last_sweep > RESEND_NS / 4) {  /* drops: re-send for quiet flows */
      last_sweep = t;
      for (int i = 0; i < g_opt.conns; i++) {
        flow_t *f = &fl[i];
        if (t - f->last_rx < RESEND_NS) continue;
        for (int d = 0; d < g_opt.depth; d++) {
          fill(buf, f->id, f->next_seq);
          f->t_send[f->next_seq % g_opt.depth] = t;
          f->next_seq++;
          send(f->fd, buf, g_opt.size, 0);
        }
        f->last_rx = t;
        lost += g_opt.depth;
      }
    }
  }
  uint64_t mend = lg_now_ns();
  lg_mark("measure-end");
  double secs = (mend - mstart) / 1e9;
  printf("{\"msgs\":%llu,\"seconds\":%.3f,\"msgsPerSec\":%.0f,\"p50us\":%.0f,\"p99us\":%.0f,"
         "\"errors\":%llu,\"mismatches\":%llu,\"connErrors\":%llu,\"lost\":%llu}\n",
         (unsigned long long)msgs, secs, msgs / secs, lg_hist_pct(&g_hist, 0.5),
         lg_hist_pct(&g_hist, 0.99), (unsigned long long)(mism + conn_err),
         (unsigned long long)mism, (unsigned long long)conn_err, (unsigned long long)lost);
  return mism ? 3 : 0;
}

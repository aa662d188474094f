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

#define HIST_BUCKETS 100000u
#define MAX_DEPTH 64
#define RESEND_NS 200000000ull

typedef struct {
  int fd;
  uint32_t id;
  uint32_t next_seq;
  uint64_t t_send[MAX_DEPTH];  /* by seq % depth */
  uint64_t last_rx;
} flow_t;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static const char *g_host = "127.0.0.1";
static int g_port, g_flows = 1, g_depth = 1;
static size_t g_size = 64;
static double g_duration = 5, g_warmup = 1;
static uint64_t hist[HIST_BUCKETS + 1];

static void fill(uint8_t *b, uint32_t flow, uint32_t seq) {
  memcpy(b, &flow, 4);
  memcpy(b + 4, &seq, 4);
  memset(b + 8, 0, 4);
  for (size_t i = 12; i < g_size; i++) b[i] = (uint8_t)(flow * 31 + seq * 7 + i);
}

static int check(const uint8_t *b, ssize_t n, uint32_t flow, uint32_t *seq) {
  if ((size_t)n != g_size) return 0;
  uint32_t f;
  memcpy(&f, b, 4);
  memcpy(seq, b + 4, 4);
  if (f != flow) return 0;
  for (size_t i = 12; i < g_size; i++)
    if (b[i] != (uint8_t)(flow * 31 + *seq * 7 + i)) return 0;
  return 1;
}

static uint64_t pct(uint64_t total, double p) {
  uint64_t want = (uint64_t)(total * p), acc = 0;
  for (uint32_t i = 0; i <= HIST_BUCKETS; i++) {
    acc += hist[i];
    if (acc > want) return i;
  }
  return HIST_BUCKETS;
}

int main(int argc, char **argv) {
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--host")) g_host = argv[i + 1];
    else if (!strcmp(argv[i], "--port")) g_port = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--conns")) g_flows = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--size")) g_size = (size_t)atol(argv[i + 1]);
    else if (!strcmp(argv[i], "--duration")) g_duration = atof(argv[i + 1]);
    else if (!strcmp(argv[i], "--warmup")) g_warmup = atof(argv[i + 1]);
    else if (!strcmp(argv[i], "--depth")) g_depth = atoi(argv[i + 1]);
    else { fprintf(stderr, "unknown argument %s\n", argv[i]); return 2; }
  }
  if (!g_port || g_flows < 1 || g_size < 12 || g_size > 65000 || g_depth < 1 || g_depth > MAX_DEPTH) {
    fprintf(stderr, "usage: udp_echo_client --port P [--conns N] [--size >=12] [--depth 1..64]\n");
    return 2;
  }
  struct sockaddr_in sa = {0};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(g_port);
  inet_pton(AF_INET, g_host, &sa.sin_addr);
  int ep = epoll_create1(0);
  flow_t *fl = calloc(g_flows, sizeof *fl);
  uint8_t *buf = malloc(g_size > 2048 ? g_size : 2048);
  uint64_t t0 = now_ns();
  for (int i = 0; i < g_flows; i++) {
    flow_t *f = &fl[i];
    f->id = i;
    f->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    if (f->fd < 0 || connect(f->fd, (struct sockaddr *)&sa, sizeof sa) < 0) { perror("socket/connect"); return 1; }
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = i};
    epoll_ctl(ep, EPOLL_CTL_ADD, f->fd, &ev);
    for (int d = 0; d < g_depth; d++) {
      fill(buf, f->id, f->next_seq);
      f->t_send[f->next_seq % g_depth] = now_ns();
      f->next_seq++;
      send(f->fd, buf, g_size, 0);
    }
    f->last_rx = t0;
  }
  uint64_t warm_end = t0 + (uint64_t)(g_warmup * 1e9);
  uint64_t end = warm_end + (uint64_t)(g_duration * 1e9);
  int measuring = 0;
  uint64_t msgs = 0, mism = 0, lost = 0, conn_err = 0, mstart = 0;
  struct epoll_event evs[256];
  uint64_t last_sweep = t0;
  for (;;) {
    int n = epoll_wait(ep, evs, 256, 10);
    uint64_t t = now_ns();
    if (!measuring && t >= warm_end) {
      measuring = 1;
      mstart = t;
      fprintf(stderr, "measure-start\n");
      fflush(stderr);
    }
    if (t >= end) break;
    for (int k = 0; k < n; k++) {
      flow_t *f = &fl[evs[k].data.u32];
      for (;;) {
        ssize_t r = recv(f->fd, buf, g_size + 1, 0);
        if (r < 0) {
          if (errno != EAGAIN && errno != EWOULDBLOCK) conn_err++;
          break;
        }
        uint32_t seq;
        uint64_t tr = now_ns();
        f->last_rx = tr;
        if (!check(buf, r, f->id, &seq)) { mism++; continue; }
        if (seq + (uint32_t)g_depth < f->next_seq) continue;  /* a late reply to a resent datagram */
        if (measuring) {
          msgs++;
          uint64_t us = (tr - f->t_send[seq % g_depth]) / 1000;
          hist[us < HIST_BUCKETS ? us : HIST_BUCKETS]++;
        }
        fill(buf, f->id, f->next_seq);
        f->t_send[f->next_seq % g_depth] = tr;
        f->next_seq++;
        send(f->fd, buf, g_size, 0);
      }
    }
    if (t - last_sweep > RESEND_NS / 4) {  /* drops: re-send for quiet flows */
      last_sweep = t;
      for (int i = 0; i < g_flows; i++) {
        flow_t *f = &fl[i];
        if (t - f->last_rx < RESEND_NS) continue;
        for (int d = 0; d < g_depth; d++) {
          fill(buf, f->id, f->next_seq);
          f->t_send[f->next_seq % g_depth] = t;
          f->next_seq++;
          send(f->fd, buf, g_size, 0);
        }
        f->last_rx = t;
        lost += g_depth;
      }
    }
  }
  uint64_t mend = now_ns();
  fprintf(stderr, "measure-end\n");
  fflush(stderr);
  double secs = (mend - mstart) / 1e9;
  printf("{\"msgs\":%llu,\"seconds\":%.3f,\"msgsPerSec\":%.0f,\"p50us\":%llu,\"p99us\":%llu,"
         "\"errors\":%llu,\"mismatches\":%llu,\"connErrors\":%llu,\"lost\":%llu}\n",
         (unsigned long long)msgs, secs, msgs / secs, (unsigned long long)pct(msgs, 0.5),
         (unsigned long long)pct(msgs, 0.99), (unsigned long long)(mism + conn_err),
         (unsigned long long)mism, (unsigned long long)conn_err, (unsigned long long)lost);
  return mism ? 3 : 0;
}

/*
 * broadcast_client: closed-loop broadcast load generator for the zero-io benchmarks.
 *
 * Opens `conns` TCP connections to the server. Connection 0 also carries triggers: one byte
 * per broadcast asked for. On each trigger the server sends one `size`-byte message to every
 * connection. A broadcast is complete when every connection has received its message; `depth`
 * broadcasts are kept outstanding. Every message's bytes follow a pattern (message index) and
 * are checked. Reports broadcasts/s, deliveries/s and the broadcast completion latency.
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

#define HIST 100000u
#define MAXD 64
static uint64_t hist[HIST + 1];
static uint64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000ull + t.tv_nsec;
}

int main(int argc, char **argv) {
  const char *host = "127.0.0.1";
  int port = 0, conns = 1000, depth = 4;
  size_t size = 256;
  double duration = 5, warmup = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--host")) host = argv[i + 1];
    else if (!strcmp(argv[i], "--port")) port = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--conns")) conns = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--size")) size = (size_t)atol(argv[i + 1]);
    else if (!strcmp(argv[i], "--duration")) duration = atof(argv[i + 1]);
    else if (!strcmp(argv[i], "--warmup")) warmup = atof(argv[i + 1]);
    else if (!strcmp(argv[i], "--depth")) depth = atoi(argv[i + 1]);
  }
  if (!port || conns < 1 || size < 1 || depth < 1 || depth > MAXD) { fprintf(stderr, "bad arguments\n"); return 2; }
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
  inet_pton(AF_INET, host, &sa.sin_addr);
  int ep = epoll_create1(0);
  int *fd = calloc(conns, sizeof *fd);
  uint64_t *got = calloc(conns, sizeof *got);  /* bytes received per connection */
  uint64_t *complete = calloc(conns, sizeof *complete);  /* per broadcast index % MAXD: conns done */
  (void)complete;
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
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = i};
    epoll_ctl(ep, EPOLL_CTL_ADD, fd[i], &ev);
  }
  usleep(200000);  /* let the server see every connection before the first trigger */
  uint64_t sent = 0, done = 0, mism = 0, t_trig[MAXD];
  uint32_t *count = calloc(MAXD, sizeof *count);  /* connections that completed broadcast b */
  char trig = 'b';
  for (int d = 0; d < depth; d++) { t_trig[sent % MAXD] = now_ns(); sent++; if (write(fd[0], &trig, 1) != 1) return 1; }
  uint64_t t0 = now_ns(), warm_end = t0 + (uint64_t)(warmup * 1e9), end = warm_end + (uint64_t)(duration * 1e9);
  int measuring = 0;
  uint64_t mstart = 0, bcasts = 0, conn_err = 0;
  uint8_t *buf = malloc(1 << 16);
  struct epoll_event evs[512];
  for (;;) {
    int n = epoll_wait(ep, evs, 512, 100);
    uint64_t t = now_ns();
    if (!measuring && t >= warm_end) { measuring = 1; mstart = t; fprintf(stderr, "measure-start\n"); fflush(stderr); }
    if (t >= end) break;
    for (int k = 0; k < n; k++) {
      int i = evs[k].data.u32;
      ssize_t r = read(fd[i], buf, 1 << 16);
      if (r <= 0) { conn_err++; epoll_ctl(ep, EPOLL_CTL_DEL, fd[i], NULL); continue; }
      for (ssize_t j = 0; j < r; j++) {
        uint64_t pos = got[i] + j;
        uint64_t b = pos / size;
        if (buf[j] != (uint8_t)(b * 13 + (pos % size))) mism++;
      }
      uint64_t before = got[i] / size;
      got[i] += r;
      for (uint64_t b = before; b < got[i] / size; b++) {
        if (++count[b % MAXD] == (uint32_t)conns) {
          count[b % MAXD] = 0;
          done++;
          if (measuring) {
            bcasts++;
            uint64_t us = (t - t_trig[b % MAXD]) / 1000;
            hist[us < HIST ? us : HIST]++;
          }
          t_trig[sent % MAXD] = now_ns();
          sent++;
          if (write(fd[0], &trig, 1) != 1) conn_err++;
        }
      }
    }
  }
  uint64_t mend = now_ns();
  fprintf(stderr, "measure-end\n");
  fflush(stderr);
  double secs = (mend - mstart) / 1e9;
  uint64_t want50 = bcasts / 2, want99 = (uint64_t)(bcasts * 0.99), acc = 0, p50 = 0, p99 = 0;
  int have50 = 0;
  for (uint32_t i = 0; i <= HIST; i++) {
    acc += hist[i];
    if (!have50 && acc > want50) { p50 = i; have50 = 1; }
    if (acc > want99) { p99 = i; break; }
  }
  printf("{\"msgs\":%llu,\"broadcasts\":%llu,\"seconds\":%.3f,\"msgsPerSec\":%.0f,\"broadcastsPerSec\":%.1f,"
         "\"p50us\":%llu,\"p99us\":%llu,\"errors\":%llu,\"mismatches\":%llu,\"connErrors\":%llu}\n",
         (unsigned long long)(bcasts * conns), (unsigned long long)bcasts, secs, bcasts * conns / secs, bcasts / secs,
         (unsigned long long)p50, (unsigned long long)p99, (unsigned long long)(mism + conn_err),
         (unsigned long long)mism, (unsigned long long)conn_err);
  return mism ? 3 : conn_err ? 1 : 0;
}

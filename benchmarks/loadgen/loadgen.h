/*
 * loadgen.h: what the C load generators share: the command line, the clock, the latency
 * histogram, and the phase marks ("measure-start" / "measure-end" on stderr) around which the
 * runner (benchmarks/run.mjs) samples the server's CPU time.
 */
#ifndef ZIO_LOADGEN_H
#define ZIO_LOADGEN_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
  const char *host;
  int port;
  int conns; /* connections (TCP) or flows (UDP) */
  size_t size;
  double duration; /* seconds measured */
  double warmup;   /* seconds before */
  int depth;       /* messages in flight per connection */
  int ws;          /* echo_client: 0 raw bytes, 1 WebSocket (handshake, masked binary frames),
                      2 the same frames without the handshake, echoed as sent (a TCP echo server) */
} lg_opts;

/* Reads --host --port --conns --size --duration --warmup --depth into `o`, which holds the
 * defaults. An unknown flag or a flag without its value prints `usage` and exits with 2; the
 * caller checks the ranges it needs. */
static void lg_parse(int argc, char **argv, lg_opts *o, const char *usage) {
  for (int i = 1; i < argc; i += 2) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!v) goto bad;
    if (!strcmp(a, "--host")) o->host = v;
    else if (!strcmp(a, "--port")) o->port = atoi(v);
    else if (!strcmp(a, "--conns")) o->conns = atoi(v);
    else if (!strcmp(a, "--size")) o->size = (size_t)strtoul(v, NULL, 10);
    else if (!strcmp(a, "--duration")) o->duration = atof(v);
    else if (!strcmp(a, "--warmup")) o->warmup = atof(v);
    else if (!strcmp(a, "--depth")) o->depth = atoi(v);
    else if (!strcmp(a, "--ws")) o->ws = !strcmp(v, "frames") ? 1 : !strcmp(v, "raw-frames") ? 2 : 0;
    else goto bad;
  }
  return;
bad:
  fprintf(stderr, "usage: %s\n", usage);
  exit(2);
}

static inline uint64_t lg_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Prints a phase mark for the runner. */
static inline void lg_mark(const char *what) {
  fprintf(stderr, "%s\n", what);
  fflush(stderr);
}

#define LG_HIST_BUCKETS 100000u /* 1 us resolution up to 100 ms; one overflow bucket after */

/* Round-trip times in microseconds (800 KB: give it static storage). */
typedef struct {
  uint64_t bucket[LG_HIST_BUCKETS + 1];
  uint64_t count;
} lg_hist;

static inline void lg_hist_add(lg_hist *h, uint64_t ns) {
  uint64_t us = ns / 1000;
  h->bucket[us < LG_HIST_BUCKETS ? us : LG_HIST_BUCKETS]++;
  h->count++;
}

/* The p-quantile (0..1) in microseconds; 0 when nothing was recorded. */
static double lg_hist_pct(const lg_hist *h, double p) {
  if (h->count == 0) return 0;
  uint64_t rank = (uint64_t)(p * (double)h->count);
  if (rank >= h->count) rank = h->count - 1;
  uint64_t acc = 0;
  for (uint32_t i = 0; i <= LG_HIST_BUCKETS; i++) {
    acc += h->bucket[i];
    if (acc > rank) return (double)i;
  }
  return (double)LG_HIST_BUCKETS;
}

#endif

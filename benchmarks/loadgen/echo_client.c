/*
 * echo_client: closed-loop TCP echo load generator for the zero-io benchmarks.
 *
 * Single thread, epoll (level-triggered), non-blocking sockets, TCP_NODELAY.
 * Every connection keeps `depth` messages of `size` bytes in flight: when a
 * whole message has been echoed back its round-trip time is recorded and a new
 * message is sent. Partial reads and writes are handled (the echo stream is a
 * byte stream; message boundaries are only counted by offset).
 *
 * Every byte sent follows a per-connection pattern with a period of 251 bytes
 * (prime, so consecutive messages differ); every byte received is compared
 * with the pattern and each chunk that differs counts as one error.
 *
 * Phases: connect (refused connects are retried for up to 5 s while the server
 * starts), warmup, measure. "measure-start" and "measure-end" are printed on
 * stderr at the phase boundaries so a runner can sample the server's CPU time
 * exactly around the measured window. One line of JSON goes to stdout.
 *
 * WebSocket (--ws frames): each connection first sends an opening handshake (RFC 6455) and
 * waits for its 101; a message is then one masked binary frame of `size` payload bytes (the
 * masking key is zero, so the payload is sent as is) and its echo is the same frame unmasked, as
 * a server sends it. --ws raw-frames sends the same frames with no handshake and expects them
 * back byte for byte: what a plain TCP echo server (the C epoll reference) costs for the same
 * bytes, with no WebSocket work at all.
 *
 * Exit codes: 0 ok, 1 connection error (connect failed, reset, EOF, ...),
 * 2 bad arguments, 3 echoed bytes did not match.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "loadgen.h"

#define PERIOD 251u
#define RBUF_SIZE (256 * 1024)
#define MAX_DEPTH 64

typedef struct {
  int fd;
  int id;
  int want_out;          /* EPOLLOUT currently registered */
  int dead;
  uint64_t queued;       /* bytes the connection should have written so far */
  uint64_t sent;         /* bytes written */
  uint64_t recvd;        /* bytes read back */
  uint64_t done;         /* messages fully echoed */
  uint64_t t_send[MAX_DEPTH]; /* start time (ns) of each in-flight message, ring by message index */
  uint8_t *pat;          /* PERIOD + size bytes: pat[i] == pat[i % PERIOD] */
  uint8_t *wout, *win;   /* --ws: one message as sent (a client frame) and as echoed */
} conn_t;

static lg_opts g_opt = {.host = "127.0.0.1", .conns = 1, .size = 1024, .duration = 5.0, .warmup = 1.0, .depth = 1};
static lg_hist g_hist;
static uint64_t g_msgs;
static uint64_t g_mismatch;
static uint64_t g_conn_errors;
static int g_measuring;
static size_t g_out, g_in; /* bytes of one message as sent / as echoed (size, or frames with --ws) */

#define USAGE "echo_client --host 127.0.0.1 --port N --conns C --size BYTES --duration SECONDS --warmup SECONDS [--depth 1] [--ws frames|raw-frames]"

static void parse_args(int argc, char **argv) {
  lg_parse(argc, argv, &g_opt, USAGE);
  if (g_opt.port <= 0 || g_opt.port > 65535 || g_opt.conns <= 0 || g_opt.size == 0 ||
      g_opt.size > (64u << 20) || g_opt.duration <= 0 || g_opt.warmup < 0 || g_opt.depth <= 0 || g_opt.depth > MAX_DEPTH) {
    fprintf(stderr, "usage: %s\n", USAGE);
    exit(2);
  }
}

/* Connect one socket. Refused connects are retried until refuse_deadline;
 * the whole attempt must finish by hard_deadline. Returns fd or -1. */
static int connect_one(const struct sockaddr_in *sa, uint64_t refuse_deadline, uint64_t hard_deadline) {
  for (;;) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      perror("socket");
      return -1;
    }
    int err = 0;
    if (connect(fd, (const struct sockaddr *)sa, sizeof *sa) < 0) {
      if (errno != EINPROGRESS) {
        err = errno;
      } else {
        for (;;) {
          uint64_t t = lg_now_ns();
          if (t >= hard_deadline) {
            err = ETIMEDOUT;
            break;
          }
          struct pollfd p = {.fd = fd, .events = POLLOUT};
          int ms = (int)((hard_deadline - t) / 1000000ull) + 1;
          int r = poll(&p, 1, ms);
          if (r < 0 && errno == EINTR) continue;
          if (r < 0) {
            err = errno;
            break;
          }
          if (r == 0) continue;
          socklen_t len = sizeof err;
          if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
          break;
        }
      }
    }
    if (err == 0) {
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      return fd;
    }
    close(fd);
    uint64_t t = lg_now_ns();
    if (err == ECONNREFUSED && t + 50000000ull < refuse_deadline) {
      struct timespec ts = {0, 50000000};
      nanosleep(&ts, NULL);
      continue;
    }
    fprintf(stderr, "echo_client: connect %s:%d: %s\n", g_opt.host, g_opt.port, strerror(err));
    return -1;
  }
}

static void conn_fail(int ep, conn_t *c, const char *what, int err) {
  if (c->dead) return;
  if (g_conn_errors < 5)
    fprintf(stderr, "echo_client: conn %d: %s%s%s\n", c->id, what, err ? ": " : "", err ? strerror(err) : "");
  g_conn_errors++;
  c->dead = 1;
  epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
  close(c->fd);
  c->fd = -1;
}

static void set_out(int ep, conn_t *c, int want) {
  if (c->want_out == want || c->dead) return;
  struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0), .data.ptr = c};
  epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
  c->want_out = want;
}

static void do_write(int ep, conn_t *c) {
  while (!c->dead && c->sent < c->queued) {
    /* Never write past the end of the current message: the pattern buffer is
     * PERIOD + size bytes, so any start offset with <= size bytes fits. */
    uint64_t msg_end = (c->sent / g_out + 1) * g_out;
    if (msg_end > c->queued) msg_end = c->queued;
    size_t len = (size_t)(msg_end - c->sent);
    const uint8_t *from = g_opt.ws ? c->wout + (c->sent % g_out) : c->pat + (c->sent % PERIOD);
    ssize_t n = send(c->fd, from, len, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      c->sent += (uint64_t)n;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      set_out(ep, c, 1);
      return;
    }
    conn_fail(ep, c, "send", n < 0 ? errno : 0);
    return;
  }
  set_out(ep, c, 0);
}

static void queue_msg(conn_t *c, uint64_t t) {
  uint64_t idx = c->queued / g_out;
  c->t_send[idx % (uint64_t)g_opt.depth] = t;
  c->queued += g_out;
}

static void do_read(int ep, conn_t *c, uint8_t *rbuf, int may_send) {
  ssize_t n = recv(c->fd, rbuf, RBUF_SIZE, MSG_DONTWAIT);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
    conn_fail(ep, c, "recv", errno);
    return;
  }
  if (n == 0) {
    conn_fail(ep, c, "server closed the connection", 0);
    return;
  }
  uint64_t owed = c->sent / g_out * g_in + (g_opt.ws ? 0 : c->sent % g_out);  /* bytes an echo may hold */
  if ((uint64_t)n > owed - c->recvd) {
    /* More bytes came back than were sent. */
    g_mismatch++;
    n = (ssize_t)(owed - c->recvd);
  }
  /* Verify against the pattern (or the echoed frame), one message at a time. */
  size_t off = 0;
  while (off < (size_t)n) {
    size_t len = (size_t)n - off;
    if (g_opt.ws) {
      size_t at = (size_t)((c->recvd + off) % g_in);
      if (len > g_in - at) len = g_in - at;
      if (memcmp(rbuf + off, c->win + at, len) != 0) g_mismatch++;
    } else {
      if (len > g_opt.size) len = g_opt.size;
      if (memcmp(rbuf + off, c->pat + ((c->recvd + off) % PERIOD), len) != 0) g_mismatch++;
    }
    off += len;
  }
  uint64_t before = c->recvd / g_in;
  c->recvd += (uint64_t)n;
  uint64_t after = c->recvd / g_in;
  if (after == before) return;
  uint64_t t = lg_now_ns();
  for (uint64_t m = before; m < after; m++) {
    if (g_measuring) {
      lg_hist_add(&g_hist, t - c->t_send[m % (uint64_t)g_opt.depth]);
      g_msgs++;
    }
    c->done++;
    if (may_send) queue_msg(c, t);
  }
  if (may_send) do_write(ep, c);
}

/* The WebSocket opening handshake on a connected non-blocking socket: 0, or -1 (said why). */
static int ws_handshake(int fd, uint64_t deadline) {
  static const char req[] =
      "GET / HTTP/1.1\r\nHost: bench\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
      "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
  if (send(fd, req, sizeof req - 1, MSG_NOSIGNAL) != (ssize_t)(sizeof req - 1)) return -1;
  char head[4096];
  size_t got = 0;
  while (got < sizeof head - 1) {
    uint64_t t = lg_now_ns();
    if (t >= deadline) break;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, (int)((deadline - t) / 1000000ull) + 1) <= 0) continue;
    ssize_t r = recv(fd, head + got, sizeof head - 1 - got, 0);
    if (r <= 0) break;
    got += (size_t)r;
    head[got] = 0;
    char *end = strstr(head, "\r\n\r\n");
    if (end) {
      if (strncmp(head, "HTTP/1.1 101", 12) != 0 || (size_t)(end + 4 - head) != got) break;
      return 0;
    }
  }
  fprintf(stderr, "echo_client: WebSocket handshake failed: %.200s\n", got ? head : "no answer");
  return -1;
}

/* One binary frame of `size` payload bytes: masked with a zero key as a client sends it (out),
 * and as the server echoes it (in). Returns the header lengths through *hout / *hin. */
static void ws_frames(conn_t *c, const uint8_t *payload) {
  uint8_t h[14];
  size_t n = 0;
  h[n++] = 0x82;
  size_t s = g_opt.size;
  if (s < 126) h[n++] = (uint8_t)s;
  else if (s <= 0xffff) { h[n++] = 126; h[n++] = (uint8_t)(s >> 8); h[n++] = (uint8_t)s; }
  else { h[n++] = 127; for (int k = 7; k >= 0; k--) h[n++] = (uint8_t)((uint64_t)s >> (8 * k)); }
  memcpy(c->win, h, n);
  memcpy(c->win + n, payload, s);
  h[1] |= 0x80;
  memcpy(c->wout, h, n);
  memset(c->wout + n, 0, 4);  /* the masking key: zero */
  memcpy(c->wout + n + 4, payload, s);
  if (g_opt.ws == 2) memcpy(c->win, c->wout, g_out);  /* a TCP echo: the same bytes back */
}

int main(int argc, char **argv) {
  parse_args(argc, argv);
  g_out = g_in = g_opt.size;
  if (g_opt.ws) {
    size_t hl = g_opt.size < 126 ? 2 : g_opt.size <= 0xffff ? 4 : 10;
    g_in = hl + g_opt.size;
    g_out = hl + 4 + g_opt.size;
    if (g_opt.ws == 2) g_in = g_out;
  }
  signal(SIGPIPE, SIG_IGN);

  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)g_opt.port);
  if (inet_pton(AF_INET, g_opt.host, &sa.sin_addr) != 1) {
    fprintf(stderr, "echo_client: --host must be an IPv4 address, got %s\n", g_opt.host);
    return 2;
  }

  conn_t *conns = calloc((size_t)g_opt.conns, sizeof *conns);
  uint8_t *rbuf = malloc(RBUF_SIZE);
  if (!conns || !rbuf) {
    fprintf(stderr, "echo_client: out of memory\n");
    return 1;
  }

  /* Connect everything first. */
  uint64_t t_start = lg_now_ns();
  uint64_t refuse_deadline = t_start + 5000000000ull;
  uint64_t hard_deadline = t_start + 15000000000ull;
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) {
    perror("epoll_create1");
    return 1;
  }
  for (int i = 0; i < g_opt.conns; i++) {
    conn_t *c = &conns[i];
    c->id = i;
    c->pat = malloc(PERIOD + g_opt.size);
    if (!c->pat) {
      fprintf(stderr, "echo_client: out of memory\n");
      return 1;
    }
    uint32_t h = 2166136261u ^ (uint32_t)i * 16777619u;
    uint8_t base[PERIOD];
    for (uint32_t j = 0; j < PERIOD; j++) {
      h = (h ^ (j + 1)) * 16777619u;
      base[j] = (uint8_t)(h >> 13);
    }
    for (size_t j = 0; j < PERIOD + g_opt.size; j++) c->pat[j] = base[j % PERIOD];
    if (g_opt.ws) {
      c->wout = malloc(g_out);
      c->win = malloc(g_out);
      if (!c->wout || !c->win) {
        fprintf(stderr, "echo_client: out of memory\n");
        return 1;
      }
      ws_frames(c, c->pat);
    }
    c->fd = connect_one(&sa, refuse_deadline, hard_deadline);
    if (c->fd < 0 || (g_opt.ws == 1 && ws_handshake(c->fd, hard_deadline) < 0)) {
      fprintf(stderr, "echo_client: failed to connect connection %d of %d\n", i + 1, g_opt.conns);
      return 1;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
      perror("epoll_ctl");
      return 1;
    }
  }

  uint64_t t0 = lg_now_ns();
  uint64_t t_warm_end = t0 + (uint64_t)(g_opt.warmup * 1e9);
  uint64_t t_end = t_warm_end + (uint64_t)(g_opt.duration * 1e9);
  uint64_t t_measure_start = t0;
  if (g_opt.warmup == 0) {
    g_measuring = 1;
    lg_mark("measure-start");
  }

  for (int i = 0; i < g_opt.conns; i++) {
    for (int d = 0; d < g_opt.depth; d++) queue_msg(&conns[i], t0);
    do_write(ep, &conns[i]);
  }

  int maxev = g_opt.conns < 1024 ? g_opt.conns : 1024;
  struct epoll_event *evs = calloc((size_t)maxev, sizeof *evs);
  uint64_t t_measure_end = 0;
  for (;;) {
    uint64_t t = lg_now_ns();
    if (!g_measuring && t >= t_warm_end) {
      g_measuring = 1;
      t_measure_start = t;
      lg_mark("measure-start");
    }
    if (t >= t_end) {
      t_measure_end = t;
      break;
    }
    if (g_conn_errors == (uint64_t)g_opt.conns) {
      t_measure_end = t;
      break; /* nothing left to drive */
    }
    uint64_t next = g_measuring ? t_end : t_warm_end;
    int ms = (int)((next - t) / 1000000ull) + 1;
    if (ms > 100) ms = 100;
    int n = epoll_wait(ep, evs, maxev, ms);
    if (n < 0) {
      if (errno == EINTR) continue;
      perror("epoll_wait");
      return 1;
    }
    for (int i = 0; i < n; i++) {
      conn_t *c = evs[i].data.ptr;
      if (c->dead) continue;
      if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) do_read(ep, c, rbuf, 1);
      if (!c->dead && (evs[i].events & EPOLLOUT)) do_write(ep, c);
    }
  }
  g_measuring = 0;
  lg_mark("measure-end");

  double secs = t_measure_end > t_measure_start ? (double)(t_measure_end - t_measure_start) / 1e9 : 0;
  double mps = secs > 0 ? (double)g_msgs / secs : 0;
  printf("{\"msgs\":%llu,\"seconds\":%.6f,\"msgsPerSec\":%.1f,\"p50us\":%.0f,\"p99us\":%.0f,\"p999us\":%.0f,"
         "\"conns\":%d,\"size\":%zu,\"depth\":%d,\"errors\":%llu,\"mismatches\":%llu,\"connErrors\":%llu}\n",
         (unsigned long long)g_msgs, secs, mps, lg_hist_pct(&g_hist, 0.50), lg_hist_pct(&g_hist, 0.99),
         lg_hist_pct(&g_hist, 0.999), g_opt.conns, g_opt.size,
         g_opt.depth, (unsigned long long)(g_mismatch + g_conn_errors), (unsigned long long)g_mismatch,
         (unsigned long long)g_conn_errors);
  fflush(stdout);

  for (int i = 0; i < g_opt.conns; i++) {
    if (!conns[i].dead) close(conns[i].fd);
    free(conns[i].pat);
  }
  close(ep);
  free(evs);
  free(conns);
  free(rbuf);
  if (g_conn_errors) return 1;
  if (g_mismatch) return 3;
  return 0;
}

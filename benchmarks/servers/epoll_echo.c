// A minimal single-threaded epoll TCP echo server in C: the native reference of PERF.md
#define _GNU_SOURCE
// ("minimal epoll server"). Level-triggered, non-blocking, TCP_NODELAY, one read + one write per
// readiness; a partial write keeps the rest and waits for EPOLLOUT. Prints "listening <port>".
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAXFD 65536
static char *pend[MAXFD];
static size_t pend_len[MAXFD];

static void drop(int ep, int fd) {
  epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
  close(fd);
  free(pend[fd]);
  pend[fd] = NULL;
  pend_len[fd] = 0;
}

int main(int argc, char **argv) {
  int port = argc > 1 ? atoi(argv[1]) : 7001;
  int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(ls, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(ls, 4096) < 0) { perror("listen"); return 1; }
  int ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = ls}, evs[256];
  epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
  printf("listening %d\n", port);
  fflush(stdout);
  static char buf[65536];
  for (;;) {
    int n = epoll_wait(ep, evs, 256, -1);
    for (int i = 0; i < n; i++) {
      int fd = evs[i].data.fd;
      if (fd == ls) {
        int c;
        while ((c = accept4(ls, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
          if (c >= MAXFD) { close(c); continue; }
          setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          struct epoll_event ce = {.events = EPOLLIN, .data.fd = c};
          epoll_ctl(ep, EPOLL_CTL_ADD, c, &ce);
        }
        continue;
      }
      if (evs[i].events & EPOLLOUT && pend_len[fd]) {
        ssize_t w = write(fd, pend[fd], pend_len[fd]);
        if (w < 0 && errno != EAGAIN) { drop(ep, fd); continue; }
        if (w > 0) { memmove(pend[fd], pend[fd] + w, pend_len[fd] - w); pend_len[fd] -= w; }
        if (!pend_len[fd]) { struct epoll_event ce = {.events = EPOLLIN, .data.fd = fd}; epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ce); }
        continue;
      }
      if (pend_len[fd]) continue;  // wait for the backlog to drain first
      ssize_t r = read(fd, buf, sizeof buf);
      if (r <= 0) { if (r == 0 || errno != EAGAIN) drop(ep, fd); continue; }
      ssize_t w = write(fd, buf, r);
      if (w < 0) { if (errno != EAGAIN) { drop(ep, fd); continue; } w = 0; }
      if (w < r) {
        pend[fd] = realloc(pend[fd], r - w);
        memcpy(pend[fd], buf + w, r - w);
        pend_len[fd] = r - w;
        struct epoll_event ce = {.events = EPOLLIN | EPOLLOUT, .data.fd = fd};
        epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ce);
      }
    }
  }
}

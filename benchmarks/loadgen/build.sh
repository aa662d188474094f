#!/usr/bin/env bash
# Builds the C load generators (echo_client, udp_echo_client, broadcast_client) and the C epoll
# reference server (epoll_echo) into benchmarks/bin (gitignored).
# Rebuilds a binary only when it is missing or older than its source or loadgen.h.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
outdir="$here/../bin"
mkdir -p "$outdir"
for src in "$here/echo_client.c" "$here/udp_echo_client.c" "$here/broadcast_client.c" \
           "$here/../servers/epoll_echo.c"; do
  out="$outdir/$(basename "$src" .c)"
  if [[ ! -x "$out" || "$src" -nt "$out" || "$here/loadgen.h" -nt "$out" ]]; then
    cc -O2 -Wall -Wextra -std=gnu11 -o "$out.tmp" "$src"
    mv -f "$out.tmp" "$out"
    echo "built $out" >&2
  fi
done

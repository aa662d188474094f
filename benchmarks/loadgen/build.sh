#!/usr/bin/env bash
# Builds the C echo load generator (benchmarks/bin/echo_client) and the C epoll reference server
# (benchmarks/bin/epoll_echo); both gitignored.
# Rebuilds only when the binary is missing or older than the source.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
src="$here/echo_client.c"
outdir="$here/../bin"
out="$outdir/echo_client"
mkdir -p "$outdir"
if [[ ! -x "$out" || "$src" -nt "$out" ]]; then
  cc -O2 -Wall -Wextra -std=gnu11 -o "$out.tmp" "$src"
  mv -f "$out.tmp" "$out"
  echo "built $out" >&2
fi

# The minimal C epoll echo server (the native reference).
esrc="$here/../servers/epoll_echo.c"
eout="$outdir/epoll_echo"
if [[ ! -x "$eout" || "$esrc" -nt "$eout" ]]; then
  cc -O2 -Wall -Wextra -std=gnu11 -o "$eout.tmp" "$esrc"
  mv -f "$eout.tmp" "$eout"
  echo "built $eout" >&2
fi

# The UDP echo load generator.
usrc="$here/udp_echo_client.c"
uout="$outdir/udp_echo_client"
if [[ ! -x "$uout" || "$usrc" -nt "$uout" ]]; then
  cc -O2 -Wall -Wextra -std=gnu11 -o "$uout.tmp" "$usrc"
  mv -f "$uout.tmp" "$uout"
  echo "built $uout" >&2
fi

# The broadcast load generator.
bsrc="$here/broadcast_client.c"
bout="$outdir/broadcast_client"
if [[ ! -x "$bout" || "$bsrc" -nt "$bout" ]]; then
  cc -O2 -Wall -Wextra -std=gnu11 -o "$bout.tmp" "$bsrc"
  mv -f "$bout.tmp" "$bout"
  echo "built $bout" >&2
fi

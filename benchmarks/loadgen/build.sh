#!/usr/bin/env bash
# Builds the C echo load generator into benchmarks/bin/echo_client (gitignored).
# Rebuilds only when the binary is missing or older than the source.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
src="$here/echo_client.c"
outdir="$here/../bin"
out="$outdir/echo_client"
mkdir -p "$outdir"
if [[ -x "$out" && ! "$src" -nt "$out" ]]; then
  exit 0
fi
cc -O2 -Wall -Wextra -std=gnu11 -o "$out.tmp" "$src"
mv -f "$out.tmp" "$out"
echo "built $out" >&2

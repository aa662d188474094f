#!/usr/bin/env bash
# Starts the demo server (TCP echo + line chat). Installs and builds what is missing first.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tooling/bootstrap.sh >&2
exec node examples/demo/server.mjs "$@"

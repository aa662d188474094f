#!/usr/bin/env bash
# Installs whatever this checkout lacks, idempotently: Debian packages, pnpm (via corepack),
# node_modules, the native engine and the TypeScript builds. Safe to run again; a second run
# with nothing to do takes seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '\033[1mbootstrap:\033[0m %s\n' "$*"; }

node_ok=$(node -e 'const [a,b]=process.versions.node.split(".").map(Number);process.stdout.write(String(a>20||(a===20&&b>=19)))')
if [ "$node_ok" != "true" ]; then
  echo "bootstrap: Node >= 20.19 is required (found $(node --version))" >&2
  exit 1
fi

# 1. System packages (Debian 12). Only what is missing; apt-get update only when needed.
need=()
for p in build-essential cmake ninja-build pkg-config liburing-dev libuv1-dev libgtest-dev ccache socat iproute2 \
         libclang-dev openssl testssl.sh curl python3 python3-h2 python3-websockets nghttp2-client chromium \
         ngtcp2-client ngtcp2-server python3-venv; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
# The published arm64 engine (tooling/build-prebuilt.mjs) links Debian's arm64 liburing.a and is
# run under qemu-aarch64-static with Debian's arm64 libc (multiarch).
for p in qemu-user-static liburing-dev:arm64 libc6:arm64; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  log "installing Debian packages: ${need[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  dpkg --print-foreign-architectures | grep -qx arm64 || $SUDO dpkg --add-architecture arm64
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# aioquic (PyPI), the QUIC peer of @zero-io/quic's interop tests: a venv outside the clone, beside
# the other caches; wheels only, nothing compiles (packages/quic/test/peers/README.md).
AIOQUIC_VENV="${ZERO_IO_CACHE:-$HOME/.cache/zero-io}/venv-aioquic"
if ! { [ -x "$AIOQUIC_VENV/bin/python" ] && "$AIOQUIC_VENV/bin/python" -c 'import aioquic' 2>/dev/null; }; then
  log "installing aioquic into $AIOQUIC_VENV"
  /usr/bin/python3 -m venv "$AIOQUIC_VENV"
  "$AIOQUIC_VENV/bin/python" -m pip install -q --disable-pip-version-check --no-input 'aioquic==1.7.2'
fi

# Rust (quiche and BoringSSL are built by cargo from crates.io; Debian 12's rustc is too old).
export PATH="$HOME/.cargo/bin:$PATH"
if ! cargo --version >/dev/null 2>&1; then
  echo "bootstrap: cargo not found; install Rust >= 1.88 with rustup (https://rustup.rs)" >&2
  exit 1
fi

# 2. pnpm through corepack (the version pinned in package.json "packageManager").
export COREPACK_ENABLE_DOWNLOAD_PROMPT=0
# Corepack bundled with some Node 20 releases carries stale npm signing keys and refuses current
# pnpm releases ("No compatible signature found"); integrity is still checked by npm's registry.
export COREPACK_INTEGRITY_KEYS=0
if ! pnpm --version >/dev/null 2>&1; then
  log "enabling pnpm via corepack"
  if command -v corepack >/dev/null 2>&1; then
    corepack enable pnpm 2>/dev/null || corepack enable --install-directory "$HOME/.local/bin" pnpm
    export PATH="$HOME/.local/bin:$PATH"
  fi
  if ! pnpm --version >/dev/null 2>&1; then
    log "corepack unavailable: installing pnpm with npm"
    npm install -g "pnpm@$(node -p 'require("./package.json").packageManager.split("@")[1]')" >/dev/null
  fi
fi

# 3. JS dependencies (lockfile is authoritative in CI).
if [ ! -d node_modules/.pnpm ] || [ pnpm-lock.yaml -nt node_modules/.modules.yaml ]; then
  log "installing node_modules"
  if [ -n "${CI:-}" ]; then pnpm install --frozen-lockfile --reporter=append-only; else pnpm install --reporter=append-only; fi
fi

# 4. Native engine (ccache outside the clone) and TypeScript packages.
log "building the native engine"
node tooling/build-native.mjs
# The engines npm users get: zig + cargo-zigbuild for glibc 2.28 on x86_64 and aarch64, each
# checked against the glibc floor (packages/core-linux-*-gnu; caches outside the clone).
log "building the published engines (glibc 2.28, x64 and arm64)"
node tooling/build-prebuilt.mjs --arch all
log "building TypeScript packages"
pnpm exec turbo run build --output-logs=errors-only
log "ready"

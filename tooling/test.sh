#!/usr/bin/env bash
# The whole test suite: bootstrap, native GoogleTest suite (ctest), then every package's vitest
# suite (unit + real-socket + interop + README examples). Prints one closing line
# "tests: N passed, M failed".
set -uo pipefail
cd "$(dirname "$0")/.."
bash tooling/bootstrap.sh || { echo "tests: 0 passed, 1 failed"; exit 1; }
export COREPACK_ENABLE_DOWNLOAD_PROMPT=0 COREPACK_INTEGRITY_KEYS=0 PATH="$HOME/.local/bin:$PATH"
mkdir -p test-results
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

echo "== native unit tests (GoogleTest) =="
ctest --test-dir native/build --output-on-failure --output-junit "$PWD/test-results/native.xml" -j2 >test-results/ctest.log 2>&1
native_rc=$?
tail -n 5 test-results/ctest.log

echo "== TypeScript tests (vitest) =="
pnpm exec vitest run --reporter=default --reporter=json --outputFile=test-results/vitest.json
vitest_rc=$?

node tooling/summarize-tests.mjs test-results/native.xml test-results/vitest.json
sum_rc=$?
if [ $native_rc -ne 0 ] || [ $vitest_rc -ne 0 ] || [ $sum_rc -ne 0 ]; then exit 1; fi

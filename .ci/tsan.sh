#!/usr/bin/env bash
# .ci/tsan.sh [DIR]: builds the library and the multi-threaded tests with
# ThreadSanitizer (clang, else gcc) in DIR/build-tsan (DIR defaults to the
# repository) and runs them: all of test-procs (its thread races) and the
# thread cases of test-crash (/crash/threads: threads of one process racing
# alloc/calloc/realloc/free; /crash/threads-kill: the same while lock
# holders in other processes are SIGKILLed, so the threads meet a dead
# owner and repair); the lock's own thread cases (/lock/no-starvation,
# /lock/threads-first-lock, /lock/kill-stress). Every TAP "ok" counts as
# passed, every "not ok" and
# every program that exits nonzero (TSan exits 66 when it reported a race)
# as failed. Ends with `STEP tsan: N passed, M failed`; exits nonzero on any
# failure. Suppressions, each with its reason: .ci/tsan.supp.
#
# Needs (Debian 12): clang libclang-rt-14-dev (or gcc with libtsan2), meson,
# ninja-build, libglib2.0-dev.
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO=$(pwd)
OUT=$(realpath -m "${1:-$REPO}")
BUILD=$OUT/build-tsan
passed=0
failed=0

finish() {
  echo "STEP tsan: $passed passed, $failed failed"
  [ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
  exit
}

CC=${TSAN_CC:-}
if [ -z "$CC" ]; then
  if command -v clang >/dev/null; then CC=clang; else CC=gcc; fi
fi
mkdir -p "$OUT"
setup=(-Db_sanitize=thread -Db_lundef=false -Dbenchmarks=disabled
  -Dexamples=disabled -Dtool=disabled -Dfuzz=disabled)
if [ -f "$BUILD/meson-private/coredata.dat" ]; then
  CC=$CC meson setup --reconfigure "$BUILD" "${setup[@]}" >"$OUT/tsan-setup.log" 2>&1
else
  CC=$CC meson setup "$BUILD" "${setup[@]}" >"$OUT/tsan-setup.log" 2>&1
fi
rc=$?
[ "$rc" -eq 0 ] && {
  ninja -C "$BUILD" test/test-procs test/test-crash test/test-lock test/test-lockfault >>"$OUT/tsan-setup.log" 2>&1
  rc=$?
}
if [ "$rc" -ne 0 ]; then
  tail -n 40 "$OUT/tsan-setup.log"
  echo "tsan: build with CC=$CC failed"
  failed=1
  finish
fi
echo "tsan: built with CC=$CC in $BUILD"

# exitcode=66: a program that raced fails even if its own checks passed.
export TSAN_OPTIONS="halt_on_error=0 exitcode=66 second_deadlock_stack=1 history_size=4 print_suppressions=1 suppressions=$REPO/.ci/tsan.supp ${TSAN_OPTIONS:-}"
export LD_LIBRARY_PATH=$BUILD/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}

# run PROGRAM PATTERN: runs each test case of PROGRAM whose path matches the
# extended regex PATTERN as its own process (so one failing case does not
# hide the others), under TAP; counts the results and shows TSan's reports.
run() {
  local prog=$1 pattern=$2 path log rc ok notok races arch
  arch=()
  # setarch -R: TSan's shadow memory wants a non-randomised address space on
  # some kernels; harmless elsewhere.
  setarch "$(uname -m)" -R true 2>/dev/null && arch=(setarch "$(uname -m)" -R)
  for path in $("$prog" -l 2>/dev/null | grep -E "^/" | grep -E "$pattern"); do
    log=$BUILD/tsan$(echo "$path" | tr / -).log
    timeout --kill-after=10 900 "${arch[@]}" "$prog" --tap -p "$path" >"$log" 2>&1
    rc=$?
    ok=$(grep -c -E '^ok [0-9]+' "$log")
    notok=$(grep -c -E '^not ok [0-9]+' "$log")
    races=$(grep -c 'WARNING: ThreadSanitizer' "$log")
    echo "tsan: $path: $ok ok, $notok not ok, $races TSan reports, exit status $rc"
    if [ "$races" -gt 0 ]; then
      awk '/WARNING: ThreadSanitizer/,/^SUMMARY: ThreadSanitizer/' "$log" | head -n 150
    fi
    passed=$((passed + ok))
    failed=$((failed + notok))
    if [ "$rc" -ne 0 ] || [ "$ok" -eq 0 ]; then
      passed=$((passed - ok)) # a case in a program that failed did not pass
      [ "$notok" -eq 0 ] && failed=$((failed + 1))
      echo "tsan: $path: FAILED (exit status $rc); the end of its output:"
      tail -n 40 "$log"
    fi
  done
}

run "$BUILD/test/test-procs" .
run "$BUILD/test/test-crash" '^/crash/threads'
run "$BUILD/test/test-lock" '^/lock/(no-starvation|reentry|dead-owner|waiter-sleeps)'
run "$BUILD/test/test-lockfault" '^/lock/(threads-first-lock|kill-stress)'
finish

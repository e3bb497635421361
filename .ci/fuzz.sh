#!/usr/bin/env bash
# .ci/fuzz.sh [DIR]: builds the libFuzzer target (fuzz/fuzz-ops.c) with clang
# under AddressSanitizer + UBSan in DIR/build-fuzz (DIR defaults to the
# repository), runs it for FUZZ_SECONDS (default 60) from an empty corpus,
# and reports the executions and the coverage from libFuzzer's final stats.
# Ends with `STEP fuzz: N passed, M failed` (the build and the run are one
# check each); exits nonzero when either failed.
#
# Needs (Debian 12): clang libclang-rt-14-dev meson ninja-build.
# A crash leaves its input in DIR/build-fuzz/fuzz-artifacts/; replay it with
#   UBSAN_OPTIONS=halt_on_error=1 DIR/build-fuzz/fuzz/fuzz-ops \
#     DIR/build-fuzz/fuzz-artifacts/crash-...
# FUZZ_SEED=N fixes libFuzzer's seed (else it picks one and prints it).
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO=$(pwd)
OUT=$(realpath -m "${1:-$REPO}")
BUILD=$OUT/build-fuzz
SECS=${FUZZ_SECONDS:-60}
passed=0
failed=0

finish() {
  echo "STEP fuzz: $passed passed, $failed failed"
  [ "$failed" -eq 0 ]
  exit
}

if ! command -v clang >/dev/null; then
  echo "fuzz: clang not found (apt-get install clang libclang-rt-14-dev)"
  failed=2
  finish
fi

mkdir -p "$OUT"
setup=(-Dfuzz=enabled -Db_sanitize=address,undefined -Db_lundef=false
  -Dtests=disabled -Dbenchmarks=disabled -Dexamples=disabled -Dtool=disabled)
if [ -f "$BUILD/meson-private/coredata.dat" ]; then
  CC=clang meson setup --reconfigure "$BUILD" "${setup[@]}" >"$OUT/fuzz-setup.log" 2>&1
else
  CC=clang meson setup "$BUILD" "${setup[@]}" >"$OUT/fuzz-setup.log" 2>&1
fi
rc=$?
[ "$rc" -eq 0 ] && { ninja -C "$BUILD" fuzz/fuzz-ops >>"$OUT/fuzz-setup.log" 2>&1; rc=$?; }
if [ "$rc" -ne 0 ]; then
  tail -n 40 "$OUT/fuzz-setup.log"
  echo "fuzz: build failed"
  failed=2 # the build, and the run that could not happen
  finish
fi
passed=$((passed + 1))
echo "fuzz: built $BUILD/fuzz/fuzz-ops"

CORPUS=$BUILD/fuzz-corpus
ART=$BUILD/fuzz-artifacts
LOG=$BUILD/fuzz-run.log
rm -rf "$CORPUS" "$ART"
mkdir -p "$CORPUS" "$ART"
args=(-max_total_time="$SECS" -print_final_stats=1 -timeout=20
  -rss_limit_mb=2048 -artifact_prefix="$ART/")
[ -n "${FUZZ_SEED:-}" ] && args+=(-seed="$FUZZ_SEED")

# UBSan stops at the first report (by default it prints and goes on), so
# undefined behaviour counts as a crash; a scribbled heap's misaligned
# load is exactly what the target is there to find.
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
echo "fuzz: running for $SECS s: fuzz-ops ${args[*]} $CORPUS"
"$BUILD/fuzz/fuzz-ops" "${args[@]}" "$CORPUS" >"$LOG" 2>&1 &
pid=$!
wait "$pid"
rc=$?
# The target names its heaps after its pid; a crash leaves the names behind.
rm -f "/dev/shm/shmheap-fuzz-$pid" "/dev/shm/shmheap-fuzz-$pid-b" \
  "/dev/shm/shmheap-fuzz-$pid-g"

grep -m1 -E '^INFO: Seed:' "$LOG"
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$LOG" | tail -n1)
speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$LOG" | tail -n1)
cov=$(grep -E '^#[0-9]+.*cov: ' "$LOG" | tail -n1 |
  sed -E 's/.*(cov: [0-9]+ ft: [0-9]+ corp: [0-9]+\/[0-9]+[a-zA-Z]*).*/\1/')
crashes=$(find "$ART" -type f | wc -l)
echo "fuzz: ${execs:-?} executions (${speed:-?}/s) in $SECS s; final ${cov:-coverage unknown}; exit status $rc; $crashes crashing inputs"

if [ "$rc" -eq 0 ] && [ "$crashes" -eq 0 ] && [ -n "$execs" ]; then
  passed=$((passed + 1))
else
  failed=$((failed + 1))
  echo "fuzz: FAILED; the end of libFuzzer's output:"
  grep -v -E '^#[0-9]+[[:space:]]+(NEW|REDUCE|pulse|RELOAD)' "$LOG" | tail -n 80
  for f in "$ART"/*; do
    [ -f "$f" ] || continue
    echo "fuzz: crashing input $f (base64 $(base64 -w0 "$f"))"
    echo "fuzz: replay: UBSAN_OPTIONS=$UBSAN_OPTIONS $BUILD/fuzz/fuzz-ops $f"
  done
fi
finish

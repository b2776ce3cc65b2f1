#!/usr/bin/env bash
# Builds the libFuzzer harnesses (tests/fuzz/fuzz_<target>.cpp) with clang, ASan and UBSan, and runs
# each for a bounded time on its seed corpus (tests/fuzz/corpus/<target>/, plus the inputs that once
# crashed it, tests/fixtures/fuzz/<target>/). Fails if any harness
# crashes, leaks, hits undefined behaviour, times out on one input or runs out of memory; the input
# that did it is kept in BUILD_DIR/fuzz/findings/<target>/. docs/testing.md describes the harnesses.
#
# Usage: scripts/fuzz.sh [BUILD_DIR] [SECONDS] [TARGET...]
#   BUILD_DIR  build folder (default build-fuzz; scripts/test.sh passes its sanitizer folder)
#   SECONDS    time per harness (default 30; or $UNIPELT_FUZZ_SECONDS)
#   TARGET     only these harnesses (e.g. safetensors tokenizer); default: every tests/fuzz/fuzz_*.cpp
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="${1:-build-fuzz}"
SECONDS_EACH="${2:-${UNIPELT_FUZZ_SECONDS:-30}}"
shift $(( $# > 2 ? 2 : $# ))
case "$SECONDS_EACH" in ''|*[!0-9]*) echo "fuzz.sh: SECONDS must be a whole number, got '$SECONDS_EACH'" >&2; exit 2 ;; esac

command -v clang++ >/dev/null 2>&1 || { echo "fuzz.sh: clang++ not found; run scripts/install-deps.sh" >&2; exit 1; }
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DUNIPELT_CUDA=OFF -DUNIPELT_FUZZ=ON \
      -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ >/dev/null
cmake --build "$BUILD_DIR" -j"$(nproc)" --target fuzzers

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for f in tests/fuzz/fuzz_*.cpp; do t="${f##*/fuzz_}"; targets+=("${t%.cpp}"); done
fi

# Leaks are findings too; a single input may take at most 10 s and 2 GiB (a parser that asks for more
# memory than the file describes is a finding). Each harness reads its seeds and adds what it finds
# to a scratch copy, so the committed corpus stays as it is.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
failed=()
for t in "${targets[@]}"; do
  bin="$BUILD_DIR/fuzz/fuzz_$t"
  seeds="tests/fuzz/corpus/$t"
  [ -x "$bin" ] || { echo "fuzz.sh: no harness $bin (is there a tests/fuzz/fuzz_$t.cpp?)" >&2; failed+=("$t"); continue; }
  [ -d "$seeds" ] || { echo "fuzz.sh: no seed corpus $seeds" >&2; failed+=("$t"); continue; }
  work="$BUILD_DIR/fuzz/corpus-work/$t" findings="$BUILD_DIR/fuzz/findings/$t"
  mkdir -p "$work" "$findings"
  start=$(date +%s)
  rc=0
  # Inputs that once crashed a harness (tests/fixtures/fuzz/<target>/) are replayed first, as seeds.
  found=()
  [ -d "tests/fixtures/fuzz/$t" ] && found=("tests/fixtures/fuzz/$t")
  "$bin" "$work" "$seeds" ${found[@]+"${found[@]}"} -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 \
         -artifact_prefix="$findings/" -print_final_stats=1 >"$BUILD_DIR/fuzz/$t.log" 2>&1 || rc=$?
  runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$BUILD_DIR/fuzz/$t.log" | tail -1)"
  cov="$(grep -o 'cov: [0-9]*' "$BUILD_DIR/fuzz/$t.log" | tail -1 || true)"
  if [ "$rc" -eq 0 ]; then
    echo "fuzz $t: ok, ${runs:-?} inputs in $(( $(date +%s) - start )) s (${cov:-cov: ?}), corpus $(ls "$work" | wc -l) files"
  else
    echo "fuzz $t: FAILED (exit $rc) after $(( $(date +%s) - start )) s; input kept in $findings/, log $BUILD_DIR/fuzz/$t.log:"
    grep -E 'ERROR|SUMMARY|error message|runtime error|==[0-9]+==' "$BUILD_DIR/fuzz/$t.log" | head -20 || true
    failed+=("$t")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz.sh: ${#failed[@]} harness(es) failed: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz.sh: ${#targets[@]} harnesses, ${SECONDS_EACH} s each, no findings"

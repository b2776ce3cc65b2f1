#!/usr/bin/env bash
# The README's test command (and CI's, through .ci/run): installs the dependencies, then runs four
# stages, printing each one's time:
#   1. build     configure and build (Release) in BUILD_DIR
#   2. suite     the whole test suite through ctest
#   3. sanitize  build (clang, CPU only) and run the suite again under AddressSanitizer and
#                UndefinedBehaviorSanitizer, in BUILD_DIR-sanitize (any finding fails the test)
#   4. fuzz      every libFuzzer harness for $UNIPELT_FUZZ_SECONDS (default 30) s, same folder
# docs/testing.md describes stages 3 and 4.
# Usage: scripts/test.sh [build-dir]   (default: build)
#   UNIPELT_SANITIZE=0 skips stages 3 and 4 (a quick local run; CI runs all four).
#   UNIPELT_CMAKE_ARGS adds configure arguments to stage 1, e.g. "-DUNIPELT_CUDA=OFF" on a shared
#   machine without a GPU (the CUDA backend's compile is the longest part of stage 1).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="${1:-build}"
SAN_DIR="$BUILD_DIR-sanitize"
JOBS="$(nproc)"

TIMES=()
START=$SECONDS
report() {
  local t
  for t in ${TIMES[@]+"${TIMES[@]}"}; do echo "== test.sh: $t"; done
  echo "== test.sh: total $((SECONDS - START)) s"
}
trap report EXIT
stage() {  # stage NAME COMMAND...: runs COMMAND, records how long it took
  local name="$1" t0=$SECONDS
  shift
  echo "== test.sh: stage $name"
  "$@"
  TIMES+=("$(printf '%-9s %5d s' "$name" $((SECONDS - t0)))")
}

scripts/install-deps.sh
build() {
  # shellcheck disable=SC2086  # UNIPELT_CMAKE_ARGS is a list of arguments
  cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release ${UNIPELT_CMAKE_ARGS:-}
  cmake --build "$BUILD_DIR" -j"$JOBS"
}
stage build build
stage suite ctest --test-dir "$BUILD_DIR" --output-on-failure -j"$JOBS"

if [ "${UNIPELT_SANITIZE:-1}" = 0 ]; then
  echo "== test.sh: UNIPELT_SANITIZE=0: sanitizer and fuzz stages skipped"
  exit 0
fi
sanitize() {
  # Without MPI: OpenMPI's own start-up allocations read as leaks to LeakSanitizer; stage 2 ran the
  # MPI test on the normal build.
  cmake -S . -B "$SAN_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DUNIPELT_CUDA=OFF -DUNIPELT_MPI=OFF -DUNIPELT_FUZZ=ON \
        -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++
  cmake --build "$SAN_DIR" -j"$JOBS" --target unipelt_tests fuzzers \
        example_gated_lora_gradcheck example_train_tiny_gated example_method_costs bench  # bench: bench_smoke runs it
  # The shell tests (fetch_data, layers) run no compiled code: stage 2 covered them.
  ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}" UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1}" \
    ctest --test-dir "$SAN_DIR" --output-on-failure -j"$JOBS" -E '^(fetch_data|layers)$'
}
stage sanitize sanitize
stage fuzz scripts/fuzz.sh "$SAN_DIR" "${UNIPELT_FUZZ_SECONDS:-30}"

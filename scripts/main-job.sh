#!/usr/bin/env bash
# The README's first command. On a fresh Debian 12 machine: installs the build dependencies, builds
# unipelt (Release), puts SST-2 and a small BERT into the data cache, fine-tunes UniPELT (APL) on SST-2
# with the paper's low-resource protocol (K=100 training examples, data seed 111) and prints the test
# metric (accuracy on the GLUE SST-2 dev set). About 10 minutes on 2 cores.
#
# Usage: scripts/main-job.sh [extra 'unipelt train' flags, e.g. --epochs 5 --device cuda]
# Environment:
#   UNIPELT_CACHE   data cache (default ~/.cache/unipelt)
#   UNIPELT_MIRROR  local data mirror (default ../shared/data); used when it exists, else the internet
#   UNIPELT_MODEL   model to fetch and fine-tune (default: bert-mini-mlm from a mirror,
#                   gaunernst/bert-mini-uncased from the Hugging Face hub)
# Rerunning is cheap: the build is incremental, present data is verified rather than fetched again,
# an interrupted training run resumes (--resume) and a finished one is reported, not redone.
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE="${UNIPELT_CACHE:-${HOME:-}/.cache/unipelt}"
MIRROR="${UNIPELT_MIRROR:-../shared/data}"
OUT="runs/sst2-unipelt-apl-k100"
JOBS="$(nproc 2>/dev/null || echo 2)"
STARTED=$SECONDS

step() { printf '\n== main-job: %s\n' "$*"; }

step "1/4 dependencies (scripts/install-deps.sh)"
scripts/install-deps.sh

step "2/4 build (Release, $JOBS jobs)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j"$JOBS" --target unipelt

step "3/4 data: SST-2 and a BERT model into $CACHE"
fetch=(scripts/fetch-data.sh --cache "$CACHE" --tasks SST-2)
if [ -d "$MIRROR" ]; then
  fetch+=(--mirror "$MIRROR")
  MODEL="${UNIPELT_MODEL:-bert-mini-mlm}"
else
  echo "main-job: no data mirror at $MIRROR: downloading from the internet"
  fetch+=(--no-mirror)
  MODEL="${UNIPELT_MODEL:-gaunernst/bert-mini-uncased}"
fi
"${fetch[@]}" --model "$MODEL"

step "4/4 train: UniPELT (APL) on SST-2, K=100, data seed 111, model $MODEL -> $OUT"
# Debian's OpenBLAS picks its kernels by CPU model and falls back to slow generic ones on models it
# does not know (common in VMs; unipelt then prints a note). Choose them from the CPU flags instead,
# unless OPENBLAS_CORETYPE is set already. Same results, 2-3x less CPU time where it matters.
cpu_has() { grep -m1 '^flags' /proc/cpuinfo 2>/dev/null | grep -qw -- "$1"; }
if [ -z "${OPENBLAS_CORETYPE:-}" ]; then
  if cpu_has avx512f && cpu_has avx512dq && cpu_has avx512bw && cpu_has avx512vl; then
    export OPENBLAS_CORETYPE=SkylakeX
  elif cpu_has avx2 && cpu_has fma; then
    export OPENBLAS_CORETYPE=Haswell
  fi
  [ -z "${OPENBLAS_CORETYPE:-}" ] || echo "main-job: OPENBLAS_CORETYPE=$OPENBLAS_CORETYPE (from the CPU flags; set it to override)"
fi
if [ -f "$OUT/results.json" ]; then
  echo "main-job: $OUT already holds a finished run (results.json); not training again (delete $OUT to retrain)"
  [ $# -eq 0 ] || echo "main-job: note: the extra arguments '$*' were not used"
else
  rc=0
  build/unipelt train --task SST-2 --method unipelt-apl --k 100 --data-seed 111 \
    --model "$CACHE/models/$MODEL" --data "$CACHE" --out "$OUT" --resume "$@" || rc=$?
  if [ "$rc" -ne 0 ]; then
    echo "main-job: training stopped (exit status $rc); rerun scripts/main-job.sh with the same arguments" \
         "to resume after the last finished epoch (state in $OUT)" >&2
    exit "$rc"
  fi
fi

# The test metric, read back from results.json (nlohmann's 2-space dump: "test": { ..., "main": x }),
# printed like unipelt prints it.
main="$(awk '/^  "test": \{/ { t = 1; next } t && /^  \}/ { exit } t && /"main":/ { v = $2; gsub(/[",]/, "", v); printf "%.6g\n", v }' \
        "$OUT/results.json" 2>/dev/null || true)"
if [ -z "$main" ]; then
  echo "main-job: error: no test metric in $OUT/results.json" >&2
  exit 1
fi
echo
echo "main-job: finished in $((SECONDS - STARTED)) s; results in $OUT/results.json"
echo "test accuracy $main"

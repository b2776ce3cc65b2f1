#!/usr/bin/env bash
# `bench` runs end to end and its GEMM bound is consistent: for `bench train` (a random-weight tiny BERT,
# no data needed) and `bench eval` (SST-2 dev on bert-mini from the data mirror; skipped with a message
# when it is absent), every preset's GEMM bound is positive, its GFLOP positive, and the measured wall
# time is at least the bound (the products alone cannot take longer than the whole run that contains
# them, so a bound above the wall time means the log or the replay is wrong). It also runs `bench train`
# with --alternate-threads and --gemm-detail and checks their output.
# Usage: tests/test_bench.sh BENCH_EXE SOURCE_DIR   (the data mirror: $UNIPELT_MIRROR or $UNIPELT_DATA,
# else SOURCE_DIR/../shared/data, as tests/test_util.h finds it)
set -euo pipefail
bench=$1
data=${UNIPELT_MIRROR:-${UNIPELT_DATA:-$2/../shared/data}}
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
failures=0

# check NAME FILE WALL_COL GEMM_COL GFLOP_COL PRESET...: the preset rows of a bench table
check() {
  local name=$1 file=$2 wall=$3 gemm=$4 gflop=$5
  shift 5
  for preset in "$@"; do
    row=$(awk -v p="$preset" '$1 == p' "$file")
    if [ -z "$row" ]; then
      echo "FAIL: $name: no row for $preset in:" >&2; cat "$file" >&2; failures=$((failures + 1)); continue
    fi
    if ! echo "$row" | awk -v w="$wall" -v g="$gemm" -v f="$gflop" '{ exit !($g > 0 && $f > 0 && $w >= $g) }'; then
      echo "FAIL: $name: $preset: want gemm > 0, GFLOP > 0 and wall >= gemm (columns $wall, $gemm, $gflop): $row" >&2
      failures=$((failures + 1))
    else
      echo "ok: $name: $row"
    fi
  done
}

"$bench" train --synthetic tiny --methods lora,finetune --threads 1 --warmup 1 --steps 2 --batch 4 --seq-len 32 \
  > "$scratch/train.txt"
# preset ms/step best ms cpu ms ex/s peak step trainable optim gemm-ms step/gemm: the bound is column 10;
# train prints no GFLOP column, so the ex/s column stands in for "positive".
check "bench train" "$scratch/train.txt" 2 10 5 lora finetune

# --alternate-threads: one line per preset with the pairs' ratio; --gemm-detail: the costliest products,
# whose times add up to at most the whole bound (they are a part of it; both are printed rounded: the
# bound to 0.1 ms, each row to 0.01 ms).
"$bench" train --synthetic tiny --methods lora --threads 1 --alternate-threads 2 --warmup 1 --steps 3 --batch 4 \
  --seq-len 32 --gemm-detail 4 --json "$scratch/alt.json" > "$scratch/alt.txt"
if grep -Eq '^  alternated, 3 pairs: 2 threads [0-9.]+ ms/step .*x the 1-thread step per pair' "$scratch/alt.txt" &&
   grep -q '"ratio_per_pair"' "$scratch/alt.json"; then
  echo "ok: bench train --alternate-threads: $(grep alternated "$scratch/alt.txt")"
else
  echo "FAIL: bench train --alternate-threads: no 'alternated, 3 pairs' line or no ratio_per_pair:" >&2
  cat "$scratch/alt.txt" >&2; failures=$((failures + 1))
fi
# --alternate-threads with --device cuda: refused with status 1 and a message, on any machine.
if "$bench" train --synthetic tiny --methods lora --device cuda --alternate-threads 2 --steps 1 \
     > "$scratch/alt_cuda.txt" 2>&1; then
  echo "FAIL: bench train --device cuda --alternate-threads 2 exited 0:" >&2
  cat "$scratch/alt_cuda.txt" >&2; failures=$((failures + 1))
elif grep -q -- '--alternate-threads sets CPU threads: it needs --device cpu' "$scratch/alt_cuda.txt"; then
  echo "ok: bench train --device cuda --alternate-threads: refused ($(cat "$scratch/alt_cuda.txt"))"
else
  echo "FAIL: bench train --device cuda --alternate-threads 2: not the expected message:" >&2
  cat "$scratch/alt_cuda.txt" >&2; failures=$((failures + 1))
fi
if awk '$1 == "lora" { bound = $10 } $1 ~ /^[NT][NT]$/ { rows++; sum += $9 }
        END { exit !(rows >= 1 && rows <= 4 && bound > 0 && sum <= bound + 0.05 + 0.005 * rows) }' "$scratch/alt.txt"; then
  echo "ok: bench train --gemm-detail: the listed products take at most the bound"
else
  echo "FAIL: bench train --gemm-detail: want 1-4 product rows whose ms add up to at most the bound:" >&2
  cat "$scratch/alt.txt" >&2; failures=$((failures + 1))
fi

if [ -f "$data/models/bert-mini-mlm/config.json" ] && [ -d "$data/glue/SST-2" ]; then
  "$bench" eval --model "$data/models/bert-mini-mlm" --data "$data" --task SST-2 --methods lora,unipelt-apl \
    --threads 1 > "$scratch/eval.txt"
  # preset wall-s cpu-s ex/s gemm-s wall/gemm GFLOP
  check "bench eval" "$scratch/eval.txt" 2 5 7 lora unipelt-apl
else
  echo "bench eval: skipped: no bert-mini-mlm model or SST-2 data under $data (set UNIPELT_MIRROR)"
fi
[ "$failures" -eq 0 ] || { echo "$failures failure(s)" >&2; exit 1; }
echo "bench checks passed"

#!/bin/bash
# Every CPU number of docs/benchmarks.md's section "Threads, the SST-2 epoch and evaluation (idle machine)",
# ours and PyTorch alternated, ROUNDS rounds (default 3); then bench/summarize.py prints the tables from OUT.
#
#   bench/compare.sh [BUILD_DIR] [OUT_DIR] [ROUNDS]     (defaults: build, bench-results, 3)
#   METHODS=lora,unipelt-apl bench/compare.sh ...       (only these presets; default all eight)
#
# Run it on an idle machine (nothing else runnable: check `uptime` and top first); one round takes
# about 13 minutes on 2 cores. It needs the model and GLUE data (../shared/data or $UNIPELT_MIRROR) and
# Debian's python3-torch for the PyTorch side. Set OPENBLAS_CORETYPE first where OpenBLAS picks slow
# kernels (`bench train` prints a hint). Each round:
#   train  `bench train` and pytorch_bench.py train, 1 and 2 threads: all eight presets, 16 x 128; then
#          `bench train --threads 1 --alternate-threads 2` (1- and 2-thread steps back to back)
#   epoch  `bench epoch` (1 and 2 threads) and pytorch_bench.py epoch on the same SST-2 batches, padded
#          per batch and to 128 (1 thread; padded per batch at 2 threads too in round 1)
#   eval   `bench eval` on SST-2 and MRPC dev, 1 and 2 threads
set -euo pipefail
BUILD=${1:-build}
OUT=${2:-bench-results}
ROUNDS=${3:-3}
DATA=${UNIPELT_MIRROR:-../shared/data}
MODEL=$DATA/models/bert-mini-mlm
PY=${PYTHON:-/usr/bin/python3}
[ -x "$BUILD/bench" ] || { echo "compare.sh: no $BUILD/bench (cmake --build $BUILD --target bench)" >&2; exit 2; }
[ -f "$MODEL/config.json" ] || { echo "compare.sh: no model at $MODEL (set UNIPELT_MIRROR)" >&2; exit 2; }
"$PY" -c "import torch" 2>/dev/null || { echo "compare.sh: $PY has no torch (apt-get install python3-torch)" >&2; exit 2; }
mkdir -p "$OUT"
only=()
[ -z "${METHODS:-}" ] || only=(--methods "$METHODS")
bench=("$BUILD/bench")
torch=("$PY" bench/pytorch_bench.py)
log() { echo "[$(date -u +%H:%M:%S) load $(cut -d' ' -f1 /proc/loadavg)] $*" | tee -a "$OUT/log.txt"; }
# run NAME COMMAND...: stdout and stderr to OUT/NAME.txt, results to OUT/NAME.json
run() {
  local name=$1; shift
  "$@" "${only[@]}" --json "$OUT/$name.json" > "$OUT/$name.txt" 2>&1 || { echo "compare.sh: $name failed, see $OUT/$name.txt" >&2; exit 1; }
}

log "start: $BUILD/bench, OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}"
"${bench[@]}" epoch --model "$MODEL" --data "$DATA" --task SST-2 --k 1000 --methods lora --threads 1 \
  --dump-batches "$OUT/sst2_epoch.json" > "$OUT/dump.txt" 2>&1
for r in $(seq 1 "$ROUNDS"); do
  log "round $r/$ROUNDS: train"
  for t in 1 2; do
    run "ours_train_t${t}_r$r" "${bench[@]}" train --model "$MODEL" --threads $t --warmup 2 --steps 8
    run "torch_train_t${t}_r$r" "${torch[@]}" train --model "$MODEL" --threads $t --warmup 2 --steps 8
  done
  run "ours_train_alt_r$r" "${bench[@]}" train --model "$MODEL" --threads 1 --alternate-threads 2 --warmup 2 --steps 10
  log "round $r/$ROUNDS: epoch"
  run "ours_epoch_t1_r$r" "${bench[@]}" epoch --model "$MODEL" --data "$DATA" --task SST-2 --k 1000 --threads 1
  run "torch_epoch_batch_t1_r$r" "${torch[@]}" epoch --model "$MODEL" --batches "$OUT/sst2_epoch.json" --pad batch --threads 1
  run "ours_epoch_t2_r$r" "${bench[@]}" epoch --model "$MODEL" --data "$DATA" --task SST-2 --k 1000 --threads 2
  run "torch_epoch_128_t1_r$r" "${torch[@]}" epoch --model "$MODEL" --batches "$OUT/sst2_epoch.json" --pad 128 --threads 1
  if [ "$r" = 1 ]; then
    run "torch_epoch_batch_t2_r$r" "${torch[@]}" epoch --model "$MODEL" --batches "$OUT/sst2_epoch.json" --pad batch --threads 2
  fi
  log "round $r/$ROUNDS: eval"
  for t in 1 2; do
    for task in SST-2 MRPC; do
      run "ours_eval_${task}_t${t}_r$r" "${bench[@]}" eval --model "$MODEL" --data "$DATA" --task $task --threads $t
    done
  done
done
log "done; tables: $PY bench/summarize.py $OUT"

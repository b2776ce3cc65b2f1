"""The tables of docs/benchmarks.md from the JSON files bench/compare.sh wrote.

    /usr/bin/python3 bench/summarize.py bench-results

Every cell is the median over the rounds of each run's own median (steps of `bench train`, the one
timed epoch or evaluation pass of `bench epoch` / `bench eval`); the per-run values follow each table,
so the spread is visible. Standard library only.
"""

import glob
import json
import os
import statistics
import sys

PRESETS = ["finetune", "bitfit", "adapter", "prefix", "lora", "unipelt-ap", "unipelt-apl", "unipelt-nogate"]


def load(out, pattern):
    """{preset: [value per run]} of every field, from the runs matching pattern (round order)."""
    per_preset = {}
    for path in sorted(glob.glob(os.path.join(out, pattern))):
        with open(path) as f:
            for p in json.load(f)["presets"]:
                for key, value in p.items():
                    per_preset.setdefault(p["method"], {}).setdefault(key, []).append(value)
    return per_preset


def median(runs, preset, key):
    return statistics.median(runs[preset][key]) if preset in runs else None


def cell(value, digits=1):
    return "–" if value is None else f"{value:.{digits}f}"


def spread(runs, preset, key, digits=1):
    return "/".join(f"{v:.{digits}f}" for v in runs.get(preset, {}).get(key, []))


def train_table(out):
    ours = {t: load(out, f"ours_train_t{t}_r*.json") for t in (1, 2)}
    torch = {t: load(out, f"torch_train_t{t}_r*.json") for t in (1, 2)}
    print("Training step, 16 x 128 (ms per step, median wall time; CPU ms = process CPU time, all threads)\n")
    print("| preset | ours 1 t | ours 2 t | 2 t / 1 t | GEMM bound 2 t | step / bound, 2 t | CPU ms 1 t → 2 t "
          "| PyTorch 1 t | PyTorch 2 t | ours 2 t / PyTorch's best |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for p in PRESETS:
        if p not in ours[1] or p not in ours[2]:
            continue
        a, b = median(ours[1], p, "ms_per_step_median"), median(ours[2], p, "ms_per_step_median")
        bound = median(ours[2], p, "gemm_bound_ms")
        c1, c2 = median(ours[1], p, "cpu_ms_per_step_median"), median(ours[2], p, "cpu_ms_per_step_median")
        pt = [median(torch[t], p, "ms_per_step_median") for t in (1, 2)]
        best = min((v for v in pt if v is not None), default=None)
        print(f"| {p} | {cell(a)} | {cell(b)} | {b / a:.2f} | {cell(bound)} | {b / bound:.2f} "
              f"| {c1:.0f} → {c2:.0f} ({(c2 / c1 - 1) * 100:+.0f} %) | {cell(pt[0])} | {cell(pt[1])} "
              f"| {'–' if best is None else f'{b / best:.2f}'} |")
    print("\nPer-run medians, ms (ours 1 t; 2 t; GEMM bound 1 t; 2 t; PyTorch 1 t; 2 t):\n")
    for p in PRESETS:
        print(f"- {p}: {spread(ours[1], p, 'ms_per_step_median')}; {spread(ours[2], p, 'ms_per_step_median')}; "
              f"{spread(ours[1], p, 'gemm_bound_ms')}; {spread(ours[2], p, 'gemm_bound_ms')}; "
              f"{spread(torch[1], p, 'ms_per_step_median')}; {spread(torch[2], p, 'ms_per_step_median')}")


def alternated_table(out):
    """`bench train --threads 1 --alternate-threads 2`: 1- and 2-thread steps back to back in one process."""
    runs = load(out, "ours_train_alt_r*.json")
    if not runs:
        return
    print("\nTraining step, 16 x 128, 1 and 2 threads alternated step by step in one process (ms per step; the\n"
          "ratio is each pair's 2-thread over 1-thread time, median of the pairs, then of the rounds)\n")
    print("| preset | 1 t | 2 t | 2 t / 1 t, per pair | rounds | GEMM bound 2 t | step / bound, 2 t | CPU ms 1 t → 2 t |")
    print("|---|---:|---:|---:|---|---:|---:|---:|")
    for p in PRESETS:
        if p not in runs:
            continue
        alt = runs[p]["alternate"]
        two = statistics.median(a["ms_per_step_median"] for a in alt)
        ratios = [a["ratio_median"] for a in alt]
        bound = statistics.median(a["gemm_bound_ms"] for a in alt)
        c1 = median(runs, p, "cpu_ms_per_step_median")
        c2 = statistics.median(a["cpu_ms_per_step_median"] for a in alt)
        print(f"| {p} | {cell(median(runs, p, 'ms_per_step_median'))} | {cell(two)} "
              f"| {statistics.median(ratios):.2f} | {'/'.join(f'{r:.2f}' for r in ratios)} | {cell(bound)} "
              f"| {two / bound:.2f} | {c1:.0f} → {c2:.0f} ({(c2 / c1 - 1) * 100:+.0f} %) |")


def epoch_table(out):
    ours = {t: load(out, f"ours_epoch_t{t}_r*.json") for t in (1, 2)}
    batch1, batch2 = load(out, "torch_epoch_batch_t1_r*.json"), load(out, "torch_epoch_batch_t2_r*.json")
    to128 = load(out, "torch_epoch_128_t1_r*.json")
    print("\nOne SST-2 epoch, K = 1000 (wall seconds)\n")
    print("| preset | ours 1 t | ours 2 t | PyTorch, padded per batch, 1 t | the same, 2 t | PyTorch, padded to 128, 1 t "
          "| ours 2 t / PyTorch per batch | ours 2 t / PyTorch to 128 |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for p in PRESETS:
        if p not in ours[2]:
            continue
        b = median(ours[2], p, "wall_s_median")
        pb, p128 = median(batch1, p, "wall_s"), median(to128, p, "wall_s")
        print(f"| {p} | {cell(median(ours[1], p, 'wall_s_median'), 2)} | {cell(b, 2)} | {cell(pb, 2)} "
              f"| {cell(median(batch2, p, 'wall_s'), 2)} | {cell(p128, 2)} "
              f"| {cell(None if pb is None else b / pb, 2)} | {cell(None if p128 is None else b / p128, 2)} |")
    print("\nPer run, s (ours 1 t; 2 t; PyTorch per batch; to 128):\n")
    for p in PRESETS:
        print(f"- {p}: {spread(ours[1], p, 'wall_s_median', 2)}; {spread(ours[2], p, 'wall_s_median', 2)}; "
              f"{spread(batch1, p, 'wall_s', 2)}; {spread(to128, p, 'wall_s', 2)}")


def eval_table(out):
    tasks = ["SST-2", "MRPC"]
    runs = {(task, t): load(out, f"ours_eval_{task}_t{t}_r*.json") for task in tasks for t in (1, 2)}
    print("\nEvaluation, examples per second (GLUE dev: SST-2 872 sentences, MRPC 408 pairs)\n")
    print("| preset | SST-2 1 t | SST-2 2 t | MRPC 1 t | MRPC 2 t |")
    print("|---|---:|---:|---:|---:|")
    for p in PRESETS:
        cells = [cell(median(runs[k], p, "examples_per_s"), 0) for k in runs]
        print(f"| {p} | " + " | ".join(cells) + " |")
    print("\nPer run, ex/s (SST-2 1 t; 2 t; MRPC 1 t; 2 t):\n")
    for p in PRESETS:
        print(f"- {p}: " + "; ".join(spread(runs[k], p, "examples_per_s", 0) for k in runs))


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "bench-results"
    if not glob.glob(os.path.join(out, "*.json")):
        sys.exit(f"summarize.py: no results in {out} (run bench/compare.sh first)")
    train_table(out)
    alternated_table(out)
    epoch_table(out)
    eval_table(out)


if __name__ == "__main__":
    main()

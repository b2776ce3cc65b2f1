// `unipelt sweep --scheduler slurm`: the grid as ONE Slurm job array, one array task per grid cell, and
// `unipelt sweep --status`: which cells are finished, running, pending or failed. docs/cluster.md has
// the usage.
//
// A cell is what the local scheduler runs (train/sweep.h): one `unipelt train --resume` run directory
// SWEEP/<task>/<method>/k<K>/seed<S>/. Array task N runs `unipelt sweep --run-cell N` with the sweep's
// own flags, which trains cell N of the grid those flags describe (in the order expand_grid lists it), so
// resuming, results.json and the report work as with the local scheduler. The submission leaves
//
//   SWEEP/slurm/submit-<n>.sbatch   the n-th script submitted (--dry-run prints it instead)
//   SWEEP/slurm/submissions.json    [{"job": "12", "cells": [0, 2], "script": ..., "submitted": ...}]
//   SWEEP/slurm/logs/<job>_<N>.out  each array task's output (the cell's own train.log is in its run dir)
//
// Re-running the same command submits only the cells that have no results.json and are not pending or
// running in Slurm's queue: cancelled, failed and timed-out cells run again, and resume.
#pragma once

#include <cstddef>
#include <filesystem>
#include <iosfwd>
#include <map>
#include <string>
#include <vector>

#include "train/sweep.h"

namespace unipelt {

// The sbatch options of `unipelt sweep --scheduler slurm`; empty or 0: not given (the cluster's default).
struct SlurmOptions {
  std::string partition, time, mem;
  int cpus_per_task = 0, gpus_per_task = 0;
  int array_parallel = 0;                // the %N throttle: at most N array tasks at once
  std::vector<std::string> sbatch_args;  // written as `#SBATCH ARG` lines, in order
};

// The rules, each as "must be RULE, got 'X'" (std::invalid_argument, no flag: the callers name it).
// --time: minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS (sbatch's formats).
void check_slurm_time(const std::string& text);
// --mem: a whole number of megabytes, or with a unit K, M, G or T ("16G").
void check_slurm_memory(const std::string& text);
// --partition: a Slurm name (letters, digits, '_', '-', '.'; several separated by commas).
void check_slurm_partition(const std::string& text);
// --sbatch-arg: an sbatch option ("--qos=high", "-A proj"): starts with '-', one line.
void check_sbatch_arg(const std::string& text);

// The --array value: "0-3", "1,3,5-7", with "%N" when `parallel` > 0 (cells ascending, distinct).
std::string slurm_array_spec(const std::vector<size_t>& cells, int parallel);

// The job script: #SBATCH lines, then `exec unipelt sweep --run-cell $SLURM_ARRAY_TASK_ID FLAGS...`.
// `sweep_flags` are the sweep's flags that describe the grid and every run (sweep_cell_flags).
std::string sbatch_script(const SweepOptions& sweep, const SlurmOptions& slurm, const std::vector<size_t>& cells,
                          const std::vector<std::string>& sweep_flags);
// --tasks ... --methods ... --k ... --data-seeds ... --model DIR --data DIR --out SWEEP (absolute) and the
// training flags: what `--run-cell N` needs to find cell N and train it as the sweep would.
std::vector<std::string> sweep_cell_flags(const SweepOptions& sweep);

// What Slurm says about the sweep's jobs: "<job>_<cell>" -> state ("PENDING", "RUNNING", "CANCELLED",
// "TIMEOUT", ...), from squeue (in the queue) and sacct (finished; empty where accounting is off).
struct SlurmJobStates {
  std::map<std::string, std::string> queued, accounted;
  bool squeue_ran = false, sacct_ran = false;
  bool in_queue(size_t cell, const std::string& job) const;
};
SlurmJobStates query_slurm(const std::vector<std::string>& job_ids);

// SWEEP/slurm/submissions.json (empty when there is none).
struct SlurmSubmission {
  std::string job;
  std::vector<size_t> cells;
  std::string script, submitted;
};
std::vector<SlurmSubmission> read_slurm_submissions(const std::filesystem::path& root);

struct SlurmSubmitResult {
  std::vector<size_t> submitted, finished, queued;  // cell indices
  std::string job;                                  // empty when nothing was submitted
  std::filesystem::path script;
};
// Writes the script and submits the unfinished cells that are not in the queue with `sbatch`
// (std::runtime_error when sbatch is missing or refuses; its message included). Progress goes to `log`.
SlurmSubmitResult submit_sweep_to_slurm(const SweepOptions& sweep, const SlurmOptions& slurm, std::ostream& log);
// The script the submission would write now (for --dry-run): nothing is written or submitted.
std::string dry_run_sweep_script(const SweepOptions& sweep, const SlurmOptions& slurm, std::ostream& log);

// `unipelt sweep --status`: one line per cell of the grid in SWEEP/sweep.json and a summary.
enum class CellState { Finished, Running, Pending, Failed, NotStarted };
struct CellStatus {
  size_t index = 0;
  SweepPoint point;
  std::filesystem::path dir;
  CellState state = CellState::NotStarted;
  std::string detail;  // "job 12_3 RUNNING", "TIMEOUT (job 12_1)", "test acc 91.20", ...
};
std::vector<CellStatus> sweep_status(const std::filesystem::path& root);
std::string render_sweep_status(const std::vector<CellStatus>& cells);
const char* cell_state_name(CellState state);

// Whether a process on this machine holds RUN/.lock (a `unipelt train` running in it). Reads
// /proc/locks: looking does not take the lock, so it cannot get in the way of a run starting.
bool run_directory_busy(const std::filesystem::path& run);

}  // namespace unipelt

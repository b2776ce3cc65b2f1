// `unipelt sweep`: every (task, method, K, data seed) of a grid as a child `unipelt train` process,
// at most `jobs` at a time, resumable. The grid and the manifest are in sweep.cpp, the process
// supervisor in sweep_local.cpp, the Slurm scheduler in sweep_slurm.h; docs/training.md ("Sweeps") and
// docs/cluster.md describe the usage.
//
//   SWEEP/<task>/<method>/k<K>/seed<S>/   one run directory (train/run_dir.h), plus train.log (the
//                                         child's stdout and stderr, appended to on every attempt)
//   SWEEP/sweep.json                      the grid, the training flags and the command line; a rerun
//                                         must use the same model, data and training flags
//   SWEEP/report.md                       the Table-1 report (train/report.h)
//
// Runs with results.json are skipped; others are started with `train ... --resume`, which continues
// an interrupted run from its last finished epoch (or starts a new one).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <iosfwd>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "train/settings.h"

namespace unipelt {

struct SweepGrid {
  std::vector<std::string> tasks;   // GLUE names, any spelling task_info accepts
  std::vector<std::string> methods; // preset names
  std::vector<size_t> ks;           // 0 = all
  std::vector<uint64_t> data_seeds;
};

struct SweepPoint {
  std::string task, method;  // task: the GLUE folder name
  size_t k = 0;
  uint64_t data_seed = 0;
};

// "a, b,,c" -> {"a", "b", "c"}.
std::vector<std::string> split_list(const std::string& csv);
// Validates the names (unknown task or method: std::invalid_argument listing the valid ones) and
// lists the points, task-major in the order given. Duplicates are dropped.
std::vector<SweepPoint> expand_grid(const SweepGrid& grid);

// ROOT/<task>/<method>/k<K>/seed<S>, e.g. sweep/SST-2/unipelt-apl/k100/seed111 (k "all": kall).
std::filesystem::path sweep_run_dir(const std::filesystem::path& root, const SweepPoint& point);

enum class RunState { New, Partial, Finished };
RunState run_state(const std::filesystem::path& run_dir);  // Finished: results.json; Partial: config.json

struct SweepOptions {
  std::filesystem::path binary;  // the unipelt program (the CLI passes /proc/self/exe)
  std::filesystem::path root;    // SWEEP_DIR
  std::string model_dir, data_dir;
  std::vector<std::string> train_flags;  // passed to every `train` after the grid's own flags
  SweepGrid grid;
  int jobs = 1;
  // --threads of every run; -1 (not given): each run gets max(1, CPUs / jobs), so that the runs share the
  // machine. Not part of the manifest: the thread count never changes a result.
  int threads_per_run = -1;
};

// The --threads value each run of the sweep gets.
int sweep_threads_per_run(const SweepOptions& options);

// argv of one child (argv[0] = binary): train --task T --method M --k K --data-seed S --model DIR
// --data DIR --out RUN --resume, then the train flags and --threads (sweep_threads_per_run).
std::vector<std::string> sweep_child_argv(const SweepOptions& options, const SweepPoint& point);

struct SweepSummary {
  size_t total = 0, skipped = 0, finished = 0, failed = 0, interrupted = 0;
  std::vector<std::string> failures;  // "RUN_DIR: exit status N (see RUN_DIR/train.log)"
  bool stopped = false;               // Ctrl-C (SIGINT) reached the sweep
};

// Runs every unfinished grid point (sweep_local.cpp). Progress lines go to `log`. SIGINT (Ctrl-C) stops
// starting new runs and is passed on to the running children, which save their state and exit; the
// sweep waits for them. Children run in their own process group with stdin from /dev/null, and die
// with the sweep if it is killed (die_with_sweep_parent).
SweepSummary run_sweep(const SweepOptions& options, std::ostream& log);

// Called by `unipelt train` at start-up: when started by a sweep (its pid is in the environment), ask
// the kernel to kill this process when the sweep dies, so that no orphan keeps writing into the sweep
// after a `kill -9`. Does nothing otherwise.
void die_with_sweep_parent();

// SWEEP/sweep.json: {"model", "data", "train_flags", "grid", "command"}. check_sweep_manifest throws
// std::runtime_error when the directory already holds a sweep with another model, data or training
// flags (the grid and command may change: a sweep can be extended); write_sweep_manifest records the
// current one (atomically).
nlohmann::json sweep_manifest(const SweepOptions& options, const std::vector<std::string>& command);
void check_sweep_manifest(const std::filesystem::path& root, const nlohmann::json& manifest);
// SWEEP/sweep.json as saved (null when there is none); throws naming the file when it is not valid.
nlohmann::json read_sweep_manifest(const std::filesystem::path& root);
// The grid a manifest records; throws std::runtime_error when its "grid" is not one.
SweepGrid sweep_manifest_grid(const nlohmann::json& manifest);
void write_sweep_manifest(const std::filesystem::path& root, const nlohmann::json& manifest);

}  // namespace unipelt

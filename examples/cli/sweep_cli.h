// `unipelt sweep`'s options, shared by its two files: cmd_sweep.cpp (the grid, the local scheduler, the
// report) and cmd_sweep_cluster.cpp (--scheduler slurm, --status, --run-cell).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "examples/cli/settings_flags.h"
#include "train/sweep.h"
#include "train/sweep_slurm.h"

namespace unipelt::cli {

struct SweepCliOptions {
  std::string tasks, methods, ks = "100", seeds = "111,222,333,444,555";
  std::string model, data, out, report, std_kind = "population";
  int jobs = 1;
  bool report_only = false;
  // training flags given, passed to every `unipelt train`
  std::shared_ptr<SettingValues> passthrough = std::make_shared<SettingValues>();
  // cmd_sweep_cluster.cpp
  std::string scheduler = "local";
  SlurmOptions slurm;
  bool dry_run = false, status = false;
  int run_cell = -1;                       // -1: not given
  std::vector<std::string> slurm_only_given;  // the Slurm-only flags on the command line ("--partition", ...)
  bool jobs_given = false;
};

// The grid and the training flags, checked before anything is written (cmd_sweep.cpp).
SweepOptions sweep_options(const SweepCliOptions& o);
// The report of the runs in OUT, to OUT/report.md (or --report) with its per-task figures beside it,
// and to stdout (cmd_sweep.cpp).
void report_sweep(const SweepCliOptions& o, const std::vector<std::string>& command);

// cmd_sweep_cluster.cpp: the flags, the rules between them, and what they do.
void add_cluster_flags(CLI::App* cmd, const std::shared_ptr<SweepCliOptions>& o);
// Records which of the scheduler flags the command line holds (after parsing).
void note_given_flags(const CLI::App& cmd, SweepCliOptions& o);
// Throws std::invalid_argument (exit 2) for flags that do not go together.
void check_cluster_flags(const SweepCliOptions& o);
// --status: the table on stdout.
void print_sweep_status(const SweepCliOptions& o);
// --run-cell N: trains cell N as the local scheduler would; returns the exit status.
int run_one_cell(const SweepCliOptions& o);
// --scheduler slurm: submits (or with --dry-run prints) the job array. True when every cell is finished
// already (then the caller writes the report, as the local scheduler does).
bool submit_to_slurm(const SweepCliOptions& o, const std::vector<std::string>& command);

}  // namespace unipelt::cli

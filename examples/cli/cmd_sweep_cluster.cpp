// `unipelt sweep` beyond one machine: --scheduler slurm (the grid as one sbatch job array), --run-cell N
// (what each array task runs), --status (finished, running, pending and failed cells). The work is in
// train/sweep_slurm.h; here are the flags and the rules between them.
#include <iostream>

#include "examples/cli/sweep_cli.h"
#include "train/sweep_slurm.h"

namespace unipelt::cli {

namespace {

// The flags that only --scheduler slurm uses.
const std::vector<std::string>& slurm_only_flags() {
  static const std::vector<std::string> flags = {"--partition", "--time",           "--cpus-per-task", "--gpus-per-task",
                                                 "--mem",       "--array-parallel", "--sbatch-arg",    "--dry-run"};
  return flags;
}

// A CLI11 check from one of sweep_slurm.h's rules.
CLI::Validator rule(void (*check)(const std::string&), const std::string& name) {
  return CLI::Validator(
      [check](std::string& text) {
        try {
          check(text);
        } catch (const std::invalid_argument& e) {
          return std::string(e.what());
        }
        return std::string();
      },
      name);
}

}  // namespace

void add_cluster_flags(CLI::App* cmd, const std::shared_ptr<SweepCliOptions>& o) {
  cmd->add_option("--scheduler", o->scheduler, "Where the runs go: local (child processes here, --jobs at a time) or "
                                               "slurm (one sbatch job array, one array task per grid cell; "
                                               "docs/cluster.md)")
      ->check(CLI::IsMember({"local", "slurm"}))
      ->capture_default_str();
  cmd->add_option("--partition", o->slurm.partition, "Slurm: the partition(s) to run in (#SBATCH --partition)")
      ->check(rule(check_slurm_partition, "NAME"));
  cmd->add_option("--time", o->slurm.time, "Slurm: time limit of each cell (MINUTES, HH:MM:SS or D-HH:MM:SS); a cell "
                                           "that runs out resumes from its last epoch when resubmitted")
      ->check(rule(check_slurm_time, "TIME"));
  cmd->add_option("--cpus-per-task", o->slurm.cpus_per_task, "Slurm: cores of each cell (also its BLAS threads)")
      ->check(CLI::Range(1, 4096));
  cmd->add_option("--gpus-per-task", o->slurm.gpus_per_task, "Slurm: GPUs of each cell (train with --device cuda)")
      ->check(CLI::Range(1, 64));
  cmd->add_option("--mem", o->slurm.mem, "Slurm: memory of each cell (megabytes, or 16G, 500M, ...)")
      ->check(rule(check_slurm_memory, "SIZE"));
  cmd->add_option("--array-parallel", o->slurm.array_parallel, "Slurm: at most N cells at once (the array's %N)")
      ->check(CLI::Range(1, 1000000));
  cmd->add_option("--sbatch-arg", o->slurm.sbatch_args, "Slurm: one more sbatch option, written as an #SBATCH line; "
                                                        "repeatable (--sbatch-arg=--qos=high --sbatch-arg=--account=p)")
      ->check(rule(check_sbatch_arg, "OPTION"))
      ->expected(1)
      ->take_all();
  cmd->add_flag("--dry-run", o->dry_run, "Slurm: print the job script instead of writing and submitting it");
  cmd->add_flag("--status", o->status, "Show each cell of the sweep in OUT: finished, running, pending, failed or not "
                                       "started (from the run directories, and from squeue and sacct when present)");
  cmd->add_option("--run-cell", o->run_cell, "Train only cell N of the grid (what each Slurm array task runs; cells "
                                             "are numbered from 0 in the order --status lists them)")
      ->check(CLI::Range(0, 100000000));
}

void note_given_flags(const CLI::App& cmd, SweepCliOptions& o) {
  o.slurm_only_given.clear();
  for (const std::string& flag : slurm_only_flags())
    if (cmd.count(flag)) o.slurm_only_given.push_back(flag);
  o.jobs_given = cmd.count("--jobs") > 0;
}

void check_cluster_flags(const SweepCliOptions& o) {
  const int modes = int(o.status) + int(o.report_only) + int(o.run_cell >= 0);
  if (modes > 1) throw std::invalid_argument("sweep: --status, --report-only and --run-cell do one thing each; give one");
  if (o.status || o.report_only || o.run_cell >= 0) return;  // they schedule nothing: the other flags do not matter
  if (o.scheduler != "slurm" && !o.slurm_only_given.empty())
    throw std::invalid_argument("sweep: " + o.slurm_only_given.front() + " is a Slurm flag; add --scheduler slurm");
  if (o.scheduler == "slurm" && o.jobs_given)
    throw std::invalid_argument("sweep: --jobs is the local scheduler's; with --scheduler slurm, --array-parallel N "
                                "limits how many cells run at once");
}

void print_sweep_status(const SweepCliOptions& o) {
  std::cout << render_sweep_status(sweep_status(o.out)) << std::flush;
}

int run_one_cell(const SweepCliOptions& o) {
  SweepOptions s = sweep_options(o);
  const std::vector<SweepPoint> points = expand_grid(s.grid);
  if (static_cast<size_t>(o.run_cell) >= points.size())
    throw std::invalid_argument("--run-cell: must be a cell of the grid, 0 to " + std::to_string(points.size() - 1) +
                                ", got " + std::to_string(o.run_cell));
  check_sweep_manifest(s.root, sweep_manifest(s, {}));  // the same model, data and training flags as the sweep
  const SweepPoint& p = points[static_cast<size_t>(o.run_cell)];
  s.grid = {{p.task}, {p.method}, {p.k}, {p.data_seed}};
  s.jobs = 1;
  const SweepSummary summary = run_sweep(s, std::cerr);
  if (summary.stopped) return kExitInterrupted;
  return summary.failures.empty() ? 0 : kExitRuntimeError;
}

bool submit_to_slurm(const SweepCliOptions& o, const std::vector<std::string>& command) {
  const SweepOptions s = sweep_options(o);
  const nlohmann::json manifest = sweep_manifest(s, command);
  check_sweep_manifest(s.root, manifest);
  if (o.dry_run) {
    const std::string script = dry_run_sweep_script(s, o.slurm, std::cerr);
    std::cout << (script.empty() ? "# nothing to submit\n" : script) << std::flush;
    return false;
  }
  write_sweep_manifest(s.root, manifest);
  const SlurmSubmitResult r = submit_sweep_to_slurm(s, o.slurm, std::cerr);
  if (!r.job.empty()) {
    std::cout << "submitted job " << r.job << ": " << r.submitted.size() << " cell(s); follow with `unipelt sweep "
              << "--status --out " << o.out << "`, then `unipelt sweep --report-only --out " << o.out << "`\n";
    return false;
  }
  if (!r.queued.empty()) {
    std::cout << "nothing to submit: " << r.queued.size() << " cell(s) still in Slurm's queue\n";
    return false;
  }
  return true;  // every cell finished: the report, as the local scheduler writes it
}

}  // namespace unipelt::cli

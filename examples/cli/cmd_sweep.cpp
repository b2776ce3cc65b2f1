// `unipelt sweep`: train every (task, method, K, data seed) of a grid as child processes, then write the
// Table-1 style report. `--report-only` rebuilds the report from the runs already on disk. The other
// schedulers (Slurm), --status and --run-cell are in cmd_sweep_cluster.cpp.
#include <cstdio>
#include <fstream>
#include <iostream>

#include "datasets/glue.h"
#include "examples/cli/settings_flags.h"
#include "examples/cli/sweep_cli.h"
#include "nn/file_io.h"
#include "train/plot.h"
#include "train/report.h"
#include "train/sweep.h"
#include "train/text.h"

namespace {

namespace fs = std::filesystem;

using unipelt::cli::SweepCliOptions;

// The process's own command line, as typed (argv[0] included).
std::vector<std::string> own_command_line() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  std::vector<std::string> args;
  std::string arg;
  while (std::getline(in, arg, '\0')) args.push_back(arg);
  return args;
}

std::string join_command(const std::vector<std::string>& args) {
  std::string out;
  for (const auto& a : args) {
    if (!out.empty()) out += ' ';
    out += unipelt::shell_quote(a);
  }
  return out;
}

// Every command recorded in SWEEP/sweep.json, shell-quoted (the report shows them).
std::vector<std::string> command_history(const fs::path& root) {
  std::vector<std::string> history;
  const nlohmann::json saved = unipelt::read_sweep_manifest(root);
  if (saved.contains("commands"))
    for (const auto& c : saved["commands"]) history.push_back(join_command(c.get<std::vector<std::string>>()));
  return history;
}

// Runs the grid; returns the exit status (0, 1 when a run failed, 130 when interrupted).
int run_grid(const SweepCliOptions& o, const std::vector<std::string>& command) {
  using namespace unipelt;
  const SweepOptions s = sweep_options(o);
  const nlohmann::json manifest = sweep_manifest(s, command);
  check_sweep_manifest(s.root, manifest);
  write_sweep_manifest(s.root, manifest);
  const SweepSummary summary = run_sweep(s, std::cerr);
  if (!summary.failures.empty()) {
    std::fprintf(stderr, "sweep: %zu run(s) failed:\n", summary.failures.size());
    for (const auto& f : summary.failures) std::fprintf(stderr, "  %s\n", f.c_str());
  }
  if (summary.stopped) return unipelt::cli::kExitInterrupted;
  return summary.failures.empty() ? 0 : unipelt::cli::kExitRuntimeError;
}

// The runs the report shows: all of them, or with --report-only the --tasks and --methods given.
std::vector<unipelt::RunRecord> report_runs(const SweepCliOptions& o) {
  using namespace unipelt;
  std::vector<RunRecord> runs = collect_runs(o.out);
  if (!o.report_only) return runs;
  std::vector<std::string> task_names;
  for (const auto& t : split_list(o.tasks)) task_names.push_back(task_info(t).name);
  const std::vector<std::string> methods = split_list(o.methods);
  std::vector<RunRecord> kept;
  for (auto& r : runs) {
    if (!task_names.empty() && std::find(task_names.begin(), task_names.end(), r.task) == task_names.end()) continue;
    if (!methods.empty() && std::find(methods.begin(), methods.end(), r.method) == methods.end()) continue;
    kept.push_back(std::move(r));
  }
  return kept;
}

void run_sweep_command(const SweepCliOptions& o) {
  using namespace unipelt;
  const std::vector<std::string> command = own_command_line();
  cli::check_cluster_flags(o);
  if (o.status) return cli::print_sweep_status(o);
  if (o.run_cell >= 0) {
    if (const int code = cli::run_one_cell(o)) throw cli::Exit{code};
    return;
  }
  int exit_code = 0;
  if (o.report_only) {
    if (!fs::is_directory(o.out)) throw std::runtime_error(o.out + ": no such sweep directory");
  } else if (o.scheduler == "slurm") {
    if (!cli::submit_to_slurm(o, command)) return;  // the cells run later: --status, then --report-only
  } else {
    exit_code = run_grid(o, command);
  }
  cli::report_sweep(o, command);
  if (exit_code) throw cli::Exit{exit_code};
}

// A comma-separated list whose every item must be a value of the setting `flag` (the same rule as
// `unipelt train FLAG ITEM`).
CLI::Validator list_of(const std::string& flag) {
  return CLI::Validator(
      [flag](std::string& list) {
        const std::vector<std::string> items = unipelt::split_list(list);
        if (items.empty()) return std::string("must list at least one value");
        for (const std::string& item : items) {
          unipelt::TrainConfig scratch;
          try {
            unipelt::find_setting(flag).set(scratch, item);
          } catch (const std::invalid_argument& e) {
            return "item '" + item + "' " + e.what();
          }
        }
        return std::string();
      },
      "LIST");
}

}  // namespace

namespace unipelt::cli {

// The grid and the training flags, checked before anything is written: the names, and the passed-through
// settings against the model (one run's worth: --max-len, --adapter-size, ...).
SweepOptions sweep_options(const SweepCliOptions& o) {
  if (o.tasks.empty() || o.methods.empty())
    throw std::invalid_argument("sweep: --tasks and --methods are required (except with --report-only)");
  if (o.model.empty() || o.data.empty())
    throw std::invalid_argument("sweep: --model and --data are required (except with --report-only)");
  SweepOptions s;
  s.binary = fs::read_symlink("/proc/self/exe");
  s.root = o.out;
  s.model_dir = fs::absolute(o.model).string();
  s.data_dir = fs::absolute(o.data).string();
  s.jobs = o.jobs;
  s.grid.tasks = split_list(o.tasks);
  s.grid.methods = split_list(o.methods);
  for (const auto& k : split_list(o.ks)) s.grid.ks.push_back(parse_k(k));
  for (const auto& seed : split_list(o.seeds)) s.grid.data_seeds.push_back(parse_seed(seed));
  for (const std::string& flag : cli::setting_flags({SettingScope::Run}))  // table order, as train applies them
    if (auto it = o.passthrough->find(flag); it != o.passthrough->end()) {
      s.train_flags.push_back(flag);
      s.train_flags.push_back(it->second);
    }
  expand_grid(s.grid);
  TrainConfig one_run;
  apply_settings(one_run, *o.passthrough);
  if (o.passthrough->count("--threads")) s.threads_per_run = one_run.threads;
  validate_against_model(one_run, load_bert_config(fs::path(s.model_dir) / "config.json"));
  return s;
}

void report_sweep(const SweepCliOptions& o, const std::vector<std::string>& command) {
  const fs::path root(o.out);
  ReportOptions report;
  report.std_kind = o.std_kind == "sample" ? StdKind::Sample : StdKind::Population;
  report.commands = command_history(root);
  if (o.report_only) report.commands.push_back("# report: " + join_command(command));
  const fs::path report_path = o.report.empty() ? root / "report.md" : fs::path(o.report);
  std::vector<fs::path> figures;
  const std::string text = unipelt::write_sweep_report(report_path, report_runs(o), report, &figures);
  std::cout << text << std::flush;
  std::fprintf(stderr, "report: %s\n", report_path.c_str());
  for (const fs::path& figure : figures) std::fprintf(stderr, "figure: %s\n", figure.c_str());
}

void add_sweep_command(CLI::App& app) {
  auto o = std::make_shared<SweepCliOptions>();
  auto* cmd = app.add_subcommand(
      "sweep", "Train every task x method x K x data seed as child `unipelt train` processes (resumable), then write "
               "a Markdown report laid out like the paper's Table 1; or submit the grid to Slurm as one job array");
  cmd->add_option("--tasks", o->tasks, "Comma-separated GLUE tasks, e.g. SST-2,MRPC,CoLA,RTE,QNLI,STS-B,MNLI,QQP")
      ->check(list_of("--task"));
  cmd->add_option("--methods", o->methods, "Comma-separated method presets, e.g. finetune,bitfit,adapter,prefix,lora,"
                                           "unipelt-ap,unipelt-apl,unipelt-nogate")
      ->check(list_of("--method"));
  cmd->add_option("--k", o->ks, "Comma-separated training-set sizes (numbers or 'all')")
      ->check(list_of("--k"))
      ->capture_default_str();
  cmd->add_option("--data-seeds", o->seeds, "Comma-separated data seeds")->check(list_of("--data-seed"))->capture_default_str();
  cmd->add_option("--model", o->model, "Hugging Face BERT directory, passed to every run")
      ->check(CLI::ExistingDirectory);
  cmd->add_option("--data", o->data, "Data root holding glue/<TASK>/*.tsv, passed to every run")
      ->check(CLI::ExistingDirectory);
  cmd->add_option("--out", o->out, "Sweep directory: runs go to OUT/<task>/<method>/k<K>/seed<S>")
      ->required()
      ->check(setting_rule("--out"));
  cmd->add_option("--jobs", o->jobs, "Runs at the same time with --scheduler local (each run then gets cores / jobs "
                                     "CPU threads unless --threads is given)")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  cmd->add_option("--report", o->report, "Where to write the Markdown report (default: OUT/report.md)")
      ->check(writable_file_path());
  cmd->add_flag("--report-only", o->report_only, "Train nothing: rebuild the report from the runs in OUT (--tasks and "
                                                 "--methods, when given, select what it shows)");
  cmd->add_option("--std", o->std_kind, "Standard deviation over data seeds in the report: population (divides by n, "
                                        "numpy's default) or sample (n - 1)")
      ->check(CLI::IsMember({"population", "sample"}))
      ->capture_default_str();
  // Training flags passed through unchanged to every run: the settings table's, with its rules.
  add_setting_flags(cmd, o->passthrough, setting_flags({SettingScope::Run, SettingScope::Machine}));
  add_cluster_flags(cmd, o);
  cmd->callback([o, cmd] {
    note_given_flags(*cmd, *o);
    run_sweep_command(*o);
  });
}

}  // namespace unipelt::cli

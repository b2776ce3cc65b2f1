// `unipelt sweep`: train every (task, method, K, data seed) of a grid as child processes, then write the
// Table-1 style report. `--report-only` rebuilds the report from the runs already on disk.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>

#include "datasets/glue.h"
#include "examples/cli/cli.h"
#include "nn/file_io.h"
#include "train/report.h"
#include "train/text.h"
#include "train/sweep.h"

namespace {

struct SweepCliOptions {
  std::string tasks, methods, ks = "100", seeds = "111,222,333,444,555";
  std::string model, data, out, report, std_kind = "population";
  int jobs = 1;
  bool report_only = false;
  // Training flags passed through to every `unipelt train`, in declaration order.
  std::vector<std::pair<std::string, CLI::Option*>> passthrough;
  std::map<std::string, std::string> values;
};

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

void run_sweep_command(SweepCliOptions& o) {
  using namespace unipelt;
  const std::filesystem::path root(o.out);
  const std::vector<std::string> command = own_command_line();
  const std::filesystem::path report_path = o.report.empty() ? root / "report.md" : std::filesystem::path(o.report);
  ReportOptions report;
  report.std_kind = o.std_kind == "sample" ? StdKind::Sample : StdKind::Population;

  std::vector<std::string> history;
  auto read_history = [&] {
    history.clear();
    const nlohmann::json saved = unipelt::read_sweep_manifest(root);
    if (saved.contains("commands"))
      for (const auto& c : saved["commands"]) history.push_back(join_command(c.get<std::vector<std::string>>()));
  };

  int exit_code = 0;
  if (o.report_only) {
    if (!std::filesystem::is_directory(root)) throw std::runtime_error(o.out + ": no such sweep directory");
    read_history();
    report.commands = history;
    report.commands.push_back("# report: " + join_command(command));
  } else {
    if (o.tasks.empty() || o.methods.empty())
      throw std::runtime_error("sweep: --tasks and --methods are required (except with --report-only)");
    if (o.model.empty() || o.data.empty())
      throw std::runtime_error("sweep: --model and --data are required (except with --report-only)");
    SweepOptions s;
    s.binary = std::filesystem::read_symlink("/proc/self/exe");
    s.root = root;
    s.model_dir = std::filesystem::absolute(o.model).string();
    s.data_dir = std::filesystem::absolute(o.data).string();
    s.jobs = o.jobs;
    s.grid.tasks = split_list(o.tasks);
    s.grid.methods = split_list(o.methods);
    for (const auto& k : split_list(o.ks)) s.grid.ks.push_back(parse_k(k));
    for (const auto& seed : split_list(o.seeds)) s.grid.data_seeds.push_back(parse_seed(seed));
    for (const auto& [flag, option] : o.passthrough)
      if (option->count() > 0) {
        s.train_flags.push_back(flag);
        s.train_flags.push_back(o.values.at(flag));
      }
    expand_grid(s.grid);  // validates names before anything is written
    const nlohmann::json manifest = sweep_manifest(s, command);
    check_sweep_manifest(root, manifest);
    write_sweep_manifest(root, manifest);
    read_history();
    report.commands = history;
    const SweepSummary summary = run_sweep(s, std::cerr);
    if (!summary.failures.empty()) {
      std::fprintf(stderr, "sweep: %zu run(s) failed:\n", summary.failures.size());
      for (const auto& f : summary.failures) std::fprintf(stderr, "  %s\n", f.c_str());
      exit_code = 1;
    }
    if (summary.stopped) exit_code = 130;
  }

  std::vector<RunRecord> runs = collect_runs(root);
  // With --report-only, the grid flags (when given) select what goes into the report.
  if (o.report_only) {
    const auto tasks = split_list(o.tasks), methods = split_list(o.methods);
    std::vector<std::string> task_names;
    for (const auto& t : tasks) task_names.push_back(task_info(t).name);
    std::vector<RunRecord> kept;
    for (auto& r : runs) {
      if (!task_names.empty() && std::find(task_names.begin(), task_names.end(), r.task) == task_names.end()) continue;
      if (!methods.empty() && std::find(methods.begin(), methods.end(), r.method) == methods.end()) continue;
      kept.push_back(std::move(r));
    }
    runs = std::move(kept);
  }
  const std::string text = render_report_markdown(runs, report);
  unipelt::write_file_atomically(report_path, text);
  std::cout << text << std::flush;
  std::fprintf(stderr, "report: %s\n", report_path.c_str());
  if (exit_code) throw unipelt::cli::Exit{exit_code};
}

}  // namespace

namespace unipelt::cli {

void add_sweep_command(CLI::App& app) {
  auto o = std::make_shared<SweepCliOptions>();
  auto* cmd = app.add_subcommand(
      "sweep", "Train every task x method x K x data seed as child `unipelt train` processes (resumable), then write "
               "a Markdown report laid out like the paper's Table 1");
  cmd->add_option("--tasks", o->tasks, "Comma-separated GLUE tasks, e.g. SST-2,MRPC,CoLA,RTE,QNLI,STS-B,MNLI,QQP");
  cmd->add_option("--methods", o->methods, "Comma-separated method presets, e.g. finetune,bitfit,adapter,prefix,lora,"
                                           "unipelt-ap,unipelt-apl,unipelt-nogate");
  cmd->add_option("--k", o->ks, "Comma-separated training-set sizes (numbers or 'all')")->capture_default_str();
  cmd->add_option("--data-seeds", o->seeds, "Comma-separated data seeds")->capture_default_str();
  cmd->add_option("--model", o->model, "Hugging Face BERT directory, passed to every run")
      ->check(CLI::ExistingDirectory);
  cmd->add_option("--data", o->data, "Data root holding glue/<TASK>/*.tsv, passed to every run")
      ->check(CLI::ExistingDirectory);
  cmd->add_option("--out", o->out, "Sweep directory: runs go to OUT/<task>/<method>/k<K>/seed<S>")->required();
  cmd->add_option("--jobs", o->jobs, "Runs at the same time (each child then gets cores/jobs BLAS threads unless "
                                     "OPENBLAS_NUM_THREADS is set)")
      ->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--report", o->report, "Where to write the Markdown report (default: OUT/report.md)");
  cmd->add_flag("--report-only", o->report_only, "Train nothing: rebuild the report from the runs in OUT (--tasks and "
                                                 "--methods, when given, select what it shows)");
  cmd->add_option("--std", o->std_kind, "Standard deviation over data seeds in the report: population (divides by n, "
                                        "numpy's default) or sample (n - 1)")
      ->check(CLI::IsMember({"population", "sample"}))->capture_default_str();

  // Training flags passed through unchanged (see `unipelt train --help` for their defaults).
  struct Flag {
    const char* name;
    const char* help;
    CLI::Validator check;
  };
  // Whole numbers (the children would reject "2.5" one by one; refuse it here, once).
  const CLI::Validator count(
      [](std::string& v) {
        return !v.empty() && v.find_first_not_of("0123456789") == std::string::npos
                   ? std::string()
                   : "expected a whole number >= 0, got " + v;
      },
      "UINT");
  const std::vector<Flag> flags = {
      {"--seed", "Model seed of every run", count},
      {"--lr", "Learning rate of every run (default: each method's paper rate)", CLI::PositiveNumber},
      {"--epochs", "Maximum epochs", count},
      {"--patience", "Early stopping patience (epochs)", count},
      {"--batch-size", "Training batch size", count},
      {"--eval-batch-size", "Evaluation batch size", count},
      {"--max-len", "Maximum sequence length in tokens", count},
      {"--weight-decay", "AdamW decoupled weight decay", CLI::NonNegativeNumber},
      {"--beta1", "AdamW beta1", CLI::NonNegativeNumber},
      {"--beta2", "AdamW beta2", CLI::NonNegativeNumber},
      {"--adam-eps", "AdamW epsilon", CLI::PositiveNumber},
      {"--max-grad-norm", "Gradient clipping (global L2 norm)", CLI::PositiveNumber},
      {"--warmup-steps", "Linear warm-up steps", count},
      {"--dtype", "f32 or f64", CLI::IsMember({"f32", "f64"})},
      {"--device", "cpu or cuda", CLI::IsMember({"cpu", "cuda"})},
      {"--adapter-size", "Adapter bottleneck m (0 = hidden/16)", count},
      {"--prefix-len", "Prefix length L", count},
      {"--prefix-mid", "Width of the prefix reparameterisation MLP", count},
      {"--lora-r", "LoRA rank r", count},
      {"--lora-alpha", "LoRA alpha", CLI::PositiveNumber},
      {"--gate-pool", "Gate pooling: masked or all", CLI::IsMember({"masked", "all"})},
  };
  for (const Flag& f : flags) {
    std::string& target = o->values[f.name];
    CLI::Option* opt = cmd->add_option(f.name, target, std::string("[train] ") + f.help)->check(f.check);
    o->passthrough.emplace_back(f.name, opt);
  }
  cmd->callback([o] { run_sweep_command(*o); });
}

}  // namespace unipelt::cli


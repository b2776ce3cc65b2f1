// `unipelt eval RUN`: evaluate a run's best checkpoint on one of its protocol splits. RUN may also be a
// peft LoRA adapter directory (exported by `unipelt export --format peft`, or trained with peft).
#include <cstdio>
#include <iostream>

#include "autograd/parallel.h"
#include "examples/cli/cli.h"
#include "examples/cli/run_options.h"
#include "examples/cli/settings_flags.h"
#include "train/saved_run.h"

namespace {

struct EvalOptions {
  std::string run, split = "test";
  unipelt::RunOverrides overrides;
  bool json = false;
  int threads = 0;
};

void run_eval(const EvalOptions& o) {
  using namespace unipelt;
  set_cpu_threads(o.threads);
  LoadedRun run = load_run(o.run, o.overrides);
  const auto data = run_examples(run, o.split);
  const EvalResult r = evaluate_run(run, data);
  const TaskInfo& task = task_info(run.config.task);
  if (o.json) {
    nlohmann::json j = {{"run", o.run},         {"task", task.name}, {"method", run.config.pelt.method},
                        {"split", o.split},     {"examples", data.size()}, {"metrics", r.metrics},
                        {"loss", r.loss},       {"gates", r.gates}};
    std::printf("%s\n", j.dump(2).c_str());
    return;
  }
  std::printf("%s  %s  K=%s  data seed %llu  split %s (%zu examples)\n", task.name.c_str(),
              run.config.pelt.method.c_str(), run.config.k ? std::to_string(run.config.k).c_str() : "all",
              static_cast<unsigned long long>(run.config.data_seed), o.split.c_str(), data.size());
  for (const auto& [name, value] : r.metrics)
    std::printf("  %-12s %.4f%s\n", name.c_str(), value, name == "main" ? ("  (" + task.metric + ")").c_str() : "");
  std::printf("  %-12s %.4f\n", "loss", r.loss);
}

}  // namespace

namespace unipelt::cli {

void add_eval_command(CLI::App& app) {
  auto o = std::make_shared<EvalOptions>();
  auto* cmd = app.add_subcommand("eval", "Evaluate a training run's best checkpoint (RUN/best) on its train, dev or "
                                         "test split and print the metrics");
  cmd->add_option("run", o->run, "Run directory written by `unipelt train` (config.json, best/), or a peft LoRA "
                                 "adapter directory (adapter_config.json)")
      ->required()->check(CLI::ExistingDirectory);
  cmd->add_option("--split", o->split, "Protocol split: train (the K examples), dev (the 1,000 development "
                                       "examples) or test (the GLUE dev set)")
      ->check(CLI::IsMember({"train", "dev", "test"}))->capture_default_str();
  unipelt::cli::add_run_override_options(cmd, o->overrides, true);
  cmd->add_option("--task", o->overrides.task, "GLUE task of a peft adapter trained elsewhere (one without "
                                               "unipelt_run.json; then --data is needed too)");
  unipelt::cli::add_threads_flag(cmd, o->threads);
  cmd->add_flag("--json", o->json, "Print JSON (metrics, loss, gates) instead of text");
  cmd->callback([o] { run_eval(*o); });
}

}  // namespace unipelt::cli


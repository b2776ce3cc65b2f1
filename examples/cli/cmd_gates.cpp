// `unipelt gates RUN`: the per-layer gate values of a UniPELT run on its test set, as a table and an
// SVG line plot (layers on x, one line per submodule).
#include <cstdio>
#include <fstream>
#include <iostream>

#include "autograd/parallel.h"
#include "examples/cli/cli.h"
#include "examples/cli/run_options.h"
#include "examples/cli/settings_flags.h"
#include "nn/file_io.h"
#include "train/gate_plot.h"
#include "train/report.h"
#include "train/run_dir.h"
#include "train/saved_run.h"

namespace {

struct GatesOptions {
  std::string run, svg;
  unipelt::RunOverrides overrides;
  bool recompute = false, json = false;
  int threads = 0;
};

void run_gates(const GatesOptions& o) {
  using namespace unipelt;
  const std::filesystem::path dir(o.run);
  const TrainConfig config = read_run_config(dir);

  GateTable gates;
  std::string source;
  if (!o.recompute && std::filesystem::exists(dir / "results.json")) {
    const nlohmann::json results = read_json_file(dir / "results.json");
    if (results.contains("test_gates") && !results["test_gates"].empty()) {
      gates = results["test_gates"].get<GateTable>();
      source = (dir / "results.json").string() + " (test_gates)";
    }
  }
  if (gates.empty() && config.pelt.gated) {
    set_cpu_threads(o.threads);
    LoadedRun run = load_run(dir, o.overrides);
    const auto test = run_examples(run, "test");
    gates = evaluate_run(run, test).gates;
    source = "recomputed from " + (dir / "best").string() + " on the test split (" + std::to_string(test.size()) +
             " examples)";
  }
  if (gates.empty())
    throw std::runtime_error(o.run + ": method '" + config.pelt.method +
                             "' has no gates (only the gated UniPELT variants, e.g. unipelt-ap and unipelt-apl, do)");

  const TaskInfo& task = task_info(config.task);
  const std::string title = "Gates on the test set: " + task.name + ", " + method_display_name(config.pelt.method) +
                            ", K=" + (config.k ? std::to_string(config.k) : std::string("all")) + ", data seed " +
                            std::to_string(config.data_seed);
  const std::filesystem::path svg_path = o.svg.empty() ? dir / "gates.svg" : std::filesystem::path(o.svg);
  write_file_atomically(svg_path, render_gates_svg(gates, title));

  if (o.json) {
    nlohmann::json j = {{"run", o.run}, {"source", source}, {"gates", gates}, {"svg", svg_path.string()}};
    std::printf("%s\n", j.dump(2).c_str());
    return;
  }
  std::printf("%s\nsource: %s\n\n%s\nplot: %s\n", title.c_str(), source.c_str(), format_gate_table(gates).c_str(),
              svg_path.c_str());
}

}  // namespace

namespace unipelt::cli {

void add_gates_command(CLI::App& app) {
  auto o = std::make_shared<GatesOptions>();
  auto* cmd = app.add_subcommand("gates", "Per-layer gate values (adapter, prefix, LoRA query/value) of a UniPELT run "
                                          "on its test set: a table and an SVG line plot");
  cmd->add_option("run", o->run, "Run directory written by `unipelt train`")->required()->check(CLI::ExistingDirectory);
  cmd->add_option("--svg", o->svg, "Where to write the plot (default: RUN/gates.svg)");
  cmd->add_flag("--recompute", o->recompute, "Evaluate RUN/best on the test split even when results.json holds "
                                             "test_gates (otherwise only done for unfinished runs)");
  unipelt::cli::add_run_override_options(cmd, o->overrides, true, " (when recomputing)");
  unipelt::cli::add_threads_flag(cmd, o->threads);
  cmd->add_flag("--json", o->json, "Print JSON instead of the table");
  cmd->callback([o] { run_gates(*o); });
}

}  // namespace unipelt::cli


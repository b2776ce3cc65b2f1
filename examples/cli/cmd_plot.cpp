// `unipelt plot DIR`: pictures as SVG files (train/plot.h). For a run directory, its training curve:
// the loss of every step and the dev metric of every epoch, best epoch and early stop marked. For a
// sweep directory (runs below it), one figure per task of the test metric by method and K.
#include <cstdio>

#include "examples/cli/cli.h"
#include "nn/file_io.h"
#include "train/plot.h"

namespace {

struct PlotOptions {
  std::string dir, out;
};

void run_plot(const PlotOptions& o) {
  using namespace unipelt;
  namespace fs = std::filesystem;
  const fs::path dir(o.dir);
  if (fs::exists(dir / "config.json")) {
    const TrainingCurve curve = read_training_curve(dir);
    const fs::path out = o.out.empty() ? dir / "training-curve.svg" : fs::path(o.out);
    write_file_atomically(out, render_training_svg(curve));
    std::printf("%s: %zu epochs, %zu steps, best dev epoch %d%s -> %s\n", o.dir.c_str(), curve.dev.size(),
                curve.step_losses.size(), curve.best_epoch, curve.early_stopped ? " (early stop)" : "", out.c_str());
    return;
  }
  const std::vector<RunRecord> runs = collect_runs(dir);
  if (runs.empty()) throw std::runtime_error(o.dir + ": neither a run directory (config.json) nor a sweep (runs below it)");
  // Not report.md: `unipelt sweep` writes that one, with the sweep's command history.
  const fs::path out = o.out.empty() ? dir / "figures.md" : fs::path(o.out);
  ReportOptions report;
  report.title = "UniPELT sweep: " + dir.filename().string();
  std::vector<fs::path> figures;
  write_sweep_report(out, runs, report, &figures);
  for (const fs::path& figure : figures) std::printf("wrote %s\n", figure.c_str());
  std::printf("wrote %s (%zu runs)\n", out.c_str(), runs.size());
}

}  // namespace

namespace unipelt::cli {

void add_plot_command(CLI::App& app) {
  auto o = std::make_shared<PlotOptions>();
  auto* cmd = app.add_subcommand("plot", "SVG pictures: a run's training curve (loss per step, dev metric per epoch, "
                                         "best epoch and early stop marked), or a sweep's per-task figures");
  cmd->add_option("dir", o->dir, "A run directory written by `unipelt train`, or a sweep directory")
      ->required()->check(CLI::ExistingDirectory);
  cmd->add_option("--out", o->out, "Output file: the SVG for a run (default RUN/training-curve.svg); for a sweep the "
                                   "Markdown report, figures beside it (default SWEEP/figures.md, SWEEP/figures-TASK.svg)");
  cmd->callback([o] { run_plot(*o); });
}

}  // namespace unipelt::cli

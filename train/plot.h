// Pictures of runs and sweeps, as self-contained SVG files:
//
//   the training curve of one run (`unipelt plot RUN`): the training loss of every step (top) and the
//     dev metric of every epoch (bottom), the best epoch marked in both, the early-stopping point shown;
//   the sweep figure of one task (in the sweep report): the test metric of each method at each K, a
//     bar per (K, method) with an error bar of ± one standard deviation across data seeds.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "train/report.h"

namespace unipelt {

struct TrainingCurve {
  std::string title, metric;          // "SST-2 unipelt-apl K=1000 ...", "accuracy"
  std::vector<double> step_losses;    // every training step, in order (empty for runs that predate them)
  std::vector<int64_t> epoch_steps;   // global step at the end of each epoch
  std::vector<double> epoch_losses;   // mean training loss of each epoch
  std::vector<double> dev;            // dev main metric of each epoch
  int best_epoch = 0;                 // 1-based; 0 when no epoch finished
  bool early_stopped = false;         // stopped by patience before the last epoch
  int patience = 0;
  bool finished = false;
  double test = 0.0;                  // test main metric (finished runs)
};

// Reads RUN/config.json, RUN/metrics.jsonl and (when finished) RUN/results.json. Throws
// std::runtime_error naming the file for a missing or malformed one.
TrainingCurve read_training_curve(const std::filesystem::path& run_dir);

std::string render_training_svg(const TrainingCurve& curve);

// The figure of one task from the report tables (one per K): bars of mean test metric ×100 by K and
// method, error bars of ± std. Empty when no table has a finished cell of the task.
std::string render_sweep_figure(const std::string& task, const std::vector<ReportTable>& tables);

// The sweep report with its figures: writes `report_path` (Markdown, render_report_markdown) and, for
// each task with finished runs, STEM-TASK.svg beside it (STEM: the report's file name without
// extension), embedded in the Markdown as images. Returns the Markdown; the figures' paths go to
// *figures when it is non-null.
std::string write_sweep_report(const std::filesystem::path& report_path, const std::vector<RunRecord>& runs,
                               ReportOptions options, std::vector<std::filesystem::path>* figures = nullptr);

}  // namespace unipelt

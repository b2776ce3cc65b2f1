// The sweep report: every run below a directory, read back and laid out like the paper's Table 1.
// docs/training.md ("Sweeps") describes the report format.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <utility>
#include <string>
#include <vector>

namespace unipelt {

// ---------------------------------------------------------------------------------------------
// The Table-1 report.
// ---------------------------------------------------------------------------------------------

// What one run directory says about itself (results.json when finished, else config.json).
struct RunRecord {
  std::filesystem::path dir;
  std::string task, method;  // GLUE folder name ("SST-2"); preset name ("unipelt-apl")
  size_t k = 0;              // 0 = all
  uint64_t data_seed = 0, seed = 0;
  bool finished = false;
  std::map<std::string, double> test, best_dev;  // fractions, as in results.json
  double wall_seconds = 0.0;
  int epochs_run = 0, best_epoch = 0;
};

// Nothing when DIR holds neither results.json nor config.json. Throws on unreadable JSON.
std::optional<RunRecord> read_run_record(const std::filesystem::path& dir);
// Every run below `root` (a directory holding config.json or results.json), sorted by path.
std::vector<RunRecord> collect_runs(const std::filesystem::path& root);

// The paper's Table 1 column order: SST-2, MRPC, CoLA, RTE, QNLI, STS-B, MNLI, QQP.
const std::vector<std::string>& paper_task_order();
// The paper's row order, as preset names: finetune, bitfit, adapter, prefix, lora, unipelt-ap,
// unipelt-apl, unipelt-nogate.
const std::vector<std::string>& paper_method_order();
// "Fine-tuning", "BitFit", "Adapter", "Prefix-tuning", "LoRA", "UniPELT (AP)", "UniPELT (APL)",
// "UniPELT-NoGate"; any other name is returned unchanged.
std::string method_display_name(const std::string& method);

// Population std divides by n (numpy's np.std default, as LM-BFF's result gathering); sample std by
// n - 1. With one value both are 0.
enum class StdKind { Population, Sample };

struct CellStats {
  size_t n = 0;
  double mean = 0.0, std = 0.0;
};
CellStats cell_stats(const std::vector<double>& values, StdKind kind);

struct ReportTable {
  size_t k = 0;
  std::vector<std::string> tasks;    // columns, paper order (tasks outside Table 1 after, GLUE order)
  std::vector<std::string> methods;  // rows, paper order (other methods after, by name)
  std::map<std::pair<std::string, std::string>, CellStats> cells;  // (method, task) -> test main ×100
  size_t max_seeds = 0;              // the most finished data seeds of any cell
  std::vector<std::string> unfinished;  // run directories without results.json
  // The average over the table's tasks of a method's cell means; nothing when a cell is missing.
  std::optional<double> average(const std::string& method) const;
};

// One table per K (ascending, "all" last), from the finished runs' test "main" metric ×100.
std::vector<ReportTable> build_report_tables(const std::vector<RunRecord>& runs, StdKind kind);

struct ReportOptions {
  StdKind std_kind = StdKind::Population;
  std::vector<std::string> commands;  // shown verbatim in the report ("the exact command used")
  std::string title = "UniPELT sweep";
  // (task, image file relative to the report): figures embedded after the tables (train/plot.h writes them).
  std::vector<std::pair<std::string, std::string>> figures;
};
// The whole Markdown document: a header, the commands, one table per K, notes, and options.figures.
std::string render_report_markdown(const std::vector<RunRecord>& runs, const ReportOptions& options);

}  // namespace unipelt

// Reading finished (and unfinished) training runs back: the pieces behind `unipelt eval`, `predict`,
// `gates` and the sweep report. docs/training.md describes the run directory and the report format.
//
//   load_run / run_examples     rebuild a run's model (base + RUN/best) and its protocol splits
//   read_predict_inputs         the TSV format of `unipelt predict`
//   predict_outputs             label / score and class probabilities for encoded inputs
//   gates_*                     the per-layer gate table and its SVG line plot
//   collect_runs / render_*     the Markdown report laid out like the paper's Table 1
// Implemented in saved_run.cpp (load_run .. predict_outputs), gate_plot.cpp and report.cpp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "datasets/encoding.h"
#include "datasets/tokenizer.h"
#include "pelt/trainer.h"

namespace unipelt {

// ---------------------------------------------------------------------------------------------
// A saved run, loaded for evaluation or prediction.
// ---------------------------------------------------------------------------------------------

// Replace what RUN/config.json says (empty: keep it), e.g. after the data or model moved.
struct RunOverrides {
  std::string data_dir, model_dir, device;
};

struct LoadedRun {
  std::filesystem::path dir;
  TrainConfig config;
  std::unique_ptr<BertForSequenceClassification> base;
  std::unique_ptr<PeltModel> model;  // built on *base from RUN/best
  std::unique_ptr<WordPieceTokenizer> tokenizer;
  int pad_to = 0;  // what the trainer padded evaluation batches to (max_len with gated `all` pooling)
};

// Reads RUN/config.json, loads the base model and RUN/best. Throws std::runtime_error naming the
// missing file when the run has no config or no best checkpoint yet (stopped before its first epoch).
LoadedRun load_run(const std::filesystem::path& run_dir, const RunOverrides& overrides = {});

// The run's protocol split ("train": the K training examples, "dev": the 1,000 development examples,
// "test": the GLUE dev set), rebuilt from the data and encoded exactly as the trainer did.
std::vector<EncodedExample> run_examples(const LoadedRun& run, const std::string& split);

// evaluate() with the trainer's batch size and padding.
EvalResult evaluate_run(LoadedRun& run, const std::vector<EncodedExample>& data);

// ---------------------------------------------------------------------------------------------
// `unipelt predict` inputs: a UTF-8 TSV, one example per line.
//   single-sentence tasks: one column, the text
//   pair tasks:            two tab-separated columns, text_a and text_b
// An optional first line is a header when one of its fields is a text column name: "sentence",
// "text", "text_a" (single); "sentence1"/"sentence2", "text_a"/"text_b", "question"/"sentence",
// "question1"/"question2", "#1 String"/"#2 String" (pair), in any case. With a header, every line
// must have the header's number of columns and the texts are taken from the named columns (other
// columns, e.g. GLUE's "index", are ignored), so GLUE's own test.tsv files work as they are.
// Blank lines and lines with the wrong number of columns raise DataError("FILE:LINE: ...").
// A trailing "\r" (Windows line ends) is removed. Example::line holds each row's line number.
// ---------------------------------------------------------------------------------------------
std::vector<Example> read_predict_inputs(const std::filesystem::path& path, bool pair);

struct Prediction {
  std::string label;                 // label name (classification); empty for regression
  int label_id = -1;
  double score = 0.0;                // regression output (STS-B)
  std::vector<double> probabilities; // softmax over the classes; empty for regression
};
std::vector<Prediction> predict_outputs(LoadedRun& run, const std::vector<EncodedExample>& data);

// ---------------------------------------------------------------------------------------------
// Gates: mean gate value per layer and submodule ("adapter", "prefix", "lora_query", "lora_value").
// ---------------------------------------------------------------------------------------------
using GateTable = std::map<std::string, std::vector<double>>;

// The submodules present in `gates`, in the order adapter, prefix, lora_query, lora_value (others after).
std::vector<std::string> gate_submodules(const GateTable& gates);
// "Adapter", "Prefix-tuning", "LoRA (query)", "LoRA (value)".
std::string gate_display_name(const std::string& submodule);
// A text table: one row per layer (0-based, as in the parameter names), one column per submodule,
// and a last row with the mean over layers.
std::string format_gate_table(const GateTable& gates);
// A self-contained SVG line plot: layers on x, gate value on y (0..1), one polyline with markers per
// submodule, a legend, axis labels and `title`.
std::string render_gates_svg(const GateTable& gates, const std::string& title);

// "%.*f" of v (the gate table and the report print fixed decimals).
std::string format_fixed(double v, int decimals);

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
};
// The whole Markdown document: a header, the commands, one table per K, notes.
std::string render_report_markdown(const std::vector<RunRecord>& runs, const ReportOptions& options);

// Quotes an argument for a POSIX shell when needed: abc -> abc, a b -> 'a b', it's -> 'it'\''s'.
std::string shell_quote(const std::string& arg);

}  // namespace unipelt

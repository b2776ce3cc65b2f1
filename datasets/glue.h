// GLUE tasks: what each task is, how its TSV files are read, and the paper's data protocol.
//
// The files are the ones produced by GLUE's download_glue_data.py: <TASK>/{train,dev,test}.tsv
// (MNLI: dev_matched / dev_mismatched / test_matched / test_mismatched). They are tab-separated
// WITHOUT any CSV quoting: a '"' is an ordinary character (MNLI, QNLI and RTE are full of them), so
// every line is split on '\t' and nothing else. docs/data.md has the per-task table.
//
// Label order follows the Hugging Face `glue` dataset (the one UniPELT's run_glue.py loads), e.g.
// MNLI: entailment=0, neutral=1, contradiction=2. Note that the older transformers
// `MnliProcessor` used contradiction/entailment/neutral instead; we do not.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

namespace unipelt {

// Every problem with a data file (missing, empty, malformed row, unknown task) raises this; the
// message names the file, the line and what was expected.
struct DataError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

enum class TaskKind { Classification, Regression };

struct TaskInfo {
  std::string name;     // GLUE's folder name: "SST-2", "CoLA", "STS-B", ...
  std::string hf_name;  // the Hugging Face `glue` config name: "sst2", "cola", "stsb", ...
  int num_labels = 0;   // 1 for the regression task STS-B
  TaskKind kind = TaskKind::Classification;
  std::string metric;   // primary metric, the key compute_task_metrics puts under "main"
  std::vector<std::string> label_names;  // index = label id (empty for regression)
  std::vector<std::string> file_labels;  // how label id i is spelled in the TSV files
  std::string dev_split;                 // "dev", or "dev_matched" for MNLI
  bool is_pair = false;                  // sentence pair (text_b used) or single sentence
};

// Accepts the GLUE folder name or the HF name in any case, with or without '-'/'_':
// "SST-2", "sst2", "sst-2", "STS_B", "mnli". Unknown names raise DataError listing the valid ones.
const TaskInfo& task_info(const std::string& task);

// The nine GLUE task folder names, in the order of the GLUE paper.
const std::vector<std::string>& glue_task_names();

// Where a task's TSVs are: DIR/glue/TASK (the mirror layout) or DIR/TASK. Throws DataError naming both
// places when neither exists.
std::filesystem::path task_directory(const std::filesystem::path& data_dir, const std::string& task);

struct Example {
  std::string text_a, text_b;  // text_b is empty for single-sentence tasks
  int label = -1;              // class id; -1 when the split has no labels (test) or for STS-B
  float score = 0;             // STS-B similarity in [0, 5]; 0 for classification tasks
  int line = 0;                // 1-based line in the source file (the header is line 1)
};

// Splits one TSV line on '\t' and nothing else: GLUE TSVs are not quoted, so '"' is just a character.
std::vector<std::string> split_tabs(const std::string& line);

struct ReadReport {
  size_t rows_read = 0;               // examples returned
  size_t rows_skipped = 0;            // malformed rows dropped (only where GLUE itself has them)
  std::vector<std::string> skipped;   // "file:line: why" for each dropped row
};

// Reads <task_dir>/<split>.tsv. `split` is a file stem: "train", "dev", "test", "dev_matched",
// "dev_mismatched", ...; for MNLI "dev" means "dev_matched" and "test" means "test_matched".
// Splits whose name starts with "test" may lack the label column; their examples get label -1.
// Every text field must pass check_text (datasets/text_check.h: UTF-8, no NUL, not empty).
// A malformed row raises DataError, except for QQP, whose GLUE release has a few rows with
// missing columns or empty questions: those are skipped, listed in `report` and summarised on stderr.
std::vector<Example> read_glue_split(const std::string& task, const std::filesystem::path& task_dir,
                                     const std::string& split, ReadReport* report = nullptr);

// A readable one-paragraph summary of a ReadReport (first few skipped rows spelled out).
std::string format_report(const ReadReport& report, size_t max_listed = 5);

// ---------------------------------------------------------------------------------------------
// The paper's protocol (UniPELT, Sec. 4.1, following Gao et al. 2021): shuffle the GLUE training
// set with a data seed, take the first K examples for training and the next 1,000 as the
// development set (checkpoint selection); the original GLUE dev set (MNLI: dev_matched) is the test
// set. With k = 0 ("all"), train = the full training set in file order, dev = test = the GLUE dev
// set, as in the paper's full-data table. The paper's data seeds are 111, 222, 333, 444, 555.
// ---------------------------------------------------------------------------------------------
struct Splits {
  std::vector<Example> train, dev, test;
  size_t k = 0;             // 0 = all
  uint64_t data_seed = 0;
};

// Throws DataError when the training set has fewer than k + 1000 rows.
Splits make_protocol_splits(const std::string& task, const std::filesystem::path& task_dir, size_t k,
                            uint64_t data_seed);

// The permutation used by the protocol: Fisher-Yates driven by std::mt19937_64(seed), with our own
// unbiased bounded draw. std::shuffle and std::uniform_int_distribution are implementation-defined,
// so results would differ between libstdc++ and libc++; this is identical everywhere.
std::vector<size_t> shuffled_order(size_t n, uint64_t seed);

}  // namespace unipelt

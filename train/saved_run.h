// A saved training run, reopened: the pieces behind `unipelt eval` and `unipelt predict`.
// docs/training.md describes the run directory.
//
//   load_run / run_examples     rebuild a run's model (base + RUN/best) and its protocol splits
//   read_predict_inputs         the TSV format of `unipelt predict`
//   predict_outputs             label / score and class probabilities for encoded inputs
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "datasets/encoding.h"
#include "datasets/tokenizer.h"
#include "train/evaluate.h"
#include "train/settings.h"

namespace unipelt {

// ---------------------------------------------------------------------------------------------
// A saved run, loaded for evaluation or prediction.
// ---------------------------------------------------------------------------------------------

// Replace what RUN/config.json says (empty: keep it), e.g. after the data or model moved. `task` is
// needed only for a peft adapter directory that `unipelt export` did not write (no unipelt_run.json).
struct RunOverrides {
  std::string data_dir, model_dir, task;
  std::optional<Device> device;
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
// RUN may also be a peft LoRA adapter directory (pelt/peft_format.h): its settings then come from the
// unipelt_run.json that `unipelt export --format peft` writes beside it, or, for an adapter trained
// elsewhere, from the overrides (task and data required; the model defaults to the adapter's
// base_model_name_or_path) and the protocol's defaults (K = 100, data seed 111, max_len 128).
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
// Blank lines, lines with the wrong number of columns and texts that fail check_text (UTF-8, no NUL,
// not empty: datasets/text_check.h) raise DataError("FILE:LINE: ...").
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

}  // namespace unipelt

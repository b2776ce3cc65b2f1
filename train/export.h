// Exporting a saved run for other tools (`unipelt export RUN --format F --out DIR`):
//
//   peft          the ungated LoRA and the classifier as a peft adapter (pelt/peft_format.h), which
//                 PeftModel.from_pretrained(AutoModelForSequenceClassification..., DIR) opens, plus
//                 unipelt_run.json (the run's settings and base-weights hash) so that
//                 `unipelt eval DIR` rebuilds the run's data splits
//   transformers  a whole BertForSequenceClassification directory that transformers' from_pretrained
//                 opens: config.json (num_labels, id2label, label2id, problem_type), model.safetensors
//                 (every tensor by transformers' names), vocab.txt, tokenizer_config.json. For
//                 fine-tuning and BitFit runs as trained; for ungated LoRA runs after merging
//                 W += (alpha/r)·B·A. Adapters, prefixes and gates have no counterpart in transformers'
//                 BERT and are refused.
//
// docs/checkpoints.md has the file lists and the name mappings.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "train/saved_run.h"

namespace unipelt {

enum class ExportFormat { Peft, Transformers };
ExportFormat parse_export_format(const std::string& name);  // "peft" or "transformers"

// Writes the files into `out` (created when missing) and returns their names, in writing order.
// Throws std::invalid_argument when the run's method cannot be expressed in the format (saying why).
std::vector<std::string> export_run(const std::filesystem::path& run_dir, ExportFormat format,
                                    const std::filesystem::path& out, const RunOverrides& overrides = {});

// The file unipelt_run.json that a peft export writes beside the adapter.
constexpr const char* kPeftRunFile = "unipelt_run.json";

}  // namespace unipelt

// `unipelt export`: a saved run as a peft adapter or as a transformers model directory (export.h).
#include "train/export.h"

#include <stdexcept>

#include "datasets/glue.h"
#include "nn/bert_loader.h"
#include "nn/file_io.h"
#include "nn/safetensors.h"
#include "pelt/checkpoint.h"
#include "pelt/peft_format.h"

namespace unipelt {

namespace fs = std::filesystem;

ExportFormat parse_export_format(const std::string& name) {
  if (name == "peft") return ExportFormat::Peft;
  if (name == "transformers") return ExportFormat::Transformers;
  throw std::invalid_argument("export format must be peft or transformers, got '" + name + "'");
}

namespace {

std::vector<std::string> export_peft(const LoadedRun& run, const fs::path& out) {
  save_peft_adapter(out, *run.model, fs::absolute(run.config.model_dir).string());
  const nlohmann::json info = {{"format", 1},
                               {"note", "written by `unipelt export`; peft ignores this file. `unipelt eval DIR` "
                                        "reads it to rebuild the run's data splits and to check the base model"},
                               {"run", run.config.to_json()},
                               {"base_weights_hash", base_weights_hash(*run.base)}};
  write_file_atomically(out / kPeftRunFile, info.dump(2) + "\n");
  return {"adapter_model.safetensors", "adapter_config.json", kPeftRunFile};
}

// transformers' config for BertForSequenceClassification: the base config with the task's head.
nlohmann::json transformers_config(const BertForSequenceClassification& base, const TaskInfo& task) {
  nlohmann::json j = base.config().to_json();
  const bool regression = task.kind == TaskKind::Regression;
  std::vector<std::string> labels = task.label_names;
  if (regression) labels = {"LABEL_0"};
  nlohmann::json id2label = nlohmann::json::object(), label2id = nlohmann::json::object();
  for (size_t i = 0; i < labels.size(); ++i) {
    id2label[std::to_string(i)] = labels[i];
    label2id[labels[i]] = static_cast<int>(i);
  }
  j["architectures"] = {"BertForSequenceClassification"};
  j["num_labels"] = static_cast<int>(labels.size());
  j["id2label"] = id2label;
  j["label2id"] = label2id;
  // What transformers' loss chooses: MSE for one output, cross-entropy for integer class labels.
  j["problem_type"] = regression ? "regression" : "single_label_classification";
  j["torch_dtype"] = base.dtype() == DType::F64 ? "float64" : "float32";
  return j;
}

std::vector<std::string> export_transformers(LoadedRun& run, const fs::path& out) {
  const PeltConfig& c = run.model->config();
  if (c.adapter || c.prefix || c.gated)
    throw std::invalid_argument(
        "cannot export as a transformers model: this run (method " + c.method + ") uses " +
        (c.gated ? std::string("gates") : c.adapter ? std::string("an adapter") : std::string("prefix-tuning")) +
        ", which transformers' BertForSequenceClassification does not have. --format transformers takes "
        "fine-tuning, BitFit and ungated LoRA runs (LoRA is merged into the weights)");
  if (c.lora) run.model->merge_lora();  // W_q += s·B_q·A_q, W_v likewise
  fs::create_directories(out);
  const TaskInfo& task = task_info(run.config.task);
  write_safetensors(out / "model.safetensors", state_dict(*run.base), {{"format", "pt"}});
  write_file_atomically(out / "config.json", transformers_config(*run.base, task).dump(2) + "\n");
  const fs::path vocab = fs::path(run.config.model_dir) / "vocab.txt";
  fs::copy_file(vocab, out / "vocab.txt", fs::copy_options::overwrite_existing);
  // The tokenizer the run used (train/trainer.cpp: WordPieceTokenizer::from_vocab_file, lower-casing).
  const nlohmann::ordered_json tokenizer = {{"tokenizer_class", "BertTokenizer"},
                                            {"do_lower_case", run.tokenizer->lower_case()},
                                            {"model_max_length", run.base->config().max_position_embeddings}};
  write_file_atomically(out / "tokenizer_config.json", tokenizer.dump(2) + "\n");
  return {"model.safetensors", "config.json", "vocab.txt", "tokenizer_config.json"};
}

}  // namespace

std::vector<std::string> export_run(const fs::path& run_dir, ExportFormat format, const fs::path& out,
                                    const RunOverrides& overrides) {
  if (fs::exists(out) && fs::equivalent(out, run_dir))
    throw std::invalid_argument("--out must not be the run directory itself");
  LoadedRun run = load_run(run_dir, overrides);
  return format == ExportFormat::Peft ? export_peft(run, out) : export_transformers(run, out);
}

}  // namespace unipelt

// Loading a Hugging Face BERT model directory: config.json plus model.safetensors or, when the directory
// has no safetensors file, pytorch_model.bin (read by the restricted unpickler, nn/torch_checkpoint.h).
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "nn/bert.h"

namespace unipelt {

struct BertLoadOptions {
  int num_labels = 0;  // 0: from config.json (num_labels / id2label), else this value
  DType dtype = DType::F32;
  Device device = Device::CPU;
  uint64_t seed = 42;  // initialises the classifier when the checkpoint has none
  // A strict load (like PyTorch's load_state_dict(strict=True)) refuses a checkpoint with tensors the
  // model does not use, e.g. layers 2-3 of a 4-layer file under a config.json that says 2 layers:
  // such a mismatch means the config and the weights come from different models. Set this (the
  // CLI's --allow-unused) to load anyway; the unused tensors are then listed in the report.
  bool allow_unused = false;
};

// Every tensor of the checkpoint is either loaded, or in `ignored` with the reason it is not needed,
// or in `unused` (only with allow_unused; otherwise an unused tensor is an error).
struct BertLoadReport {
  std::filesystem::path weights;     // the file the tensors came from
  std::vector<std::string> ignored;  // "name: reason" (pre-training heads, buffers, another task's head)
  std::vector<std::string> unused;   // tensors in the file this model does not use
  bool classifier_initialised = false;
  bool pooler_initialised = false;  // BertForMaskedLM checkpoints have no pooler
  std::string summary() const;       // one line for the log
};

// DIR/model.safetensors when present, else DIR/pytorch_model.bin; throws naming both when neither exists.
std::filesystem::path model_weights_path(const std::filesystem::path& dir);

// Builds the model from `dir`. The classifier comes from the file when present with the right shape;
// otherwise it is initialised N(0, initializer_range) from options.seed (and the report says so).
// Throws one error listing every missing or wrong-shaped tensor; one listing every unused tensor
// (unless options.allow_unused); and one when dir/vocab.txt, if present, does not hold exactly
// config.json's vocab_size tokens (the vocabulary must be the one the embeddings were trained with).
std::unique_ptr<BertForSequenceClassification> load_bert(const std::filesystem::path& dir,
                                                         const BertLoadOptions& options = {},
                                                         BertLoadReport* report = nullptr);

// The model's parameters as (name, CPU tensor) pairs, ready for write_safetensors.
std::vector<std::pair<std::string, Tensor>> state_dict(const Module& module);

}  // namespace unipelt

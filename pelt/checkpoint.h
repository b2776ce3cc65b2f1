// Trainable-only checkpoints, in the spirit of peft: the frozen base model is never written.
//
//   DIR/pelt_model.safetensors   every trainable tensor (PELT modules, classifier, and the trained base
//                                tensors of BitFit / fine-tuning), by full name; prefix optionally ejected
//   DIR/pelt_config.json         {"format": 1, "pelt": {...}, "num_labels": n, "prefix_ejected": bool,
//                                 "base_model": {"config": {...}, "weights_hash": "fnv1a64:..."}}
//
// Loading is strict by exact name (missing and unexpected names are listed) and refuses a base model
// whose configuration or weights hash differs from the one the checkpoint was trained on.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "pelt/unipelt.h"

namespace unipelt {

// FNV-1a (64-bit) over the name and float32 values of every base tensor except the classifier, in the
// model's parameter order (nn/bert.cpp: named_parameters).
// Independent of the dtype the model runs in.
std::string base_weights_hash(const BertForSequenceClassification& base);

struct SavedBaseIdentity {
  nlohmann::json config;
  std::string weights_hash;
};

// The identity to record: call before training changes any base tensor (BitFit, fine-tuning).
SavedBaseIdentity base_identity(const BertForSequenceClassification& base);

// Writes both files atomically. eject_prefix: store the prefix table P instead of its MLP.
// Refuses a model whose LoRA was merged into the base weights (the checkpoint could not restore it).
void save_pelt_checkpoint(const std::filesystem::path& dir, const PeltModel& model, const SavedBaseIdentity& base,
                          bool eject_prefix);

// save_pelt_checkpoint in its two halves, for a caller that keeps the tensors (the trainer keeps the
// best epoch's in its resumable state and writes best/ from them): the tensors the checkpoint holds,
// as CPU copies by name, and the pelt_config.json it describes them with; write_pelt_checkpoint
// writes the two files.
std::vector<std::pair<std::string, Tensor>> pelt_checkpoint_tensors(const PeltModel& model, bool eject_prefix);
nlohmann::json pelt_checkpoint_config(const PeltModel& model, const SavedBaseIdentity& base, bool eject_prefix);
void write_pelt_checkpoint(const std::filesystem::path& dir, const std::vector<std::pair<std::string, Tensor>>& tensors,
                           const nlohmann::json& config);

// The PELT configuration and base identity recorded in DIR/pelt_config.json.
struct PeltCheckpointInfo {
  PeltConfig pelt;
  SavedBaseIdentity base;
  bool prefix_ejected = false;
  int num_labels = 2;
};
PeltCheckpointInfo read_pelt_checkpoint_info(const std::filesystem::path& dir);

// Builds the PELT model on `base` (which must be the model the checkpoint was trained on) and loads
// the saved tensors. Throws with a clear message on a base mismatch or missing/unexpected tensors.
std::unique_ptr<PeltModel> load_pelt_checkpoint(const std::filesystem::path& dir, BertForSequenceClassification& base);

}  // namespace unipelt

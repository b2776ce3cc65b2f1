// LoRA adapters in the format of Hugging Face peft (PeftModel.save_pretrained / from_pretrained), both
// ways, so that a LoRA trained here runs in the tool everyone else uses and vice versa.
//
//   DIR/adapter_config.json        {"peft_type": "LORA", "task_type": "SEQ_CLS", "r": r, "lora_alpha": alpha,
//                                   "target_modules": ["query", "value"], "modules_to_save": ["classifier", ...],
//                                   "bias": "none", "base_model_name_or_path": ..., ...}
//   DIR/adapter_model.safetensors  (or adapter_model.bin) the adapter's state_dict:
//     base_model.model.bert.encoder.layer.{i}.attention.self.{query,value}.lora_A.weight   [r, H]
//     base_model.model.bert.encoder.layer.{i}.attention.self.{query,value}.lora_B.weight   [H, r]
//     base_model.model.classifier.{weight,bias}                                            (modules_to_save)
//
// peft wraps the transformers model twice (LoraModel, then PeftModel), hence "base_model.model."; its
// LoRA matrices are nn.Linear layers, hence ".weight"; the adapter name ("default") is removed on
// saving. peft scales the update by lora_alpha / r, exactly our ungated LoRA (pelt/lora.h), and has no
// gates: a gated LoRA (UniPELT) cannot be expressed in this format and is refused. docs/checkpoints.md
// describes the mapping.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "pelt/unipelt.h"

namespace unipelt {

struct PeftLoraConfig {
  int r = 8;
  double lora_alpha = 8.0;
  std::string base_model_name_or_path;  // where the adapter expects its base model
};

// DIR holds adapter_config.json.
bool is_peft_adapter_dir(const std::filesystem::path& dir);

// Writes DIR/adapter_config.json and DIR/adapter_model.safetensors. Refuses (std::invalid_argument,
// saying why) a model that is not plain ungated LoRA on a frozen BERT: gates, adapters, prefixes,
// BitFit and fine-tuning have no place in a peft LoRA file.
void save_peft_adapter(const std::filesystem::path& dir, const PeltModel& model,
                       const std::string& base_model_name_or_path);

// Reads and checks DIR/adapter_config.json: a LoRA on query and value (the modules our LoRA adapts),
// bias "none", no DoRA, rsLoRA, per-layer rank patterns or fan_in_fan_out. Anything else is refused
// with a message naming the setting.
PeftLoraConfig read_peft_config(const std::filesystem::path& dir);

// peft's state_dict name -> ours: base_model.model.X.lora_A.weight -> X.lora_A; BertModel-based adapters
// (no "bert." after the prefix) get it added. Names that are not of this form come back unchanged.
std::string peft_to_unipelt_name(const std::string& peft_name);
std::string unipelt_to_peft_name(const std::string& name);

// The adapter's weights file: DIR/adapter_model.safetensors, else DIR/adapter_model.bin.
std::filesystem::path peft_weights_path(const std::filesystem::path& dir);

// Builds an ungated LoRA PeltModel on `base` with the adapter's r and alpha, and loads its tensors
// (strict: every LoRA matrix of every layer and the classifier must be there, with the right shapes).
std::unique_ptr<PeltModel> load_peft_adapter(const std::filesystem::path& dir, BertForSequenceClassification& base);

}  // namespace unipelt

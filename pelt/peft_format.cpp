// peft's LoRA format, written and read (see peft_format.h). The key names and configuration fields
// follow peft's checkpoint-format guide and its save_and_load code; only what a LoRA on BERT's query
// and value with a classification head needs is written, and everything else is refused on reading.
#include "pelt/peft_format.h"

#include <cmath>
#include <set>
#include <stdexcept>

#include "nn/file_io.h"
#include "nn/safetensors.h"
#include "nn/tensor_file.h"
#include "pelt/grads.h"

namespace unipelt {

namespace fs = std::filesystem;

namespace {

constexpr const char* kPrefix = "base_model.model.";
constexpr const char* kConfigFile = "adapter_config.json";

// LoRA parameters end in lora_A / lora_B here and in lora_A.weight / lora_B.weight in peft.
bool is_lora_matrix(const std::string& name) { return name.ends_with(".lora_A") || name.ends_with(".lora_B"); }

[[noreturn]] void refuse_export(const std::string& why) {
  throw std::invalid_argument("cannot export as a peft LoRA adapter: " + why);
}

// A number that peft writes as an int when it is one (lora_alpha is typed int in peft's LoraConfig).
nlohmann::json number(double v) {
  if (v == std::floor(v) && std::fabs(v) < 1e15) return static_cast<int64_t>(v);
  return v;
}

}  // namespace

bool is_peft_adapter_dir(const fs::path& dir) { return fs::is_directory(dir) && fs::exists(dir / kConfigFile); }

std::string unipelt_to_peft_name(const std::string& name) {
  return kPrefix + name + (is_lora_matrix(name) ? ".weight" : "");
}

std::string peft_to_unipelt_name(const std::string& peft_name) {
  if (!peft_name.starts_with(kPrefix)) return peft_name;
  std::string name = peft_name.substr(std::string(kPrefix).size());
  if (name.ends_with(".lora_A.weight") || name.ends_with(".lora_B.weight")) name.resize(name.size() - 7);
  if (name.starts_with("encoder.") || name.starts_with("embeddings.") || name.starts_with("pooler."))
    name = "bert." + name;  // an adapter trained on a BertModel
  return name;
}

fs::path peft_weights_path(const fs::path& dir) {
  for (const char* name : {"adapter_model.safetensors", "adapter_model.bin"})
    if (fs::exists(dir / name)) return dir / name;
  throw std::runtime_error(dir.string() + ": no adapter_model.safetensors or adapter_model.bin (not a peft adapter?)");
}

void save_peft_adapter(const fs::path& dir, const PeltModel& model, const std::string& base_model_name_or_path) {
  const PeltConfig& c = model.config();
  if (c.gated)
    refuse_export("its LoRA is gated (UniPELT scales each update by a learned gate g_L(x)), and peft has no gates; "
                  "only ungated LoRA runs (method lora) can be exported");
  if (!c.lora || model.lora_merged())
    refuse_export(std::string("the run has no LoRA") + (model.lora_merged() ? " (it was merged into the weights)" : "") +
                  "; export a fine-tuning or BitFit run with --format transformers");
  if (c.adapter || c.prefix || c.bitfit || c.finetune)
    refuse_export("the run trains more than LoRA and the classifier (adapter, prefix-tuning, BitFit or fine-tuning), "
                  "which a peft LoRA adapter cannot hold");
  fs::create_directories(dir);
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (const NamedTensor& p : model.trainable_parameters()) {
    if (!is_lora_matrix(p.name) && !p.name.starts_with("classifier."))
      refuse_export("trainable tensor " + p.name + " is neither a LoRA matrix nor the classifier");
    tensors.emplace_back(unipelt_to_peft_name(p.name), p.tensor.to(Device::CPU));
  }
  write_safetensors(dir / "adapter_model.safetensors", tensors, {{"format", "pt"}});
  // The fields peft's LoraConfig writes for this adapter (defaults where we have no counterpart).
  // SEQ_CLS models keep their head in modules_to_save; peft adds "classifier" and "score" itself.
  const nlohmann::ordered_json config = {
      {"alpha_pattern", nlohmann::json::object()}, {"auto_mapping", nullptr},
      {"base_model_name_or_path", base_model_name_or_path}, {"bias", "none"}, {"fan_in_fan_out", false},
      {"inference_mode", true}, {"init_lora_weights", true}, {"layers_pattern", nullptr},
      {"layers_to_transform", nullptr}, {"lora_alpha", number(c.lora_alpha)}, {"lora_dropout", 0.0},
      {"modules_to_save", {"classifier", "score"}}, {"peft_type", "LORA"}, {"r", c.lora_r},
      {"rank_pattern", nlohmann::json::object()}, {"revision", nullptr}, {"target_modules", {"query", "value"}},
      {"task_type", "SEQ_CLS"}, {"use_dora", false}, {"use_rslora", false}};
  write_file_atomically(dir / kConfigFile, config.dump(2) + "\n");
}

PeftLoraConfig read_peft_config(const fs::path& dir) {
  const fs::path path = dir / kConfigFile;
  const nlohmann::json j = read_json_file(path, "(a peft adapter_config.json)");
  auto refuse = [&](const std::string& why) {
    throw std::runtime_error(path.string() + ": " + why + "; unipelt imports peft LoRA adapters on BERT's query and "
                                                          "value projections only");
  };
  if (!j.is_object()) refuse("not a JSON object");
  auto value_is = [&](const char* key, const nlohmann::json& expected) {
    return !j.contains(key) || j.at(key).is_null() || j.at(key) == expected;
  };
  auto text = [&](const char* key) {  // "" when absent, null or not a string (peft writes null for unknowns)
    return j.contains(key) && j.at(key).is_string() ? j.at(key).get<std::string>() : std::string();
  };
  if (text("peft_type") != "LORA") refuse("peft_type is " + j.value("peft_type", nlohmann::json()).dump());
  const nlohmann::json targets = j.value("target_modules", nlohmann::json());
  std::set<std::string> target_set;
  if (targets.is_array())
    for (const auto& t : targets)
      if (t.is_string()) target_set.insert(t.get<std::string>());
  if (!targets.is_array() || target_set != std::set<std::string>{"query", "value"})
    refuse("target_modules is " + targets.dump() + ", expected [\"query\", \"value\"]");
  if (!value_is("bias", "none")) refuse("bias is " + j.at("bias").dump() + " (trained biases are not supported)");
  if (!value_is("use_dora", false)) refuse("use_dora is set (DoRA is not LoRA)");
  if (!value_is("use_rslora", false)) refuse("use_rslora is set (its scaling alpha/sqrt(r) differs from ours)");
  if (!value_is("fan_in_fan_out", false)) refuse("fan_in_fan_out is set (a GPT-2 style Conv1D layout)");
  for (const char* key : {"rank_pattern", "alpha_pattern"})
    if (!value_is(key, nlohmann::json::object())) refuse(std::string(key) + " gives layers their own settings");
  if (!value_is("layers_to_transform", nullptr)) refuse("layers_to_transform adapts only some layers");
  if (!j.contains("r") || !j.at("r").is_number_integer() || j.at("r").get<int>() <= 0) refuse("r must be a positive integer");
  if (!j.contains("lora_alpha") || !j.at("lora_alpha").is_number()) refuse("lora_alpha must be a number");
  PeftLoraConfig out;
  out.r = j.at("r").get<int>();
  out.lora_alpha = j.at("lora_alpha").get<double>();
  out.base_model_name_or_path = text("base_model_name_or_path");
  return out;
}

std::unique_ptr<PeltModel> load_peft_adapter(const fs::path& dir, BertForSequenceClassification& base) {
  const PeftLoraConfig adapter = read_peft_config(dir);
  PeltConfig config = preset("lora");
  config.lora_r = adapter.r;
  config.lora_alpha = adapter.lora_alpha;
  auto model = std::make_unique<PeltModel>(base, config, 0);
  const fs::path weights = peft_weights_path(dir);
  const std::unique_ptr<TensorFile> file = open_weights_file(weights);
  load_named_tensors(*model, *file, peft_to_unipelt_name);
  // load_named_tensors refused names the model lacks; here every trainable tensor must also be present.
  std::set<std::string> present;
  for (const std::string& name : file->names()) present.insert(peft_to_unipelt_name(name));
  std::string missing;
  for (const NamedTensor& p : model->trainable_parameters())
    if (!present.count(p.name)) missing += "\n  " + unipelt_to_peft_name(p.name) + " " + shape_str(p.tensor.shape());
  if (!missing.empty())
    throw std::runtime_error(weights.string() + ": the adapter lacks tensors this LoRA needs (" + std::to_string(adapter.r) +
                             " = r, classifier in modules_to_save):" + missing);
  return model;
}

}  // namespace unipelt

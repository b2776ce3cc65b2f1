#include "pelt/checkpoint.h"

#include <fstream>
#include <map>
#include <set>

#include "autograd/tape.h"
#include "nn/fnv1a.h"
#include "nn/safetensors.h"

namespace unipelt {

namespace {
constexpr const char* kWeightsFile = "pelt_model.safetensors";
constexpr const char* kConfigFile = "pelt_config.json";
constexpr const char* kEjectedName = "bert.encoder.prefix_ejected";

bool is_prefix_mlp(const std::string& name) {
  return name.find("prefix_enc_embed") != std::string::npos || name.find("prefix_embed_MLP") != std::string::npos;
}
}  // namespace

std::string base_weights_hash(const BertForSequenceClassification& base) {
  Fnv1a64 hash;
  for (const NamedTensor& p : base.parameters()) {
    if (p.name.rfind("classifier.", 0) == 0) continue;
    hash.mix(p.name);
    Tensor f = p.tensor.to(Device::CPU).to(DType::F32);
    hash.mix(f.data(), f.nbytes());
  }
  return hash.hex();
}

SavedBaseIdentity base_identity(const BertForSequenceClassification& base) {
  nlohmann::json config = base.config().to_json();
  return {config, base_weights_hash(base)};
}

std::vector<std::pair<std::string, Tensor>> pelt_checkpoint_tensors(const PeltModel& model, bool eject_prefix) {
  if (model.lora_merged())
    throw std::logic_error("cannot save a trainable-only checkpoint after merge_lora(): the LoRA update now lives in "
                           "the base weights, which such a checkpoint never stores; save before merging");
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (const NamedTensor& p : model.trainable_parameters())
    if (!(eject_prefix && is_prefix_mlp(p.name))) tensors.emplace_back(p.name, p.tensor.to(Device::CPU));
  if (model.prefix() && eject_prefix && !model.prefix()->ejected()) {
    NoGradGuard no_grad;
    const PrefixTuning& pt = *model.prefix();
    tensors.emplace_back(kEjectedName, pt.mlp_out.forward(ops::tanh(pt.mlp_in.forward(pt.embed))).to(Device::CPU));
  } else if (model.prefix() && model.prefix()->ejected()) {
    for (const NamedTensor& p : model.pelt_parameters())
      if (p.name == kEjectedName) tensors.emplace_back(p.name, p.tensor.to(Device::CPU));
  }
  return tensors;
}

nlohmann::json pelt_checkpoint_config(const PeltModel& model, const SavedBaseIdentity& base, bool eject_prefix) {
  const bool ejected = model.prefix() && (model.prefix()->ejected() || eject_prefix);
  return {{"format", 1},
          {"pelt", model.config().to_json()},
          {"num_labels", model.base().config().num_labels},
          {"prefix_ejected", ejected},
          {"base_model", {{"config", base.config}, {"weights_hash", base.weights_hash}}}};
}

void write_pelt_checkpoint(const std::filesystem::path& dir, const std::vector<std::pair<std::string, Tensor>>& tensors,
                           const nlohmann::json& config) {
  std::filesystem::create_directories(dir);
  write_safetensors(dir / kWeightsFile, tensors,
                    {{"format", "unipelt-pelt-1"}, {"method", config.at("pelt").at("method").get<std::string>()}});
  write_file_atomically(dir / kConfigFile, config.dump(2) + "\n");
}

void save_pelt_checkpoint(const std::filesystem::path& dir, const PeltModel& model, const SavedBaseIdentity& base,
                          bool eject_prefix) {
  write_pelt_checkpoint(dir, pelt_checkpoint_tensors(model, eject_prefix),
                        pelt_checkpoint_config(model, base, eject_prefix));
}

PeltCheckpointInfo read_pelt_checkpoint_info(const std::filesystem::path& dir) {
  const auto path = dir / kConfigFile;
  std::ifstream in(path);
  if (!in) throw std::runtime_error(path.string() + ": cannot open (not a unipelt checkpoint directory?)");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
    PeltCheckpointInfo info;
    info.pelt = PeltConfig::from_json(j.at("pelt"));
    info.base.config = j.at("base_model").at("config");
    info.base.weights_hash = j.at("base_model").at("weights_hash").get<std::string>();
    info.prefix_ejected = j.at("prefix_ejected").get<bool>();
    info.num_labels = j.at("num_labels").get<int>();
    return info;
  } catch (const std::exception& e) {
    throw std::runtime_error(path.string() + ": " + e.what());
  }
}

std::unique_ptr<PeltModel> load_pelt_checkpoint(const std::filesystem::path& dir, BertForSequenceClassification& base) {
  PeltCheckpointInfo info = read_pelt_checkpoint_info(dir);
  // The base must be the one the checkpoint was trained on: same architecture, same weights.
  const nlohmann::json here = base.config().to_json();
  std::string differences;
  for (const char* key : {"hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                          "vocab_size", "max_position_embeddings", "type_vocab_size"})
    if (info.base.config.value(key, nlohmann::json()) != here.value(key, nlohmann::json()))
      differences += std::string(" ") + key + " " + info.base.config.value(key, nlohmann::json()).dump() + " vs " +
                     here.value(key, nlohmann::json()).dump() + ";";
  if (!differences.empty())
    throw std::runtime_error(dir.string() + ": checkpoint was trained on a different base model (config differs:" +
                             differences + " checkpoint vs this model)");
  if (base.config().num_labels != info.num_labels)
    throw std::runtime_error(dir.string() + ": checkpoint has " + std::to_string(info.num_labels) +
                             " labels, the model was built with " + std::to_string(base.config().num_labels));
  const std::string hash = base_weights_hash(base);
  if (hash != info.base.weights_hash)
    throw std::runtime_error(dir.string() + ": checkpoint was trained on a different base model (weights hash " +
                             info.base.weights_hash + ", this base model " + hash + ")");

  auto model = std::make_unique<PeltModel>(base, info.pelt, 0);
  SafetensorsFile file(dir / kWeightsFile);
  if (info.prefix_ejected) {
    if (!model->prefix() || !file.contains(kEjectedName))
      throw std::runtime_error(dir.string() + ": prefix_ejected is set but " + kEjectedName + " is missing");
    model->prefix()->load_ejected(file.load(kEjectedName, base.dtype(), base.device()));
  }
  std::map<std::string, Tensor> expected;
  for (const NamedTensor& p : model->trainable_parameters()) expected[p.name] = p.tensor;
  if (info.prefix_ejected) expected.erase(kEjectedName);  // adopted above
  std::string problems;
  std::set<std::string> in_file;
  for (const StTensorInfo& t : file.tensors()) {
    if (t.name == kEjectedName && info.prefix_ejected) continue;
    in_file.insert(t.name);
    if (!expected.count(t.name)) problems += "\n  unexpected tensor " + t.name;
    else if (Shape(t.shape) != expected[t.name].shape())
      problems += "\n  " + t.name + ": file " + shape_str(t.shape) + ", model " + shape_str(expected[t.name].shape());
  }
  for (const auto& [name, t] : expected)
    if (!in_file.count(name)) problems += "\n  missing tensor " + name;
  if (!problems.empty()) throw std::runtime_error((dir / kWeightsFile).string() + ": does not match the method" + problems);
  for (const auto& [name, t] : expected) t.copy_from(file.load(name, t.dtype(), t.device()));
  return model;
}

}  // namespace unipelt

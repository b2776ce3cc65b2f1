#include "nn/bert_loader.h"

#include <sstream>

#include "nn/checkpoint_names.h"
#include "nn/init.h"
#include "nn/safetensors.h"

namespace unipelt {

std::string BertLoadReport::summary() const {
  std::ostringstream out;
  out << "loaded BERT";
  if (!weights.empty() && weights.extension() != ".safetensors") out << " from " << weights.filename().string();
  if (!ignored.empty()) out << "; ignored " << ignored.size() << " tensors (pre-training heads / buffers)";
  if (!unused.empty()) out << "; " << unused.size() << " unused tensors";
  if (classifier_initialised) out << "; classifier initialised from the seed (not in the checkpoint)";
  if (pooler_initialised) out << "; pooler initialised from the seed (not in the checkpoint, e.g. BertForMaskedLM)";
  return out.str();
}

std::filesystem::path model_weights_path(const std::filesystem::path& dir) {
  for (const char* name : {"model.safetensors", "pytorch_model.bin"})
    if (std::filesystem::exists(dir / name)) return dir / name;
  throw std::runtime_error(dir.string() + ": no model.safetensors and no pytorch_model.bin (expected a Hugging Face "
                                          "model directory)");
}

std::unique_ptr<BertForSequenceClassification> load_bert(const std::filesystem::path& dir,
                                                         const BertLoadOptions& options, BertLoadReport* report) {
  const auto config_path = dir / "config.json";
  if (!std::filesystem::exists(config_path))
    throw std::runtime_error(dir.string() + ": no config.json (expected a Hugging Face model directory)");
  const auto weights_path = model_weights_path(dir);
  BertConfig config = load_bert_config(config_path);
  if (options.num_labels > 0) {
    config.num_labels = options.num_labels;
    if (static_cast<int>(config.id2label.size()) != options.num_labels) {
      config.id2label.clear();
      for (int i = 0; i < options.num_labels; ++i) config.id2label.push_back("LABEL_" + std::to_string(i));
    }
  }
  auto model = std::make_unique<BertForSequenceClassification>(config, options.dtype, options.device);

  const std::unique_ptr<TensorFile> weights = open_weights_file(weights_path);
  const TensorFile& file = *weights;
  NameMapping mapping = map_checkpoint_names(file.names());

  std::vector<std::pair<std::string, Shape>> expected;
  const std::vector<NamedTensor> params = model->parameters();
  // BertForMaskedLM checkpoints have no pooler; like transformers, initialise it and say so.
  const bool pooler_missing = !mapping.canonical_to_file.count("bert.pooler.dense.weight") &&
                              !mapping.canonical_to_file.count("bert.pooler.dense.bias");
  for (const NamedTensor& p : params)
    if (!(pooler_missing && p.name.rfind("bert.pooler.", 0) == 0)) expected.emplace_back(p.name, p.tensor.shape());
  // A classifier of another size (a checkpoint fine-tuned on another task) is treated as absent.
  const bool head_fits = mapping.canonical_to_file.count("classifier.weight") &&
                         file.shape(mapping.canonical_to_file.at("classifier.weight")) ==
                             Shape{config.num_labels, config.hidden_size};
  if (!head_fits) {
    for (const char* n : {"classifier.weight", "classifier.bias"}) {
      if (mapping.canonical_to_file.count(n)) mapping.unused.push_back(mapping.canonical_to_file.at(n) + " (other num_labels)");
      mapping.canonical_to_file.erase(n);
    }
  }
  std::vector<std::string> missing_head;
  std::map<std::string, Tensor> loaded = load_expected(file, mapping, expected, options.dtype, true, &missing_head);
  for (const NamedTensor& p : params)
    if (loaded.count(p.name)) p.tensor.copy_from(loaded.at(p.name));
  if (!missing_head.empty()) model->init_classifier(options.seed);
  if (pooler_missing) {
    Rng rng(options.seed + 1);
    model->pooler.init_bert(rng, config.initializer_range);
  }

  if (report) {
    report->weights = weights_path;
    report->ignored = mapping.ignored;
    report->unused = mapping.unused;
    report->classifier_initialised = !missing_head.empty();
    report->pooler_initialised = pooler_missing;
  }
  return model;
}

std::vector<std::pair<std::string, Tensor>> state_dict(const Module& module) {
  std::vector<std::pair<std::string, Tensor>> out;
  for (const NamedTensor& p : module.parameters()) out.emplace_back(p.name, p.tensor.to(Device::CPU));
  return out;
}

}  // namespace unipelt

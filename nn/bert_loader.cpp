#include "nn/bert_loader.h"

#include <algorithm>
#include <charconv>
#include <limits>
#include <fstream>
#include <set>
#include <sstream>

#include "nn/checkpoint_names.h"
#include "nn/file_io.h"
#include "nn/init.h"
#include "nn/safetensors.h"

namespace unipelt {

std::string BertLoadReport::summary() const {
  std::ostringstream out;
  out << "loaded BERT";
  if (!weights.empty() && weights.extension() != ".safetensors") out << " from " << weights.filename().string();
  if (!ignored.empty()) {  // the kinds present (each entry of `ignored` gives its own reason)
    auto any = [&](const char* part) {
      return std::any_of(ignored.begin(), ignored.end(), [&](const std::string& e) { return e.find(part) != e.npos; });
    };
    std::string kinds;
    for (const auto& [part, kind] : {std::pair{"cls.", "pre-training heads"}, std::pair{"position_ids:", "buffers"},
                                     std::pair{"classifier.", "a task head for other labels"}})
      if (any(part)) kinds += (kinds.empty() ? "" : ", ") + std::string(kind);
    out << "; ignored " << ignored.size() << " tensors (" << kinds << ")";
  }
  if (!unused.empty()) out << "; " << unused.size() << " unused tensors (allowed by --allow-unused on)";
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

namespace {

// Token i of vocab.txt is row i of the word embeddings, so the two must have the same length; a
// mismatch means the vocabulary belongs to another model (and every id would embed the wrong word).
void check_vocab_size(const std::filesystem::path& dir, const BertConfig& config) {
  const auto vocab_path = dir / "vocab.txt";
  if (!std::filesystem::is_regular_file(vocab_path)) return;  // the tokenizer reports a missing vocabulary
  std::ifstream in(vocab_path, std::ios::binary);
  std::ostringstream content;
  content << in.rdbuf();
  const size_t tokens = split_lines(content.str()).size();
  if (tokens != static_cast<size_t>(config.vocab_size))
    throw std::runtime_error(vocab_path.string() + " has " + std::to_string(tokens) + " tokens but " +
                             (dir / "config.json").string() + " says vocab_size " +
                             std::to_string(config.vocab_size) +
                             "; the vocabulary must be the one the model was trained with (token i is row i "
                             "of the word embeddings)");
}

// The file's tensors that nothing loads and no rule ignores: names no BERT parameter has, and BERT
// names this model lacks (layers beyond num_hidden_layers).
std::vector<std::string> unused_tensors(const NameMapping& mapping,
                                        const std::vector<std::pair<std::string, Shape>>& expected) {
  std::set<std::string> wanted;
  for (const auto& [name, shape] : expected) wanted.insert(name);
  std::vector<std::string> unused = mapping.unused;
  for (const auto& [canonical, file_name] : mapping.canonical_to_file)
    if (!wanted.count(canonical)) unused.push_back(file_name);
  return unused;
}

[[noreturn]] void refuse_unused(const std::filesystem::path& dir, const std::filesystem::path& weights,
                                const std::vector<std::string>& unused, const NameMapping& mapping,
                                const BertConfig& config) {
  int layers_in_file = 0;  // 1 + the highest encoder layer index among the file's BERT names
  const std::string prefix = "bert.encoder.layer.";
  for (const auto& [canonical, file_name] : mapping.canonical_to_file) {
    int index = 0;  // the digits after the prefix (canonical names have them); a huge index stays 0
    if (canonical.starts_with(prefix) &&
        std::from_chars(canonical.data() + prefix.size(), canonical.data() + canonical.size(), index).ec == std::errc())
      layers_in_file = std::max(layers_in_file, index < std::numeric_limits<int>::max() ? index + 1 : index);
  }
  std::string msg = "checkpoint '" + weights.string() + "' has " + std::to_string(unused.size()) +
                    " tensor(s) the model does not use";
  if (layers_in_file > config.num_hidden_layers)
    msg += " (it has " + std::to_string(layers_in_file) + " encoder layers, " + (dir / "config.json").string() +
           " says num_hidden_layers " + std::to_string(config.num_hidden_layers) + ")";
  msg += ":";
  for (const std::string& name : unused) msg += "\n    " + name;
  msg += "\n  config.json and the weights seem to describe different models; fix config.json, or pass "
         "--allow-unused on to load the used tensors anyway";
  throw std::runtime_error(msg);
}

}  // namespace

std::unique_ptr<BertForSequenceClassification> load_bert(const std::filesystem::path& dir,
                                                         const BertLoadOptions& options, BertLoadReport* report) {
  const auto config_path = dir / "config.json";
  if (!std::filesystem::exists(config_path))
    throw std::runtime_error(dir.string() + ": no config.json (expected a Hugging Face model directory)");
  const auto weights_path = model_weights_path(dir);
  BertConfig config = load_bert_config(config_path);
  check_vocab_size(dir, config);
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
      if (mapping.canonical_to_file.count(n))
        mapping.ignored.push_back(mapping.canonical_to_file.at(n) + ": task head that does not fit " +
                                  std::to_string(config.num_labels) + " labels, replaced by a new one");
      mapping.canonical_to_file.erase(n);
    }
  }
  std::vector<std::string> missing_head;
  std::map<std::string, Tensor> loaded = load_expected(file, mapping, expected, options.dtype, true, &missing_head);
  const std::vector<std::string> unused = unused_tensors(mapping, expected);
  if (!unused.empty() && !options.allow_unused) refuse_unused(dir, weights_path, unused, mapping, config);
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
    report->unused = unused;
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

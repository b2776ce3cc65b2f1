// Checkpoint name normalisation and checked loading; see checkpoint_names.h.
#include "nn/checkpoint_names.h"

#include <algorithm>
#include <cctype>
#include <stdexcept>

namespace unipelt {

namespace {

// The parameters of one encoder layer, relative to "bert.encoder.layer.{i}.".
const std::vector<std::string>& layer_suffixes() {
  static const std::vector<std::string> suffixes = [] {
    std::vector<std::string> out;
    for (const char* module : {"attention.self.query", "attention.self.key", "attention.self.value",
                               "attention.output.dense", "attention.output.LayerNorm", "intermediate.dense",
                               "output.dense", "output.LayerNorm"})
      for (const char* param : {"weight", "bias"}) out.push_back(std::string(module) + "." + param);
    return out;
  }();
  return suffixes;
}

// Old checkpoints (TensorFlow conversions, pytorch-pretrained-bert) call LayerNorm's scale and shift
// gamma and beta; transformers renames them the same way when it loads such a file.
std::string rename_legacy_layernorm(const std::string& name) {
  if (name.ends_with("LayerNorm.gamma")) return name.substr(0, name.size() - 5) + "weight";
  if (name.ends_with("LayerNorm.beta")) return name.substr(0, name.size() - 4) + "bias";
  return name;
}

std::string shape_list(const Shape& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

}  // namespace

bool is_canonical_bert_name(const std::string& name) {
  static const std::vector<std::string> fixed = {
      "bert.embeddings.word_embeddings.weight", "bert.embeddings.position_embeddings.weight",
      "bert.embeddings.token_type_embeddings.weight", "bert.embeddings.LayerNorm.weight",
      "bert.embeddings.LayerNorm.bias", "bert.pooler.dense.weight", "bert.pooler.dense.bias",
      "classifier.weight", "classifier.bias"};
  if (std::find(fixed.begin(), fixed.end(), name) != fixed.end()) return true;

  const std::string prefix = "bert.encoder.layer.";
  if (!name.starts_with(prefix)) return false;
  size_t pos = prefix.size(), digits_end = pos;
  while (digits_end < name.size() && std::isdigit(static_cast<unsigned char>(name[digits_end]))) ++digits_end;
  if (digits_end == pos || digits_end >= name.size() || name[digits_end] != '.') return false;
  if (name[pos] == '0' && digits_end - pos > 1) return false;  // "01" is not a layer index
  const std::string suffix = name.substr(digits_end + 1);
  const auto& suffixes = layer_suffixes();
  return std::find(suffixes.begin(), suffixes.end(), suffix) != suffixes.end();
}

NameMapping map_checkpoint_names(const std::vector<std::string>& file_names) {
  NameMapping mapping;
  for (const std::string& file_name : file_names) {
    // Things a BertForSequenceClassification does not have, but which are expected in a BERT file.
    if (file_name.starts_with("cls.")) {
      mapping.ignored.push_back(file_name + ": pre-training head (masked-LM / next-sentence), not used");
      continue;
    }
    if (file_name.ends_with("embeddings.position_ids")) {
      mapping.ignored.push_back(file_name + ": constant buffer 0..max_position-1, recomputed by the model");
      continue;
    }

    // BertModel checkpoints store the encoder without the "bert." prefix the task models wrap it in.
    std::string canonical = rename_legacy_layernorm(file_name);
    if (canonical.starts_with("embeddings.") || canonical.starts_with("encoder.") ||
        canonical.starts_with("pooler."))
      canonical = "bert." + canonical;

    if (!is_canonical_bert_name(canonical)) {
      mapping.unused.push_back(file_name);
      continue;
    }
    auto [it, inserted] = mapping.canonical_to_file.emplace(canonical, file_name);
    if (!inserted)
      throw std::runtime_error("checkpoint is ambiguous: both '" + it->second + "' and '" + file_name +
                               "' map to parameter '" + canonical + "'");
  }
  return mapping;
}

std::map<std::string, Tensor> load_expected(const TensorFile& file, const NameMapping& mapping,
                                            const std::vector<std::pair<std::string, Shape>>& expected, DType dtype,
                                            bool allow_missing_classifier, std::vector<std::string>* missing_optional) {
  // First pass: collect every problem, so a user fixing a checkpoint sees them all at once rather
  // than one per run.
  std::vector<std::string> missing, wrong_shape;
  std::vector<std::pair<std::string, std::string>> to_load;  // canonical, file name
  for (const auto& [canonical, shape] : expected) {
    auto it = mapping.canonical_to_file.find(canonical);
    if (it == mapping.canonical_to_file.end() || !file.contains(it->second)) {
      if (allow_missing_classifier && canonical.starts_with("classifier.")) {
        if (missing_optional) missing_optional->push_back(canonical);
      } else {
        missing.push_back(canonical + " " + shape_list(shape));
      }
      continue;
    }
    const std::vector<int64_t> file_shape = file.shape(it->second);
    Shape stored = file_shape.empty() ? Shape{1} : Shape(file_shape.begin(), file_shape.end());
    if (stored != shape) {
      std::string where = it->second == canonical ? canonical : canonical + " (stored as '" + it->second + "')";
      wrong_shape.push_back(where + ": checkpoint has " + shape_list(stored) + ", model expects " + shape_list(shape));
      continue;
    }
    to_load.emplace_back(canonical, it->second);
  }

  if (!missing.empty() || !wrong_shape.empty()) {
    std::string msg = "checkpoint '" + file.path().string() + "' does not match the model";
    if (!missing.empty()) {
      msg += "\n  missing " + std::to_string(missing.size()) + " tensor(s):";
      for (const auto& m : missing) msg += "\n    " + m;
    }
    if (!wrong_shape.empty()) {
      msg += "\n  " + std::to_string(wrong_shape.size()) + " tensor(s) with the wrong shape:";
      for (const auto& w : wrong_shape) msg += "\n    " + w;
    }
    // Unrecognised names usually explain the missing ones (a different prefix, another architecture).
    if (!missing.empty() && !mapping.unused.empty()) {
      msg += "\n  names in the file that matched no parameter:";
      size_t shown = std::min<size_t>(mapping.unused.size(), 10);
      for (size_t i = 0; i < shown; ++i) msg += "\n    " + mapping.unused[i];
      if (shown < mapping.unused.size()) msg += "\n    ... and " + std::to_string(mapping.unused.size() - shown) + " more";
    }
    throw std::runtime_error(msg);
  }

  std::map<std::string, Tensor> out;
  for (const auto& [canonical, file_name] : to_load) out.emplace(canonical, file.load(file_name, dtype));
  return out;
}

}  // namespace unipelt

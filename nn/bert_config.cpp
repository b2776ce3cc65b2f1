// Reading, validating and writing BERT configs; see bert_config.h.
#include "nn/bert_config.h"

#include <cmath>
#include <limits>
#include <sstream>
#include <stdexcept>

#include "nn/file_io.h"

namespace unipelt {

namespace {

using nlohmann::json;

[[noreturn]] void config_error(const std::string& source, const std::string& key, const std::string& what) {
  throw std::runtime_error(source + ": \"" + key + "\" " + what);
}

// A key that is absent or null takes the default, as transformers does for every BertConfig argument.
bool present(const json& j, const std::string& key) { return j.contains(key) && !j.at(key).is_null(); }

int get_int(const json& j, const std::string& key, int fallback, const std::string& source) {
  if (!present(j, key)) return fallback;
  const json& v = j.at(key);
  if (!v.is_number_integer()) config_error(source, key, "must be an integer, found " + v.dump());
  int64_t x = v.get<int64_t>();
  if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int>::max()))
    config_error(source, key, "is too large: " + v.dump());
  if (x < std::numeric_limits<int>::min() || x > std::numeric_limits<int>::max())
    config_error(source, key, "is out of range: " + v.dump());
  return static_cast<int>(x);
}

double get_double(const json& j, const std::string& key, double fallback, const std::string& source) {
  if (!present(j, key)) return fallback;
  const json& v = j.at(key);
  if (!v.is_number()) config_error(source, key, "must be a number, found " + v.dump());
  return v.get<double>();
}

std::string get_string(const json& j, const std::string& key, const std::string& fallback, const std::string& source) {
  if (!present(j, key)) return fallback;
  const json& v = j.at(key);
  if (!v.is_string()) config_error(source, key, "must be a string, found " + v.dump());
  return v.get<std::string>();
}

// id2label is {"0": "NEGATIVE", "1": "POSITIVE"}: JSON object keys are strings, so the ids are decimal
// strings. They must be exactly 0..n-1, since label i is row i of the classifier.
std::vector<std::string> parse_id2label(const json& v, const std::string& source) {
  if (!v.is_object()) config_error(source, "id2label", "must be an object {\"0\": \"label\", ...}, found " + v.dump());
  std::vector<std::string> labels(v.size());
  std::vector<bool> seen(v.size(), false);
  for (const auto& [key, value] : v.items()) {
    size_t id = 0, used = 0;
    try {
      id = std::stoul(key, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != key.size() || key.empty() || id >= labels.size() || seen[id])
      config_error(source, "id2label", "must have the ids 0.." + std::to_string(labels.size() - 1) +
                                           " exactly once each; found key \"" + key + "\"");
    if (!value.is_string()) config_error(source, "id2label", "value for id " + key + " must be a string");
    labels[id] = value.get<std::string>();
    seen[id] = true;
  }
  return labels;
}

std::vector<std::string> default_labels(int n) {
  std::vector<std::string> labels;
  for (int i = 0; i < n; ++i) labels.push_back("LABEL_" + std::to_string(i));
  return labels;
}

}  // namespace

const char* const kRequiredKeys[6] = {"vocab_size",        "hidden_size",       "num_hidden_layers",
                                      "num_attention_heads", "intermediate_size", "max_position_embeddings"};

BertConfig parse_bert_config(const json& j, const std::string& source) {
  if (!j.is_object()) throw std::runtime_error(source + ": a config must be a JSON object, found " + j.type_name());

  // Only "bert" is accepted: a RoBERTa or DistilBERT config has the same keys but a different model.
  std::string model_type = get_string(j, "model_type", "bert", source);
  if (model_type != "bert") config_error(source, "model_type", "is \"" + model_type + "\"; only \"bert\" is supported");
  std::string position_type = get_string(j, "position_embedding_type", "absolute", source);
  if (position_type != "absolute")
    config_error(source, "position_embedding_type",
                 "is \"" + position_type + "\"; only \"absolute\" position embeddings are implemented");

  // The sizes that fix the architecture. transformers would default them to bert-base's, but a file
  // without one is not the config of the weights beside it, and a guessed hidden_size of 768 turns a
  // one-line problem into a page of shape mismatches (a guessed head count would go unnoticed).
  for (const char* key : kRequiredKeys)
    if (!present(j, key)) config_error(source, key, "is missing (a required key: it fixes the model's shape)");

  BertConfig c;
  c.vocab_size = get_int(j, "vocab_size", c.vocab_size, source);
  c.hidden_size = get_int(j, "hidden_size", c.hidden_size, source);
  c.num_hidden_layers = get_int(j, "num_hidden_layers", c.num_hidden_layers, source);
  c.num_attention_heads = get_int(j, "num_attention_heads", c.num_attention_heads, source);
  c.intermediate_size = get_int(j, "intermediate_size", c.intermediate_size, source);
  c.max_position_embeddings = get_int(j, "max_position_embeddings", c.max_position_embeddings, source);
  c.type_vocab_size = get_int(j, "type_vocab_size", c.type_vocab_size, source);
  c.hidden_act = get_string(j, "hidden_act", c.hidden_act, source);
  c.layer_norm_eps = get_double(j, "layer_norm_eps", c.layer_norm_eps, source);
  c.hidden_dropout_prob = get_double(j, "hidden_dropout_prob", c.hidden_dropout_prob, source);
  c.attention_probs_dropout_prob = get_double(j, "attention_probs_dropout_prob", c.attention_probs_dropout_prob, source);
  c.classifier_dropout = get_double(j, "classifier_dropout", c.hidden_dropout_prob, source);
  c.initializer_range = get_double(j, "initializer_range", c.initializer_range, source);
  c.pad_token_id = get_int(j, "pad_token_id", c.pad_token_id, source);

  // The label count comes from num_labels or from id2label; when both are given they must agree.
  if (present(j, "id2label")) {
    c.id2label = parse_id2label(j.at("id2label"), source);
    c.num_labels = static_cast<int>(c.id2label.size());
    if (present(j, "num_labels") && get_int(j, "num_labels", 0, source) != c.num_labels)
      config_error(source, "num_labels", "is " + j.at("num_labels").dump() + " but id2label has " +
                                             std::to_string(c.num_labels) + " entries");
  } else {
    c.num_labels = get_int(j, "num_labels", 2, source);
    if (c.num_labels >= 1) c.id2label = default_labels(c.num_labels);
  }
  c.raw = j;
  c.validate(source);
  return c;
}

void BertConfig::validate(const std::string& source) const {
  auto positive = [&](const char* key, int value) {
    if (value <= 0) config_error(source, key, "must be positive, found " + std::to_string(value));
  };
  positive("vocab_size", vocab_size);
  positive("hidden_size", hidden_size);
  positive("num_hidden_layers", num_hidden_layers);
  positive("num_attention_heads", num_attention_heads);
  positive("intermediate_size", intermediate_size);
  positive("max_position_embeddings", max_position_embeddings);
  positive("type_vocab_size", type_vocab_size);
  positive("num_labels", num_labels);
  if (hidden_size % num_attention_heads != 0)
    config_error(source, "hidden_size", "(" + std::to_string(hidden_size) + ") must be divisible by num_attention_heads (" +
                                            std::to_string(num_attention_heads) + ")");
  if (hidden_act != "gelu")
    config_error(source, "hidden_act", "is \"" + hidden_act +
                                           "\"; only \"gelu\" (the exact erf form x·Φ(x)) is implemented — "
                                           "\"gelu_new\"/\"gelu_pytorch_tanh\" (tanh approximation), \"relu\" etc. are not");
  auto probability = [&](const char* key, double p) {
    if (!(p >= 0.0 && p < 1.0)) config_error(source, key, "must be in [0, 1), found " + std::to_string(p));
  };
  probability("hidden_dropout_prob", hidden_dropout_prob);
  probability("attention_probs_dropout_prob", attention_probs_dropout_prob);
  probability("classifier_dropout", classifier_dropout);
  if (!(layer_norm_eps > 0.0) || !std::isfinite(layer_norm_eps))
    config_error(source, "layer_norm_eps", "must be a positive number, found " + std::to_string(layer_norm_eps));
  if (!(initializer_range >= 0.0) || !std::isfinite(initializer_range))
    config_error(source, "initializer_range", "must be non-negative, found " + std::to_string(initializer_range));
  if (pad_token_id < 0 || pad_token_id >= vocab_size)
    config_error(source, "pad_token_id", "must be a token id in [0, " + std::to_string(vocab_size) + "), found " +
                                             std::to_string(pad_token_id));
  if (id2label.size() != static_cast<size_t>(num_labels))
    config_error(source, "id2label", "has " + std::to_string(id2label.size()) + " entries but num_labels is " +
                                         std::to_string(num_labels));
}

json BertConfig::to_json() const {
  json j = raw.is_object() ? raw : json::object();
  j.erase("num_labels");  // transformers derives it from id2label when reading, and so do we
  j["model_type"] = "bert";
  j["vocab_size"] = vocab_size;
  j["hidden_size"] = hidden_size;
  j["num_hidden_layers"] = num_hidden_layers;
  j["num_attention_heads"] = num_attention_heads;
  j["intermediate_size"] = intermediate_size;
  j["max_position_embeddings"] = max_position_embeddings;
  j["type_vocab_size"] = type_vocab_size;
  j["hidden_act"] = hidden_act;
  j["layer_norm_eps"] = layer_norm_eps;
  j["hidden_dropout_prob"] = hidden_dropout_prob;
  j["attention_probs_dropout_prob"] = attention_probs_dropout_prob;
  j["classifier_dropout"] = classifier_dropout;
  j["initializer_range"] = initializer_range;
  j["pad_token_id"] = pad_token_id;
  j["position_embedding_type"] = "absolute";
  json id2label_json = json::object(), label2id_json = json::object();
  for (size_t i = 0; i < id2label.size(); ++i) {
    id2label_json[std::to_string(i)] = id2label[i];
    label2id_json[id2label[i]] = static_cast<int>(i);
  }
  j["id2label"] = id2label_json;
  j["label2id"] = label2id_json;
  return j;
}

BertConfig load_bert_config(const std::filesystem::path& path) {
  return parse_bert_config(read_json_file(path, "BERT config"), path.string());
}

void save_bert_config(const BertConfig& config, const std::filesystem::path& path) {
  config.validate(path.string());
  write_file_atomically(path, config.to_json().dump(2) + "\n");
}

}  // namespace unipelt

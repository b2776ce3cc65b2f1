// BertConfig: the model hyper-parameters, read from a Hugging Face config.json (or Google's original
// bert_config.json, which uses the same keys without "model_type").
//
// The keys that fix the architecture's shape are required (kRequiredKeys: vocab_size, hidden_size,
// num_hidden_layers, num_attention_heads, intermediate_size, max_position_embeddings); other absent keys
// take transformers' BertConfig defaults (type_vocab_size 2, layer_norm_eps 1e-12, dropouts 0.1, ...). Values are validated on load, and anything this implementation cannot reproduce faithfully is
// refused instead of silently approximated: only the exact erf GELU ("gelu") and absolute position
// embeddings are implemented. Errors name the file and the key.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace unipelt {

struct BertConfig {
  int vocab_size = 30522;
  int hidden_size = 768;
  int num_hidden_layers = 12;
  int num_attention_heads = 12;
  int intermediate_size = 3072;
  int max_position_embeddings = 512;
  int type_vocab_size = 2;
  std::string hidden_act = "gelu";
  double layer_norm_eps = 1e-12;
  double hidden_dropout_prob = 0.1;
  double attention_probs_dropout_prob = 0.1;
  // transformers' classifier_dropout: null/absent means "use hidden_dropout_prob", resolved here.
  double classifier_dropout = 0.1;
  double initializer_range = 0.02;
  int num_labels = 2;
  std::vector<std::string> id2label = {"LABEL_0", "LABEL_1"};  // one per label; "LABEL_i" when not given
  int pad_token_id = 0;
  nlohmann::json raw = nlohmann::json::object();  // the file as read (keys we do not model survive to_json)

  int head_dim() const { return hidden_size / num_attention_heads; }

  // Back to Hugging Face form: `raw` with the known keys overwritten by this struct's values, plus
  // "model_type": "bert", id2label and label2id. Loading the result gives back an equal config.
  nlohmann::json to_json() const;

  // Throws std::runtime_error("<source>: <key> ...") if a value is unusable. load_bert_config calls it;
  // call it again after editing fields by hand.
  void validate(const std::string& source = "BertConfig") const;
};

// Keys parse_bert_config refuses to default; a config without one is an error naming the key.
extern const char* const kRequiredKeys[6];

// Parses an already-loaded JSON object; `source` (a file name) prefixes every error message.
BertConfig parse_bert_config(const nlohmann::json& json, const std::string& source = "BertConfig");

// Reads and parses a config file.
BertConfig load_bert_config(const std::filesystem::path& path);

// Writes to_json() to `path` (pretty-printed, atomically).
void save_bert_config(const BertConfig& config, const std::filesystem::path& path);

}  // namespace unipelt

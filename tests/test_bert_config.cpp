// BERT config.json loading, validation and writing.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>

#include "nn/bert_config.h"
#include "tests/test_util.h"

using namespace unipelt;
using Catch::Contains;
using nlohmann::json;

TEST_CASE("absent keys take the transformers defaults", "[config]") {
  BertConfig c = parse_bert_config(json::object());
  CHECK(c.vocab_size == 30522);
  CHECK(c.hidden_size == 768);
  CHECK(c.num_hidden_layers == 12);
  CHECK(c.num_attention_heads == 12);
  CHECK(c.head_dim() == 64);
  CHECK(c.intermediate_size == 3072);
  CHECK(c.max_position_embeddings == 512);
  CHECK(c.type_vocab_size == 2);
  CHECK(c.hidden_act == "gelu");
  CHECK(c.layer_norm_eps == 1e-12);
  CHECK(c.hidden_dropout_prob == 0.1);
  CHECK(c.attention_probs_dropout_prob == 0.1);
  CHECK(c.classifier_dropout == 0.1);
  CHECK(c.initializer_range == 0.02);
  CHECK(c.num_labels == 2);
  CHECK(c.id2label == std::vector<std::string>{"LABEL_0", "LABEL_1"});
  CHECK(c.pad_token_id == 0);

  // null means "default" too, as in transformers (classifier_dropout: null is the common case).
  BertConfig d = parse_bert_config(json{{"classifier_dropout", nullptr}, {"hidden_dropout_prob", 0.2}});
  CHECK(d.classifier_dropout == 0.2);
}

TEST_CASE("labels come from num_labels or id2label", "[config]") {
  BertConfig a = parse_bert_config(json{{"id2label", {{"0", "NEG"}, {"2", "POS"}, {"1", "NEU"}}}});
  CHECK(a.num_labels == 3);
  CHECK(a.id2label == std::vector<std::string>{"NEG", "NEU", "POS"});
  BertConfig b = parse_bert_config(json{{"num_labels", 1}});  // regression (STS-B)
  CHECK(b.id2label == std::vector<std::string>{"LABEL_0"});
  CHECK_THROWS_WITH(parse_bert_config(json{{"num_labels", 2}, {"id2label", {{"0", "a"}, {"1", "b"}, {"2", "c"}}}}, "x.json"),
                    Contains("x.json") && Contains("\"num_labels\"") && Contains("id2label has 3"));
  CHECK_THROWS_WITH(parse_bert_config(json{{"id2label", {{"0", "a"}, {"2", "b"}}}}, "x.json"),
                    Contains("\"id2label\"") && Contains("\"2\""));
  CHECK_THROWS_WITH(parse_bert_config(json{{"id2label", {{"zero", "a"}}}}, "x.json"), Contains("\"zero\""));
}

TEST_CASE("unsupported or invalid configs are refused with the file and key named", "[config]") {
  auto error_for = [](json j) {
    try {
      parse_bert_config(j, "cfg.json");
    } catch (const std::runtime_error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK_THAT(error_for({{"hidden_act", "gelu_new"}}), Contains("cfg.json: \"hidden_act\" is \"gelu_new\"") &&
                                                         Contains("only \"gelu\""));
  CHECK_THAT(error_for({{"hidden_act", "relu"}}), Contains("\"hidden_act\" is \"relu\""));
  CHECK_THAT(error_for({{"hidden_size", 100}, {"num_attention_heads", 3}}),
             Contains("cfg.json: \"hidden_size\" (100) must be divisible by num_attention_heads (3)"));
  CHECK_THAT(error_for({{"position_embedding_type", "relative_key"}}), Contains("\"position_embedding_type\""));
  CHECK_THAT(error_for({{"model_type", "roberta"}}), Contains("\"model_type\" is \"roberta\""));
  CHECK_THAT(error_for({{"num_hidden_layers", 0}}), Contains("\"num_hidden_layers\" must be positive"));
  CHECK_THAT(error_for({{"vocab_size", -3}}), Contains("\"vocab_size\" must be positive"));
  CHECK_THAT(error_for({{"hidden_size", "768"}}), Contains("\"hidden_size\" must be an integer"));
  CHECK_THAT(error_for({{"hidden_size", 768.5}}), Contains("\"hidden_size\" must be an integer"));
  CHECK_THAT(error_for({{"intermediate_size", 1e12}}), Contains("\"intermediate_size\" must be an integer"));
  CHECK_THAT(error_for({{"max_position_embeddings", 5000000000LL}}), Contains("\"max_position_embeddings\""));
  CHECK_THAT(error_for({{"hidden_dropout_prob", 1.0}}), Contains("\"hidden_dropout_prob\" must be in [0, 1)"));
  CHECK_THAT(error_for({{"layer_norm_eps", 0}}), Contains("\"layer_norm_eps\""));
  CHECK_THAT(error_for({{"pad_token_id", 40000}}), Contains("\"pad_token_id\""));
  CHECK_THAT(error_for(json::array()), Contains("must be a JSON object"));
}

TEST_CASE("config files: errors name the file, save and load round trip", "[config]") {
  auto dir = testing::scratch_dir("bert_config");
  CHECK_THROWS_WITH(load_bert_config(dir / "absent.json"), Contains("absent.json") && Contains("cannot open"));
  std::ofstream(dir / "broken.json") << "{\"hidden_size\": 12,";
  CHECK_THROWS_WITH(load_bert_config(dir / "broken.json"), Contains("broken.json") && Contains("not valid JSON"));
  std::ofstream(dir / "act.json") << R"({"hidden_act": "gelu_new"})";
  CHECK_THROWS_WITH(load_bert_config(dir / "act.json"), Contains("act.json") && Contains("hidden_act"));

  BertConfig c = parse_bert_config(json{{"hidden_size", 64}, {"num_attention_heads", 2}, {"num_hidden_layers", 3},
                                        {"intermediate_size", 96}, {"vocab_size", 100}, {"layer_norm_eps", 1e-5},
                                        {"id2label", {{"0", "no"}, {"1", "yes"}}}, {"_name_or_path", "tiny"}});
  save_bert_config(c, dir / "config.json");
  BertConfig d = load_bert_config(dir / "config.json");
  CHECK(d.hidden_size == 64);
  CHECK(d.num_attention_heads == 2);
  CHECK(d.num_hidden_layers == 3);
  CHECK(d.intermediate_size == 96);
  CHECK(d.vocab_size == 100);
  CHECK(d.layer_norm_eps == 1e-5);
  CHECK(d.id2label == std::vector<std::string>{"no", "yes"});
  CHECK(d.raw.at("_name_or_path") == "tiny");  // unknown keys survive
  CHECK(d.raw.at("label2id").at("yes") == 1);
  CHECK(d.to_json() == c.to_json());
  CHECK_FALSE(std::filesystem::exists(dir / ("config.json.tmp." + std::to_string(getpid()))));
}

TEST_CASE("config: bert-mini-mlm (transformers config.json)", "[config]") {
  BertConfig c = load_bert_config(testing::require_data("models/bert-mini-mlm/config.json"));
  CHECK(c.hidden_size == 256);
  CHECK(c.num_hidden_layers == 4);
  CHECK(c.num_attention_heads == 4);
  CHECK(c.intermediate_size == 1024);
  CHECK(c.vocab_size == 30522);
  CHECK(c.num_labels == 2);
}

TEST_CASE("config: bert-base-uncased (Google bert_config.json)", "[config]") {
  BertConfig c = load_bert_config(testing::require_data("bert/bert-base-uncased/bert_config.json"));
  CHECK(c.hidden_size == 768);
  CHECK(c.num_hidden_layers == 12);
  CHECK(c.vocab_size == 30522);
  CHECK(c.layer_norm_eps == 1e-12);  // absent in Google's file: the default
  CHECK_FALSE(c.raw.contains("model_type"));
}

TEST_CASE("config: Google BERT-mini (bert_config.json)", "[config]") {
  BertConfig c = load_bert_config(testing::require_data("bert/google-bert-mini-uncased_L-4_H-256_A-4/bert_config.json"));
  CHECK(c.hidden_size == 256);
  CHECK(c.num_hidden_layers == 4);
  CHECK(c.num_attention_heads == 4);
  CHECK(c.intermediate_size == 1024);
}

TEST_CASE("config: bert-tiny and a fine-tuned bert-base-cased", "[config]") {
  BertConfig tiny = load_bert_config(testing::require_data("bert/bert-tiny-L-2_H-128_A-2/config.json"));
  CHECK(tiny.hidden_size == 128);
  CHECK(tiny.num_hidden_layers == 2);
  CHECK(tiny.num_attention_heads == 2);
  CHECK(tiny.classifier_dropout == 0.1);  // null -> hidden_dropout_prob
  BertConfig cased = load_bert_config(testing::require_data("bert/bert-base-cased/config.finetuned-seqcls.json"));
  CHECK(cased.vocab_size == 28996);
  CHECK(cased.num_labels == 2);
}

// Inputs checked against each other and against the text rule (issue 11, item 3): a checkpoint whose
// tensors the model does not all use, a vocab.txt of another length than vocab_size, and texts that
// are empty, not UTF-8 or hold NUL bytes, in every reader (GLUE TSVs, predict inputs; tokenize's
// standard input is tested in test_tokenizer.cpp, config.json's required keys in test_bert_config.cpp).
// Also the integers of run-directory JSON files, which the run_files fuzz harness found cast unchecked.
#include <catch2/catch.hpp>

#include <fstream>
#include <set>

#include "datasets/glue.h"
#include "datasets/text_check.h"
#include "nn/bert_loader.h"
#include "nn/file_io.h"
#include "nn/safetensors.h"
#include "pelt/method_checks.h"
#include "tests/test_util.h"
#include "train/report.h"
#include "train/saved_run.h"

using namespace unipelt;
using Catch::Contains;
namespace fs = std::filesystem;

namespace {

// A model directory whose weights have `file_layers` encoder layers and whose config.json says
// `config_layers`; `extra` tensors are added to the weights.
fs::path layered_model_dir(const std::string& name, int file_layers, int config_layers,
                           const std::vector<std::pair<std::string, Tensor>>& extra = {}) {
  const fs::path dir = testing::scratch_dir(name);
  BertConfig config = tiny_bert_config(2);
  config.num_hidden_layers = file_layers;
  BertForSequenceClassification bert(config, DType::F32);
  bert.init_weights(7);
  std::vector<std::pair<std::string, Tensor>> tensors = state_dict(bert);
  tensors.insert(tensors.end(), extra.begin(), extra.end());
  write_safetensors(dir / "model.safetensors", tensors);
  config.num_hidden_layers = config_layers;
  save_bert_config(config, dir / "config.json");
  return dir;
}

std::string load_error(const fs::path& dir, const BertLoadOptions& options = {}) {
  return testing::error_of([&] { load_bert(dir, options); });
}

fs::path write_file(const fs::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

template <typename F>
std::string data_error_of(F&& f) {
  return testing::error_of<DataError>(f);
}

}  // namespace

// ---------------------------------------------------------------------------------------------------
// Checkpoint tensors: used, ignored for a stated reason, or an error
// ---------------------------------------------------------------------------------------------------

TEST_CASE("encoder layers the config does not use are an error listing them, unless allow_unused", "[inputs]") {
  const fs::path dir = layered_model_dir("inputs_extra_layers", 4, 2);
  const std::string error = load_error(dir);
  CHECK_THAT(error, Contains("has 32 tensor(s) the model does not use"));
  CHECK_THAT(error, Contains("it has 4 encoder layers") && Contains("says num_hidden_layers 2"));
  CHECK_THAT(error, Contains("--allow-unused"));
  // Every tensor of layers 2 and 3 is named, one per line; none of layers 0 and 1.
  for (int layer : {2, 3})
    for (const char* suffix : {"attention.self.query.weight", "output.LayerNorm.bias"})
      CHECK_THAT(error, Contains("\n    bert.encoder.layer." + std::to_string(layer) + "." + suffix));
  CHECK(error.find("bert.encoder.layer.1.") == std::string::npos);

  BertLoadOptions allow;
  allow.allow_unused = true;
  BertLoadReport report;
  auto model = load_bert(dir, allow, &report);
  CHECK(model->layers.size() == 2);
  CHECK(report.unused.size() == 32);
  CHECK_THAT(report.summary(), Contains("32 unused tensors (allowed by --allow-unused on)"));
}

TEST_CASE("a tensor no BERT parameter has is an error unless allow_unused", "[inputs]") {
  const fs::path dir = layered_model_dir("inputs_foreign_tensor", 2, 2, {{"lm_head.weight", Tensor::zeros({4, 4})}});
  const std::string error = load_error(dir);
  CHECK_THAT(error, Contains("has 1 tensor(s) the model does not use:\n    lm_head.weight"));
  CHECK(error.find("encoder layers") == std::string::npos);  // no layer hint when layers agree
  BertLoadOptions allow;
  allow.allow_unused = true;
  BertLoadReport report;
  load_bert(dir, allow, &report);
  CHECK(report.unused == std::vector<std::string>{"lm_head.weight"});
  // A layer index too large for an int is listed like any other (no std::stoi out_of_range).
  const std::string huge = "bert.encoder.layer.99999999999.output.dense.bias";
  const fs::path dir2 = layered_model_dir("inputs_huge_layer", 2, 2, {{huge, Tensor::zeros({16})}});
  CHECK_THAT(load_error(dir2), Contains("has 1 tensor(s) the model does not use:\n    " + huge));
}

TEST_CASE("every checkpoint tensor is loaded or ignored by name for a stated reason", "[inputs]") {
  // A BertForPreTraining-style file: the model, pre-training heads, the position_ids buffer, and a
  // classifier for 3 labels loaded into a 2-label task.
  BertConfig three = tiny_bert_config(3);
  BertForSequenceClassification source(three, DType::F32);
  source.init_weights(2);
  std::vector<std::pair<std::string, Tensor>> tensors = state_dict(source);
  tensors.emplace_back("cls.predictions.bias", Tensor::zeros({50}));
  tensors.emplace_back("cls.seq_relationship.weight", Tensor::zeros({2, 16}));
  tensors.emplace_back("bert.embeddings.position_ids", Tensor::from_ints({0, 1, 2}, {1, 3}));
  const fs::path dir = testing::scratch_dir("inputs_accounting");
  write_safetensors(dir / "model.safetensors", tensors);
  save_bert_config(tiny_bert_config(2), dir / "config.json");

  BertLoadReport report;
  auto model = load_bert(dir, {}, &report);  // strict: succeeds, since nothing is unused
  CHECK(report.unused.empty());
  CHECK(report.classifier_initialised);
  std::set<std::string> ignored_names;
  for (const std::string& entry : report.ignored) {
    INFO(entry);
    const size_t colon = entry.find(": ");
    REQUIRE(colon != std::string::npos);  // "name: reason"
    CHECK(entry.size() > colon + 2);
    ignored_names.insert(entry.substr(0, colon));
  }
  CHECK(ignored_names == std::set<std::string>{"cls.predictions.bias", "cls.seq_relationship.weight",
                                               "bert.embeddings.position_ids", "classifier.weight",
                                               "classifier.bias"});
  for (const std::string& entry : report.ignored)
    if (entry.starts_with("classifier.")) CHECK_THAT(entry, Contains("does not fit 2 labels"));
  CHECK_THAT(report.summary(), Contains("ignored 5 tensors (pre-training heads, buffers, a task head for other labels)"));
  // Loaded + ignored = every tensor of the file.
  const size_t loaded = model->parameters().size() - 2;  // all but the new classifier
  CHECK(loaded + report.ignored.size() == tensors.size());
}

TEST_CASE("a vocab.txt of another length than config.json's vocab_size is an error", "[inputs]") {
  const fs::path dir = layered_model_dir("inputs_vocab_size", 2, 2);  // vocab_size 50
  auto vocab = [](int n) {
    std::string text;
    for (int i = 0; i < n; ++i) text += "tok" + std::to_string(i) + "\n";
    return text;
  };
  load_bert(dir);  // no vocab.txt: nothing to compare (the tokenizer reports a missing file)
  write_file(dir / "vocab.txt", vocab(50));
  load_bert(dir);
  write_file(dir / "vocab.txt", vocab(49));
  CHECK_THAT(load_error(dir), Contains((dir / "vocab.txt").string() + " has 49 tokens but " +
                                       (dir / "config.json").string() + " says vocab_size 50"));
  write_file(dir / "vocab.txt", vocab(51));
  CHECK_THAT(load_error(dir), Contains("has 51 tokens") && Contains("vocab_size 50"));
  // Counted the way the tokenizer reads the file: CRLF and a missing final newline change nothing.
  std::string crlf;
  for (int i = 0; i < 50; ++i) crlf += "tok" + std::to_string(i) + (i < 49 ? "\r\n" : "");
  write_file(dir / "vocab.txt", crlf);
  load_bert(dir);
}

TEST_CASE("a 4-layer checkpoint under a 2-layer config is refused through `unipelt grads`, loaded with --allow-unused", "[inputs][cli]") {
  const fs::path dir = layered_model_dir("inputs_grads_cli", 4, 2);
  const fs::path out = dir / "grads.safetensors";
  const std::string base = std::string("'") + UNIPELT_CLI + "' grads --model '" + dir.string() + "' --batch '" +
                           (testing::source_dir() / "tests/fixtures/batch-cls.safetensors").string() + "' --out '" +
                           out.string() + "' --num-labels 3 --method adapter --adapter-size 4";
  std::string output;
  CHECK(testing::run_command(base, &output) == 1);
  CHECK_THAT(output, Contains("32 tensor(s) the model does not use") && Contains("--allow-unused on"));
  CHECK_FALSE(fs::exists(out));
  CHECK(testing::run_command(base + " --allow-unused on", &output) == 0);
  CHECK_THAT(output, Contains("32 unused tensors"));
  CHECK(fs::exists(out));
}

// ---------------------------------------------------------------------------------------------------
// Texts: one rule (check_text) in every reader
// ---------------------------------------------------------------------------------------------------

TEST_CASE("check_text: UTF-8 without NUL, not empty or blank", "[inputs]") {
  CHECK(text_problem("a good film").empty());
  CHECK(text_problem("na\xC3\xAFve caf\xC3\xA9 \xE5\x8C\x97\xE4\xBA\xAC \xF0\x9F\x98\x80").empty());  // 2-, 3-, 4-byte
  CHECK(text_problem("") == "is empty");
  CHECK(text_problem(" \t\r") == "is blank (only whitespace)");
  CHECK_THAT(text_problem(std::string("a\0b", 3)), Contains("holds a NUL byte (byte 2"));
  CHECK(text_problem("ab\xFF") == "is not valid UTF-8 (byte 3 is 0xff)");
  CHECK(text_problem("\xC3") == "is not valid UTF-8 (byte 1 is 0xc3)");            // truncated
  CHECK(text_problem("x\xC0\xAF") == "is not valid UTF-8 (byte 2 is 0xc0)");        // overlong '/'
  CHECK(text_problem("\xED\xA0\x80") == "is not valid UTF-8 (byte 1 is 0xed)");     // a surrogate
  CHECK(text_problem("\xF4\x90\x80\x80") == "is not valid UTF-8 (byte 1 is 0xf4)"); // above U+10FFFF
  CHECK(invalid_utf8_offset("abc") == std::string_view::npos);
  CHECK_THAT(data_error_of([] { check_text("", "f.tsv:3", "column 'sentence'"); }),
             Contains("f.tsv:3: column 'sentence' is empty"));
  CHECK_NOTHROW(check_text("fine", "f.tsv:3"));
}

TEST_CASE("GLUE readers refuse empty, NUL and non-UTF-8 texts naming file, line and column", "[inputs][glue]") {
  const fs::path dir = testing::scratch_dir("inputs_glue_text");
  struct Case {
    std::string task, content, message;
  };
  const Case cases[] = {
      {"SST-2", "sentence\tlabel\nfine\t1\n\t0\n", "train.tsv:3: column 'sentence' is empty"},
      {"SST-2", "sentence\tlabel\n  \t0\n", "train.tsv:2: column 'sentence' is blank"},
      {"SST-2", "sentence\tlabel\nbad \xE9t\xE9\t1\n", "train.tsv:2: column 'sentence' is not valid UTF-8 (byte 5 is 0xe9)"},
      {"SST-2", std::string("sentence\tlabel\nnul\0here\t1\n", 26), "train.tsv:2: column 'sentence' holds a NUL byte"},
      {"CoLA", "src\t1\t\tok\nsrc\t0\t*\t\n", "train.tsv:2: column 'sentence' is empty"},  // headerless
      {"RTE", "index\tsentence1\tsentence2\tlabel\n0\ta\t\tentailment\n", "train.tsv:2: column 'sentence2' is empty"},
      {"MRPC", "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n1\t1\t2\t\xC3\tb\n",
       "train.tsv:2: column '#1 String' is not valid UTF-8"},
  };
  for (const Case& c : cases) {
    INFO(c.task << ": " << c.message);
    write_file(dir / "train.tsv", c.content);
    CHECK_THAT(data_error_of([&] { read_glue_split(c.task, dir, "train"); }),
               Contains((dir / "train.tsv").string()) && Contains(c.message));
  }
  // QQP keeps its rule for GLUE's few malformed rows: skipped and listed, not fatal.
  write_file(dir / "train.tsv", "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n"
                                "0\t1\t2\tHow?\t\t0\n1\t3\t4\tWhat?\tWhat is it?\t1\n");
  ReadReport report;
  auto rows = read_glue_split("QQP", dir, "train", &report);
  CHECK(rows.size() == 1);
  REQUIRE(report.skipped.size() == 1);
  CHECK_THAT(report.skipped[0], Contains("train.tsv:2: column 'question2' is empty"));
}

TEST_CASE("predict inputs refuse empty, NUL and non-UTF-8 texts naming file and line", "[inputs]") {
  const fs::path dir = testing::scratch_dir("inputs_predict_text");
  auto error = [&](const std::string& content, bool pair) {
    const fs::path path = write_file(dir / "in.tsv", content);
    return data_error_of([&] { read_predict_inputs(path, pair); });
  };
  const std::string file = (dir / "in.tsv").string();
  CHECK_THAT(error("fine\nbad \xFF\n", false), Contains(file + ":2: text is not valid UTF-8 (byte 5 is 0xff)"));
  CHECK_THAT(error(std::string("a\0b\n", 4), false), Contains(file + ":1: text holds a NUL byte"));
  CHECK_THAT(error("x\ty\n \tz\n", true), Contains(file + ":2: text_a is blank"));
  CHECK_THAT(error("sentence1\tsentence2\nx\t\n", true), Contains(file + ":2: column 'sentence2' is empty"));
  CHECK_THAT(error("index\tsentence\n0\t\xC3(\n", false), Contains(file + ":2: column 'sentence' is not valid UTF-8"));
}

// ---------------------------------------------------------------------------------------------------
// Integers in JSON files: checked, never cast
// ---------------------------------------------------------------------------------------------------

TEST_CASE("json_integer accepts integers that fit and refuses floats, out-of-range values and others", "[inputs]") {
  const nlohmann::json j = nlohmann::json::parse(
      R"({"a": 7, "neg": -3, "big": 18446744073709551615, "f": 1e300, "half": 2.5, "s": "7", "n": null})");
  CHECK(json_integer<int>(j, "a") == 7);
  CHECK(json_integer<int>(j, "neg") == -3);
  CHECK(json_integer<uint64_t>(j, "big") == 18446744073709551615ull);
  CHECK(json_integer<int>(j, "absent", 5) == 5);
  CHECK(json_integer<int>(j, "n", 5) == 5);  // null is absent
  CHECK(json_integer<int>(nlohmann::json{{"x", int64_t{9}}}, "x") == 9);  // signed storage, as built in code
  CHECK_THAT(testing::error_of([&] { json_integer<int>(j, "f"); }),
             Contains("\"f\" must be an integer in [-2147483648, 2147483647], found 1e+300"));
  CHECK_THAT(testing::error_of([&] { json_integer<int>(j, "big"); }), Contains("\"big\" must be an integer"));
  CHECK_THAT(testing::error_of([&] { json_integer<size_t>(j, "neg"); }), Contains("\"neg\" must be an integer in [0, "));
  CHECK_THAT(testing::error_of([&] { json_integer<int>(j, "half"); }), Contains("found 2.5"));
  CHECK_THAT(testing::error_of([&] { json_integer<int>(j, "s"); }), Contains("found \"7\""));
  CHECK_THAT(testing::error_of([&] { json_integer<int>(j, "absent"); }), Contains("missing \"absent\""));
}

TEST_CASE("a run's config.json with a seed too large for any integer is an error naming the file (found by fuzz_run_files)", "[inputs]") {
  // The fuzzer's input: a selector byte (2: config.json read by read_run_record), then the file.
  // "seed": 4.2e95 was cast to uint64_t by nlohmann's get<>(): undefined behaviour (UBSan).
  std::ifstream in(testing::source_dir() / "tests/fixtures/fuzz/run_files/config-seed-huge-number", std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  REQUIRE(bytes.size() > 1);
  REQUIRE(bytes[0] == 2);
  const fs::path dir = testing::scratch_dir("inputs_run_record_seed");
  write_file(dir / "config.json", bytes.substr(1));
  CHECK_THAT(testing::error_of([&] { read_run_record(dir); }),
             Contains((dir / "config.json").string() + ": \"seed\" must be an integer in [0, 18446744073709551615], found 4.2"));
  // The same for results.json, and for the PELT sizes of any config.
  write_file(dir / "results.json", R"({"task": "SST-2", "method": "lora", "k": 1e300, "data_seed": 111, "test": {}})");
  CHECK_THAT(testing::error_of([&] { read_run_record(dir); }), Contains("results.json: \"k\" must be an integer"));
  nlohmann::json pelt = preset("adapter").to_json();
  pelt["adapter_size"] = 1e300;
  CHECK_THAT(testing::error_of([&] { PeltConfig::from_json(pelt); }), Contains("\"adapter_size\" must be an integer"));
}

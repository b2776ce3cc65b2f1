// BERT: a whole-model float64 gradient check, parity of plain BERT with the PyTorch reference fixture,
// the real bert-mini-mlm checkpoint on GLUE sentences (shape, finiteness, padding invariance), loader
// errors and checkpoint name variants, frozen parameters and dropout.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "autograd/tape.h"
#include "datasets/glue.h"
#include "datasets/tokenizer.h"
#include "nn/batch_io.h"
#include "nn/bert_loader.h"
#include "nn/init.h"
#include "nn/safetensors.h"
#include "pelt/grads.h"
#include "pelt/method_checks.h"
#include "tests/test_util.h"

using namespace unipelt;
namespace fs = std::filesystem;

namespace {

fs::path fixtures() { return testing::source_dir() / "tests" / "fixtures"; }

// |a - e| <= atol + rtol·|e| everywhere; returns a description of the worst element (empty when fine).
std::string mismatch(const Tensor& actual, const Tensor& expected, double rtol, double atol) {
  if (actual.shape() != expected.shape())
    return "shape " + shape_str(actual.shape()) + " vs expected " + shape_str(expected.shape());
  const std::vector<double> a = actual.to_vector(), e = expected.to_vector();
  double worst_excess = 0;
  std::string worst;
  for (size_t i = 0; i < a.size(); ++i) {
    const double err = std::abs(a[i] - e[i]), bound = atol + rtol * std::abs(e[i]);
    if (!(err <= bound) && (worst.empty() || err - bound > worst_excess)) {
      worst_excess = err - bound;
      std::ostringstream s;
      s.precision(17);
      s << "element " << i << ": got " << a[i] << ", expected " << e[i] << " (|diff| " << err << ")";
      worst = s.str();
    }
  }
  return worst;
}

using testing::max_abs_diff;

Tensor logits_of(const BertForSequenceClassification& bert, const Batch& batch, ForwardContext ctx = {}) {
  NoGradGuard no_grad;
  return bert.forward(batch, ctx).logits;
}

// A model directory written from a tiny random BERT: config.json + model.safetensors, with `edit`
// applied to the state dict first.
template <class Edit>
fs::path write_model_dir(const std::string& name, Edit edit) {
  const fs::path dir = testing::scratch_dir(name);
  BertConfig config = tiny_bert_config(2);
  BertForSequenceClassification bert(config, DType::F32);
  bert.init_weights(11);
  std::vector<std::pair<std::string, Tensor>> tensors = state_dict(bert);
  edit(tensors);
  write_safetensors(dir / "model.safetensors", tensors);
  save_bert_config(config, dir / "config.json");
  return dir;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string load_error(const fs::path& dir) {
  try {
    load_bert(dir, {});
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

}  // namespace

// ---------------------------------------------------------------------------------------------------
// Gradients
// ---------------------------------------------------------------------------------------------------

TEST_CASE("whole-model float64 gradient check of the loss w.r.t. every BERT parameter", "[bert]") {
  for (bool regression : {false, true}) {
    INFO((regression ? "regression" : "classification"));
    MethodCheck check = check_method("finetune", GatePool::Masked, regression);
    INFO(check.result.worst);
    CHECK(check.result.passed);
    // Every parameter of the model, embeddings to classifier, was checked element by element.
    BertForSequenceClassification reference(tiny_bert_config(regression ? 1 : 3), DType::F64);
    CHECK(check.result.elements_checked == reference.num_parameters());
    CHECK(check.trainable_tensors == static_cast<int64_t>(reference.parameters().size()));
    CHECK(check.result.max_abs_error < 1e-5);
  }
}

TEST_CASE("plain BERT (finetune) matches the PyTorch reference fixture in float64", "[bert]") {
  BertLoadOptions options;
  options.dtype = DType::F64;
  options.num_labels = 3;
  auto bert = load_bert(fixtures() / "tiny-bert", options);
  PeltModel model(*bert, preset("finetune"), 0);
  load_named_tensors(model, fixtures() / "pelt" / "finetune-cls.safetensors");
  Batch batch = read_batch(fixtures() / "batch-cls.safetensors", DType::F64, Device::CPU, false);
  auto outputs = forward_backward_outputs(model, batch);

  SafetensorsFile expected(fixtures() / "expected" / "finetune-masked-cls.safetensors");
  std::set<std::string> out_names, expected_names;
  for (const auto& [name, t] : outputs) out_names.insert(name);
  for (const std::string& name : expected.names()) expected_names.insert(name);
  CHECK(out_names == expected_names);
  CHECK(out_names.size() == outputs.size());  // no duplicates
  for (const auto& [name, t] : outputs) {
    if (!expected.contains(name)) continue;
    INFO(name);
    CHECK(t.dtype() == DType::F64);
    CHECK(mismatch(t, expected.load(name, DType::F64), 1e-7, 1e-12) == "");
  }
}

// ---------------------------------------------------------------------------------------------------
// The real pre-trained checkpoint on real sentences
// ---------------------------------------------------------------------------------------------------

TEST_CASE("bert-mini-mlm runs on tokenized SST-2 sentences and is padding-invariant", "[bert]") {
  const fs::path model_dir = testing::require_data("models/bert-mini-mlm");
  const fs::path sst2 = testing::require_data("glue/SST-2/dev.tsv").parent_path();

  BertLoadOptions options;
  options.dtype = DType::F32;
  options.num_labels = 2;
  BertLoadReport report;
  auto bert = load_bert(model_dir, options, &report);
  CHECK(report.classifier_initialised);
  REQUIRE_FALSE(report.ignored.empty());
  for (const std::string& s : report.ignored) CHECK_THAT(s, Catch::StartsWith("cls."));
  CHECK(report.unused.empty());
  CHECK_THAT(report.summary(), Catch::Contains("classifier initialised"));
  CHECK(bert->config().hidden_size == 256);
  CHECK(bert->classifier.weight.shape() == Shape{2, 256});

  auto tok = WordPieceTokenizer::from_vocab_file((model_dir / "vocab.txt").string(), true);
  std::vector<Example> dev = read_glue_split("SST-2", sst2, "dev");
  REQUIRE(dev.size() >= 8);
  std::vector<Encoding> enc;
  size_t T = 0;
  for (size_t i = 0; i < 8; ++i) {
    enc.push_back(tok.encode(dev[i].text_a, 128));
    T = std::max(T, enc.back().input_ids.size());
  }
  // The test is only meaningful if some rows really carry padding.
  size_t shortest = T;
  for (const Encoding& e : enc) shortest = std::min(shortest, e.input_ids.size());
  REQUIRE(shortest + 5 <= T);

  auto make_batch = [&](const std::vector<const Encoding*>& rows, size_t len) {
    std::vector<int32_t> ids, types;
    std::vector<double> mask;
    for (const Encoding* e : rows)
      for (size_t t = 0; t < len; ++t) {
        const bool real = t < e->input_ids.size();
        ids.push_back(real ? e->input_ids[t] : tok.pad_id());
        types.push_back(real ? e->token_type_ids[t] : 0);
        mask.push_back(real ? 1.0 : 0.0);
      }
    const int64_t B = static_cast<int64_t>(rows.size()), L = static_cast<int64_t>(len);
    Batch b;
    b.input_ids = Tensor::from_ints(ids, {B, L});
    b.token_type_ids = Tensor::from_ints(types, {B, L});
    b.attention_mask = Tensor::from_vector(mask, {B, L}, bert->dtype());
    return b;
  };

  std::vector<const Encoding*> all;
  for (const Encoding& e : enc) all.push_back(&e);
  Tensor logits = logits_of(*bert, make_batch(all, T));
  REQUIRE(logits.shape() == Shape{8, 2});
  const std::vector<double> v = logits.to_vector();
  for (double x : v) CHECK(std::isfinite(x));
  // Different sentences give different logits (the model is not constant).
  double spread = 0;
  for (size_t i = 1; i < 8; ++i) spread = std::max(spread, std::abs(v[2 * i] - v[0]) + std::abs(v[2 * i + 1] - v[1]));
  CHECK(spread > 1e-4);

  // Each sentence alone, unpadded, gives the logits of its row in the padded batch.
  for (size_t i = 0; i < 8; ++i) {
    INFO("sentence " << i << " (" << enc[i].input_ids.size() << " of " << T << " tokens): " << dev[i].text_a);
    Tensor alone = logits_of(*bert, make_batch({&enc[i]}, enc[i].input_ids.size()));
    REQUIRE(alone.shape() == Shape{1, 2});
    const std::vector<double> a = alone.to_vector();
    CHECK(std::abs(a[0] - v[2 * i]) <= 1e-4);
    CHECK(std::abs(a[1] - v[2 * i + 1]) <= 1e-4);
  }
}

// ---------------------------------------------------------------------------------------------------
// Loader errors and checkpoint layouts
// ---------------------------------------------------------------------------------------------------

TEST_CASE("load_bert names a missing tensor", "[bert]") {
  const std::string gone = "bert.encoder.layer.1.attention.self.key.bias";
  fs::path dir = write_model_dir("bert_missing_tensor", [&](auto& tensors) {
    auto it = std::find_if(tensors.begin(), tensors.end(), [&](const auto& p) { return p.first == gone; });
    REQUIRE(it != tensors.end());
    tensors.erase(it);
  });
  const std::string error = load_error(dir);
  CHECK_THAT(error, Catch::Contains(gone));
  CHECK_THAT(error, Catch::Contains("missing"));
  CHECK_THAT(error, Catch::Contains("[16]"));
}

TEST_CASE("load_bert names a wrong-shaped tensor with both shapes", "[bert]") {
  const std::string bad = "bert.encoder.layer.0.intermediate.dense.weight";
  fs::path dir = write_model_dir("bert_wrong_shape", [&](auto& tensors) {
    for (auto& [name, t] : tensors)
      if (name == bad) t = Tensor::zeros({31, 16}, DType::F32);
  });
  const std::string error = load_error(dir);
  CHECK_THAT(error, Catch::Contains(bad));
  CHECK_THAT(error, Catch::Contains("[31, 16]"));  // in the file
  CHECK_THAT(error, Catch::Contains("[32, 16]"));  // what the model wants
}

TEST_CASE("load_bert lists every problem of a checkpoint in one error", "[bert]") {
  const std::string gone = "bert.pooler.dense.bias", bad = "bert.embeddings.position_embeddings.weight";
  fs::path dir = write_model_dir("bert_two_problems", [&](auto& tensors) {
    std::vector<std::pair<std::string, Tensor>> kept;
    for (auto& [name, t] : tensors) {
      if (name == gone) continue;
      kept.emplace_back(name, name == bad ? Tensor::zeros({16, 16}, DType::F32) : t);
    }
    tensors = kept;
  });
  const std::string error = load_error(dir);
  CHECK_THAT(error, Catch::Contains(gone));
  CHECK_THAT(error, Catch::Contains(bad));
  CHECK_THAT(error, Catch::Contains("[16, 16]"));
  CHECK_THAT(error, Catch::Contains("[32, 16]"));
}

TEST_CASE("load_bert without config.json or weights gives a clear error", "[bert]") {
  fs::path dir = write_model_dir("bert_no_config", [](auto&) {});
  fs::remove(dir / "config.json");
  const std::string error = load_error(dir);
  CHECK_THAT(error, Catch::Contains("config.json"));
  CHECK_THAT(error, Catch::Contains(dir.string()));

  fs::path dir2 = write_model_dir("bert_no_weights", [](auto&) {});
  fs::remove(dir2 / "model.safetensors");
  CHECK_THAT(load_error(dir2), Catch::Contains("model.safetensors"));
  CHECK_THAT(load_error(testing::scratch_dir("bert_empty_dir")), Catch::Contains("config.json"));
}

TEST_CASE("BertModel names (no bert. prefix) and legacy gamma/beta load like the canonical file", "[bert]") {
  const fs::path src = fixtures() / "tiny-bert";
  BertLoadOptions options;
  options.dtype = DType::F64;
  options.num_labels = 3;
  auto canonical = load_bert(src, options);
  SafetensorsFile file(src / "model.safetensors");

  struct Variant {
    const char* name;
    bool strip_prefix, legacy;
  };
  for (const Variant& variant : {Variant{"bertmodel", true, false}, Variant{"gamma_beta", false, true},
                                 Variant{"bertmodel_gamma_beta", true, true}}) {
    INFO(variant.name);
    const fs::path dir = testing::scratch_dir(std::string("bert_renamed_") + variant.name);
    fs::copy_file(src / "config.json", dir / "config.json");
    std::vector<std::pair<std::string, Tensor>> renamed;
    int legacy = 0, unprefixed = 0;
    for (const std::string& name : file.names()) {
      std::string n = name;
      if (variant.strip_prefix && n.rfind("bert.", 0) == 0) {
        n = n.substr(5);
        ++unprefixed;
      }
      if (variant.legacy && ends_with(n, ".LayerNorm.weight")) {
        n = n.substr(0, n.size() - 6) + "gamma";
        ++legacy;
      } else if (variant.legacy && ends_with(n, ".LayerNorm.bias")) {
        n = n.substr(0, n.size() - 4) + "beta";
        ++legacy;
      }
      renamed.emplace_back(n, file.load(name, DType::F64));
    }
    REQUIRE(legacy == (variant.legacy ? 2 * 5 : 0));  // embeddings + 2 per layer, weight and bias each
    REQUIRE(unprefixed == (variant.strip_prefix ? static_cast<int>(file.names().size()) : 0));
    write_safetensors(dir / "model.safetensors", renamed);

    BertLoadReport report;
    auto renamed_model = load_bert(dir, options, &report);
    CHECK(report.unused.empty());
    CHECK(report.classifier_initialised);
    const auto a = canonical->parameters(), b = renamed_model->parameters();
    REQUIRE(a.size() == b.size());
    for (size_t i = 0; i < a.size(); ++i) {
      INFO(a[i].name);
      CHECK(a[i].name == b[i].name);
      CHECK(max_abs_diff(a[i].tensor, b[i].tensor) == 0.0);
    }
    // LayerNorm scales really came from the file (the fixture's are 1 +- 0.1, not the init's exact 1).
    CHECK(max_abs_diff(renamed_model->embedding_norm.weight, Tensor::full({16}, 1.0, DType::F64)) > 1e-3);
    CHECK(max_abs_diff(renamed_model->layers[1]->output_norm.bias, Tensor::zeros({16}, DType::F64)) > 1e-3);
  }
}

TEST_CASE("a checkpoint with a classifier of the right size is loaded, another size re-initialised", "[bert]") {
  BertConfig config = tiny_bert_config(3);
  BertForSequenceClassification bert(config, DType::F64);
  bert.init_weights(5);
  init_constant(bert.classifier.bias, 0.25);  // a value init never produces
  const fs::path dir = testing::scratch_dir("bert_with_head");
  write_safetensors(dir / "model.safetensors", state_dict(bert));
  save_bert_config(config, dir / "config.json");

  BertLoadOptions options;
  options.dtype = DType::F64;
  options.num_labels = 3;
  BertLoadReport report;
  auto loaded = load_bert(dir, options, &report);
  CHECK_FALSE(report.classifier_initialised);
  CHECK(max_abs_diff(loaded->classifier.weight, bert.classifier.weight) == 0.0);
  CHECK(max_abs_diff(loaded->classifier.bias, bert.classifier.bias) == 0.0);

  options.num_labels = 2;
  auto other = load_bert(dir, options, &report);
  CHECK(report.classifier_initialised);
  CHECK(other->classifier.weight.shape() == Shape{2, 16});
  for (double x : other->classifier.bias.to_vector()) CHECK(x == 0.0);
}

// ---------------------------------------------------------------------------------------------------
// Frozen parameters and dropout
// ---------------------------------------------------------------------------------------------------

TEST_CASE("a frozen BERT gives no base parameter a gradient tensor", "[bert]") {
  BertForSequenceClassification bert(tiny_bert_config(3), DType::F64);
  bert.init_weights(3);
  bert.set_trainable(false);
  bert.classifier.set_trainable(true);
  tape().clear();
  ForwardContext ctx;
  auto out = bert.forward(tiny_batch(false), ctx);
  REQUIRE(out.loss.defined());
  backward(out.loss);
  int frozen = 0;
  for (const NamedTensor& p : bert.parameters()) {
    INFO(p.name);
    if (p.name.rfind("classifier.", 0) == 0) {
      REQUIRE(p.tensor.grad().defined());
      CHECK(p.tensor.grad().shape() == p.tensor.shape());
      double norm = 0;
      for (double g : p.tensor.grad().to_vector()) norm += g * g;
      CHECK(norm > 0);
    } else {
      CHECK_FALSE(p.tensor.grad().defined());
      ++frozen;
    }
  }
  CHECK(frozen == static_cast<int>(bert.parameters().size()) - 2);
  tape().clear();
}

TEST_CASE("dropout: seeded in training, deterministic in evaluation", "[bert]") {
  BertConfig config = tiny_bert_config(3);
  REQUIRE(config.hidden_dropout_prob > 0);
  REQUIRE(config.attention_probs_dropout_prob > 0);
  BertForSequenceClassification bert(config, DType::F64);
  bert.init_weights(9);
  Batch batch = tiny_batch(false);
  auto run = [&](bool training, uint64_t seed) {
    ForwardContext ctx;
    ctx.training = training;
    ctx.seed = seed;
    return logits_of(bert, batch, ctx);
  };
  const Tensor a1 = run(true, 1), a1_again = run(true, 1), a2 = run(true, 2);
  CHECK(max_abs_diff(a1, a1_again) == 0.0);
  CHECK(max_abs_diff(a1, a2) > 1e-6);
  const Tensor e1 = run(false, 1), e2 = run(false, 2), e3 = run(false, 1);
  CHECK(max_abs_diff(e1, e2) == 0.0);
  CHECK(max_abs_diff(e1, e3) == 0.0);
  CHECK(max_abs_diff(e1, a1) > 1e-6);  // training mode really dropped something
}

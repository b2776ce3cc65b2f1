// Trainable-only PELT checkpoints: save -> load round trips give identical logits, the frozen base is
// never written, and a checkpoint is refused on another base model or with missing/extra tensors.
#include <catch2/catch.hpp>

#include <cmath>
#include <fstream>
#include <set>

#include "autograd/tape.h"
#include "nn/batch_io.h"
#include "nn/bert_loader.h"
#include "nn/checkpoint_names.h"
#include "nn/init.h"
#include "nn/safetensors.h"
#include "pelt/checkpoint.h"
#include "pelt/grads.h"
#include "pelt/method_checks.h"
#include "tests/test_util.h"

using namespace unipelt;
namespace fs = std::filesystem;

namespace {

fs::path fixtures() { return testing::source_dir() / "tests" / "fixtures"; }

std::unique_ptr<BertForSequenceClassification> tiny_base(DType dtype = DType::F64) {
  BertLoadOptions options;
  options.dtype = dtype;
  options.num_labels = 3;
  options.seed = 5;
  return load_bert(fixtures() / "tiny-bert", options);
}

Batch batch() { return read_batch(fixtures() / "batch-cls.safetensors", DType::F64, Device::CPU, false); }

Tensor logits_of(PeltModel& model) {
  NoGradGuard no_grad;
  ForwardContext ctx;
  return model.forward(batch(), ctx).logits;
}

using testing::max_abs_diff;

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// A trained-looking model: base from tiny-bert, PELT tensors and classifier from the parity fixture
// (all nonzero, LoRA B and adapter up included); for BitFit the biases are moved away from the base.
struct Trained {
  std::unique_ptr<BertForSequenceClassification> base;
  std::unique_ptr<PeltModel> model;
  SavedBaseIdentity identity;
};
Trained trained(const std::string& method) {
  Trained t;
  t.base = tiny_base();
  t.identity = base_identity(*t.base);  // before training touches the base
  t.model = std::make_unique<PeltModel>(*t.base, testing::small_preset(method), 3);
  load_named_tensors(*t.model, fixtures() / "pelt" / (method + "-cls.safetensors"));
  if (testing::small_preset(method).bitfit) {
    Rng rng(21);
    for (const NamedTensor& p : t.model->trainable_parameters())
      if (p.name.rfind("bert.", 0) == 0) {
        Tensor noise = Tensor::empty(p.tensor.shape(), p.tensor.dtype());
        init_uniform(noise, -0.3, 0.3, rng);
        NoGradGuard g;
        p.tensor.copy_from(ops::add(p.tensor, noise));
      }
  }
  return t;
}

std::set<std::string> names_in(const fs::path& file) {
  SafetensorsFile f(file);
  std::vector<std::string> n = f.names();
  return {n.begin(), n.end()};
}

std::string load_error(const fs::path& dir, BertForSequenceClassification& base) {
  try {
    load_pelt_checkpoint(dir, base);
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

// Rewrites DIR/pelt_model.safetensors through `edit`.
template <class Edit>
void edit_weights(const fs::path& dir, Edit edit) {
  std::vector<std::pair<std::string, Tensor>> tensors;
  {
    SafetensorsFile f(dir / "pelt_model.safetensors");
    for (const std::string& n : f.names()) tensors.emplace_back(n, f.load(n, DType::F64));
  }
  edit(tensors);
  write_safetensors(dir / "pelt_model.safetensors", tensors);
}

void round_trip(const std::string& method, bool eject) {
  INFO(method << (eject ? " (prefix ejected)" : ""));
  Trained t = trained(method);
  const Tensor before = logits_of(*t.model);
  const fs::path dir = testing::scratch_dir("ckpt_" + method + (eject ? "_ejected" : ""));
  save_pelt_checkpoint(dir, *t.model, t.identity, eject);
  REQUIRE(fs::exists(dir / "pelt_model.safetensors"));
  REQUIRE(fs::exists(dir / "pelt_config.json"));

  // The file holds exactly the trainable tensors (the prefix MLP replaced by P when ejected).
  std::set<std::string> expected;
  for (const NamedTensor& p : t.model->trainable_parameters()) {
    const bool mlp = p.name.find("prefix_embed_MLP") != std::string::npos ||
                     p.name.find("prefix_enc_embed") != std::string::npos;
    if (!(eject && mlp)) expected.insert(p.name);
  }
  if (eject) expected.insert("bert.encoder.prefix_ejected");
  const std::set<std::string> stored = names_in(dir / "pelt_model.safetensors");
  CHECK(stored == expected);
  CHECK(stored.count("classifier.weight"));
  CHECK(stored.count("classifier.bias"));

  const PeltCheckpointInfo info = read_pelt_checkpoint_info(dir);
  CHECK(info.prefix_ejected == eject);
  CHECK(info.num_labels == 3);
  CHECK(info.base.weights_hash == t.identity.weights_hash);
  CHECK(info.pelt.to_json() == t.model->config().to_json());

  // A fresh base from the same weights (its classifier initialised from another seed).
  BertLoadOptions options;
  options.dtype = DType::F64;
  options.num_labels = 3;
  options.seed = 1234;
  auto fresh = load_bert(fixtures() / "tiny-bert", options);
  auto loaded = load_pelt_checkpoint(dir, *fresh);
  REQUIRE(loaded);
  if (eject) {
    REQUIRE(loaded->prefix());
    CHECK(loaded->prefix()->ejected());
  }
  const Tensor after = logits_of(*loaded);
  CHECK(max_abs_diff(before, after) <= 1e-12);
  for (const auto& [name, g] : t.model->gate_values()) {
    INFO(name);
    REQUIRE(loaded->gate_values().count(name));
    CHECK(max_abs_diff(g, loaded->gate_values().at(name)) <= 1e-12);
  }
}

}  // namespace

TEST_CASE("checkpoint round trip: unipelt-apl", "[checkpoint]") {
  round_trip("unipelt-apl", false);
  round_trip("unipelt-apl", true);
}

TEST_CASE("checkpoint round trip: prefix, with and without ejection", "[checkpoint]") {
  round_trip("prefix", false);
  round_trip("prefix", true);
}

TEST_CASE("checkpoint round trip: bitfit restores the trained biases", "[checkpoint]") {
  round_trip("bitfit", false);
}

TEST_CASE("checkpoint round trip of a model whose prefix was already ejected", "[checkpoint]") {
  Trained t = trained("unipelt-ap");
  t.model->eject_prefix();
  const Tensor before = logits_of(*t.model);
  const fs::path dir = testing::scratch_dir("ckpt_pre_ejected");
  save_pelt_checkpoint(dir, *t.model, t.identity, false);
  CHECK(read_pelt_checkpoint_info(dir).prefix_ejected);
  CHECK(names_in(dir / "pelt_model.safetensors").count("bert.encoder.prefix_ejected"));
  auto fresh = tiny_base();
  auto loaded = load_pelt_checkpoint(dir, *fresh);
  CHECK(max_abs_diff(before, logits_of(*loaded)) <= 1e-12);
}

TEST_CASE("checkpoints never hold the frozen base weights", "[checkpoint]") {
  for (const char* method : {"unipelt-apl", "prefix", "adapter", "lora", "unipelt-nogate"}) {
    INFO(method);
    Trained t = trained(method);
    const fs::path dir = testing::scratch_dir(std::string("ckpt_frozen_") + method);
    save_pelt_checkpoint(dir, *t.model, t.identity, false);
    const std::set<std::string> names = names_in(dir / "pelt_model.safetensors");
    CHECK_FALSE(names.count("bert.encoder.layer.0.attention.self.query.weight"));
    CHECK_FALSE(names.count("bert.embeddings.word_embeddings.weight"));
    for (const std::string& n : names) {
      INFO(n);
      // The only BERT tensors allowed are the head's.
      if (is_canonical_bert_name(n)) CHECK(n.rfind("classifier.", 0) == 0);
    }
  }
  Trained t = trained("bitfit");
  const fs::path dir = testing::scratch_dir("ckpt_frozen_bitfit");
  save_pelt_checkpoint(dir, *t.model, t.identity, false);
  const std::set<std::string> names = names_in(dir / "pelt_model.safetensors");
  size_t biases = 0;
  for (const NamedTensor& p : t.base->parameters())
    if (ends_with(p.name, "bias")) ++biases;
  CHECK(names.size() == biases + 1);  // every bias (classifier.bias included) + classifier.weight
  for (const std::string& n : names) {
    INFO(n);
    CHECK((ends_with(n, "bias") || n == "classifier.weight"));
  }
  CHECK(names.count("bert.encoder.layer.1.output.LayerNorm.bias"));
  CHECK_FALSE(names.count("bert.encoder.layer.1.output.LayerNorm.weight"));
}

TEST_CASE("the base weights hash depends on the weights, not on the dtype", "[checkpoint]") {
  auto f64 = tiny_base(DType::F64), f32 = tiny_base(DType::F32);
  const std::string h = base_weights_hash(*f64);
  CHECK_THAT(h, Catch::StartsWith("fnv1a64:"));
  CHECK(base_weights_hash(*f32) == h);
  // The classifier is not part of the base.
  init_constant(f64->classifier.weight, 0.5);
  CHECK(base_weights_hash(*f64) == h);
  auto other = tiny_base();
  std::vector<double> v = other->layers[1]->output.bias.to_vector();
  v[3] += 1e-3;
  other->layers[1]->output.bias.copy_from(Tensor::from_vector(v, {16}, DType::F64));
  CHECK(base_weights_hash(*other) != h);
}

TEST_CASE("a checkpoint refuses a base model with other weights or another config", "[checkpoint]") {
  Trained t = trained("unipelt-apl");
  const fs::path dir = testing::scratch_dir("ckpt_other_base");
  save_pelt_checkpoint(dir, *t.model, t.identity, false);

  // Same architecture, one weight changed.
  auto changed = tiny_base();
  std::vector<double> v = changed->word_embeddings.weight.to_vector();
  v[17] += 0.01;
  changed->word_embeddings.weight.copy_from(Tensor::from_vector(v, changed->word_embeddings.weight.shape(), DType::F64));
  CHECK_THAT(load_error(dir, *changed), Catch::Contains("weights hash"));

  // Another architecture: hidden size 32.
  BertConfig wide = tiny_bert_config(3);
  wide.hidden_size = 32;
  BertForSequenceClassification wide_base(wide, DType::F64);
  wide_base.init_weights(1);
  const std::string error = load_error(dir, wide_base);
  CHECK_THAT(error, Catch::Contains("config differs"));
  CHECK_THAT(error, Catch::Contains("hidden_size"));

  // Another number of labels.
  BertLoadOptions two;
  two.dtype = DType::F64;
  two.num_labels = 2;
  auto two_labels = load_bert(fixtures() / "tiny-bert", two);
  CHECK_THAT(load_error(dir, *two_labels), Catch::Contains("labels"));

  // The right base still loads.
  auto right = tiny_base();
  CHECK(load_error(dir, *right) == "");
}

TEST_CASE("a checkpoint with a missing or an extra tensor is refused, naming it", "[checkpoint]") {
  Trained t = trained("unipelt-apl");
  const std::string gone = "bert.encoder.layer.1.attention.self.value.lora_B";
  const std::string extra = "bert.encoder.layer.0.output.adapter.bogus.weight";
  {
    const fs::path dir = testing::scratch_dir("ckpt_missing_tensor");
    save_pelt_checkpoint(dir, *t.model, t.identity, false);
    REQUIRE(names_in(dir / "pelt_model.safetensors").count(gone));
    edit_weights(dir, [&](auto& tensors) {
      std::erase_if(tensors, [&](const auto& p) { return p.first == gone; });
    });
    auto base = tiny_base();
    CHECK_THAT(load_error(dir, *base), Catch::Contains("missing tensor " + gone));
  }
  {
    const fs::path dir = testing::scratch_dir("ckpt_extra_tensor");
    save_pelt_checkpoint(dir, *t.model, t.identity, false);
    edit_weights(dir, [&](auto& tensors) { tensors.emplace_back(extra, Tensor::zeros({4, 16}, DType::F64)); });
    auto base = tiny_base();
    CHECK_THAT(load_error(dir, *base), Catch::Contains("unexpected tensor " + extra));
  }
  {
    // A frozen base weight smuggled into the file is unexpected too.
    const fs::path dir = testing::scratch_dir("ckpt_base_tensor");
    save_pelt_checkpoint(dir, *t.model, t.identity, false);
    const std::string base_name = "bert.encoder.layer.0.attention.self.query.weight";
    edit_weights(dir, [&](auto& tensors) { tensors.emplace_back(base_name, Tensor::zeros({16, 16}, DType::F64)); });
    auto base = tiny_base();
    CHECK_THAT(load_error(dir, *base), Catch::Contains("unexpected tensor " + base_name));
  }
  {
    // Both at once: one error lists both.
    const fs::path dir = testing::scratch_dir("ckpt_both");
    save_pelt_checkpoint(dir, *t.model, t.identity, false);
    edit_weights(dir, [&](auto& tensors) {
      std::erase_if(tensors, [&](const auto& p) { return p.first == gone; });
      tensors.emplace_back(extra, Tensor::zeros({4, 16}, DType::F64));
    });
    auto base = tiny_base();
    const std::string error = load_error(dir, *base);
    CHECK_THAT(error, Catch::Contains("missing tensor " + gone));
    CHECK_THAT(error, Catch::Contains("unexpected tensor " + extra));
  }
  // Not a checkpoint directory at all.
  auto base = tiny_base();
  CHECK_THAT(load_error(testing::scratch_dir("ckpt_empty"), *base), Catch::Contains("pelt_config.json"));
}

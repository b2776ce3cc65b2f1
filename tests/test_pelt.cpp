// PELT methods: float64 gradient checks of every preset, behaviour (zero-initialised modules change
// nothing, gates in (0,1), gate pooling and padding, prefix gate -> 0, frozen parameters), the paper's
// parameter counts for BERT-base, LoRA merging, prefix ejection and preset errors.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>

#include "autograd/tape.h"
#include "nn/init.h"
#include "pelt/grads.h"
#include "pelt/method_checks.h"
#include "tests/test_util.h"

using namespace unipelt;
namespace fs = std::filesystem;

namespace {

using testing::max_abs_diff;

double max_abs(const Tensor& a) {
  double m = 0;
  for (double v : a.to_vector()) m = std::max(m, std::abs(v));
  return m;
}

Tensor pelt_logits(PeltModel& model, const Batch& batch) {
  NoGradGuard no_grad;
  ForwardContext ctx;
  return model.forward(batch, ctx).logits;
}

Tensor plain_logits(const BertForSequenceClassification& bert, const Batch& batch, BertSeams* seams = nullptr) {
  NoGradGuard no_grad;
  ForwardContext ctx;
  return bert.forward(batch, ctx, seams).logits;
}

Tensor param(const PeltModel& model, const std::string& name) {
  for (const NamedTensor& p : model.all_parameters())
    if (p.name == name) return p.tensor;
  FAIL("no parameter " << name);
  return {};
}

// The batch with `extra` padding columns appended (id 0, segment 0, mask 0).
Batch with_extra_padding(const Batch& b, int64_t extra) {
  const int64_t B = b.batch_size(), T = b.seq_len(), T2 = T + extra;
  const std::vector<int32_t> ids = b.input_ids.to_ints(), types = b.token_type_ids.to_ints();
  const std::vector<double> mask = b.attention_mask.to_vector();
  std::vector<int32_t> ids2(static_cast<size_t>(B * T2), 0), types2(static_cast<size_t>(B * T2), 0);
  std::vector<double> mask2(static_cast<size_t>(B * T2), 0.0);
  for (int64_t i = 0; i < B; ++i)
    for (int64_t t = 0; t < T; ++t) {
      ids2[static_cast<size_t>(i * T2 + t)] = ids[static_cast<size_t>(i * T + t)];
      types2[static_cast<size_t>(i * T2 + t)] = types[static_cast<size_t>(i * T + t)];
      mask2[static_cast<size_t>(i * T2 + t)] = mask[static_cast<size_t>(i * T + t)];
    }
  Batch out;
  out.input_ids = Tensor::from_ints(ids2, {B, T2});
  out.token_type_ids = Tensor::from_ints(types2, {B, T2});
  out.attention_mask = Tensor::from_vector(mask2, {B, T2}, b.attention_mask.dtype());
  out.labels = b.labels;
  return out;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// init_weights() gives every LayerNorm weight 1 and bias 0, which makes LN idempotent and hides a
// misplaced LayerNorm; move them away from that.
void randomize_layernorms(const BertForSequenceClassification& bert, uint64_t seed) {
  Rng rng(seed);
  for (const NamedTensor& p : bert.parameters()) {
    if (p.name.find("LayerNorm.weight") != std::string::npos) init_uniform(p.tensor, 0.7, 1.3, rng);
    if (p.name.find("LayerNorm.bias") != std::string::npos) init_uniform(p.tensor, -0.3, 0.3, rng);
  }
}

// `unipelt gradcheck methods` for one preset: both poolings where it has gates, both tasks.
void check_preset(const std::string& method) {
  const bool gated = preset(method).gated;
  for (GatePool pool : {GatePool::Masked, GatePool::All}) {
    if (!gated && pool == GatePool::All) continue;
    for (bool regression : {false, true}) {
      INFO(method << " " << gate_pool_name(pool) << " " << (regression ? "regression" : "classification"));
      MethodCheck c = check_method(method, pool, regression);
      INFO(c.result.worst);
      CHECK(c.result.passed);
      // Every element of every trainable tensor was checked.
      PeltConfig config = preset(method);
      config.gate_pool = pool;
      TinyPeltSetup s = make_tiny_pelt(config, regression);
      int64_t numel = 0;
      for (const NamedTensor& p : s.model->trainable_parameters()) numel += p.tensor.numel();
      CHECK(c.result.elements_checked == numel);
      CHECK(c.trainable_tensors == static_cast<int64_t>(s.model->trainable_parameters().size()));
      CHECK(c.trainable_tensors >= 2);
      // The check can see a wrong backward in every tensor: each has elements whose gradient is above
      // atol (below it, |analytic - numeric| <= atol passes whatever the backward computes). The one
      // exception is structural: dL/db_K = 0 exactly without a prefix, since q·(k + b_K) shifts a whole
      // row of scores by q·b_K and softmax ignores that.
      REQUIRE(c.tensor_names.size() == c.result.inputs.size());
      for (size_t k = 0; k < c.result.inputs.size(); ++k) {
        INFO(c.tensor_names[k]);
        const bool key_bias = ends_with(c.tensor_names[k], "attention.self.key.bias");
        CHECK((c.result.inputs[k].max_rel_at >= 0) == !key_bias);
        if (key_bias) CHECK(c.result.inputs[k].max_abs_error < 1e-9);
      }
    }
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------------
// `unipelt gradcheck methods`
// ---------------------------------------------------------------------------------------------------

TEST_CASE("gradcheck methods: finetune", "[pelt]") { check_preset("finetune"); }
TEST_CASE("gradcheck methods: bitfit", "[pelt]") { check_preset("bitfit"); }
TEST_CASE("gradcheck methods: adapter", "[pelt]") { check_preset("adapter"); }
TEST_CASE("gradcheck methods: prefix", "[pelt]") { check_preset("prefix"); }
TEST_CASE("gradcheck methods: lora", "[pelt]") { check_preset("lora"); }
TEST_CASE("gradcheck methods: unipelt-ap", "[pelt]") { check_preset("unipelt-ap"); }
TEST_CASE("gradcheck methods: unipelt-apl", "[pelt]") { check_preset("unipelt-apl"); }
TEST_CASE("gradcheck methods: unipelt-nogate", "[pelt]") { check_preset("unipelt-nogate"); }

TEST_CASE("the gradient check of a method covers all eight presets", "[pelt]") {
  CHECK(preset_names() == std::vector<std::string>{"finetune", "bitfit", "adapter", "prefix", "lora", "unipelt-ap",
                                                   "unipelt-apl", "unipelt-nogate"});
}

// ---------------------------------------------------------------------------------------------------
// Behaviour
// ---------------------------------------------------------------------------------------------------

TEST_CASE("LoRA with B = 0 leaves the logits of the base model unchanged", "[pelt]") {
  for (const char* method : {"lora", "unipelt-apl"}) {
    INFO(method);
    TinyPeltSetup s = make_tiny_pelt(preset(method), false);
    randomize_layernorms(*s.bert, 32);
    const Batch batch = tiny_batch(false);
    if (std::string(method) == "lora") {
      // With the random (nonzero) B of make_tiny_pelt LoRA does change the output...
      CHECK(max_abs_diff(pelt_logits(*s.model, batch), plain_logits(*s.bert, batch)) > 1e-6);
      for (const NamedTensor& p : s.model->pelt_parameters())
        if (ends_with(p.name, "lora_B")) init_constant(p.tensor, 0.0);
      // ... and with B = 0 it is exactly plain BERT.
      CHECK(max_abs_diff(pelt_logits(*s.model, batch), plain_logits(*s.bert, batch)) <= 1e-12);
    } else {
      // unipelt-apl with B = 0 equals unipelt-ap with the same adapter and prefix tensors.
      PeltConfig ap = preset("unipelt-ap");
      ap.adapter_size = 4;
      ap.prefix_len = 3;
      ap.prefix_mid = 8;
      Tensor apl_before = pelt_logits(*s.model, batch);
      for (const NamedTensor& p : s.model->pelt_parameters())
        if (ends_with(p.name, "lora_B")) init_constant(p.tensor, 0.0);
      Tensor apl_zero_b = pelt_logits(*s.model, batch);
      std::map<std::string, Tensor> apl_tensors;
      for (const NamedTensor& p : s.model->pelt_parameters()) apl_tensors[p.name] = p.tensor;
      PeltModel ap_model(*s.bert, ap, 99);
      int copied = 0;
      for (const NamedTensor& p : ap_model.pelt_parameters()) {
        REQUIRE(apl_tensors.count(p.name));
        p.tensor.copy_from(apl_tensors.at(p.name));
        ++copied;
      }
      CHECK(copied > 0);
      CHECK(max_abs_diff(apl_before, apl_zero_b) > 1e-6);
      CHECK(max_abs_diff(pelt_logits(ap_model, batch), apl_zero_b) <= 1e-12);
    }
  }
}

TEST_CASE("an ungated adapter with a zero up-projection leaves the logits unchanged", "[pelt]") {
  TinyPeltSetup s = make_tiny_pelt(preset("adapter"), false);
  randomize_layernorms(*s.bert, 31);
  const Batch batch = tiny_batch(false);
  CHECK(max_abs_diff(pelt_logits(*s.model, batch), plain_logits(*s.bert, batch)) > 1e-6);
  int zeroed = 0;
  for (const NamedTensor& p : s.model->pelt_parameters())
    if (p.name.find(".adapter.up.") != std::string::npos) {
      init_constant(p.tensor, 0.0);
      ++zeroed;
    }
  CHECK(zeroed == 2 * 2);  // weight and bias, two layers
  CHECK(max_abs_diff(pelt_logits(*s.model, batch), plain_logits(*s.bert, batch)) <= 1e-12);
}

TEST_CASE("UniPELT gates are one value in (0,1) per example, layer and submodule", "[pelt]") {
  for (GatePool pool : {GatePool::Masked, GatePool::All}) {
    PeltConfig config = preset("unipelt-apl");
    config.gate_pool = pool;
    TinyPeltSetup s = make_tiny_pelt(config, false);
    pelt_logits(*s.model, tiny_batch(false));
    const auto& gates = s.model->gate_values();
    std::set<std::string> names;
    for (const auto& [name, g] : gates) {
      INFO(name);
      names.insert(name);
      REQUIRE(g.shape() == Shape{3});
      for (double v : g.to_vector()) {
        CHECK(v > 0.0);
        CHECK(v < 1.0);
      }
    }
    std::set<std::string> expected;
    for (int i = 0; i < 2; ++i)
      for (const char* w : {"adapter", "prefix", "lora_query", "lora_value"})
        expected.insert("layer." + std::to_string(i) + "." + w);
    CHECK(names == expected);
  }
  // Ungated presets record no gates.
  TinyPeltSetup nogate = make_tiny_pelt(preset("unipelt-nogate"), false);
  pelt_logits(*nogate.model, tiny_batch(false));
  CHECK(nogate.model->gate_values().empty());
}

TEST_CASE("masked gate pooling is independent of extra padding, all pooling is not", "[pelt]") {
  const Batch batch = tiny_batch(false), padded = with_extra_padding(batch, 4);
  REQUIRE(padded.seq_len() == batch.seq_len() + 4);
  for (const char* method : {"unipelt-apl", "unipelt-ap"}) {
    INFO(method);
    {
      PeltConfig config = preset(method);
      config.gate_pool = GatePool::Masked;
      TinyPeltSetup s = make_tiny_pelt(config, false);
      auto a = forward_backward_outputs(*s.model, batch);
      auto b = forward_backward_outputs(*s.model, padded);
      REQUIRE(a.size() == b.size());
      for (size_t i = 0; i < a.size(); ++i) {
        INFO("masked: " << a[i].first);
        CHECK(a[i].first == b[i].first);
        // logits, loss, gates and every gradient
        CHECK(max_abs_diff(a[i].second, b[i].second) <= 1e-10 * std::max(1.0, max_abs(a[i].second)));
      }
    }
    {
      PeltConfig config = preset(method);
      config.gate_pool = GatePool::All;
      TinyPeltSetup s = make_tiny_pelt(config, false);
      Tensor la = pelt_logits(*s.model, batch);
      std::map<std::string, Tensor> ga = s.model->gate_values();
      Tensor lb = pelt_logits(*s.model, padded);
      std::map<std::string, Tensor> gb = s.model->gate_values();
      CHECK(max_abs_diff(la, lb) > 1e-8);
      REQUIRE(ga.size() == gb.size());
      for (const auto& [name, g] : ga) {
        INFO("all: " << name);
        // Every row, the unpadded one included, now has padding averaged into its gate.
        const std::vector<double> x = g.to_vector(), y = gb.at(name).to_vector();
        for (size_t r = 0; r < x.size(); ++r) CHECK(std::abs(x[r] - y[r]) > 1e-9);
      }
    }
  }
}

namespace {
// Prepends L all-zero key and value rows to every layer: what a prefix scaled by a gate of 0 is.
class ZeroPrefixSeams : public BertSeams {
 public:
  ZeroPrefixSeams(int64_t heads, int64_t length, int64_t head_dim) : heads_(heads), length_(length), d_(head_dim) {}
  KeyValuePrefix attention_prefix(int, const Tensor& x, const Tensor&) override {
    Tensor z = Tensor::zeros({x.size(0), heads_, length_, d_}, x.dtype(), x.device());
    return {z, z};
  }

 private:
  int64_t heads_, length_, d_;
};
}  // namespace

TEST_CASE("a prefix gate near 0 zeroes the prefix, which still differs from having no prefix", "[pelt]") {
  PeltConfig config;
  config.method = "custom";
  config.prefix = true;
  config.gated = true;
  TinyPeltSetup s = make_tiny_pelt(config, false);
  const Batch batch = tiny_batch(false);
  PeltModel& model = *s.model;

  // Sanity: at the random init the prefix keys are far from zero.
  const Tensor probe = random_uniform({3, 6, 16}, -1, 1, 17);
  {
    NoGradGuard no_grad;
    ForwardContext ctx;
    model.begin_forward(batch, ctx);
    KeyValuePrefix kv = model.attention_prefix(0, probe, batch.attention_mask);
    REQUIRE(kv.keys.shape() == Shape{3, 2, 3, 8});
    CHECK(max_abs(kv.keys) > 1e-3);
    CHECK(max_abs(kv.values) > 1e-3);
  }
  const Tensor with_open_gate = pelt_logits(model, batch);

  for (int i = 0; i < 2; ++i)
    init_constant(param(model, "bert.encoder.layer." + std::to_string(i) + ".attention.self.prefix_gate.bias"),
                  -1000.0);
  const Tensor closed = pelt_logits(model, batch);
  for (const auto& [name, g] : model.gate_values()) {
    INFO(name);
    CHECK(max_abs(g) < 1e-100);
  }
  {
    NoGradGuard no_grad;
    ForwardContext ctx;
    model.begin_forward(batch, ctx);
    for (int layer = 0; layer < 2; ++layer) {
      KeyValuePrefix kv = model.attention_prefix(layer, probe, batch.attention_mask);
      CHECK(max_abs(kv.keys) < 1e-100);
      CHECK(max_abs(kv.values) < 1e-100);
    }
  }
  CHECK(max_abs_diff(closed, with_open_gate) > 1e-6);

  // The closed prefix is exactly L zero keys (score 0) and zero values, still in the softmax...
  ZeroPrefixSeams zeros(2, 3, 8);
  CHECK(max_abs_diff(closed, plain_logits(*s.bert, batch, &zeros)) <= 1e-12);
  // ... so it is NOT the model without a prefix.
  PeltConfig off = config;
  off.prefix = false;
  PeltModel no_prefix(*s.bert, off, 1);
  const Tensor without = pelt_logits(no_prefix, batch);
  CHECK(max_abs_diff(without, plain_logits(*s.bert, batch)) == 0.0);
  CHECK(max_abs_diff(closed, without) > 1e-6);
}

TEST_CASE("frozen parameters get no gradient tensor, trainable ones get one, for every preset", "[pelt]") {
  for (const std::string& method : preset_names()) {
    const PeltConfig config = preset(method);
    TinyPeltSetup s = make_tiny_pelt(config, false);
    tape().clear();
    ForwardContext ctx;
    auto out = s.model->forward(tiny_batch(false), ctx);
    backward(out.loss);
    std::set<std::string> pelt_names;
    for (const NamedTensor& p : s.model->pelt_parameters()) pelt_names.insert(p.name);
    int frozen = 0, trained = 0;
    for (const NamedTensor& p : s.model->all_parameters()) {
      INFO(method << ": " << p.name);
      const bool should_train = pelt_names.count(p.name) || config.finetune ||
                                p.name.rfind("classifier.", 0) == 0 || (config.bitfit && ends_with(p.name, "bias"));
      CHECK(p.tensor.requires_grad() == should_train);
      if (p.tensor.requires_grad()) {
        CHECK(p.tensor.grad().defined());
        ++trained;
      } else {
        CHECK_FALSE(p.tensor.grad().defined());
        ++frozen;
      }
    }
    INFO(method);
    CHECK(trained >= 2);
    CHECK((config.finetune ? frozen == 0 : frozen > 0));
    tape().clear();
  }
}

// ---------------------------------------------------------------------------------------------------
// Parameter counts (paper Table 4)
// ---------------------------------------------------------------------------------------------------

TEST_CASE("unipelt params: exact parameter counts for BERT-base", "[pelt]") {
  static BertForSequenceClassification base(BertConfig{}, DType::F32);  // zeros; ~440 MB
  auto counts = [](const std::string& method) {
    PeltModel model(base, preset(method), 0);
    return count_parameters(model);
  };
  struct Expect {
    const char* method;
    int64_t trained, stored;
  };
  const int64_t bert_base = 109'482'240;
  for (const Expect& e : {Expect{"finetune", bert_base, bert_base}, Expect{"bitfit", 102'912, 102'912},
                          Expect{"adapter", 894'528, 894'528}, Expect{"prefix", 9'857'024, 184'320},
                          Expect{"lora", 294'912, 294'912}, Expect{"unipelt-ap", 10'770'008, 1'097'304},
                          Expect{"unipelt-apl", 11'083'376, 1'410'672},
                          Expect{"unipelt-nogate", 11'046'464, 1'373'760}}) {
    INFO(e.method);
    const ParameterCounts c = counts(e.method);
    CHECK(c.trained == e.trained);
    CHECK(c.stored == e.stored);
    CHECK(c.base == bert_base);
    CHECK(c.head == 2 * 768 + 2);
  }

  // The CLI prints the same numbers.
  const fs::path dir = testing::scratch_dir("pelt_params_cli");
  save_bert_config(BertConfig{}, dir / "config.json");
  const fs::path out = dir / "out.json";
  const std::string cmd = std::string(UNIPELT_CLI) + " params --config " + (dir / "config.json").string() +
                          " --method unipelt-apl --json > " + out.string();
  REQUIRE(std::system(cmd.c_str()) == 0);
  std::ifstream in(out);
  nlohmann::json j = nlohmann::json::parse(in);
  CHECK(j.at("stored").get<int64_t>() == 1'410'672);
  CHECK(j.at("trained").get<int64_t>() == 11'083'376);
  CHECK(j.at("base").get<int64_t>() == bert_base);
}

// ---------------------------------------------------------------------------------------------------
// Deployment: LoRA merge, prefix ejection
// ---------------------------------------------------------------------------------------------------

TEST_CASE("merging ungated LoRA keeps the logits and leaves plain BERT", "[pelt]") {
  TinyPeltSetup s = make_tiny_pelt(preset("lora"), false);
  const Batch batch = tiny_batch(false);
  const Tensor before = pelt_logits(*s.model, batch);
  REQUIRE(max_abs_diff(before, plain_logits(*s.bert, batch)) > 1e-6);  // LoRA (random A, B) is active
  const Tensor wq = s.bert->layers[0]->query.weight.clone(), wv = s.bert->layers[1]->value.weight.clone();
  const Tensor wk = s.bert->layers[0]->key.weight.clone();
  s.model->merge_lora();
  CHECK(s.model->pelt_parameters().empty());
  CHECK(max_abs_diff(wq, s.bert->layers[0]->query.weight) > 1e-6);
  CHECK(max_abs_diff(wv, s.bert->layers[1]->value.weight) > 1e-6);
  CHECK(max_abs_diff(wk, s.bert->layers[0]->key.weight) == 0.0);
  CHECK(max_abs_diff(before, pelt_logits(*s.model, batch)) <= 1e-10);
  // The merged base model on its own (no seams at all) reproduces the LoRA model.
  CHECK(max_abs_diff(before, plain_logits(*s.bert, batch)) <= 1e-10);
}

TEST_CASE("merging gated LoRA is refused and changes nothing", "[pelt]") {
  TinyPeltSetup s = make_tiny_pelt(preset("unipelt-apl"), false);
  const Batch batch = tiny_batch(false);
  const Tensor before = pelt_logits(*s.model, batch);
  const Tensor wq = s.bert->layers[0]->query.weight.clone();
  CHECK_THROWS_WITH(s.model->merge_lora(), Catch::Contains("gate", Catch::CaseSensitive::No));
  CHECK(max_abs_diff(wq, s.bert->layers[0]->query.weight) == 0.0);
  CHECK(max_abs_diff(before, pelt_logits(*s.model, batch)) == 0.0);
}

TEST_CASE("ejecting the prefix keeps the logits and stores P instead of the MLP", "[pelt]") {
  for (const char* method : {"prefix", "unipelt-apl"}) {
    INFO(method);
    TinyPeltSetup s = make_tiny_pelt(preset(method), false);
    const Batch batch = tiny_batch(false);
    const Tensor before = pelt_logits(*s.model, batch);
    const auto gates_before = s.model->gate_values();
    const ParameterCounts counts_before = count_parameters(*s.model);
    s.model->eject_prefix();
    REQUIRE(s.model->prefix()->ejected());
    CHECK(max_abs_diff(before, pelt_logits(*s.model, batch)) <= 1e-12);
    for (const auto& [name, g] : gates_before) CHECK(max_abs_diff(g, s.model->gate_values().at(name)) <= 1e-12);
    bool has_table = false;
    for (const NamedTensor& p : s.model->pelt_parameters()) {
      CHECK(p.name.find("prefix_embed_MLP") == std::string::npos);
      CHECK(p.name.find("prefix_enc_embed") == std::string::npos);
      if (p.name == "bert.encoder.prefix_ejected") {
        has_table = true;
        CHECK(p.tensor.shape() == Shape{3, 2 * 2 * 16});
      }
    }
    CHECK(has_table);
    CHECK(count_parameters(*s.model).stored == counts_before.stored);
  }
}

// ---------------------------------------------------------------------------------------------------
// Presets and configuration errors
// ---------------------------------------------------------------------------------------------------

TEST_CASE("an unknown preset is refused with the list of valid names", "[pelt]") {
  try {
    preset("nope");
    FAIL("preset(\"nope\") did not throw");
  } catch (const std::invalid_argument& e) {
    const std::string what = e.what();
    CHECK_THAT(what, Catch::Contains("nope"));
    for (const std::string& name : preset_names()) CHECK_THAT(what, Catch::Contains(name));
  }
  CHECK_THROWS_AS(parse_gate_pool("mean"), std::invalid_argument);
  PeltConfig bad = preset("lora");
  bad.lora_r = 0;
  CHECK_THROWS_WITH(bad.validate(), Catch::Contains("lora_r"));
  PeltConfig mixed = preset("finetune");
  mixed.adapter = true;
  CHECK_THROWS_AS(mixed.validate(), std::invalid_argument);
  // Presets survive a JSON round trip.
  for (const std::string& name : preset_names()) {
    INFO(name);
    PeltConfig c = preset(name);
    c.gate_pool = GatePool::All;
    CHECK(PeltConfig::from_json(c.to_json()).to_json() == c.to_json());
  }
  // The CLI refuses an unknown method with a nonzero status.
  const fs::path dir = testing::scratch_dir("pelt_params_bad_method");
  save_bert_config(BertConfig{}, dir / "config.json");
  const std::string cmd = std::string(UNIPELT_CLI) + " params --config " + (dir / "config.json").string() +
                          " --method nope > " + (dir / "out.txt").string() + " 2>&1";
  CHECK(std::system(cmd.c_str()) != 0);
}

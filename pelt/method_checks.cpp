#include "pelt/method_checks.h"

#include "nn/init.h"

namespace unipelt {

BertConfig tiny_bert_config(int num_labels) {
  BertConfig c;
  c.vocab_size = 50;
  c.hidden_size = 16;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 2;
  c.intermediate_size = 32;
  c.max_position_embeddings = 32;
  c.num_labels = num_labels;
  c.id2label.clear();
  for (int i = 0; i < num_labels; ++i) c.id2label.push_back("LABEL_" + std::to_string(i));
  return c;
}

Batch tiny_batch(bool regression, DType dtype) {
  Batch b;
  b.input_ids = Tensor::from_ints({2, 17, 5, 33, 8, 3, 2, 41, 9, 3, 0, 0, 2, 3, 0, 0, 0, 0}, {3, 6});
  b.token_type_ids = Tensor::from_ints({0, 0, 0, 1, 1, 1, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0}, {3, 6});
  b.attention_mask = Tensor::from_vector({1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 0, 0, 0, 0}, {3, 6}, dtype);
  b.labels = regression ? Tensor::from_vector({0.5, -1.25, 2.0}, {3}, dtype) : Tensor::from_ints({0, 2, 1}, {3});
  return b;
}

void init_tiny_bert(const BertForSequenceClassification& bert, uint64_t seed) {
  Rng rng(seed);
  for (const NamedTensor& p : bert.parameters()) {
    const std::string& n = p.name;
    if (n.find("LayerNorm.weight") != std::string::npos) init_uniform(p.tensor, 0.5, 1.5, rng);
    else if (n.size() >= 4 && n.compare(n.size() - 4, 4, "bias") == 0) init_uniform(p.tensor, -0.5, 0.5, rng);
    else init_normal(p.tensor, 0.2, rng);
  }
}

TinyPeltSetup make_tiny_pelt(const PeltConfig& config, bool regression, uint64_t seed) {
  TinyPeltSetup s;
  s.bert = std::make_unique<BertForSequenceClassification>(tiny_bert_config(regression ? 1 : 3), DType::F64);
  init_tiny_bert(*s.bert, seed);
  PeltConfig c = config;
  c.adapter_size = 4;
  c.prefix_len = 3;
  c.prefix_mid = 8;
  c.lora_r = 2;
  c.lora_alpha = 4;
  s.model = std::make_unique<PeltModel>(*s.bert, c, seed + 1);
  Rng rng(seed + 2);
  for (const NamedTensor& p : s.model->pelt_parameters()) init_uniform(p.tensor, -0.5, 0.5, rng);
  return s;
}

MethodCheck check_method(const std::string& method, GatePool pool, bool regression, const GradcheckOptions& options) {
  PeltConfig config = preset(method);
  config.gate_pool = pool;
  TinyPeltSetup s = make_tiny_pelt(config, regression);
  Batch batch = tiny_batch(regression);
  std::vector<Tensor> params;
  std::vector<std::string> names;
  for (const NamedTensor& p : s.model->trainable_parameters()) {
    params.push_back(p.tensor);
    names.push_back(p.name);
  }
  PeltModel& model = *s.model;
  // The parameters are perturbed in place by the harness; the function reads them through the model.
  auto loss = [&model, &batch](const std::vector<Tensor>&) {
    ForwardContext ctx;
    return model.forward(batch, ctx).loss;
  };
  MethodCheck check{method, pool, regression, gradcheck(loss, params, options),
                    static_cast<int64_t>(params.size()), std::move(names)};
  return check;
}

}  // namespace unipelt

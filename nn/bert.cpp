#include "nn/bert.h"

#include <cmath>

#include "autograd/tape.h"
#include "nn/init.h"

namespace unipelt {

Tensor additive_attention_mask(const Tensor& mask) {
  NoGradGuard constant;  // the mask is data, never differentiated
  Tensor ones = Tensor::full(mask.shape(), 1.0, mask.dtype(), mask.device());
  return ops::scale(ops::sub(ones, mask), kMaskedScore);
}

// ---------------------------------------------------------------------------------------------
// One Transformer layer
// ---------------------------------------------------------------------------------------------

BertLayer::BertLayer(const BertConfig& c, DType dtype, Device device)
    : query(c.hidden_size, c.hidden_size, true, dtype, device),
      key(c.hidden_size, c.hidden_size, true, dtype, device),
      value(c.hidden_size, c.hidden_size, true, dtype, device),
      attention_output(c.hidden_size, c.hidden_size, true, dtype, device),
      intermediate(c.hidden_size, c.intermediate_size, true, dtype, device),
      output(c.intermediate_size, c.hidden_size, true, dtype, device),
      attention_norm(c.hidden_size, c.layer_norm_eps, dtype, device),
      output_norm(c.hidden_size, c.layer_norm_eps, dtype, device),
      heads_(c.num_attention_heads),
      hidden_dropout_(c.hidden_dropout_prob),
      attention_dropout_(c.attention_probs_dropout_prob) {}

namespace {
// [B,heads,T,d] -> [B,T,H]
Tensor merge_heads(const Tensor& x) {
  const int64_t B = x.size(0), heads = x.size(1), T = x.size(2), d = x.size(3);
  return ops::reshape(ops::permute(x, {0, 2, 1, 3}), {B, T, heads * d});
}
}  // namespace

std::array<Tensor, 3> BertLayer::project_qkv(const Tensor& x, const Tensor& query_delta,
                                             const Tensor& value_delta) const {
  // q, k and v read the same x: one GEMM against the weights stacked along their output dimension,
  // x [B,T,H] · [W_q; W_k; W_v]ᵀ + [b_q; b_k; b_v] -> [B,T,3H]. The stacking copies 3·H² values, a few
  // per mille of the GEMM (it has B·T times as many multiply-adds); backward, concat hands each weight
  // its rows of the stacked gradient.
  const Tensor weight = ops::concat({query.weight, key.weight, value.weight}, 0);
  const Tensor bias = ops::concat({query.bias, key.bias, value.bias}, 0);
  std::vector<Tensor> qkv = ops::split_heads(ops::linear(x, weight, bias), 3, heads_, {query_delta, {}, value_delta});
  return {qkv[0], qkv[1], qkv[2]};
}

Tensor BertLayer::forward(const Tensor& x, const Tensor& additive_mask, const Tensor& mask, int layer,
                          BertSeams& seams, ForwardContext& ctx) const {
  const int64_t B = x.size(0), H = x.size(2), d = H / heads_;

  // Self-attention. The seams may add low-rank deltas to q and v (each to its slice of the fused
  // projection, before the head split) and prepend prefix keys/values.
  auto [q, k, v] = project_qkv(x, seams.query_delta(layer, x, mask), seams.value_delta(layer, x, mask));
  Tensor scores_mask = additive_mask;
  KeyValuePrefix prefix = seams.attention_prefix(layer, x, mask);
  if (prefix.keys.defined()) {
    const int64_t P = prefix.keys.size(2);
    k = ops::concat({prefix.keys, k}, 2);  // [B,heads,P+T,d]
    v = ops::concat({prefix.values, v}, 2);
    // The prefix positions are always attendable: additive mask 0 in front of the sequence's.
    scores_mask = ops::concat({Tensor::zeros({B, P}, x.dtype(), x.device()), additive_mask}, 1);
  }
  // Scale q rather than the scores: the same result with T·d instead of T·(P+T) multiplications.
  Tensor scores = ops::bmm(ops::scale(q, 1.0 / std::sqrt(static_cast<double>(d))), k, false, true);
  Tensor probs = attention_dropout_.forward(ops::softmax(scores, scores_mask), ctx);  // [B,heads,T,P+T]
  Tensor context = merge_heads(ops::bmm(probs, v));                                    // [B,T,H]
  Tensor a = attention_norm.forward(ops::add(hidden_dropout_.forward(attention_output.forward(context), ctx), x));

  // Feed-forward block; the seam decides how f and the residual a are combined (adapters go here).
  Tensor f = hidden_dropout_.forward(output.forward(ops::gelu(intermediate.forward(a))), ctx);
  return seams.output_sublayer(layer, f, a, output_norm, mask);
}

void BertLayer::named_parameters(const std::string& p, std::vector<NamedTensor>& out) const {
  query.named_parameters(p + "attention.self.query.", out);
  key.named_parameters(p + "attention.self.key.", out);
  value.named_parameters(p + "attention.self.value.", out);
  attention_output.named_parameters(p + "attention.output.dense.", out);
  attention_norm.named_parameters(p + "attention.output.LayerNorm.", out);
  intermediate.named_parameters(p + "intermediate.dense.", out);
  output.named_parameters(p + "output.dense.", out);
  output_norm.named_parameters(p + "output.LayerNorm.", out);
}

// ---------------------------------------------------------------------------------------------
// The whole model
// ---------------------------------------------------------------------------------------------

BertForSequenceClassification::BertForSequenceClassification(const BertConfig& c, DType dtype, Device device)
    : word_embeddings(c.vocab_size, c.hidden_size, dtype, device),
      position_embeddings(c.max_position_embeddings, c.hidden_size, dtype, device),
      token_type_embeddings(c.type_vocab_size, c.hidden_size, dtype, device),
      embedding_norm(c.hidden_size, c.layer_norm_eps, dtype, device),
      pooler(c.hidden_size, c.hidden_size, true, dtype, device),
      classifier(c.hidden_size, c.num_labels, true, dtype, device),
      config_(c),
      dtype_(dtype),
      device_(device),
      hidden_dropout_(c.hidden_dropout_prob),
      classifier_dropout_(c.classifier_dropout) {
  c.validate();
  for (int i = 0; i < c.num_hidden_layers; ++i) layers.push_back(std::make_unique<BertLayer>(c, dtype, device));
}

BertForSequenceClassification::Output BertForSequenceClassification::forward(const Batch& batch, ForwardContext& ctx,
                                                                             BertSeams* seams) const {
  BertSeams plain;
  BertSeams& s = seams ? *seams : plain;
  const int64_t T = batch.seq_len();
  check(batch.input_ids.ndim() == 2, "bert",
        [&] { return "input_ids must be [B, T], got " + shape_str(batch.input_ids.shape()); });
  check(batch.token_type_ids.shape() == batch.input_ids.shape() && batch.attention_mask.shape() == batch.input_ids.shape(),
        "bert", "input_ids, token_type_ids and attention_mask must share one shape [B, T]");
  check(T <= config_.max_position_embeddings, "bert", [&] {
    return "sequence length " + std::to_string(T) + " exceeds max_position_embeddings " +
           std::to_string(config_.max_position_embeddings);
  });
  check(batch.attention_mask.dtype() == dtype_, "bert", "attention_mask must have the model's dtype");
  s.begin_forward(batch, ctx);

  // Embeddings: word + position + token type, LayerNorm, dropout.
  std::vector<int32_t> positions(static_cast<size_t>(T));
  for (int64_t t = 0; t < T; ++t) positions[static_cast<size_t>(t)] = static_cast<int32_t>(t);
  Tensor position_ids = Tensor::from_ints(positions, {T}, device_);
  Tensor h = ops::add(ops::add(word_embeddings.forward(batch.input_ids), position_embeddings.forward(position_ids)),
                      token_type_embeddings.forward(batch.token_type_ids));
  h = hidden_dropout_.forward(embedding_norm.forward(h), ctx);

  const Tensor additive = additive_attention_mask(batch.attention_mask);
  for (size_t i = 0; i < layers.size(); ++i)
    h = layers[i]->forward(h, additive, batch.attention_mask, static_cast<int>(i), s, ctx);

  // Pooler on [CLS], then the head.
  Tensor pooled = ops::tanh(pooler.forward(ops::select(h, 1, 0)));
  Output out;
  out.logits = classifier.forward(classifier_dropout_.forward(pooled, ctx));
  if (batch.labels.defined())
    out.loss = is_regression() ? ops::mse_loss(out.logits, batch.labels) : ops::cross_entropy(out.logits, batch.labels);
  return out;
}

void BertForSequenceClassification::init_weights(uint64_t seed) const {
  Rng rng(seed);
  const double std = config_.initializer_range;
  for (const NamedTensor& p : parameters()) {
    const std::string& n = p.name;
    if (n.find("LayerNorm.weight") != std::string::npos) init_constant(p.tensor, 1.0);
    else if (n.size() >= 4 && n.compare(n.size() - 4, 4, "bias") == 0) init_constant(p.tensor, 0.0);
    else init_normal(p.tensor, std, rng);
  }
}

void BertForSequenceClassification::init_classifier(uint64_t seed) const {
  Rng rng(seed);
  classifier.init_bert(rng, config_.initializer_range);
}

void BertForSequenceClassification::named_parameters(const std::string& p, std::vector<NamedTensor>& out) const {
  word_embeddings.named_parameters(p + "bert.embeddings.word_embeddings.", out);
  position_embeddings.named_parameters(p + "bert.embeddings.position_embeddings.", out);
  token_type_embeddings.named_parameters(p + "bert.embeddings.token_type_embeddings.", out);
  embedding_norm.named_parameters(p + "bert.embeddings.LayerNorm.", out);
  for (size_t i = 0; i < layers.size(); ++i)
    layers[i]->named_parameters(p + "bert.encoder.layer." + std::to_string(i) + ".", out);
  pooler.named_parameters(p + "bert.pooler.dense.", out);
  classifier.named_parameters(p + "classifier.", out);
}

}  // namespace unipelt

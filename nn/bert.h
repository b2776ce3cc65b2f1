// BERT (Devlin et al., 2019) for sequence classification, with Hugging Face parameter names.
//
// Data flow through one layer (B batch, T tokens, H hidden, heads × d = H); docs/bert.md draws it:
//   x [B,T,H] ─► q,k,v = x·W{q,k,v}ᵀ + b      (one GEMM against [W_q; W_k; W_v]; seam: + query_delta / value_delta)
//               split heads [B,heads,T,d]      (seam: prefix keys/values prepended → [B,heads,P+T,d])
//               softmax(q·kᵀ/√d + mask)·v ─► merge heads ─► dense, dropout ─► a = LN(· + x)
//   a ─► gelu(a·W_iᵀ + b_i) ─► dense, dropout = f ─► LN(f + a)   (seam: output_sublayer(f, a, LN))
//
// nn/ knows nothing about parameter-efficient methods: it only calls the BertSeams interface, whose
// default implementation is plain BERT. pelt/ implements the seams.
#pragma once

#include <array>
#include <memory>
#include <string>
#include <vector>

#include "nn/batch.h"
#include "nn/bert_config.h"
#include "nn/module.h"

namespace unipelt {

// Extra attention rows for one layer: keys and values, each [B, heads, P, d].
struct KeyValuePrefix {
  Tensor keys, values;
};

class BertSeams {
 public:
  virtual ~BertSeams() = default;
  // Once per forward, before the embeddings (prefix-tuning runs its MLP here).
  virtual void begin_forward(const Batch& /*batch*/, ForwardContext& /*ctx*/) {}
  // Rows prepended to layer `layer`'s keys and values; `layer_input` is the layer's input [B,T,H].
  virtual KeyValuePrefix attention_prefix(int /*layer*/, const Tensor& /*layer_input*/, const Tensor& /*mask*/) {
    return {};
  }
  // Additive deltas on the query and value projections of input x [B,T,H] (undefined: none).
  virtual Tensor query_delta(int /*layer*/, const Tensor& /*x*/, const Tensor& /*mask*/) { return {}; }
  virtual Tensor value_delta(int /*layer*/, const Tensor& /*x*/, const Tensor& /*mask*/) { return {}; }
  // The layer's last step. f: FFN output before its residual; a: attention block output (the residual).
  virtual Tensor output_sublayer(int /*layer*/, const Tensor& f, const Tensor& a, const LayerNorm& ln,
                                 const Tensor& /*mask*/) {
    return ln.forward(ops::add(f, a));
  }
};

class BertLayer : public Module {
 public:
  BertLayer(const BertConfig& config, DType dtype, Device device);
  // x [B,T,H], additive mask [B,T] (0 or -10000), attention mask [B,T] (1/0) -> [B,T,H]
  Tensor forward(const Tensor& x, const Tensor& additive_mask, const Tensor& mask, int layer, BertSeams& seams,
                 ForwardContext& ctx) const;
  void named_parameters(const std::string& prefix, std::vector<NamedTensor>& out) const override;
  // q, k, v [B,heads,T,d] of x [B,T,H]: one fused GEMM, the deltas (each may be undefined) added to q and v.
  std::array<Tensor, 3> project_qkv(const Tensor& x, const Tensor& query_delta, const Tensor& value_delta) const;

  Linear query, key, value, attention_output, intermediate, output;
  LayerNorm attention_norm, output_norm;

 private:
  int heads_;
  Dropout hidden_dropout_, attention_dropout_;
};

class BertForSequenceClassification : public Module {
 public:
  BertForSequenceClassification(const BertConfig& config, DType dtype = DType::F32, Device device = Device::CPU);

  struct Output {
    Tensor logits;  // [B, num_labels]
    Tensor loss;    // [1]; undefined when the batch has no labels
  };
  // seams may be null (plain BERT).
  Output forward(const Batch& batch, ForwardContext& ctx, BertSeams* seams = nullptr) const;

  // BERT's initialisation: N(0, initializer_range) for weights and embeddings, zero biases, LayerNorm 1/0.
  void init_weights(uint64_t seed) const;
  void init_classifier(uint64_t seed) const;  // the head alone (when a checkpoint has none)
  void named_parameters(const std::string& prefix, std::vector<NamedTensor>& out) const override;

  const BertConfig& config() const { return config_; }
  DType dtype() const { return dtype_; }
  Device device() const { return device_; }
  bool is_regression() const { return config_.num_labels == 1; }

  Embedding word_embeddings, position_embeddings, token_type_embeddings;
  LayerNorm embedding_norm;
  std::vector<std::unique_ptr<BertLayer>> layers;
  Linear pooler, classifier;

 private:
  BertConfig config_;
  DType dtype_;
  Device device_;
  Dropout hidden_dropout_, classifier_dropout_;
};

// The additive attention mask: (1 - mask) · (-10000), [B, T]. -10000 as in the original BERT and the
// UniPELT code; in float32 and float64 exp(-10000) underflows to exactly 0.
Tensor additive_attention_mask(const Tensor& mask);
constexpr double kMaskedScore = -10000.0;

}  // namespace unipelt

// UniPELT (Mao et al. 2022, §3): adapter, prefix-tuning and LoRA as gated submodules of a frozen BERT.
//
// PeltModel wraps a BertForSequenceClassification and plugs the enabled methods into its seams:
//   attention  q += LoRA_q(x)·g_Lq,  v += LoRA_v(x)·g_Lv,  [P_K; K], [P_V; V] scaled by g_P
//   FFN end    LN(g_A · adapter(LN(f + a)) + f + a)
// It also decides what trains (pelt/trainable.cpp): the PELT tensors, the classification head, and for
// the baselines every base parameter (fine-tuning) or every bias (BitFit). Everything else is frozen
// and so costs no gradient buffer, no weight-gradient GEMM and no optimizer state.
#pragma once

#include <map>
#include <memory>
#include <vector>

#include "nn/bert.h"
#include "pelt/adapter.h"
#include "pelt/config.h"
#include "pelt/lora.h"
#include "pelt/prefix.h"

namespace unipelt {

class PeltModel : public BertSeams {
 public:
  // Builds the enabled submodules (initialised from `seed`) and sets the trainable flags of `base`.
  PeltModel(BertForSequenceClassification& base, const PeltConfig& config, uint64_t seed);

  BertForSequenceClassification::Output forward(const Batch& batch, ForwardContext& ctx);

  // The PELT submodules' tensors, by full Hugging Face-style name (see docs/methods.md).
  std::vector<NamedTensor> pelt_parameters() const;
  // Everything that trains: trainable base parameters (always the classifier) and the PELT tensors.
  std::vector<NamedTensor> trainable_parameters() const;
  // Every tensor of the model, base and PELT.
  std::vector<NamedTensor> all_parameters() const;

  // Gate values of the last forward, "layer.{i}.{adapter,prefix,lora_query,lora_value}" -> [B].
  const std::map<std::string, Tensor>& gate_values() const { return gates_; }

  // Replaces the prefix MLP by its output (stored prefixes only). No effect without prefix-tuning.
  void eject_prefix();
  // W_q ← W_q + s·B_q·A_q, W_v likewise, then LoRA is removed. Refuses when LoRA is gated.
  void merge_lora();
  bool lora_merged() const { return lora_merged_; }

  const PeltConfig& config() const { return config_; }
  BertForSequenceClassification& base() const { return base_; }
  PrefixTuning* prefix() const { return prefix_.get(); }

  // BertSeams
  void begin_forward(const Batch& batch, ForwardContext& ctx) override;
  KeyValuePrefix attention_prefix(int layer, const Tensor& layer_input, const Tensor& mask) override;
  Tensor query_delta(int layer, const Tensor& x, const Tensor& mask) override;
  Tensor value_delta(int layer, const Tensor& x, const Tensor& mask) override;
  Tensor output_sublayer(int layer, const Tensor& f, const Tensor& a, const LayerNorm& ln, const Tensor& mask) override;

 private:
  void record_gate(int layer, const char* which, const Tensor& g);

  BertForSequenceClassification& base_;
  PeltConfig config_;
  std::vector<std::unique_ptr<Adapter>> adapters_;
  std::vector<std::unique_ptr<LoRA>> lora_query_, lora_value_;
  std::unique_ptr<PrefixTuning> prefix_;
  std::map<std::string, Tensor> gates_;
  bool lora_merged_ = false;
};

// Sets requires_grad on the base model's parameters for a method (finetune: all; bitfit: every *bias;
// always classifier.*; otherwise frozen). Implemented in pelt/trainable.cpp.
void apply_trainable_flags(const BertForSequenceClassification& base, const PeltConfig& config);

// Parameter counts for `unipelt params`: trained = trainable during training excluding the head;
// stored = what a deployed model keeps (prefix ejected); base = BERT without the head.
struct ParameterCounts {
  int64_t trained = 0, stored = 0, base = 0, head = 0;
};
ParameterCounts count_parameters(const PeltModel& model);

}  // namespace unipelt

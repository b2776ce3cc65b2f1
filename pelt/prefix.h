// Prefix-tuning (Li & Liang 2021; Mao et al. 2022, §2.1 and §3.2), reparameterised by an MLP.
//
//   P = W_2 · tanh(W_1 · E + b_1) + b_2       E [L,H], W_1 [mid,H], W_2 [n_layers·2·H, mid]
//
// P is [L, n_layers·2·H]; feature ((2·layer + kv)·heads + head)·head_dim + d holds layer `layer`'s
// key (kv = 0) or value (kv = 1) prefix for one head. Layer i prepends its L key rows and L value rows
// (heads × L × head_dim) to its own keys and values: they bypass W_K and W_V, and the attention mask gains
// L always-attendable positions in front. In UniPELT one gate per layer, reading the layer's input
// hidden states, scales both the key and the value prefix: g_P → 0 shrinks the prefix *keys* to zero,
// but the softmax still sees them (their scores become 0, not -∞), so they keep some attention weight
// on the zero *values*; see docs/methods.md.
//
// After training the MLP is not needed: eject() stores P itself, 2·n_layers·L·H numbers (184,320 for
// BERT-base, L = 10) — the paper's parameter count — instead of E and the MLP, 9,857,024.
// The backward through the softmax, g_P, the MLP and into E, and what eject changes, by hand:
// docs/gradients.md §4.
#pragma once

#include <vector>

#include "nn/module.h"
#include "pelt/gate.h"

namespace unipelt {

class PrefixTuning : public Module {
 public:
  PrefixTuning(int64_t hidden, int layers, int heads, int length, int mid, bool gated, DType dtype, Device device);
  // Computes P for this forward (from the MLP, or the ejected table). Call once per forward.
  void begin_forward();
  // Layer i's {keys, values}, each [B, heads, L, d], scaled by the gate when gated (values [B] to *gate_out).
  std::pair<Tensor, Tensor> key_values(int layer, const Tensor& layer_input, const Tensor& mask, GatePool pool,
                                       Tensor* gate_out) const;
  // Replace the MLP by its output (the model keeps working identically; training the prefix stops).
  void eject();
  // Adopts an ejected table P [L, n_layers·2·H] (loading an ejected checkpoint).
  void load_ejected(const Tensor& table);
  bool ejected() const { return ejected_.defined(); }
  void init(Rng& rng) const;
  // Encoder-level tensors ("prefix_enc_embed.weight", "prefix_embed_MLP.*" or "prefix_ejected").
  void named_parameters(const std::string& prefix, std::vector<NamedTensor>& out) const override;
  // Gate of layer i (under "bert.encoder.layer.{i}.attention.self.prefix_gate.").
  const Gate& gate(int layer) const { return gates_[static_cast<size_t>(layer)]; }
  bool gated() const { return !gates_.empty(); }

  Tensor embed;        // E [L,H]
  Linear mlp_in, mlp_out;

 private:
  Tensor ejected_;     // P [L, n_layers·2·H] once ejected
  Tensor per_layer_;   // P as [n_layers·2, heads, L, d] for the current forward
  std::vector<Gate> gates_;
  int layers_, heads_, length_;
  int64_t hidden_;
};

}  // namespace unipelt

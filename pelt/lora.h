// LoRA on the query and value projections (Hu et al. 2021; Mao et al. 2022, §2.1 and §3.2).
//
//   q = W_q·x + b_q + s · B·A·x        A [r,H], B [H,r]   (the same for v with its own A, B)
//
// s = alpha / r when ungated (alpha = 16, r = 8: s = 2, the paper's α). In UniPELT the gate *replaces*
// that constant: s = g_L = pool σ(w·x + c), one gate for the query and another for the value, both
// reading the projection's input x. Init: A ~ U(-1/√H, 1/√H) (PyTorch's Kaiming-uniform with a = √5
// for a [r,H] matrix), B = 0, so training starts from the pre-trained model exactly.
// Parameters per projection: 2·r·H (12,288 for BERT-base, r = 8).
// The backward (dL/dA, dL/dB, dL/dg_L and the extra dL/dx), by hand: docs/gradients.md §3.
#pragma once

#include "nn/module.h"
#include "pelt/gate.h"

namespace unipelt {

class LoRA : public Module {
 public:
  LoRA(int64_t hidden, int rank, double scaling, bool gated, DType dtype, Device device);
  // x [B,T,H] -> s · (x·Aᵀ)·Bᵀ [B,T,H]; writes the gate values [B] to *gate_out when gated.
  Tensor delta(const Tensor& x, const Tensor& mask, GatePool pool, Tensor* gate_out) const;
  // W += s · B·A (ungated only): the deployed model then runs at plain BERT speed.
  void merge_into(const Tensor& weight) const;
  void init(Rng& rng) const;
  void named_parameters(const std::string& prefix, std::vector<NamedTensor>& out) const override;

  Tensor A, B;  // lora_A [r,H], lora_B [H,r]
  double scaling;
  bool gated;
  Gate gate;
};

}  // namespace unipelt

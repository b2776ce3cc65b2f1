// Bottleneck adapter, Pfeiffer placement: after the feed-forward block only (Mao et al. 2022, §2.1
// and §3.2; Pfeiffer et al. 2021).
//
// With a = the attention block's output (the FFN's residual) and f = the FFN output before its
// residual, and LN the layer's existing output.LayerNorm (reused, not copied):
//
//   x   = LN(f + a)                              what plain BERT would output
//   h_A = W_up · ReLU(W_down · x + b_down) + b_up    W_down [m,H], W_up [H,m]
//   out = LN(g_A · h_A + f + a)                  the same LayerNorm parameters applied again
//
// g_A is the adapter gate reading x (UniPELT), or 1 when ungated. Init: N(0, 0.02) weights, zero
// biases. Note that with W_up = 0 and b_up = 0 the layer output is LN(f + a): unchanged from BERT.
// Parameters per layer: 2·H·m + m + H (74,544 for BERT-base, m = 48).
// The backward, including how the two uses of LN's γ and β add up, by hand: docs/gradients.md §2.
#pragma once

#include "nn/module.h"
#include "pelt/gate.h"

namespace unipelt {

class Adapter : public Module {
 public:
  Adapter(int64_t hidden, int64_t bottleneck, bool gated, DType dtype, Device device);
  // Returns the layer output; writes the gate values [B] to *gate_out when gated.
  Tensor forward(const Tensor& f, const Tensor& a, const LayerNorm& ln, const Tensor& mask, GatePool pool,
                 Tensor* gate_out) const;
  void init(Rng& rng) const;
  void named_parameters(const std::string& prefix, std::vector<NamedTensor>& out) const override;

  Linear down, up;
  bool gated;
  Gate gate;
};

}  // namespace unipelt

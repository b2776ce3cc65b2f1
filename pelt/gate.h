// The UniPELT gate (Mao et al. 2022, §3.2, Eq. 5-7): one scalar per example and layer that scales a
// submodule's contribution.
//
//   g = pool_t σ(w · h_t + c),   w ∈ R^{1×H}, c ∈ R,   h [B,T,H] the submodule's input
//
// The score is computed per token, then pooled over tokens:
//   masked (default)  mean over real tokens (attention mask = 1): independent of padding;
//   all               mean over all T positions, padding included, as the official code does
//                     (it always pads to 128, so its gates see the padding).
// Init: w ~ N(0, 0.02), c = 0, so every gate starts near σ(0) = 0.5.
// The backward (dL/dw, dL/dc, dL/dh from dL/dg, both poolings), by hand: docs/gradients.md §1.
#pragma once

#include "nn/module.h"
#include "pelt/config.h"

namespace unipelt {

class Rng;

class Gate : public Module {
 public:
  Gate() = default;
  Gate(int64_t hidden, DType dtype, Device device);
  // h [B,T,H], mask [B,T] (1/0) -> g [B]
  Tensor forward(const Tensor& h, const Tensor& mask, GatePool pool) const;
  void init(Rng& rng) const;
  void named_parameters(const std::string& prefix, std::vector<NamedTensor>& out) const override;

  Linear score;  // weight [1,H], bias [1]
};

}  // namespace unipelt

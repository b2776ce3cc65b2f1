#include "pelt/lora.h"

#include <cmath>

#include "autograd/tape.h"
#include "nn/init.h"

namespace unipelt {

LoRA::LoRA(int64_t hidden, int rank, double scaling_, bool gated_, DType dtype, Device device)
    : A(Tensor::zeros({rank, hidden}, dtype, device)),
      B(Tensor::zeros({hidden, rank}, dtype, device)),
      scaling(scaling_),
      gated(gated_) {
  if (gated) gate = Gate(hidden, dtype, device);
}

Tensor LoRA::delta(const Tensor& x, const Tensor& mask, GatePool pool, Tensor* gate_out) const {
  // Two thin products, x·Aᵀ [B,T,r] then ·Bᵀ [B,T,H]: never form the H×H matrix B·A. The scale goes
  // on the rank-r intermediate, s·((x·Aᵀ)·Bᵀ) = (s·x·Aᵀ)·Bᵀ: H/r times fewer multiplies (forward and
  // backward) than scaling the [B,T,H] result.
  Tensor u = ops::linear(x, A);                             // [B,T,r]
  if (!gated) return ops::linear(ops::scale(u, scaling), B);
  Tensor g = gate.forward(x, mask, pool);                   // [B]
  if (gate_out) *gate_out = g;
  return ops::linear(ops::mul(u, ops::reshape(g, {g.size(0), 1, 1})), B);
}

void LoRA::merge_into(const Tensor& weight) const {
  if (gated)
    throw std::logic_error("gated LoRA cannot be merged: its scale g_L depends on each input, so no single weight "
                           "matrix reproduces it");
  NoGradGuard no_grad;
  Tensor merged = ops::add(weight, ops::scale(ops::matmul(B, A), scaling));  // W + s·B·A  [H,H]
  weight.copy_from(merged);
}

void LoRA::init(Rng& rng) const {
  const double bound = 1.0 / std::sqrt(static_cast<double>(A.size(1)));
  init_uniform(A, -bound, bound, rng);
  init_constant(B, 0.0);
  if (gated) gate.init(rng);
}

void LoRA::named_parameters(const std::string& prefix, std::vector<NamedTensor>& out) const {
  out.push_back({prefix + "lora_A", A});
  out.push_back({prefix + "lora_B", B});
  if (gated) gate.named_parameters(prefix + "lora_gate.", out);
}

}  // namespace unipelt

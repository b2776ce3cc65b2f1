// The hand-derived backward of the gate, the adapter and LoRA (docs/gradients.md §1-3; loops in
// tests/hand_gradients.h) against the tape, in float64 on random inputs with padding, and the
// deliberately wrong formulas that must fail the comparison. Each test also counts the matrix-product
// FLOPs of the tape's backward and checks them against the formula docs/gradients.md gives.
// §4-6 (prefix-tuning, BitFit, heads): tests/test_hand_gradients_prefix_heads.cpp. The comparison's
// rules (relative difference, tolerance 1e-10): tests/hand_gradients_check.h.
#include <catch2/catch.hpp>

#include "pelt/adapter.h"
#include "pelt/lora.h"
#include "tests/hand_gradients_check.h"

using namespace unipelt;
using namespace unipelt::hand_test;

// ---------------------------------------------------------------------------------------------------
// §1 The gate
// ---------------------------------------------------------------------------------------------------

TEST_CASE("hand-derived backward: the gate, masked and all pooling", "[hand]") {
  start_case(100);
  tape().clear();
  const Tensor mask = padding_mask({5, 3, 1, 0});  // a fourth example with no real token: ω = 0
  const int64_t rows = 4;
  for (GatePool pool : {GatePool::Masked, GatePool::All}) {
    INFO("pooling " << gate_pool_name(pool));
    Gate gate(H, DType::F64, Device::CPU);
    randomize(gate);
    Tensor h = random_tensor({rows, T, H}, true), dg = random_tensor({rows});
    Tensor g = gate.forward(h, mask, pool);
    const int64_t flops = backward_projected(g, dg);

    hand::GateGrads ref = hand::gate_backward(array_of(h), array_of(mask), pool, gate_params(gate), array_of(dg));
    CHECK_MATCHES(array_of(g), ref.g);
    CHECK_MATCHES(grad_of(h), ref.dh);
    check_gate_grads(gate, ref);
    if (pool == GatePool::Masked) CHECK(ref.g(3) == 0.0);  // the all-padding row pools nothing
    // docs/gradients.md §1: dw and dh are one [BT,1]x[1,H] product each, the pooling one per example.
    CHECK(flops == 4 * rows * T * H + 2 * rows * T);
  }
  report("the gate");
}

// ---------------------------------------------------------------------------------------------------
// §2 The adapter, its gate, and the LayerNorm used twice
// ---------------------------------------------------------------------------------------------------

namespace {

struct AdapterCase {
  AdapterCase(bool gated, int64_t m)
      : adapter(H, m, gated, DType::F64, Device::CPU), ln(H, 1e-12, DType::F64, Device::CPU) {}
  Adapter adapter;
  LayerNorm ln;
  Tensor f, a, mask, r, out, g;
  int64_t backward_flops = 0;
  hand::AdapterGrads ref;
};

// LayerNorm γ and β train here (they do not in UniPELT) so that both uses' gradients are visible.
AdapterCase run_adapter(bool gated, GatePool pool) {
  tape().clear();
  const int64_t m = 4;
  AdapterCase c(gated, m);
  randomize(c.adapter);
  randomize(c.ln.weight, 0.5, 1.5);
  randomize(c.ln.bias);
  c.f = random_tensor({B, T, H}, true);
  c.a = random_tensor({B, T, H}, true);
  c.mask = padded_mask();
  c.r = random_tensor({B, T, H});
  c.out = c.adapter.forward(c.f, c.a, c.ln, c.mask, pool, &c.g);
  c.backward_flops = backward_projected(c.out, c.r);

  hand::AdapterParams p{array_of(c.adapter.down.weight), array_of(c.adapter.down.bias), array_of(c.adapter.up.weight),
                        array_of(c.adapter.up.bias), gated, gated ? gate_params(c.adapter.gate) : hand::GateParams{}};
  c.ref = hand::adapter_backward(array_of(c.f), array_of(c.a), array_of(c.ln.weight), array_of(c.ln.bias), c.ln.eps, p,
                                 array_of(c.mask), pool, array_of(c.r));
  return c;
}

}  // namespace

TEST_CASE("hand-derived backward: the adapter with its gate and the reused LayerNorm", "[hand]") {
  start_case(200);
  const int64_t m = 4;
  for (const Variant& variant : kVariants) {
    INFO(variant_name(variant));
    const auto [gated, pool] = variant;
    AdapterCase c = run_adapter(gated, pool);
    const hand::AdapterGrads& ref = c.ref;
    CHECK_MATCHES(array_of(c.out), ref.out);
    CHECK_MATCHES(grad_of(c.f), ref.d_residual);
    CHECK_MATCHES(grad_of(c.a), ref.d_residual);  // f and a enter only as f + a
    CHECK_MATCHES(grad_of(c.ln.weight), ref.dgamma);
    CHECK_MATCHES(grad_of(c.ln.bias), ref.dbeta);
    CHECK_MATCHES(grad_of(c.adapter.down.weight), ref.dw_down);
    CHECK_MATCHES(grad_of(c.adapter.down.bias), ref.db_down);
    CHECK_MATCHES(grad_of(c.adapter.up.weight), ref.dw_up);
    CHECK_MATCHES(grad_of(c.adapter.up.bias), ref.db_up);
    if (gated) {
      CHECK_MATCHES(array_of(c.g), ref.g);
      check_gate_grads(c.adapter.gate, ref.gate);
    }
    // Both uses contribute: neither alone is the gradient.
    CHECK(relative_difference(ref.dgamma_first, ref.dgamma) > 1e-3);
    CHECK(relative_difference(ref.dgamma_second, ref.dgamma) > 1e-3);
    // docs/gradients.md §2: dW_up, du, dW_down, dx are 2BTHm each; the gate adds 4BTH + 2BT.
    CHECK(c.backward_flops == 8 * B * T * H * m + (gated ? 4 * B * T * H + 2 * B * T : 0));
  }
  report("the adapter");
}

// ---------------------------------------------------------------------------------------------------
// §3 LoRA, gated and ungated; the merge
// ---------------------------------------------------------------------------------------------------

TEST_CASE("hand-derived backward: LoRA gated and ungated, with dL/dx, merging adds s·B·A to W", "[hand]") {
  start_case(300);
  const int rank = 2;
  for (const Variant& variant : kVariants) {
    INFO(variant_name(variant));
    const auto [gated, pool] = variant;
    tape().clear();
    LoRA lora(H, rank, /*scaling=*/4.0 / rank, gated, DType::F64, Device::CPU);
    randomize(lora);  // B random too (init sets it to 0, which would hide dA)
    Tensor x = random_tensor({B, T, H}, true), mask = padded_mask(), r = random_tensor({B, T, H}), g;
    Tensor delta = lora.delta(x, mask, pool, &g);
    const int64_t flops = backward_projected(delta, r);

    hand::LoraParams p{array_of(lora.A), array_of(lora.B), lora.scaling, gated,
                       gated ? gate_params(lora.gate) : hand::GateParams{}};
    const hand::LoraGrads ref = hand::lora_backward(array_of(x), p, array_of(mask), pool, array_of(r));
    CHECK_MATCHES(array_of(delta), ref.delta);
    CHECK_MATCHES(grad_of(lora.A), ref.d_lora_a);
    CHECK_MATCHES(grad_of(lora.B), ref.d_lora_b);
    CHECK_MATCHES(grad_of(x), ref.dx);
    if (gated) {
      CHECK_MATCHES(array_of(g), ref.s);
      check_gate_grads(lora.gate, ref.gate);
    }
    // docs/gradients.md §3: dB, d(x·Aᵀ), dA, dx are 2BTHr each, never an H×H product.
    CHECK(flops == 8 * B * T * H * rank + (gated ? 4 * B * T * H + 2 * B * T : 0));

    if (gated) {  // at the standard init B = 0: Δ = 0 and dw = dΔ·B = 0, so only B gets a gradient
      tape().clear();
      for (const NamedTensor& p : lora.parameters()) p.tensor.zero_grad();
      x.zero_grad();
      lora.B.copy_from(Tensor::zeros(lora.B.shape(), DType::F64));
      backward_projected(lora.delta(x, mask, pool, nullptr), r);
      p.lora_b = array_of(lora.B);
      hand::LoraGrads at_init = hand::lora_backward(array_of(x), p, array_of(mask), pool, array_of(r));
      CHECK_MATCHES(grad_of(lora.B), at_init.d_lora_b);
      for (const Tensor& zero : {lora.A, lora.gate.score.weight, lora.gate.score.bias}) {
        CHECK(max_abs(grad_of(zero)) == 0.0);
      }
      CHECK(max_abs(grad_of(lora.B)) > 1e-3);
    }
    if (!gated) {  // merge: x·(W + s·B·A)ᵀ = x·Wᵀ + Δ
      NoGradGuard no_grad;
      Tensor w = random_tensor({H, H}), merged = w.clone();
      lora.merge_into(merged);
      Tensor x_plain = x.clone();
      CHECK_MATCHES(array_of(ops::linear(x_plain, merged)), array_of(ops::add(ops::linear(x_plain, w), delta)));
    }
  }
  report("LoRA");
}


// ---------------------------------------------------------------------------------------------------
// The comparison has teeth: deliberately wrong formulas fail it
// ---------------------------------------------------------------------------------------------------

TEST_CASE("hand-derived backward: deliberately wrong formulas exceed the tolerance", "[hand]") {
  start_case(400);
  // Wrong: dγ of the adapter's LayerNorm from its first use only, as if LN were applied once
  // (forgets that LN(g_A·h_A + f + a) uses the same γ). The right formula adds both uses.
  AdapterCase c = run_adapter(true, GatePool::Masked);
  const Array tape_dgamma = grad_of(c.ln.weight);
  const Array wrong_dgamma = c.ref.dgamma_first;
  CHECK(relative_difference(tape_dgamma, c.ref.dgamma) <= kTolerance);
  const double wrong = relative_difference(tape_dgamma, wrong_dgamma);
  std::printf("wrong formula, adapter dγ without the second LayerNorm use: relative difference %.3g\n", wrong);
  CHECK(wrong > 1e-2);
  CHECK(wrong > 1e8 * kTolerance);

  // Wrong: a gated LoRA's dL/dx without the path through its gate (dx = du·A alone).
  tape().clear();
  LoRA lora(H, 2, 2.0, true, DType::F64, Device::CPU);
  randomize(lora);
  Tensor x = random_tensor({B, T, H}, true), mask = padded_mask(), r = random_tensor({B, T, H});
  backward_projected(lora.delta(x, mask, GatePool::Masked, nullptr), r);
  hand::LoraParams p{array_of(lora.A), array_of(lora.B), lora.scaling, true, gate_params(lora.gate)};
  hand::LoraGrads ref = hand::lora_backward(array_of(x), p, array_of(mask), GatePool::Masked, array_of(r));
  Array dx_without_gate = ref.dx;
  for (int64_t k = 0; k < dx_without_gate.numel(); ++k) dx_without_gate[k] -= ref.gate.dh[k];
  CHECK(relative_difference(grad_of(x), ref.dx) <= kTolerance);
  const double wrong_dx = relative_difference(grad_of(x), dx_without_gate);
  std::printf("wrong formula, gated LoRA dx without the gate's path: relative difference %.3g\n", wrong_dx);
  CHECK(wrong_dx > 1e-3);
}


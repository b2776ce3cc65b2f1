// The hand-derived backward of every method (docs/gradients.md; loops in tests/hand_gradients*.h)
// against the tape, in float64 on random inputs with padding. Each test also counts the matrix-product
// FLOPs of the tape's backward and checks them against the formula docs/gradients.md gives.
//
// "Relative difference" of a tape tensor against its hand-derived reference is
//   max_i |tape_i − hand_i| / max_i |hand_i|,
// the error relative to the tensor's scale (an element-wise ratio would divide by the entries that
// cancel to ~0). Every comparison must be ≤ 1e-10; float64 rounding leaves about 1e-15.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <string>

#include "autograd/flop_counter.h"
#include "autograd/gradcheck.h"
#include "autograd/tape.h"
#include "nn/bert.h"
#include "pelt/adapter.h"
#include "pelt/lora.h"
#include "pelt/prefix.h"
#include "tests/hand_gradients_prefix_heads.h"

using namespace unipelt;
using hand::Array;

namespace {

constexpr double kTolerance = 1e-10;
constexpr int64_t B = 3, T = 5, H = 6;  // lengths 5, 3, 1 (below): two examples padded

Array array_of(const Tensor& t) {
  Array a(t.shape());
  if (t.defined()) a.v = t.to_vector();
  return a;
}

// A tensor's gradient as an array (zeros when the tape sent it none).
Array grad_of(const Tensor& t) {
  Array a(t.shape());
  if (t.grad().defined()) a.v = t.grad().to_vector();
  return a;
}

double max_abs(const Array& a) {
  double m = 0;
  for (double v : a.v) m = std::max(m, std::abs(v));
  return m;
}

double relative_difference(const Array& tape, const Array& reference) {
  REQUIRE(tape.shape == reference.shape);
  double diff = 0, scale = 0;
  for (int64_t i = 0; i < tape.numel(); ++i) {
    diff = std::max(diff, std::abs(tape[i] - reference[i]));
    scale = std::max(scale, std::abs(reference[i]));
  }
  if (scale == 0) return diff == 0 ? 0 : std::numeric_limits<double>::infinity();
  return diff / scale;
}

// The largest relative difference seen in the current test case; report() prints it (the numbers
// docs/gradients.md §7 quotes) and starts over.
struct Measured {
  double worst = 0;
  int comparisons = 0;
} measured;

void check_matches(const Array& tape, const Array& reference, const char* what) {
  const double d = relative_difference(tape, reference);
  measured.worst = std::max(measured.worst, d);
  ++measured.comparisons;
  INFO(what << ": relative difference " << d);
  CHECK(d <= kTolerance);
}
#define CHECK_MATCHES(tape, reference) check_matches((tape), (reference), #tape " vs " #reference)

void report(const char* method) {
  std::printf("hand-derived backward of %s: %d comparisons with the tape, max relative difference %.3g\n", method,
              measured.comparisons, measured.worst);
  measured = {};
}

uint64_t next_seed = 100;
// A random float64 tensor, U(lo, hi), that requires a gradient when asked to.
Tensor random_tensor(const Shape& shape, bool requires_grad = false, double lo = -1.0, double hi = 1.0) {
  Tensor t = random_uniform(shape, lo, hi, next_seed++);
  t.set_requires_grad(requires_grad);
  return t;
}
// Fills a module's tensors with random values and marks them trainable (init would leave zeros).
void randomize(const Tensor& t, double lo = -0.5, double hi = 0.5) {
  t.copy_from(random_uniform(t.shape(), lo, hi, next_seed++));
  Tensor handle = t;
  handle.set_requires_grad(true);
}
void randomize(const Module& m) {
  for (const NamedTensor& p : m.parameters()) randomize(p.tensor);
}

// Attention mask [rows, T]: row b has lengths[b] real tokens, then padding.
Tensor padding_mask(const std::vector<int64_t>& lengths) {
  std::vector<double> m;
  for (int64_t len : lengths)
    for (int64_t t = 0; t < T; ++t) m.push_back(t < len ? 1.0 : 0.0);
  return Tensor::from_vector(m, {static_cast<int64_t>(lengths.size()), T}, DType::F64);
}
Tensor padded_mask() { return padding_mask({5, 3, 1}); }

// L = Σ out ⊙ R: backward then sends dL/d(out) = R. Returns the backward's matrix-product FLOPs.
int64_t backward_projected(const Tensor& out, const Tensor& r) {
  Tensor loss = ops::sum(ops::mul(out, r));
  FlopCounter flops;
  backward(loss);
  return flops.flops();
}

hand::GateParams gate_params(const Gate& g) { return {array_of(g.score.weight), g.score.bias.item()}; }

void check_gate_grads(const Gate& g, const hand::GateGrads& reference) {
  Array dc({1});
  dc[0] = reference.dc;
  CHECK_MATCHES(grad_of(g.score.weight), reference.dw);
  CHECK_MATCHES(grad_of(g.score.bias), dc);
}

// The module variants each method test runs: gated with both poolings, and ungated.
struct Variant {
  bool gated;
  GatePool pool;
};
constexpr Variant kVariants[] = {{true, GatePool::Masked}, {true, GatePool::All}, {false, GatePool::Masked}};
std::string variant_name(const Variant& v) {
  return v.gated ? std::string("gated, ") + gate_pool_name(v.pool) + " pooling" : "ungated";
}

}  // namespace

// ---------------------------------------------------------------------------------------------------
// §1 The gate
// ---------------------------------------------------------------------------------------------------

TEST_CASE("hand-derived backward: the gate, masked and all pooling", "[hand]") {
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

TEST_CASE("hand-derived backward: LoRA gated and ungated, with dL/dx; merging adds s·B·A to W", "[hand]") {
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

    if (gated) {  // at the standard init B = 0: l = 0 and du = dl·B = 0, so only B gets a gradient
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
// §4 Prefix-tuning through one layer's attention
// ---------------------------------------------------------------------------------------------------

namespace {

constexpr int kLayers = 2, kHeads = 2, kLength = 3, kMid = 5;
constexpr int kLayer = 1;  // the second layer: its columns of P sit after layer 0's

struct AttentionInputs {
  Tensor x, mask, q, k, v, r;
};

// One layer's attention with the prefix, the same ops as BertLayer::forward (nn/bert.cpp).
Tensor attention_with_prefix(const PrefixTuning& prefix, const AttentionInputs& in, GatePool pool, Tensor* g) {
  auto [keys, values] = prefix.key_values(kLayer, in.x, in.mask, pool, g);
  Tensor k = ops::concat({keys, in.k}, 2), v = ops::concat({values, in.v}, 2);  // [B,h,L+T,d]
  Tensor scores_mask = ops::concat({Tensor::zeros({B, kLength}, DType::F64), additive_attention_mask(in.mask)}, 1);
  const double d = static_cast<double>(H / kHeads);
  Tensor scores = ops::bmm(ops::scale(in.q, 1.0 / std::sqrt(d)), k, false, true);
  return ops::bmm(ops::softmax(scores, scores_mask), v);
}

}  // namespace

TEST_CASE("hand-derived backward: prefix-tuning through the softmax, g_P and the MLP; eject stops it at P",
          "[hand]") {
  const int64_t d = H / kHeads;
  for (const Variant& variant : kVariants) {
    INFO(variant_name(variant));
    const auto [gated, pool] = variant;
    tape().clear();
    PrefixTuning prefix(H, kLayers, kHeads, kLength, kMid, gated, DType::F64, Device::CPU);
    randomize(prefix);
    if (gated)
      for (int i = 0; i < kLayers; ++i) randomize(prefix.gate(i));
    AttentionInputs in{random_tensor({B, T, H}, true), padded_mask(), random_tensor({B, kHeads, T, d}, true),
                       random_tensor({B, kHeads, T, d}, true), random_tensor({B, kHeads, T, d}, true), random_tensor({B, kHeads, T, d})};
    prefix.begin_forward();
    Tensor g;
    Tensor context = attention_with_prefix(prefix, in, pool, &g);
    const int64_t flops = backward_projected(context, in.r);

    hand::PrefixParams p{array_of(prefix.embed), array_of(prefix.mlp_in.weight), array_of(prefix.mlp_in.bias),
                         array_of(prefix.mlp_out.weight), array_of(prefix.mlp_out.bias), kLayers, kHeads, gated,
                         gated ? gate_params(prefix.gate(kLayer)) : hand::GateParams{}};
    hand::PrefixGrads ref = hand::prefix_attention_backward(p, kLayer, array_of(in.x), array_of(in.mask), pool,
                                                            array_of(in.q), array_of(in.k), array_of(in.v),
                                                            array_of(in.r));
    CHECK_MATCHES(array_of(context), ref.context);
    CHECK_MATCHES(grad_of(in.q), ref.dq);
    CHECK_MATCHES(grad_of(in.k), ref.dk);
    CHECK_MATCHES(grad_of(in.v), ref.dv);
    CHECK_MATCHES(grad_of(prefix.mlp_out.weight), ref.dw2);
    CHECK_MATCHES(grad_of(prefix.mlp_out.bias), ref.db2);
    CHECK_MATCHES(grad_of(prefix.mlp_in.weight), ref.dw1);
    CHECK_MATCHES(grad_of(prefix.mlp_in.bias), ref.db1);
    CHECK_MATCHES(grad_of(prefix.embed), ref.d_embed);
    if (gated) {
      CHECK_MATCHES(array_of(g), ref.g);
      CHECK_MATCHES(grad_of(in.x), ref.gate.dh);
      check_gate_grads(prefix.gate(kLayer), ref.gate);
    }
    // Layer 0's columns of P get nothing from layer 1's attention (the layout [L, n·2·H]).
    const Array db2 = grad_of(prefix.mlp_out.bias);
    for (int64_t c = 0; c < 2 * H; ++c) CHECK(db2[c] == 0.0);
    // docs/gradients.md §4: MLP backward 4L·mid·(H + 2nH); attention 4 products of 2BT(L+T)H; gate.
    const int64_t mlp = 4 * kLength * kMid * (H + 2 * kLayers * H);
    const int64_t attention = 8 * B * T * (kLength + T) * H;
    const int64_t gate = gated ? 4 * B * T * H + 2 * B * T : 0;
    CHECK(flops == mlp + attention + gate);

    // Eject: P becomes a constant table. The same forward, the same gradients for everything that
    // still trains, and the MLP's backward is gone.
    tape().clear();
    for (const Tensor& t : {in.q, in.k, in.v, in.x}) t.zero_grad();
    Tensor gate_w_grad = gated ? prefix.gate(kLayer).score.weight.grad().clone() : Tensor();
    if (gated) prefix.gate(kLayer).score.weight.zero_grad();
    prefix.eject();
    CHECK_FALSE(prefix.parameters().front().tensor.requires_grad());  // "prefix_ejected"
    prefix.begin_forward();
    Tensor ejected_context = attention_with_prefix(prefix, in, pool, nullptr);
    const int64_t ejected_flops = backward_projected(ejected_context, in.r);
    CHECK_MATCHES(array_of(ejected_context), ref.context);
    CHECK_MATCHES(grad_of(in.q), ref.dq);
    CHECK_MATCHES(grad_of(in.v), ref.dv);
    if (gated) CHECK_MATCHES(grad_of(prefix.gate(kLayer).score.weight), array_of(gate_w_grad));
    CHECK(ejected_flops == attention + gate);
  }
  report("prefix-tuning");
}

// ---------------------------------------------------------------------------------------------------
// §5 BitFit through the feed-forward sublayer
// ---------------------------------------------------------------------------------------------------

TEST_CASE("hand-derived backward: BitFit trains only biases; dy reaches them through frozen weights", "[hand]") {
  tape().clear();
  const int64_t I = 8;
  Linear intermediate(H, I, true, DType::F64, Device::CPU), output(I, H, true, DType::F64, Device::CPU);
  LayerNorm ln(H, 1e-12, DType::F64, Device::CPU);
  for (const Tensor& w : {intermediate.weight, output.weight}) w.copy_from(random_tensor(w.shape(), false, -0.5, 0.5));
  ln.weight.copy_from(random_tensor({H}, false, 0.5, 1.5));
  for (const Tensor& b : {intermediate.bias, output.bias, ln.bias}) randomize(b);  // only the biases train
  Tensor a = random_tensor({B, T, H}, true), r = random_tensor({B, T, H});
  FlopCounter forward_flops;
  Tensor out = ln.forward(ops::add(output.forward(ops::gelu(intermediate.forward(a))), a));  // as nn/bert.cpp
  const int64_t fwd = forward_flops.flops();
  const int64_t flops = backward_projected(out, r);

  hand::BitFitGrads ref = hand::bitfit_ffn_backward(array_of(a), array_of(intermediate.weight),
                                                    array_of(intermediate.bias), array_of(output.weight),
                                                    array_of(output.bias), array_of(ln.weight), array_of(ln.bias),
                                                    ln.eps, array_of(r));
  CHECK_MATCHES(array_of(out), ref.out);
  CHECK_MATCHES(grad_of(intermediate.bias), ref.db_i);
  CHECK_MATCHES(grad_of(output.bias), ref.db_o);
  CHECK_MATCHES(grad_of(ln.bias), ref.dbeta);
  CHECK_MATCHES(grad_of(a), ref.da);
  for (const Tensor& frozen : {intermediate.weight, output.weight, ln.weight}) CHECK_FALSE(frozen.grad().defined());
  // docs/gradients.md §5: two dx products of 2BTHI, no dW: the backward costs what the forward did.
  CHECK(flops == 4 * B * T * H * I);
  CHECK(flops == fwd);
  report("BitFit");
}

// ---------------------------------------------------------------------------------------------------
// §6 The classification and regression heads
// ---------------------------------------------------------------------------------------------------

TEST_CASE("hand-derived backward: the classification and regression heads", "[hand]") {
  for (int64_t C : {3, 1}) {
    INFO((C == 1 ? "regression" : "classification"));
    tape().clear();
    Linear pooler(H, H, true, DType::F64, Device::CPU), classifier(H, C, true, DType::F64, Device::CPU);
    randomize(pooler);
    randomize(classifier);
    Tensor hidden = random_tensor({B, T, H}, true);
    std::vector<double> labels = C == 1 ? std::vector<double>{0.5, -1.25, 2.0} : std::vector<double>{0, 2, 1};
    // As BertForSequenceClassification::forward: [CLS] row, pooler, head, loss.
    Tensor logits = classifier.forward(ops::tanh(pooler.forward(ops::select(hidden, 1, 0))));
    Tensor loss = C == 1 ? ops::mse_loss(logits, Tensor::from_vector(labels, {B}, DType::F64))
                         : ops::cross_entropy(logits, Tensor::from_ints({0, 2, 1}, {B}));
    FlopCounter flops;
    backward(loss);

    hand::HeadGrads ref = hand::head_backward(array_of(hidden), array_of(pooler.weight), array_of(pooler.bias),
                                              array_of(classifier.weight), array_of(classifier.bias), labels);
    CHECK_MATCHES(array_of(logits), ref.logits);
    CHECK(std::abs(loss.item() - ref.loss) <= kTolerance * std::abs(ref.loss));
    CHECK_MATCHES(grad_of(classifier.weight), ref.dw_cls);
    CHECK_MATCHES(grad_of(classifier.bias), ref.db_cls);
    CHECK_MATCHES(grad_of(pooler.weight), ref.dw_pool);
    CHECK_MATCHES(grad_of(pooler.bias), ref.db_pool);
    CHECK_MATCHES(grad_of(hidden), ref.dhidden);
    // docs/gradients.md §6: classifier dW and dx 2BHC each, pooler dW and dx 2BH² each.
    CHECK(flops.flops() == 4 * B * H * C + 4 * B * H * H);
  }
  report("the heads");
}

// ---------------------------------------------------------------------------------------------------
// The comparison has teeth: deliberately wrong formulas fail it
// ---------------------------------------------------------------------------------------------------

TEST_CASE("hand-derived backward: deliberately wrong formulas exceed the tolerance", "[hand]") {
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

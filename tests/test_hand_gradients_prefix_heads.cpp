// The hand-derived backward of prefix-tuning, BitFit and the heads (docs/gradients.md §4-6; loops in
// tests/hand_gradients_prefix_heads.h) against the tape, in float64 on random inputs with padding, with
// the backward's matrix-product FLOPs checked against the documented formulas. The comparison's rules:
// tests/hand_gradients_check.h.
#include <catch2/catch.hpp>

#include "nn/bert.h"
#include "pelt/prefix.h"
#include "tests/hand_gradients_check.h"

using namespace unipelt;
using namespace unipelt::hand_test;

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

TEST_CASE("hand-derived backward: prefix-tuning through the softmax, g_P and the MLP, eject stops it at P",
          "[hand]") {
  start_case(500);
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

TEST_CASE("hand-derived backward: BitFit trains only biases, dy reaches them through frozen weights", "[hand]") {
  start_case(600);
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
  start_case(700);
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

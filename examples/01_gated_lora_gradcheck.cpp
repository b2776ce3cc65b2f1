// Learner program 1: a gated LoRA on a tiny random BERT. One forward, one backward, then a
// finite-difference check of every trainable tensor, printed as a table.
//
//   build/example_gated_lora_gradcheck
//
// What happens (docs/gradients.md §1 and §3 derive each gradient by hand):
//   q = x·W_qᵀ + b_q + g_Lq·(x·A_qᵀ)·B_qᵀ,   v likewise,   g_L = mean over real tokens of σ(w·x_t + c)
// BERT's weights are frozen; LoRA's A, B, its gates and the classifier train. In float64, the tape's
// dL/dθ must agree with (L(θ + ε) − L(θ − ε)) / 2ε for every element θ of every trainable tensor.
// Exit status 0 when every tensor passes, 1 otherwise.
#include <cmath>
#include <cstdio>

#include "autograd/gradcheck.h"
#include "autograd/tape.h"
#include "pelt/method_checks.h"

using namespace unipelt;

namespace {

double l2_norm(const Tensor& t) {
  double sum = 0;
  for (double v : t.to_vector()) sum += v * v;
  return std::sqrt(sum);
}

}  // namespace

int main() {
  // 1. The model. 2 layers, hidden 16, 2 heads, random frozen weights; LoRA of rank 2 on the query and
  //    value projections of both layers, each with its own gate. make_tiny_pelt draws every PELT tensor
  //    at random (LoRA's B too, which real training starts at 0) so that no gradient is trivially zero.
  PeltConfig config = preset("lora");
  config.gated = true;  // a "custom" combination: LoRA alone, but with UniPELT's gates
  TinyPeltSetup setup = make_tiny_pelt(config, /*regression=*/false);
  PeltModel& model = *setup.model;
  const Batch batch = tiny_batch(/*regression=*/false);  // 3 sequences, lengths 6, 4 and 2 of T = 6
  std::printf("tiny BERT: %d layers, hidden %d, %d heads; LoRA rank %d on q and v, gated; float64\n",
              model.base().config().num_hidden_layers, model.base().config().hidden_size,
              model.base().config().num_attention_heads, model.config().lora_r);
  std::printf("batch: %lld sequences of length %lld, real tokens per sequence 6, 4, 2\n\n",
              static_cast<long long>(batch.batch_size()), static_cast<long long>(batch.seq_len()));

  // 2. Forward. Every op that touches a trainable tensor appends a node to the tape.
  tape().clear();
  ForwardContext ctx;  // training = false: no dropout, so the loss is a deterministic function
  auto out = model.forward(batch, ctx);
  std::printf("forward: loss %.10f, %zu tape nodes\n", out.loss.item(), tape().size());
  for (const auto& [name, g] : model.gate_values()) {
    const std::vector<double> v = g.to_vector();
    std::printf("  gate %-18s %.4f %.4f %.4f   (one value per example)\n", name.c_str(), v[0], v[1], v[2]);
  }

  // 3. Backward: the tape runs its closures last to first and deposits dL/dθ in each trainable tensor.
  std::vector<NamedTensor> trainable = model.trainable_parameters();
  for (const NamedTensor& p : trainable) p.tensor.zero_grad();
  backward(out.loss);
  std::printf("\nbackward: gradients of the %zu trainable tensors\n", trainable.size());
  for (const NamedTensor& p : trainable)
    std::printf("  %-58s %-8s |grad| %.6f\n", p.name.c_str(), shape_str(p.tensor.shape()).c_str(),
                l2_norm(p.tensor.grad()));
  int64_t frozen_with_grad = 0;
  for (const NamedTensor& p : model.base().parameters())
    if (!p.tensor.requires_grad() && p.tensor.grad().defined()) ++frozen_with_grad;
  std::printf("  frozen base tensors holding a gradient: %lld\n", static_cast<long long>(frozen_with_grad));

  // 4. Finite differences. The harness perturbs each element by ±ε in place, re-runs the forward
  //    without recording, and compares with the tape's gradient: |analytic − numeric| must be within
  //    atol + rtol·|numeric| (PyTorch's gradcheck defaults).
  std::vector<Tensor> params;
  std::vector<std::string> names;
  for (const NamedTensor& p : trainable) {
    params.push_back(p.tensor);
    names.push_back(p.name);
  }
  auto loss_of = [&](const std::vector<Tensor>&) {
    ForwardContext c;
    return model.forward(batch, c).loss;
  };
  const GradcheckOptions options;
  const GradcheckResult result = gradcheck(loss_of, params, options);
  std::printf("\nfinite differences: eps %.0e, atol %.0e, rtol %.0e, %lld elements\n\n", options.eps, options.atol,
              options.rtol, static_cast<long long>(result.elements_checked));
  std::printf("%s\n", input_errors_table(result, names).c_str());

  int64_t passed = 0;
  for (const InputErrors& e : result.inputs) passed += e.passed();
  const bool ok = result.passed && frozen_with_grad == 0 && passed == static_cast<int64_t>(trainable.size());
  if (ok)
    std::printf("gradient check passed: all %lld trainable tensors agree with finite differences "
                "(max abs error %.2e)\n", static_cast<long long>(passed), result.max_abs_error);
  else
    std::printf("gradient check FAILED: %lld of %zu tensors pass; first failure: %s\n",
                static_cast<long long>(passed), trainable.size(), result.worst.c_str());
  return ok ? 0 : 1;
}

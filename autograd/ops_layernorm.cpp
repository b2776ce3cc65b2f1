// Layer norm over the last axis: y = (x - μ)·rstd·γ + β with rstd = 1/sqrt(var + eps).
// Forward saves μ and rstd per row; backward (derived in docs/autograd.md) needs x, γ, μ, rstd.
// A frozen γ/β (every PELT method but BitFit and fine-tuning) gets no gradient buffer at all.
#include "autograd/op_util.h"

namespace unipelt::ops {
using detail::be;

Tensor layer_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, double eps) {
  detail::check_float("layer_norm", x);
  check_same_dtype_device("layer_norm", x, gamma);
  check_same_dtype_device("layer_norm", x, beta);
  const int64_t cols = x.size(-1), rows = x.numel() / cols;
  check(gamma.shape() == Shape{cols} && beta.shape() == Shape{cols}, "layer_norm", [&] {
    return "gamma and beta must be [" + std::to_string(cols) + "] for input " + shape_str(x.shape()) + ", got " +
           shape_str(gamma.shape()) + " and " + shape_str(beta.shape());
  });
  Tensor y = detail::empty_like(x);
  Tensor mu = detail::empty_as({rows}, x), rstd = detail::empty_as({rows}, x);
  be(x).layernorm_forward(x.dtype(), rows, cols, eps, x.data(), gamma.data(), beta.data(), y.data(), mu.data(),
                          rstd.data());
  if (needs_grad({&x, &gamma, &beta})) {
    GradTarget x_t = grad_target(x), g_t = grad_target(gamma), b_t = grad_target(beta);
    // x is needed for dx and dγ (through x̂); when only β trains (BitFit) nothing but dy is needed.
    Tensor x_saved = x_t || g_t ? x : Tensor();
    Tensor g_saved = x_t || g_t ? gamma : Tensor();
    tape().record("layer_norm", y, [=](const Tensor& dy) {
      Tensor db = b_t ? empty_for(b_t) : Tensor();
      if (!x_saved.defined()) {  // dβ = Σ_rows dy
        const int64_t shape4[4] = {1, 1, rows, cols}, stride4[4] = {0, 0, 0, 1};
        be(dy).reduce_broadcast(dy.dtype(), shape4, stride4, dy.data(), db.data(), cols);
        accumulate_grad(b_t, db);
        return;
      }
      Tensor dx = x_t ? empty_for(x_t) : Tensor();
      Tensor dg = g_t ? empty_for(g_t) : Tensor();
      auto ptr = [](const Tensor& t) { return t.defined() ? t.data() : nullptr; };
      be(dy).layernorm_backward(dy.dtype(), rows, cols, x_saved.data(), g_saved.data(), mu.data(), rstd.data(),
                                dy.data(), ptr(dx), ptr(dg), ptr(db));
      accumulate_grad(x_t, dx);
      accumulate_grad(g_t, dg);
      accumulate_grad(b_t, db);
    });
  }
  return y;
}

}  // namespace unipelt::ops

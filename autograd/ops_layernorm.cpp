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
  check(gamma.shape() == Shape{cols} && beta.shape() == Shape{cols}, "layer_norm",
        "gamma and beta must be [" + std::to_string(cols) + "] for input " + shape_str(x.shape()) + ", got " +
            shape_str(gamma.shape()) + " and " + shape_str(beta.shape()));
  Tensor y = detail::empty_like(x);
  Tensor mu = detail::empty_as({rows}, x), rstd = detail::empty_as({rows}, x);
  be(x).layernorm_forward(x.dtype(), rows, cols, eps, x.data(), gamma.data(), beta.data(), y.data(), mu.data(),
                          rstd.data());
  if (needs_grad({&x, &gamma, &beta})) {
    Tensor x_ref = x.requires_grad() ? x : Tensor();
    Tensor g_ref = gamma.requires_grad() ? gamma : Tensor();
    Tensor b_ref = beta.requires_grad() ? beta : Tensor();
    Tensor x_saved = x, g_saved = gamma;
    tape().record("layer_norm", y, [=](const Tensor& dy) {
      Tensor dx = x_ref.defined() ? detail::empty_like(x_saved) : Tensor();
      Tensor dg = g_ref.defined() ? detail::empty_like(g_saved) : Tensor();
      Tensor db = b_ref.defined() ? detail::empty_like(b_ref) : Tensor();
      auto ptr = [](const Tensor& t) { return t.defined() ? t.data() : nullptr; };
      be(dy).layernorm_backward(dy.dtype(), rows, cols, x_saved.data(), g_saved.data(), mu.data(), rstd.data(),
                                dy.data(), ptr(dx), ptr(dg), ptr(db));
      if (dx.defined()) accumulate_grad(x_ref, dx);
      if (dg.defined()) accumulate_grad(g_ref, dg);
      if (db.defined()) accumulate_grad(b_ref, db);
    });
  }
  return y;
}

}  // namespace unipelt::ops

// Reductions: sum, mean, and the masked mean over the sequence axis that gates use for pooling.
#include "autograd/flop_counter.h"
#include "autograd/op_util.h"

namespace unipelt::ops {
using detail::be;

// y = Σ x  ->  [1];  dx = dy broadcast to x's shape.
Tensor sum(const Tensor& x) {
  detail::check_float("sum", x);
  Tensor y = detail::empty_as({1}, x);
  const auto shape4 = detail::pad4(x.shape());
  const int64_t zero[4] = {0, 0, 0, 0};
  be(x).reduce_broadcast(x.dtype(), shape4.data(), zero, x.data(), y.data(), 1);
  if (needs_grad({&x})) {
    tape().record("sum", y, [x_t = grad_target(x), shape4](const Tensor& dy) {
      Tensor dx = empty_for(x_t);
      const int64_t zero4[4] = {0, 0, 0, 0};
      be(dy).expand(dy.dtype(), shape4.data(), zero4, dy.data(), dx.data());
      accumulate_grad(x_t, dx);
    });
  }
  return y;
}

Tensor mean(const Tensor& x) {
  check(x.numel() > 0, "mean", "mean of an empty tensor");
  return scale(sum(x), 1.0 / static_cast<double>(x.numel()));
}

// x[B,T,H], mask[B,T] -> y[B,H] = Σ_t w[b,t] x[b,t,:] with w[b,:] = mask[b,:] / Σ_t mask[b,t].
// Written as a batched GEMM: y[b] (1×H) = w[b] (1×T) · x[b] (T×H); backward dx[b] = w[b]ᵀ · dy[b].
Tensor masked_mean(const Tensor& x, const Tensor& mask) {
  detail::check_float("masked_mean", x);
  check(x.ndim() == 3, "masked_mean", [&] { return "x must be [B, T, H], got " + shape_str(x.shape()); });
  const int64_t B = x.size(0), T = x.size(1), H = x.size(2);
  check(mask.shape() == Shape({B, T}), "masked_mean", [&] {
    return "mask must be [B, T] = " + shape_str({B, T}) + ", got " + shape_str(mask.shape());
  });
  check(mask.device() == x.device(), "masked_mean", "mask and x are on different devices");
  Tensor m = mask.to(x.dtype());
  Tensor w = detail::empty_like(m);
  be(x).normalize_rows(x.dtype(), B, T, m.data(), w.data());
  Tensor y = detail::empty_as({B, H}, x);
  detail::count_matmul_flops(1, H, T, B);
  be(x).gemm_batched(x.dtype(), false, false, 1, H, T, 1.0, w.data(), T, T, x.data(), H, T * H, 0.0, y.data(), H, H, B);
  if (needs_grad({&x})) {
    tape().record("masked_mean", y, [x_t = grad_target(x), w, B, T, H](const Tensor& dy) {
      Tensor dx = empty_for(x_t);
      detail::count_matmul_flops(T, H, 1, B);
      be(dy).gemm_batched(dy.dtype(), true, false, T, H, 1, 1.0, w.data(), T, T, dy.data(), H, H, 0.0, dx.data(), H,
                          T * H, B);
      accumulate_grad(x_t, dx);
    });
  }
  return y;
}

}  // namespace unipelt::ops

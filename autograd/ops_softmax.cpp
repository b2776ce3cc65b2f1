// Softmax over the last axis, with an optional additive mask (attention: 0 for real keys, a large
// negative number for padding). y = softmax(x + mask);  dx = y ⊙ (dy - Σ_j dy_j y_j).
#include "autograd/op_util.h"

namespace unipelt::ops {
using detail::be;

Tensor softmax(const Tensor& x, const Tensor& mask) {
  detail::check_float("softmax", x);
  check(x.ndim() >= 1 && x.numel() > 0, "softmax",
        [&] { return "needs a non-empty tensor, got " + shape_str(x.shape()); });
  const int64_t cols = x.size(-1), rows = x.numel() / cols;
  int64_t rows_per_mask = rows;
  if (mask.defined()) {
    check_same_dtype_device("softmax", x, mask);
    check(mask.ndim() == 2 && mask.size(0) == x.size(0) && mask.size(1) == cols, "softmax", [&] {
      return "mask must be [" + std::to_string(x.size(0)) + ", " + std::to_string(cols) + "] for input " +
             shape_str(x.shape()) + ", got " + shape_str(mask.shape());
    });
    rows_per_mask = rows / x.size(0);
  }
  Tensor y = detail::empty_like(x);
  be(x).softmax_forward(x.dtype(), rows, cols, x.data(), mask.defined() ? mask.data() : nullptr, rows_per_mask,
                        y.data());
  if (needs_grad({&x})) {
    Tensor saved_y = y.view(y.shape());
    tape().record("softmax", y, [x_t = grad_target(x), saved_y, rows, cols](const Tensor& dy) {
      Tensor dx = detail::empty_like(dy);
      be(dy).softmax_backward(dy.dtype(), rows, cols, saved_y.data(), dy.data(), dx.data());
      accumulate_grad(x_t, dx);
    });
  }
  return y;
}

}  // namespace unipelt::ops

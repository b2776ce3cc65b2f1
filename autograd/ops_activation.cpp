// Activations: y = f(x) elementwise, dx = dy ⊙ f'(·).
// GELU and ReLU save x (their derivative needs it); tanh and sigmoid save y, since
// tanh' = 1 - y² and σ' = y(1 - y) are cheaper from the output.
#include "autograd/op_util.h"

namespace unipelt::ops {
using detail::be;

namespace {

Tensor unary(const char* name, Unary op, const Tensor& x) {
  detail::check_float(name, x);
  Tensor y = detail::empty_like(x);
  be(x).unary_forward(op, x.dtype(), x.numel(), x.data(), y.data());
  if (needs_grad({&x})) {
    const bool saves_output = op == Unary::Tanh || op == Unary::Sigmoid;
    // Save exactly one of x and y; the closure reaches x's gradient through its slot only.
    Tensor saved = saves_output ? y.view(y.shape()) : x;
    tape().record(name, y, [op, x_t = grad_target(x), saved](const Tensor& dy) {
      Tensor dx = detail::empty_like(dy);
      be(dy).unary_backward(op, dy.dtype(), dy.numel(), saved.data(), dy.data(), dx.data());
      accumulate_grad(x_t, dx);
    });
  }
  return y;
}

}  // namespace

Tensor gelu(const Tensor& x) { return unary("gelu", Unary::Gelu, x); }
Tensor relu(const Tensor& x) { return unary("relu", Unary::Relu, x); }
Tensor tanh(const Tensor& x) { return unary("tanh", Unary::Tanh, x); }
Tensor sigmoid(const Tensor& x) { return unary("sigmoid", Unary::Sigmoid, x); }

}  // namespace unipelt::ops

// Elementwise ops with numpy broadcasting: add, sub, mul, scale.
//
// Broadcasting reads an operand of size 1 along a dimension as if repeated; its adjoint sums the
// gradient over that dimension (Backend::reduce_broadcast). So for y = a + b with b[H] broadcast over
// x[B,T,H]: da = dy, db = Σ_{B,T} dy.
#include "autograd/op_util.h"

namespace unipelt {
namespace detail {

void check_float(std::string_view op, const Tensor& t) {
  check(t.defined(), op, "input is undefined");
  check(t.dtype() != DType::I32, op,
        [&] { return "expects a floating-point tensor, got i32 " + shape_str(t.shape()); });
}

Broadcast4 make_broadcast(std::string_view op, const Shape& a, const Shape& b, Shape* out_shape) {
  check(a.size() <= 4 && b.size() <= 4, op,
        [&] { return "at most 4 dimensions: " + shape_str(a) + " and " + shape_str(b); });
  auto a4 = pad4(a), b4 = pad4(b);
  std::array<int64_t, 4> o4{};
  for (int d = 0; d < 4; ++d) {
    check(a4[d] == b4[d] || a4[d] == 1 || b4[d] == 1, op,
          [&] { return "shapes " + shape_str(a) + " and " + shape_str(b) + " do not broadcast"; });
    o4[d] = a4[d] == 1 ? b4[d] : a4[d];  // numpy: 1 broadcasts to anything, 0 included
  }
  Broadcast4 bc;
  auto sa = broadcast_strides(a4, o4), sb = broadcast_strides(b4, o4);
  for (int d = 0; d < 4; ++d) {
    bc.shape[d] = o4[d];
    bc.a_stride[d] = sa[d];
    bc.b_stride[d] = sb[d];
  }
  const size_t rank = std::max(a.size(), b.size());
  out_shape->assign(o4.begin() + (4 - rank), o4.end());
  return bc;
}

}  // namespace detail

namespace ops {
using detail::be;

namespace {

// Sums a full-shape gradient down to an operand's (possibly broadcast) shape.
Tensor reduce_to(const Tensor& grad, const Broadcast4& bc, const int64_t* operand_stride, const GradTarget& operand) {
  if (grad.shape() == operand->shape) return grad;
  Tensor out = empty_for(operand);
  be(grad).reduce_broadcast(grad.dtype(), bc.shape, operand_stride, grad.data(), out.data(), out.numel());
  return out;
}

// grad ⊙ other (broadcast), same shape as grad.
Tensor times_broadcast(const Tensor& grad, const Tensor& other, const int64_t* other_stride, const Broadcast4& bc) {
  Broadcast4 g = bc;
  int64_t acc = 1;
  for (int d = 3; d >= 0; --d) {
    g.a_stride[d] = acc;
    g.b_stride[d] = other_stride[d];
    acc *= bc.shape[d];
  }
  Tensor out = detail::empty_like(grad);
  be(grad).binary(Binary::Mul, grad.dtype(), g, grad.data(), other.data(), out.data());
  return out;
}

Tensor binary_op(const char* name, Binary op, const Tensor& a, const Tensor& b) {
  detail::check_float(name, a);
  detail::check_float(name, b);
  check_same_dtype_device(name, a, b);
  Shape out_shape;
  const Broadcast4 bc = detail::make_broadcast(name, a.shape(), b.shape(), &out_shape);
  Tensor y = detail::empty_as(out_shape, a);
  be(a).binary(op, a.dtype(), bc, a.data(), b.data(), y.data());
  if (!needs_grad({&a, &b})) return y;

  GradTarget a_t = grad_target(a), b_t = grad_target(b);
  if (op == Binary::Mul) {
    // d(a·b)/da = b, d(a·b)/db = a: keep each operand only if the other needs a gradient.
    Tensor keep_a = b.requires_grad() ? a : Tensor(), keep_b = a.requires_grad() ? b : Tensor();
    tape().record(name, y, [=](const Tensor& dy) {
      if (a_t) accumulate_grad(a_t, reduce_to(times_broadcast(dy, keep_b, bc.b_stride, bc), bc, bc.a_stride, a_t));
      if (b_t) accumulate_grad(b_t, reduce_to(times_broadcast(dy, keep_a, bc.a_stride, bc), bc, bc.b_stride, b_t));
    });
  } else {
    const double sign_b = op == Binary::Sub ? -1.0 : 1.0;
    tape().record(name, y, [=](const Tensor& dy) {
      if (a_t) accumulate_grad(a_t, reduce_to(dy, bc, bc.a_stride, a_t));
      if (b_t) {
        Tensor db = reduce_to(dy, bc, bc.b_stride, b_t);
        if (sign_b < 0) {
          Tensor neg = detail::empty_like(db);
          be(db).scale(db.dtype(), db.numel(), -1.0, db.data(), neg.data());
          db = neg;
        }
        accumulate_grad(b_t, db);
      }
    });
  }
  return y;
}

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) { return binary_op("add", Binary::Add, a, b); }
Tensor sub(const Tensor& a, const Tensor& b) { return binary_op("sub", Binary::Sub, a, b); }
Tensor mul(const Tensor& a, const Tensor& b) { return binary_op("mul", Binary::Mul, a, b); }

// y = alpha·x, dx = alpha·dy
Tensor scale(const Tensor& x, double alpha) {
  detail::check_float("scale", x);
  Tensor y = detail::empty_like(x);
  be(x).scale(x.dtype(), x.numel(), alpha, x.data(), y.data());
  if (needs_grad({&x})) {
    tape().record("scale", y, [x_t = grad_target(x), alpha](const Tensor& dy) {
      Tensor dx = detail::empty_like(dy);
      be(dy).scale(dy.dtype(), dy.numel(), alpha, dy.data(), dx.data());
      accumulate_grad(x_t, dx);
    });
  }
  return y;
}

}  // namespace ops
}  // namespace unipelt

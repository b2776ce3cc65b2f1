// Shape ops: reshape (shares storage), permute/transpose (split and merge attention heads),
// concat (prefix keys/values are prepended this way), slice and select (the [CLS] row).
// All but reshape write a fresh contiguous tensor; each backward is the inverse data movement.
#include <numeric>

#include "autograd/op_util.h"

namespace unipelt::ops {
using detail::be;

Tensor reshape(const Tensor& x, const Shape& shape) {
  Shape target = shape;
  int64_t known = 1, infer = -1;
  for (size_t i = 0; i < target.size(); ++i) {
    if (target[i] == -1) {
      check(infer < 0, "reshape", [&] { return "at most one -1 in " + shape_str(shape); });
      infer = static_cast<int64_t>(i);
    } else {
      known *= target[i];
    }
  }
  if (infer >= 0) {
    check(known > 0 && x.numel() % known == 0, "reshape",
          [&] { return "cannot reshape " + shape_str(x.shape()) + " to " + shape_str(shape); });
    target[static_cast<size_t>(infer)] = x.numel() / known;
  }
  check(shape_numel(target) == x.numel(), "reshape",
        [&] { return "cannot reshape " + shape_str(x.shape()) + " to " + shape_str(shape); });
  Tensor y = x.view(target);
  if (needs_grad({&x})) {
    tape().record("reshape", y, [x_t = grad_target(x)](const Tensor& dy) { accumulate_grad(x_t, dy); });
  }
  return y;
}

Tensor permute(const Tensor& x, const std::vector<int>& perm) {
  const int n = static_cast<int>(x.ndim());
  check(static_cast<int>(perm.size()) == n, "permute", [&] {
    return "permutation has " + std::to_string(perm.size()) + " entries for shape " + shape_str(x.shape());
  });
  std::vector<int> seen(perm.begin(), perm.end());
  std::sort(seen.begin(), seen.end());
  for (int i = 0; i < n; ++i)
    check(seen[i] == i, "permute", [&] { return "not a permutation of 0.." + std::to_string(n - 1); });
  // Pad to 4-D: leading size-1 dims stay in place.
  const int pad = 4 - n;
  int perm4[4], inverse4[4];
  for (int d = 0; d < pad; ++d) perm4[d] = d;
  for (int d = 0; d < n; ++d) perm4[pad + d] = perm[d] + pad;
  for (int d = 0; d < 4; ++d) inverse4[perm4[d]] = d;
  const auto in4 = detail::pad4(x.shape());
  Shape out_shape(n);
  for (int d = 0; d < n; ++d) out_shape[d] = x.shape()[perm[d]];
  Tensor y = detail::empty_as(out_shape, x);
  be(x).permute(x.dtype(), in4.data(), perm4, x.data(), y.data());
  if (needs_grad({&x})) {
    const auto out4 = detail::pad4(out_shape);
    std::array<int, 4> inv{inverse4[0], inverse4[1], inverse4[2], inverse4[3]};
    tape().record("permute", y, [x_t = grad_target(x), out4, inv](const Tensor& dy) {
      Tensor dx = empty_for(x_t);
      be(dy).permute(dy.dtype(), out4.data(), inv.data(), dy.data(), dx.data());
      accumulate_grad(x_t, dx);
    });
  }
  return y;
}

Tensor transpose(const Tensor& x, int axis0, int axis1) {
  const int n = static_cast<int>(x.ndim());
  if (axis0 < 0) axis0 += n;
  if (axis1 < 0) axis1 += n;
  check(axis0 >= 0 && axis0 < n && axis1 >= 0 && axis1 < n, "transpose",
        [&] { return "axes out of range for " + shape_str(x.shape()); });
  std::vector<int> perm(n);
  std::iota(perm.begin(), perm.end(), 0);
  std::swap(perm[axis0], perm[axis1]);
  return permute(x, perm);
}

namespace {
// Sizes around an axis: outer = Π shape[:axis], inner = Π shape[axis+1:].
int64_t outer_size(const Shape& s, int axis) { return shape_numel(Shape(s.begin(), s.begin() + axis)); }
int64_t inner_size(const Shape& s, int axis) { return shape_numel(Shape(s.begin() + axis + 1, s.end())); }
int normalize_axis(const char* op, const Tensor& x, int axis) {
  const int n = static_cast<int>(x.ndim());
  if (axis < 0) axis += n;
  check(axis >= 0 && axis < n, op,
        [&] { return "axis " + std::to_string(axis) + " out of range for " + shape_str(x.shape()); });
  return axis;
}
}  // namespace

// Along `axis`, the inputs' blocks are laid side by side: every outer row of the output is the
// concatenation of each input's row of length shape[axis]·inner.
Tensor concat(const std::vector<Tensor>& xs, int axis) {
  check(!xs.empty(), "concat", "needs at least one tensor");
  const Tensor& first = xs[0];
  detail::check_float("concat", first);
  axis = normalize_axis("concat", first, axis);
  Shape out_shape = first.shape();
  out_shape[axis] = 0;
  for (const Tensor& x : xs) {
    check_same_dtype_device("concat", first, x);
    bool ok = x.ndim() == first.ndim();
    for (int d = 0; ok && d < first.ndim(); ++d) ok = d == axis || x.size(d) == first.size(d);
    check(ok, "concat", [&] {
      return "shapes " + shape_str(first.shape()) + " and " + shape_str(x.shape()) + " differ outside axis " +
             std::to_string(axis);
    });
    out_shape[axis] += x.size(axis);
  }
  Tensor y = detail::empty_as(out_shape, first);
  const int64_t outer = outer_size(out_shape, axis), inner = inner_size(out_shape, axis);
  const int64_t out_row = out_shape[axis] * inner;
  const size_t es = dtype_size(first.dtype());
  std::vector<int64_t> offsets;
  int64_t offset = 0;
  for (const Tensor& x : xs) {
    const int64_t row = x.size(axis) * inner;
    be(x).copy_2d(x.dtype(), outer, row, x.data(), row, static_cast<char*>(y.data()) + offset * es, out_row);
    offsets.push_back(offset);
    offset += row;
  }
  bool any = false;
  std::vector<GradTarget> targets;
  for (const Tensor& x : xs) {
    any = any || needs_grad({&x});
    targets.push_back(grad_target(x));
  }
  if (any) {
    tape().record("concat", y, [targets, offsets, outer, inner, out_row, axis, es](const Tensor& dy) {
      for (size_t i = 0; i < targets.size(); ++i) {
        if (!targets[i]) continue;
        const int64_t row = targets[i]->shape[static_cast<size_t>(axis)] * inner;
        Tensor dx = empty_for(targets[i]);
        be(dy).copy_2d(dy.dtype(), outer, row, static_cast<const char*>(dy.data()) + offsets[i] * es, out_row,
                       dx.data(), row);
        accumulate_grad(targets[i], dx);
      }
    });
  }
  return y;
}

Tensor slice(const Tensor& x, int axis, int64_t start, int64_t length) {
  detail::check_float("slice", x);
  axis = normalize_axis("slice", x, axis);
  check(start >= 0 && length >= 0 && start + length <= x.size(axis), "slice", [&] {
    return "range [" + std::to_string(start) + ", " + std::to_string(start + length) + ") outside axis " +
           std::to_string(axis) + " of " + shape_str(x.shape());
  });
  Shape out_shape = x.shape();
  out_shape[axis] = length;
  const int64_t outer = outer_size(x.shape(), axis), inner = inner_size(x.shape(), axis);
  const int64_t in_row = x.size(axis) * inner, out_row = length * inner;
  const size_t es = dtype_size(x.dtype());
  Tensor y = detail::empty_as(out_shape, x);
  be(x).copy_2d(x.dtype(), outer, out_row, static_cast<const char*>(x.data()) + start * inner * es, in_row, y.data(),
                out_row);
  if (needs_grad({&x})) {
    tape().record("slice", y, [x_t = grad_target(x), outer, inner, in_row, out_row, start, es](const Tensor& dy) {
      Tensor dx = Tensor::zeros(x_t->shape, x_t->dtype, x_t->device);
      be(dy).copy_2d(dy.dtype(), outer, out_row, dy.data(), out_row, static_cast<char*>(dx.data()) + start * inner * es,
                     in_row);
      accumulate_grad(x_t, dx);
    });
  }
  return y;
}

Tensor select(const Tensor& x, int axis, int64_t index) {
  axis = normalize_axis("select", x, axis);
  Tensor y = slice(x, axis, index, 1);
  Shape squeezed = x.shape();
  squeezed.erase(squeezed.begin() + axis);
  return reshape(y, squeezed);
}

}  // namespace unipelt::ops

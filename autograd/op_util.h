// Helpers shared by the ops_*.cpp files (not part of the public API).
#pragma once

#include <array>
#include <string>

#include "autograd/backend.h"
#include "autograd/ops.h"
#include "autograd/tape.h"

namespace unipelt::detail {

inline Backend& be(const Tensor& t) { return backend(t.device()); }
inline Tensor empty_like(const Tensor& t) { return Tensor::empty(t.shape(), t.dtype(), t.device()); }
inline Tensor empty_as(const Shape& shape, const Tensor& t) { return Tensor::empty(shape, t.dtype(), t.device()); }

// A shape left-padded with 1s to 4 dimensions.
inline std::array<int64_t, 4> pad4(const Shape& s) {
  std::array<int64_t, 4> out{1, 1, 1, 1};
  for (size_t i = 0; i < s.size(); ++i) out[4 - s.size() + i] = s[i];
  return out;
}

// Row-major strides of a padded shape, with 0 on dimensions of size 1 that are broadcast against `full`.
inline std::array<int64_t, 4> broadcast_strides(const std::array<int64_t, 4>& s, const std::array<int64_t, 4>& full) {
  std::array<int64_t, 4> st{};
  int64_t acc = 1;
  for (int d = 3; d >= 0; --d) {
    st[d] = (s[d] == 1 && full[d] != 1) ? 0 : acc;
    acc *= s[d];
  }
  return st;
}

// Numpy broadcasting of a and b (up to 4-D). Throws a ShapeError naming `op` when incompatible.
Broadcast4 make_broadcast(std::string_view op, const Shape& a, const Shape& b, Shape* out_shape);

// Checks the usual preconditions of a floating-point op input.
void check_float(std::string_view op, const Tensor& t);

}  // namespace unipelt::detail

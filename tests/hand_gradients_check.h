// Helpers of tests/test_hand_gradients*.cpp: tape tensors and gradients as hand::Array, the relative
// difference the comparisons use, random float64 inputs and padding masks, and the projected backward
// that also counts its FLOPs.
//
// "Relative difference" of a tape tensor against its hand-derived reference is
//   max_i |tape_i − hand_i| / max_i |hand_i|,
// the error relative to the tensor's scale (an element-wise ratio would divide by the entries that
// cancel to ~0). Every comparison must be ≤ 1e-10; float64 rounding leaves about 1e-15.
#pragma once

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <string>
#include <vector>

#include "autograd/flop_counter.h"
#include "autograd/gradcheck.h"
#include "autograd/tape.h"
#include "nn/module.h"
#include "pelt/gate.h"
#include "tests/hand_gradients_prefix_heads.h"

namespace unipelt::hand_test {

using hand::Array;


inline constexpr double kTolerance = 1e-10;
inline constexpr int64_t B = 3, T = 5, H = 6;  // lengths 5, 3, 1 (below): two examples padded

inline Array array_of(const Tensor& t) {
  Array a(t.shape());
  if (t.defined()) a.v = t.to_vector();
  return a;
}

// A tensor's gradient as an array (zeros when the tape sent it none).
inline Array grad_of(const Tensor& t) {
  Array a(t.shape());
  if (t.grad().defined()) a.v = t.grad().to_vector();
  return a;
}

inline double max_abs(const Array& a) {
  double m = 0;
  for (double v : a.v) m = std::max(m, std::abs(v));
  return m;
}

inline double relative_difference(const Array& tape, const Array& reference) {
  REQUIRE(tape.shape == reference.shape);
  double diff = 0, scale = 0;
  for (int64_t i = 0; i < tape.numel(); ++i) {
    diff = std::max(diff, std::abs(tape[i] - reference[i]));
    scale = std::max(scale, std::abs(reference[i]));
  }
  if (scale == 0) return diff == 0 ? 0 : std::numeric_limits<double>::infinity();
  return diff / scale;
}

// The largest relative difference seen in the current test case; report() prints it (the numbers
// docs/gradients.md §7 quotes) and starts over.
struct Measured {
  double worst = 0;
  int comparisons = 0;
};
inline Measured measured;

inline void check_matches(const Array& tape, const Array& reference, const char* what) {
  const double d = relative_difference(tape, reference);
  measured.worst = std::max(measured.worst, d);
  ++measured.comparisons;
  INFO(what << ": relative difference " << d);
  CHECK(d <= kTolerance);
}
#define CHECK_MATCHES(tape, reference) \
  ::unipelt::hand_test::check_matches((tape), (reference), #tape " vs " #reference)

inline void report(const char* method) {
  std::printf("hand-derived backward of %s: %d comparisons with the tape, max relative difference %.3g\n", method,
              measured.comparisons, measured.worst);
  measured = {};
}

inline uint64_t next_seed = 100;
// Each test case starts here, so that its random inputs do not depend on which tests ran before it.
inline void start_case(uint64_t seed) {
  next_seed = seed;
  measured = {};
}
// A random float64 tensor, U(lo, hi), that requires a gradient when asked to.
inline Tensor random_tensor(const Shape& shape, bool requires_grad = false, double lo = -1.0, double hi = 1.0) {
  Tensor t = random_uniform(shape, lo, hi, next_seed++);
  t.set_requires_grad(requires_grad);
  return t;
}
// Fills a module's tensors with random values and marks them trainable (init would leave zeros).
inline void randomize(const Tensor& t, double lo = -0.5, double hi = 0.5) {
  t.copy_from(random_uniform(t.shape(), lo, hi, next_seed++));
  Tensor handle = t;
  handle.set_requires_grad(true);
}
inline void randomize(const Module& m) {
  for (const NamedTensor& p : m.parameters()) randomize(p.tensor);
}

// Attention mask [rows, T]: row b has lengths[b] real tokens, then padding.
inline Tensor padding_mask(const std::vector<int64_t>& lengths) {
  std::vector<double> m;
  for (int64_t len : lengths)
    for (int64_t t = 0; t < T; ++t) m.push_back(t < len ? 1.0 : 0.0);
  return Tensor::from_vector(m, {static_cast<int64_t>(lengths.size()), T}, DType::F64);
}
inline Tensor padded_mask() { return padding_mask({5, 3, 1}); }

// L = Σ out ⊙ R: backward then sends dL/d(out) = R. Returns the backward's matrix-product FLOPs.
inline int64_t backward_projected(const Tensor& out, const Tensor& r) {
  Tensor loss = ops::sum(ops::mul(out, r));
  FlopCounter flops;
  backward(loss);
  return flops.flops();
}

inline hand::GateParams gate_params(const Gate& g) { return {array_of(g.score.weight), g.score.bias.item()}; }

inline void check_gate_grads(const Gate& g, const hand::GateGrads& reference) {
  Array dc({1});
  dc[0] = reference.dc;
  CHECK_MATCHES(grad_of(g.score.weight), reference.dw);
  CHECK_MATCHES(grad_of(g.score.bias), dc);
}

// The module variants each method test runs: gated with both poolings, and ungated.
struct Variant {
  bool gated;
  GatePool pool;
};
inline constexpr Variant kVariants[] = {{true, GatePool::Masked}, {true, GatePool::All}, {false, GatePool::Masked}};
inline std::string variant_name(const Variant& v) {
  return v.gated ? std::string("gated, ") + gate_pool_name(v.pool) + " pooling" : "ungated";
}


}  // namespace unipelt::hand_test

// The op check suite: every differentiable op on several shapes (odd sizes, broadcasting, masks),
// gradient-checked in float64 and compared float32-vs-float64 in the forward pass. Shared by the
// test suite (tests/test_autograd.cpp) and `unipelt gradcheck ops`, so both check the same list.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "autograd/gradcheck.h"

namespace unipelt {

struct OpCase {
  std::string op;      // "linear"
  std::string shapes;  // "x[2,3,7] W[5,7] b[5]"
  // Deterministic inputs in the given dtype; the differentiable ones have requires_grad set.
  std::function<std::vector<Tensor>(DType)> make_inputs;
  TensorFunction f;
};

std::vector<OpCase> op_cases();

struct OpCaseResult {
  const OpCase* op_case;
  GradcheckResult grad;
  double f32_max_error = 0.0;  // max |f32 - f64| / (1 + |f64|) over the forward output
  bool f32_passed = true;
  bool passed() const { return grad.passed && f32_passed; }
};

// Tolerance of the float32-vs-float64 forward comparison, relative to (1 + |value|).
constexpr double kF32ForwardTolerance = 1e-4;

OpCaseResult run_op_case(const OpCase& c, const GradcheckOptions& options = {});

}  // namespace unipelt

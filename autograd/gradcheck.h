// Finite-difference gradient checking, in float64 with central differences.
//
// For f: inputs -> output, the harness projects the output onto a fixed random direction R,
// L(inputs) = Σ f(inputs) ⊙ R, so that one backward pass gives the full vector-Jacobian product.
// It then compares, for every element of every input that requires a gradient,
//   analytic  dL/dx_j  (the tape's backward)
//   numeric   (L(x_j + eps) - L(x_j - eps)) / (2 eps)
// and passes when |analytic - numeric| <= atol + rtol·|numeric| everywhere: the test PyTorch's
// gradcheck applies, with its default tolerances.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "autograd/tensor.h"

namespace unipelt {

struct GradcheckOptions {
  double eps = 1e-6;
  double atol = 1e-5;
  double rtol = 1e-3;
  uint64_t seed = 1234;  // for the projection direction R
};

// The errors of one checked input: the worst absolute and relative error and the element each
// occurred at (flat row-major index; multi_index() turns it into [i, j, ...]).
struct InputErrors {
  size_t input = 0;  // position in the inputs list
  Shape shape;
  int64_t elements = 0;
  int64_t failures = 0;  // elements outside atol + rtol·|numeric|
  double max_abs_error = 0.0;
  int64_t max_abs_at = -1;
  double max_rel_error = 0.0;  // over elements whose numeric gradient exceeds atol
  int64_t max_rel_at = -1;     // -1 when no numeric gradient exceeds atol
  double analytic_at_max_abs = 0.0, numeric_at_max_abs = 0.0;
  bool passed() const { return failures == 0; }
};

struct GradcheckResult {
  bool passed = true;
  int64_t elements_checked = 0;
  double max_abs_error = 0.0;
  double max_rel_error = 0.0;  // over elements whose numeric gradient exceeds atol
  std::string worst;           // "input 2 element 17: analytic ..., numeric ..."
  std::vector<InputErrors> inputs;  // one per input that requires a gradient, in input order
};

// The multi-index of flat (row-major) element `flat` of a tensor of this shape, as "[1, 0, 3]".
std::string multi_index(const Shape& shape, int64_t flat);

using TensorFunction = std::function<Tensor(const std::vector<Tensor>&)>;

// Inputs must be float64 CPU tensors (integer inputs such as ids and labels are passed through).
// Only inputs with requires_grad are checked. Leaves the inputs' values unchanged.
GradcheckResult gradcheck(const TensorFunction& f, const std::vector<Tensor>& inputs,
                          const GradcheckOptions& options = {});

// A table with one row per checked input: its name (names[k] for result.inputs[k]; "input i" when
// names is shorter), shape, element count, the worst absolute and relative errors with the element each
// occurred at (flat index and multi-index), and pass/FAIL. What `gradcheck methods --verbose` prints.
std::string input_errors_table(const GradcheckResult& result, const std::vector<std::string>& names = {});

// Random values for tests and gradchecks (uniform in [lo, hi)), deterministic for a seed.
Tensor random_uniform(const Shape& shape, double lo, double hi, uint64_t seed, DType dtype = DType::F64);

}  // namespace unipelt

#include "autograd/gradcheck.h"

#include <cmath>
#include <random>
#include <sstream>

#include "autograd/ops.h"
#include "autograd/tape.h"

namespace unipelt {

Tensor random_uniform(const Shape& shape, double lo, double hi, uint64_t seed, DType dtype) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> dist(lo, hi);
  std::vector<double> values(static_cast<size_t>(shape_numel(shape)));
  for (double& v : values) v = dist(rng);
  return Tensor::from_vector(values, shape, dtype);
}

namespace {

// L = Σ out ⊙ R, evaluated without recording (for the numeric side).
double projected(const TensorFunction& f, const std::vector<Tensor>& inputs, const std::vector<double>& r) {
  NoGradGuard no_grad;
  std::vector<double> out = f(inputs).to_vector();
  double total = 0.0;
  for (size_t i = 0; i < out.size(); ++i) total += out[i] * r[i];
  return total;
}

}  // namespace

GradcheckResult gradcheck(const TensorFunction& f, const std::vector<Tensor>& inputs, const GradcheckOptions& opt) {
  for (const Tensor& t : inputs)
    check(t.dtype() != DType::F32 && t.device() == Device::CPU, "gradcheck",
          "inputs must be float64 (or i32) CPU tensors: finite differences in float32 are too coarse");

  // Analytic side: one backward of the projected output.
  tape().clear();
  for (const Tensor& t : inputs) t.zero_grad();
  Tensor out = f(inputs);
  Tensor r = random_uniform(out.shape(), -1.0, 1.0, opt.seed, out.dtype());
  const std::vector<double> r_host = r.to_vector();
  Tensor loss = ops::sum(ops::mul(out, r));
  GradcheckResult result;
  if (!loss.requires_grad()) {
    result.passed = false;
    result.worst = "the output does not depend on any input that requires a gradient";
    return result;
  }
  backward(loss);

  // Numeric side: central differences, one element at a time.
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& x = inputs[i];
    if (!x.requires_grad()) continue;
    std::vector<double> analytic = x.grad().defined() ? x.grad().to_vector() : std::vector<double>(x.numel(), 0.0);
    double* data = x.data_as<double>();
    for (int64_t j = 0; j < x.numel(); ++j) {
      const double saved = data[j];
      data[j] = saved + opt.eps;
      const double plus = projected(f, inputs, r_host);
      data[j] = saved - opt.eps;
      const double minus = projected(f, inputs, r_host);
      data[j] = saved;
      const double numeric = (plus - minus) / (2.0 * opt.eps);
      const double err = std::abs(analytic[j] - numeric);
      ++result.elements_checked;
      const bool ok = err <= opt.atol + opt.rtol * std::abs(numeric) && std::isfinite(analytic[j]);
      if (std::abs(numeric) > opt.atol) result.max_rel_error = std::max(result.max_rel_error, err / std::abs(numeric));
      // `worst` names the first failing element, or (when all pass) the largest error.
      if (!ok || (result.passed && err >= result.max_abs_error)) {
        std::ostringstream why;
        why << "input " << i << " " << shape_str(x.shape()) << " element " << j << ": analytic " << analytic[j]
            << ", numeric " << numeric;
        if (result.passed) result.worst = why.str();
        if (!ok) result.passed = false;
      }
      result.max_abs_error = std::max(result.max_abs_error, err);
    }
  }
  for (const Tensor& t : inputs) t.zero_grad();
  return result;
}

}  // namespace unipelt

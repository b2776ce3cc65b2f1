#include "autograd/gradcheck.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
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

std::string multi_index(const Shape& shape, int64_t flat) {
  std::vector<int64_t> index(shape.size(), 0);
  for (size_t d = shape.size(); d-- > 0;) {
    index[d] = shape[d] > 0 ? flat % shape[d] : 0;
    flat = shape[d] > 0 ? flat / shape[d] : 0;
  }
  std::string out = "[";
  for (size_t d = 0; d < index.size(); ++d) out += (d ? ", " : "") + std::to_string(index[d]);
  return out + "]";
}

std::string input_errors_table(const GradcheckResult& result, const std::vector<std::string>& names) {
  auto name_of = [&](size_t k) {
    return k < names.size() ? names[k] : "input " + std::to_string(result.inputs[k].input);
  };
  auto where = [](const InputErrors& e, int64_t flat) {
    return flat < 0 ? std::string("-") : std::to_string(flat) + " " + multi_index(e.shape, flat);
  };
  size_t width = 6;
  for (size_t k = 0; k < result.inputs.size(); ++k) width = std::max(width, name_of(k).size());
  std::ostringstream out;
  char line[512];
  std::snprintf(line, sizeof line, "%-*s %-12s %8s %12s %-14s %12s %-14s %s\n", static_cast<int>(width), "tensor",
                "shape", "elements", "max abs err", "at", "max rel err", "at", "result");
  out << line;
  for (size_t k = 0; k < result.inputs.size(); ++k) {
    const InputErrors& e = result.inputs[k];
    std::snprintf(line, sizeof line, "%-*s %-12s %8lld %12.3e %-14s %12.3e %-14s %s\n", static_cast<int>(width),
                  name_of(k).c_str(), shape_str(e.shape).c_str(), static_cast<long long>(e.elements), e.max_abs_error,
                  where(e, e.max_abs_at).c_str(), e.max_rel_error, where(e, e.max_rel_at).c_str(),
                  e.passed() ? "pass" : ("FAIL (" + std::to_string(e.failures) + " elements)").c_str());
    out << line;
  }
  return out.str();
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
    InputErrors errors;
    errors.input = i;
    errors.shape = x.shape();
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
      ++errors.elements;
      const bool ok = err <= opt.atol + opt.rtol * std::abs(numeric) && std::isfinite(analytic[j]);
      if (!ok) ++errors.failures;
      if (std::abs(numeric) > opt.atol && (errors.max_rel_at < 0 || err / std::abs(numeric) > errors.max_rel_error)) {
        errors.max_rel_error = err / std::abs(numeric);
        errors.max_rel_at = j;
      }
      if (errors.max_abs_at < 0 || err > errors.max_abs_error || !std::isfinite(err)) {
        errors.max_abs_error = err;
        errors.max_abs_at = j;
        errors.analytic_at_max_abs = analytic[j];
        errors.numeric_at_max_abs = numeric;
      }
      // `worst` names the first failing element, or (when all pass) the largest error.
      if (!ok || (result.passed && err >= result.max_abs_error)) {
        std::ostringstream why;
        why << "input " << i << " " << shape_str(x.shape()) << " element " << j << " " << multi_index(x.shape(), j)
            << ": analytic " << analytic[j] << ", numeric " << numeric;
        if (result.passed) result.worst = why.str();
        if (!ok) result.passed = false;
      }
      result.max_abs_error = std::max(result.max_abs_error, err);
    }
    result.elements_checked += errors.elements;
    result.max_rel_error = std::max(result.max_rel_error, errors.max_rel_error);
    result.inputs.push_back(std::move(errors));
  }
  for (const Tensor& t : inputs) t.zero_grad();
  return result;
}

}  // namespace unipelt

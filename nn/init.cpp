#include "nn/init.h"

#include <cmath>
#include <vector>

#include "autograd/backend.h"

namespace unipelt {

double Rng::uniform() { return static_cast<double>(engine_() >> 11) * 0x1.0p-53; }

double Rng::normal(double mean, double stddev) {
  if (has_spare_) {
    has_spare_ = false;
    return mean + stddev * spare_;
  }
  double u1 = uniform();
  while (u1 <= 0.0) u1 = uniform();
  const double u2 = uniform();
  const double radius = std::sqrt(-2.0 * std::log(u1));
  spare_ = radius * std::sin(2.0 * M_PI * u2);
  has_spare_ = true;
  return mean + stddev * radius * std::cos(2.0 * M_PI * u2);
}

namespace {
void fill_from_host(const Tensor& t, const std::vector<double>& values) {
  t.copy_from(Tensor::from_vector(values, t.shape(), t.dtype()).to(t.device()));
}
}  // namespace

void init_normal(const Tensor& t, double stddev, Rng& rng) {
  std::vector<double> v(static_cast<size_t>(t.numel()));
  for (double& x : v) x = rng.normal(0.0, stddev);
  fill_from_host(t, v);
}

void init_uniform(const Tensor& t, double lo, double hi, Rng& rng) {
  std::vector<double> v(static_cast<size_t>(t.numel()));
  for (double& x : v) x = rng.uniform(lo, hi);
  fill_from_host(t, v);
}

void init_constant(const Tensor& t, double value) { backend(t.device()).fill(t.dtype(), t.data(), t.numel(), value); }

}  // namespace unipelt

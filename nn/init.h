// Random initialisation, reproducible across compilers and standard libraries.
//
// std::normal_distribution is implementation-defined (libstdc++ and libc++ draw different numbers), so
// we derive everything from std::mt19937_64, whose output the standard fixes, and write the transforms
// out: uniform = top 53 bits / 2^53, normal = Box-Muller.
#pragma once

#include <cstdint>
#include <random>

#include "autograd/tensor.h"

namespace unipelt {

class Rng {
 public:
  explicit Rng(uint64_t seed) : engine_(seed) {}
  double uniform();                 // [0, 1)
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  double normal(double mean = 0.0, double stddev = 1.0);

 private:
  std::mt19937_64 engine_;
  bool has_spare_ = false;
  double spare_ = 0.0;
};

// In-place fills (the tensor may live on any device; values are drawn on the host).
void init_normal(const Tensor& t, double stddev, Rng& rng);
void init_uniform(const Tensor& t, double lo, double hi, Rng& rng);
void init_constant(const Tensor& t, double value);

}  // namespace unipelt

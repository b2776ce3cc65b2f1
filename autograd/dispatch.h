// dtype dispatch shared by the CPU and CUDA backends (C++17, so nvcc can include it).
#pragma once

#include <stdexcept>
#include <string>

#include "autograd/tensor.h"

namespace unipelt {

// Calls f with a value of the C++ type matching a floating dtype: f(float{}) or f(double{}).
template <class F>
void dispatch_float(DType dtype, const char* kernel, F&& f) {
  if (dtype == DType::F32) {
    f(float{});
  } else if (dtype == DType::F64) {
    f(double{});
  } else {
    throw std::invalid_argument(std::string(kernel) + ": needs a floating-point dtype, got " + dtype_name(dtype));
  }
}

}  // namespace unipelt

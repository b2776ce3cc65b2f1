// dtype dispatch and index-error messages shared by the CPU and CUDA backends (C++17, so nvcc can include it).
#pragma once

#include <cstdint>
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

// The index errors every backend raises with the same words (tests compare them across devices).
[[noreturn]] inline void throw_bad_embedding_id(int64_t id, int64_t position, int64_t vocab) {
  throw std::out_of_range("embedding: id " + std::to_string(id) + " at position " + std::to_string(position) +
                          " is outside the table of " + std::to_string(vocab) + " rows");
}
[[noreturn]] inline void throw_bad_label(int64_t label, int64_t example, int64_t classes) {
  throw std::out_of_range("cross_entropy: label " + std::to_string(label) + " of example " + std::to_string(example) +
                          " is outside [0, " + std::to_string(classes) + ")");
}

}  // namespace unipelt

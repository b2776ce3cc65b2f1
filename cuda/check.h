// Error checking for the CUDA runtime and cuBLAS.
//
//   UNIPELT_CUDA_CHECK(cudaMalloc(&p, bytes));     // throws std::runtime_error on failure
//   UNIPELT_CUBLAS_CHECK(cublasSgemm(...));
//   UNIPELT_CUDA_CHECK_LAUNCH();                    // after a kernel launch <<<...>>>
//
// The message names the file, the line, the failing expression and the CUDA/cuBLAS error text, e.g.
//   "cuda/memory.cu:57: cudaMalloc(&ptr, bytes) failed: out of memory (cudaErrorMemoryAllocation)".
// Host-only: usable from .cpp and .cu files.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <stdexcept>
#include <string>

namespace unipelt::cuda {

[[noreturn]] inline void throw_cuda_error(cudaError_t err, const char* expr, const char* file, int line) {
  throw std::runtime_error(std::string(file) + ":" + std::to_string(line) + ": " + expr + " failed: " +
                           cudaGetErrorString(err) + " (" + cudaGetErrorName(err) + ")");
}

[[noreturn]] inline void throw_cublas_error(cublasStatus_t status, const char* expr, const char* file, int line) {
  throw std::runtime_error(std::string(file) + ":" + std::to_string(line) + ": " + expr + " failed: " +
                           cublasGetStatusString(status) + " (" + cublasGetStatusName(status) + ")");
}

}  // namespace unipelt::cuda

#define UNIPELT_CUDA_CHECK(expr)                                                       \
  do {                                                                                 \
    const cudaError_t unipelt_err_ = (expr);                                           \
    if (unipelt_err_ != cudaSuccess)                                                   \
      ::unipelt::cuda::throw_cuda_error(unipelt_err_, #expr, __FILE__, __LINE__);      \
  } while (0)

// A launch error (bad configuration, no device) is reported by cudaGetLastError right after <<<...>>>.
// Errors inside the kernel surface at the next synchronising call (a download, dot, a checked kernel).
#define UNIPELT_CUDA_CHECK_LAUNCH() UNIPELT_CUDA_CHECK(cudaGetLastError())

#define UNIPELT_CUBLAS_CHECK(expr)                                                     \
  do {                                                                                 \
    const cublasStatus_t unipelt_status_ = (expr);                                     \
    if (unipelt_status_ != CUBLAS_STATUS_SUCCESS)                                      \
      ::unipelt::cuda::throw_cublas_error(unipelt_status_, #expr, __FILE__, __LINE__); \
  } while (0)

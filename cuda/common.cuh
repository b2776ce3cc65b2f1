// Device-side helpers shared by the kernel files (.cu only): dtype dispatch, launch geometry,
// float/double math overloads, warp and block reductions, and a deterministic sum over n terms.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "autograd/dispatch.h"
#include "cuda/check.h"
#include "cuda/cuda_backend_impl.h"

namespace unipelt::cuda {

// ---- dtype dispatch (host): dispatch_float from autograd/dispatch.h ------------------------------

// f(float{}), f(double{}) or f(int32_t{}): for kernels that only move or convert values.
template <class F>
void dispatch_any(DType dtype, F&& f) {
  switch (dtype) {
    case DType::F32: f(float{}); break;
    case DType::F64: f(double{}); break;
    case DType::I32: f(int32_t{}); break;
  }
}

// ---- launch geometry ----------------------------------------------------------------------------
constexpr int kBlock = 256;                  // threads per block for flat (one thread per element) kernels
constexpr int64_t kMaxBlocks = int64_t(1) << 20;  // grid-stride loops cover anything beyond

inline unsigned blocks_for(int64_t n, int block = kBlock) {
  return static_cast<unsigned>(std::clamp<int64_t>((n + block - 1) / block, 1, kMaxBlocks));
}

// Row kernels use one block per row (grid-stride over rows) and a block no wider than the row needs.
inline unsigned blocks_for_rows(int64_t rows) { return static_cast<unsigned>(std::clamp<int64_t>(rows, 1, kMaxBlocks)); }
inline int threads_for_cols(int64_t cols) { return cols <= 32 ? 32 : cols <= 64 ? 64 : cols <= 128 ? 128 : 256; }

// Flat grid-stride loop: for (int64_t i = first_index(); i < n; i += index_step()).
__device__ inline int64_t first_index() { return static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; }
__device__ inline int64_t index_step() { return static_cast<int64_t>(gridDim.x) * blockDim.x; }

// ---- math overloads: the float versions stay in float ---------------------------------------------
namespace math {
__device__ inline float exp(float x) { return ::expf(x); }
__device__ inline double exp(double x) { return ::exp(x); }
__device__ inline float log(float x) { return ::logf(x); }
__device__ inline double log(double x) { return ::log(x); }
__device__ inline float sqrt(float x) { return ::sqrtf(x); }
__device__ inline double sqrt(double x) { return ::sqrt(x); }
__device__ inline float erf(float x) { return ::erff(x); }
__device__ inline double erf(double x) { return ::erf(x); }
__device__ inline float tanh(float x) { return ::tanhf(x); }
__device__ inline double tanh(double x) { return ::tanh(x); }
template <class T>
__device__ inline T neg_infinity() { return -static_cast<T>(INFINITY); }
}  // namespace math

// ---- reductions -------------------------------------------------------------------------------
struct SumOp {
  template <class T>
  __device__ T operator()(T a, T b) const { return a + b; }
};
struct MaxOp {
  template <class T>
  __device__ T operator()(T a, T b) const { return a > b ? a : b; }
};

// Reduce over the 32 lanes of a warp; every lane gets the result (butterfly: fixed order).
template <class T, class Op>
__device__ T warp_reduce(T v, Op op) {
  for (int offset = 16; offset > 0; offset >>= 1) v = op(v, __shfl_xor_sync(0xffffffffu, v, offset));
  return v;
}

// Reduce over the whole block (blockDim.x a multiple of 32); every thread gets the result.
// May be called several times in a row by the same kernel.
template <class T, class Op>
__device__ T block_reduce(T v, Op op, T identity) {
  __shared__ T partial[32];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
  v = warp_reduce(v, op);
  __syncthreads();  // the previous call may still be reading `partial`
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  return warp_reduce(lane < warps ? partial[lane] : identity, op);
}
template <class T>
__device__ T block_sum(T v) { return block_reduce(v, SumOp{}, T(0)); }
template <class T>
__device__ T block_max(T v) { return block_reduce(v, MaxOp{}, math::neg_infinity<T>()); }

// ---- deterministic sum of n terms into one device scalar ---------------------------------------
// out[0] = scale · Σ_{i<n} term(i), accumulated in double. Two launches: up to 1024 blocks write
// partial sums, then one block adds them. The grid depends only on n, so results are reproducible.
// `Term` is a functor with `__device__ double operator()(int64_t i) const`.
template <class Term>
__global__ void partial_sums_kernel(int64_t n, Term term, double* partial) {
  double acc = 0;
  for (int64_t i = first_index(); i < n; i += index_step()) acc += term(i);
  acc = block_sum(acc);
  if (threadIdx.x == 0) partial[blockIdx.x] = acc;
}

template <class T>
__global__ void finish_sum_kernel(int parts, const double* partial, double scale, T* out) {
  double acc = 0;
  for (int i = threadIdx.x; i < parts; i += blockDim.x) acc += partial[i];
  acc = block_sum(acc);
  if (threadIdx.x == 0) out[0] = static_cast<T>(acc * scale);
}

template <class T, class Term>
void sum_to_device(int64_t n, const Term& term, double scale, T* out) {
  const unsigned blocks = std::min(blocks_for(n), 1024u);
  Scratch partial(blocks * sizeof(double));
  partial_sums_kernel<<<blocks, kBlock>>>(n, term, partial.as<double>());
  UNIPELT_CUDA_CHECK_LAUNCH();
  finish_sum_kernel<<<1, 1024>>>(static_cast<int>(blocks), partial.as<double>(), scale, out);
  UNIPELT_CUDA_CHECK_LAUNCH();
}

}  // namespace unipelt::cuda

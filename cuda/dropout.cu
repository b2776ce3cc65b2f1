// Dropout from a counter-based RNG.
//
//   dropout  y[n] = x[n] ⊙ mask, mask[i] = 0 with probability p, else 1/(1-p)
//
// Element i is kept when dropout_bits(seed, i) >= dropout_keep_threshold(p) (autograd/dropout_hash.h,
// the same function the CPU backend uses), so both backends draw the same mask for the same seed. No
// RNG state and no stored mask: every thread computes its own element, in any order, and the backward
// pass is the same kernel applied to dy.
#include "autograd/dropout_hash.h"
#include "cuda/common.cuh"

namespace unipelt::cuda {

namespace {

template <class T>
__global__ void dropout_kernel(int64_t n, int64_t keep_threshold, T keep_scale, uint64_t seed, const T* x, T* y) {
  for (int64_t i = first_index(); i < n; i += index_step())
    y[i] = x[i] * (dropout_bits(seed, i) >= keep_threshold ? keep_scale : T(0));  // 0·NaN stays NaN, as on the CPU
}

}  // namespace

void CudaBackend::dropout(DType dtype, int64_t n, double p, uint64_t seed, const void* x, void* y) {
  if (n <= 0) return;
  dispatch_float(dtype, "dropout", [&](auto tag) {
    using T = decltype(tag);
    const T keep_scale = static_cast<T>(1.0 / (1.0 - p));  // computed on the host, like the CPU backend
    dropout_kernel<T><<<blocks_for(n), kBlock>>>(n, dropout_keep_threshold(p), keep_scale, seed,
                                                 static_cast<const T*>(x), static_cast<T*>(y));
    UNIPELT_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace unipelt::cuda

// Dropout mask from a counter-based RNG.
//
//   dropout_mask  mask[n] = 0 with probability p, else 1/(1-p)
//
// Element i draws u = hash(seed, i) in [0, 1) and is kept when u >= p. The hash is the SplitMix64
// finaliser applied to seed + golden-ratio · (i + 1), bit for bit the CPU backend's dropout_uniform
// (autograd/cpu_backend.h), so both backends draw the same mask for the same seed. No RNG state:
// every thread computes its own element, in any order.
#include "cuda/common.cuh"

namespace unipelt::cuda {

namespace {

__device__ inline double dropout_uniform(uint64_t seed, int64_t i) {
  uint64_t z = seed + 0x9E3779B97F4A7C15ull * static_cast<uint64_t>(i + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return static_cast<double>(z >> 11) * 0x1.0p-53;  // 53 random bits: exact in a double
}

template <class T>
__global__ void dropout_mask_kernel(int64_t n, double p, uint64_t seed, T keep_scale, T* mask) {
  for (int64_t i = first_index(); i < n; i += index_step()) mask[i] = dropout_uniform(seed, i) >= p ? keep_scale : T(0);
}

}  // namespace

void CudaBackend::dropout_mask(DType dtype, int64_t n, double p, uint64_t seed, void* mask) {
  if (n <= 0) return;
  dispatch_float(dtype, "dropout_mask", [&](auto tag) {
    using T = decltype(tag);
    const T keep_scale = static_cast<T>(1.0 / (1.0 - p));  // computed on the host, like the CPU backend
    dropout_mask_kernel<T><<<blocks_for(n), kBlock>>>(n, p, seed, keep_scale, static_cast<T*>(mask));
    UNIPELT_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace unipelt::cuda

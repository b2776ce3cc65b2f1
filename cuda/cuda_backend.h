// The CUDA backend's public face: what autograd/cpu_backend.cpp's registry and the tests call.
//
//   if (unipelt::cuda_device_present()) { Backend& gpu = unipelt::cuda_backend(); ... }
//
// Everything else (the CudaBackend class, the kernels) is internal to cuda/; see docs/cuda.md.
#pragma once

#include <cstddef>

#include "autograd/backend.h"

namespace unipelt {

// The process-wide CUDA backend (device 0). Creating it touches no GPU; the first allocation or
// cuBLAS call does. Call only when cuda_device_present() is true.
Backend& cuda_backend();

// True when the CUDA runtime finds at least one device. Never throws or aborts: a missing driver,
// no GPU, or CUDA_VISIBLE_DEVICES="" all give false. The answer is computed once and cached.
bool cuda_device_present();

namespace cuda {

// The caching allocator keeps freed device blocks for reuse (see cuda/memory.cu). This returns every
// cached block to the driver (cudaFree); blocks in use are untouched. Safe to call at any time.
void release_cached();

struct AllocatorStats {
  size_t bytes_in_use = 0;     // requested bytes of live allocations
  size_t bytes_reserved = 0;   // bytes held from cudaMalloc: live blocks (rounded) + cached blocks
  size_t bytes_cached = 0;     // bytes in freed blocks waiting for reuse
  size_t peak_bytes = 0;       // high-water mark of bytes_in_use (since start or reset_peak)
  size_t cuda_mallocs = 0;     // cudaMalloc calls so far (a cache hit makes none)
  size_t cache_hits = 0;       // allocations served from the cache
};
AllocatorStats allocator_stats();

}  // namespace cuda
}  // namespace unipelt

// The CUDA backend's public face: what autograd/cpu_backend.cpp's registry and the tests call.
//
//   if (unipelt::cuda_device_present()) { Backend& gpu = unipelt::cuda_backend(); ... }
//
// Everything else (the CudaBackend class, the kernels) is internal to cuda/; see docs/cuda.md.
#pragma once

#include <cstddef>

#include "autograd/backend.h"
#include "autograd/caching_allocator.h"

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

using AllocatorStats = unipelt::AllocatorStats;  // autograd/caching_allocator.h
AllocatorStats allocator_stats();

}  // namespace cuda
}  // namespace unipelt

// The CUDA backend's public face: what it registers with autograd's registry, and what the tests call.
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

}  // namespace unipelt

// Registration of the CUDA backend: the two functions autograd/cpu_backend.cpp's registry calls.
// The kernels themselves live in the .cu files listed in cuda/cuda_backend_impl.h.
#include "cuda/cuda_backend.h"

#include <cuda_runtime_api.h>

#include "cuda/cuda_backend_impl.h"

namespace unipelt {

Backend& cuda_backend() {
  // Never destroyed, like the allocator: tensors in static objects may outlive main.
  static cuda::CudaBackend* instance = new cuda::CudaBackend;
  return *instance;
}

bool cuda_device_present() {
  static const bool present = [] {
    int count = 0;
    const cudaError_t err = cudaGetDeviceCount(&count);
    if (err != cudaSuccess) {
      (void)cudaGetLastError();  // no driver / no device: clear the error, report "absent"
      return false;
    }
    return count > 0;
  }();
  return present;
}

}  // namespace unipelt

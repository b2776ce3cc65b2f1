// Registration of the CUDA backend with autograd's registry (autograd/backend.h), at start-up.
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

// Runs before main() in every program that links the cuda library whole (CMakeLists.txt:
// unipelt_backends), which is how `backend(Device::CUDA)` finds this backend.
[[maybe_unused]] const bool registered = register_backend(Device::CUDA, {&cuda_backend, &cuda_device_present});

}  // namespace unipelt

// Device memory: the caching allocator, host<->device copies, fill and dtype conversion.
//
//   allocate(bytes) -> device pointer        fill(dtype, dst[n], value)
//   deallocate(ptr, bytes)                   convert(src[n] of src_dtype -> dst[n] of dst_dtype)
//   copy / upload / download (bytes)
//
// The allocator is autograd/caching_allocator.h (shared with the CPU backend) over plain cudaMalloc,
// never managed memory: freed blocks are cached by size bucket and reused, and when cudaMalloc runs out
// of memory the cache is released and the call retried once.
#include <cstring>
#include <string>

#include "autograd/caching_allocator.h"
#include "cuda/common.cuh"

namespace unipelt::cuda {

namespace {

// The raw device memory under the cache.
struct CudaMemory {
  static void* allocate(size_t bytes) {
    void* ptr = nullptr;
    const cudaError_t err = cudaMalloc(&ptr, bytes);
    if (err == cudaSuccess) return ptr;
    last_error_text() = cudaGetErrorString(err);
    (void)cudaGetLastError();  // clear the error so the next CUDA call does not report it
    return nullptr;
  }
  static void release(void* ptr) {
    // Errors are ignored: at process exit the driver may already be gone, and the memory with it.
    if (cudaFree(ptr) != cudaSuccess) (void)cudaGetLastError();
  }
  static std::string last_error() { return last_error_text(); }
  static const char* name() { return "cuda"; }
  static std::string& last_error_text() {
    static std::string text;
    return text;
  }
};

using CachingAllocator = unipelt::CachingAllocator<CudaMemory>;

// Never destroyed: tensors held by static objects may be freed after main returns, and a destroyed
// allocator would then be used. The driver reclaims everything at exit.
CachingAllocator& allocator() {
  static CachingAllocator* instance = new CachingAllocator;
  return *instance;
}

}  // namespace

void* device_malloc(size_t bytes) { return allocator().allocate(bytes); }
void device_free(void* ptr, size_t bytes) { allocator().free(ptr, bytes); }

// ---- IndexCheck -------------------------------------------------------------------------------
namespace {
unsigned long long* index_check_slot() {
  static unsigned long long* slot = [] {
    void* p = nullptr;
    UNIPELT_CUDA_CHECK(cudaMalloc(&p, sizeof(unsigned long long)));
    return static_cast<unsigned long long*>(p);
  }();
  return slot;
}
}  // namespace

IndexCheck::IndexCheck() : slot_(index_check_slot()) {
  UNIPELT_CUDA_CHECK(cudaMemsetAsync(slot_, 0xFF, sizeof(unsigned long long)));  // "no bad index" = max
}

int64_t IndexCheck::first_bad() const {
  unsigned long long position = 0;
  UNIPELT_CUDA_CHECK(cudaMemcpy(&position, slot_, sizeof position, cudaMemcpyDeviceToHost));
  return position == ~0ull ? -1 : static_cast<int64_t>(position);
}

int32_t IndexCheck::value_at(const int32_t* device_ids, int64_t position) const {
  int32_t id = 0;
  UNIPELT_CUDA_CHECK(cudaMemcpy(&id, device_ids + position, sizeof id, cudaMemcpyDeviceToHost));
  return id;
}

// ---- Backend members: memory ----------------------------------------------------------------------
AllocatorStats CudaBackend::memory_stats() const { return allocator().stats(); }
void CudaBackend::reset_peak() { allocator().reset_peak(); }
void CudaBackend::release_cached() { allocator().release_cached(); }

void* CudaBackend::allocate(size_t bytes) { return device_malloc(bytes); }
void CudaBackend::deallocate(void* ptr, size_t bytes) { device_free(ptr, bytes); }

void CudaBackend::copy(void* dst, const void* src, size_t bytes) {
  if (bytes) UNIPELT_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, 0));
}

void CudaBackend::upload(void* dst, const void* host_src, size_t bytes) {
  if (bytes) UNIPELT_CUDA_CHECK(cudaMemcpy(dst, host_src, bytes, cudaMemcpyHostToDevice));
}

// Synchronous: waits for every queued kernel that writes `src`, so the host sees final values.
void CudaBackend::download(void* host_dst, const void* src, size_t bytes) {
  if (bytes) UNIPELT_CUDA_CHECK(cudaMemcpy(host_dst, src, bytes, cudaMemcpyDeviceToHost));
}

// ---- fill and convert ---------------------------------------------------------------------------
namespace {

template <class T>
__global__ void fill_kernel(int64_t n, T value, T* dst) {
  for (int64_t i = first_index(); i < n; i += index_step()) dst[i] = value;
}

// static_cast, as the CPU backend does (float -> int32 truncates toward zero).
template <class Src, class Dst>
__global__ void convert_kernel(int64_t n, const Src* src, Dst* dst) {
  for (int64_t i = first_index(); i < n; i += index_step()) dst[i] = static_cast<Dst>(src[i]);
}

}  // namespace

void CudaBackend::fill(DType dtype, void* dst, int64_t n, double value) {
  if (n <= 0) return;
  if (value == 0.0 && !std::signbit(value)) {  // +0 is all-zero bytes in every dtype
    UNIPELT_CUDA_CHECK(cudaMemsetAsync(dst, 0, static_cast<size_t>(n) * dtype_size(dtype), 0));
    return;
  }
  dispatch_any(dtype, [&](auto tag) {
    using T = decltype(tag);
    fill_kernel<T><<<blocks_for(n), kBlock>>>(n, static_cast<T>(value), static_cast<T*>(dst));
    UNIPELT_CUDA_CHECK_LAUNCH();
  });
}

void CudaBackend::convert(DType src_dtype, const void* src, DType dst_dtype, void* dst, int64_t n) {
  if (n <= 0) return;
  if (src_dtype == dst_dtype) {
    copy(dst, src, static_cast<size_t>(n) * dtype_size(src_dtype));
    return;
  }
  dispatch_any(src_dtype, [&](auto src_tag) {
    dispatch_any(dst_dtype, [&](auto dst_tag) {
      using Src = decltype(src_tag);
      using Dst = decltype(dst_tag);
      convert_kernel<Src, Dst><<<blocks_for(n), kBlock>>>(n, static_cast<const Src*>(src), static_cast<Dst*>(dst));
      UNIPELT_CUDA_CHECK_LAUNCH();
    });
  });
}

}  // namespace unipelt::cuda

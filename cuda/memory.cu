// Device memory: the caching allocator, host<->device copies, fill and dtype conversion.
//
//   allocate(bytes) -> device pointer        fill(dtype, dst[n], value)
//   deallocate(ptr, bytes)                   convert(src[n] of src_dtype -> dst[n] of dst_dtype)
//   copy / upload / download (bytes)
//
// The allocator. cudaMalloc and cudaFree are slow (cudaFree also synchronises the device), and a
// training step frees and re-allocates the same sizes over and over. So a freed block is not returned
// to the driver: it goes into a cache keyed by its rounded size (its "bucket"), and the next request
// for that bucket takes it back. Sizes are rounded up to a multiple of a quarter of their leading power
// of two (at least 512 B): at most 25% waste, few distinct buckets. If cudaMalloc runs out of memory,
// the cache is released and the call retried once. Plain cudaMalloc only: never managed memory.
//
// Reusing a block at once is safe because all work runs on the one default stream: whatever the new
// owner launches is queued behind every kernel that touched the block before.
#include <cstring>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "cuda/common.cuh"

namespace unipelt::cuda {

namespace {

class CachingAllocator {
 public:
  // The bucket a request of `bytes` lives in.
  static size_t bucket(size_t bytes) {
    size_t top = 1;  // the largest power of two <= bytes
    while (top <= bytes / 2) top *= 2;
    const size_t step = std::max<size_t>(512, top / 4);
    return (std::max<size_t>(bytes, 1) + step - 1) / step * step;
  }

  void* allocate(size_t bytes) {
    const size_t size = bucket(bytes);
    std::lock_guard<std::mutex> lock(mutex_);
    void* ptr = nullptr;
    auto it = cache_.find(size);
    if (it != cache_.end() && !it->second.empty()) {
      ptr = it->second.back();
      it->second.pop_back();
      stats_.bytes_cached -= size;
      ++stats_.cache_hits;
    } else {
      cudaError_t err = cudaMalloc(&ptr, size);
      if (err == cudaErrorMemoryAllocation) {
        (void)cudaGetLastError();  // clear the sticky-until-read error, free the cache, retry once
        release_cached_locked();
        err = cudaMalloc(&ptr, size);
      }
      if (err != cudaSuccess) {
        (void)cudaGetLastError();
        throw std::runtime_error("cuda allocate: cudaMalloc of " + std::to_string(size) + " bytes failed: " +
                                 cudaGetErrorString(err) + " (in use " + std::to_string(stats_.bytes_in_use) +
                                 " bytes, reserved " + std::to_string(stats_.bytes_reserved) + " bytes)");
      }
      ++stats_.cuda_mallocs;
      stats_.bytes_reserved += size;
    }
    stats_.bytes_in_use += bytes;
    stats_.peak_bytes = std::max(stats_.peak_bytes, stats_.bytes_in_use);
    return ptr;
  }

  void free(void* ptr, size_t bytes) {
    if (!ptr) return;
    const size_t size = bucket(bytes);
    std::lock_guard<std::mutex> lock(mutex_);
    cache_[size].push_back(ptr);
    stats_.bytes_cached += size;
    stats_.bytes_in_use -= std::min(bytes, stats_.bytes_in_use);
  }

  void release_cached() {
    std::lock_guard<std::mutex> lock(mutex_);
    release_cached_locked();
  }

  AllocatorStats stats() {
    std::lock_guard<std::mutex> lock(mutex_);
    return stats_;
  }

  void reset_peak() {
    std::lock_guard<std::mutex> lock(mutex_);
    stats_.peak_bytes = stats_.bytes_in_use;
  }

 private:
  void release_cached_locked() {
    for (auto& [size, blocks] : cache_) {
      for (void* ptr : blocks) {
        // Errors are ignored: at process exit the driver may already be gone, and the memory with it.
        if (cudaFree(ptr) != cudaSuccess) (void)cudaGetLastError();
        stats_.bytes_reserved -= size;
        stats_.bytes_cached -= size;
      }
      blocks.clear();
    }
  }

  std::mutex mutex_;
  std::unordered_map<size_t, std::vector<void*>> cache_;  // bucket size -> free blocks of that size
  AllocatorStats stats_;
};

// Never destroyed: tensors held by static objects may be freed after main returns, and a destroyed
// allocator would then be used. The driver reclaims everything at exit.
CachingAllocator& allocator() {
  static CachingAllocator* instance = new CachingAllocator;
  return *instance;
}

}  // namespace

void* device_malloc(size_t bytes) { return allocator().allocate(bytes); }
void device_free(void* ptr, size_t bytes) { allocator().free(ptr, bytes); }
void release_cached() { allocator().release_cached(); }
AllocatorStats allocator_stats() { return allocator().stats(); }
void reset_peak_bytes() { allocator().reset_peak(); }

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
MemoryStats CudaBackend::memory_stats() const {
  const AllocatorStats s = allocator_stats();
  MemoryStats out;
  out.bytes_in_use = s.bytes_in_use;
  out.peak_bytes = s.peak_bytes;
  return out;
}

void CudaBackend::reset_peak() { reset_peak_bytes(); }

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

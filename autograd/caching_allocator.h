// A caching allocator: freed blocks are kept, by size bucket, and handed out again.
//
// A training step frees and re-allocates the same sizes over and over. Handing each block back to the
// system costs every time: on a GPU, cudaMalloc is slow and cudaFree synchronises the device; on the
// CPU, glibc returns large blocks to the kernel, and the next step pays a page fault for every 4 KiB
// page it touches in the fresh memory (5–10 % of a bert-mini training step; docs/benchmarks.md).
//
// So a freed block goes into a cache keyed by its rounded size (its "bucket"), and the next request for
// that bucket takes it back. Sizes are rounded up to a multiple of a quarter of their leading power of
// two (at least 512 B): at most 25 % waste, few distinct buckets. The cache is handed back to the raw
// allocator (1) on a miss while it holds more bytes than are in use: the sizes have moved on, e.g.
// evaluation batches padded to ever longer lengths, and caching every one of them would double the
// process's memory (measured: peak RSS of a short SST-2 run 429 MiB without this rule, 202 MiB with
// it); (2) when the raw allocation fails, before retrying once; (3) on release_cached().
//
// `Raw` supplies the memory (CPU: aligned_alloc in cpu_backend.cpp; CUDA: cudaMalloc in cuda/memory.cu):
//   static void* allocate(size_t bytes);   // nullptr on failure
//   static void release(void* ptr);
//   static std::string last_error();       // why the last allocate failed
//   static const char* name();             // for error messages
// Stream safety on the GPU: every kernel runs on the one default stream, so whatever the new owner of a
// reused block launches is queued behind every kernel that touched it before.
#pragma once

#include <algorithm>
#include <cstddef>
#include <mutex>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

namespace unipelt {

struct AllocatorStats {
  size_t bytes_in_use = 0;     // requested bytes of live allocations
  size_t bytes_reserved = 0;   // bytes held from the raw allocator: live blocks (rounded) + cached blocks
  size_t bytes_cached = 0;     // bytes in freed blocks waiting for reuse
  size_t peak_bytes = 0;       // high-water mark of bytes_in_use (since start or reset_peak)
  size_t raw_allocations = 0;  // calls to the raw allocator so far (a cache hit makes none)
  size_t cache_hits = 0;       // allocations served from the cache
};

template <class Raw>
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
      // A miss while the cache holds more than is in use: the sizes have moved on (evaluation batches
      // padded to ever longer lengths, a new phase of the program). Hand the cache back rather than let
      // it grow with every new size; a training loop that repeats its sizes never gets here.
      if (stats_.bytes_cached > stats_.bytes_in_use) release_cached_locked();
      ptr = Raw::allocate(size);
      if (!ptr) {  // free what the cache holds and try once more
        release_cached_locked();
        ptr = Raw::allocate(size);
      }
      if (!ptr)
        throw std::runtime_error(std::string(Raw::name()) + " allocate: " + std::to_string(size) +
                                 " bytes failed: " + Raw::last_error() + " (in use " +
                                 std::to_string(stats_.bytes_in_use) + " bytes, reserved " +
                                 std::to_string(stats_.bytes_reserved) + " bytes)");
      ++stats_.raw_allocations;
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

  // Returns every cached block to the raw allocator; blocks in use are untouched.
  void release_cached() {
    std::lock_guard<std::mutex> lock(mutex_);
    release_cached_locked();
  }

  AllocatorStats stats() const {
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
        Raw::release(ptr);
        stats_.bytes_reserved -= size;
        stats_.bytes_cached -= size;
      }
      blocks.clear();
    }
  }

  mutable std::mutex mutex_;
  std::unordered_map<size_t, std::vector<void*>> cache_;  // bucket size -> free blocks of that size
  AllocatorStats stats_;
};

}  // namespace unipelt

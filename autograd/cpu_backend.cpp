// CPU backend, part 1: BLAS information, memory, dtype conversion, GEMM (OpenBLAS).
#include "autograd/cpu_backend.h"

#include <cblas.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>

namespace unipelt {

std::string cpu_blas_info() {
  std::string info = openblas_get_config();
  return info + ", core " + openblas_get_corename() + ", " + std::to_string(openblas_get_num_threads()) + " threads";
}

std::string cpu_blas_fallback_hint() {
  const std::string core = openblas_get_corename();
  const bool generic = core == "Prescott" || core == "Core2" || core == "Nehalem";  // SSE-only kernels
  if (!generic || !__builtin_cpu_supports("avx2")) return "";
  const bool avx512 = __builtin_cpu_supports("avx512f");
  return "OpenBLAS did not recognise this CPU and runs its generic " + core + " (SSE) kernels although the CPU has " +
         (avx512 ? "AVX-512" : "AVX2") + "; matrix products run several times faster with OPENBLAS_CORETYPE=" +
         (avx512 ? "SkylakeX" : "Haswell") + " set before the program starts";
}

// ---------------------------------------------------------------------------------------------
// Memory: 64-byte aligned blocks (what AVX-512 loads like) from a caching allocator
// (autograd/caching_allocator.h): a training step's fresh buffers reuse the last step's memory
// instead of faulting in new pages.
// ---------------------------------------------------------------------------------------------

namespace {

struct HostMemory {
  // Bucket sizes are multiples of 512, so they satisfy aligned_alloc's "size is a multiple of the
  // alignment" rule.
  static void* allocate(size_t bytes) { return std::aligned_alloc(64, bytes); }
  static void release(void* ptr) { std::free(ptr); }
  static std::string last_error() { return "out of host memory"; }
  static const char* name() { return "cpu"; }
};

// Never destroyed, like the backend that uses it: tensors held by static objects may be freed after
// main returns.
CachingAllocator<HostMemory>& host_allocator() {
  static auto* instance = new CachingAllocator<HostMemory>;
  return *instance;
}

}  // namespace

void* CpuBackend::allocate(size_t bytes) { return host_allocator().allocate(bytes); }
void CpuBackend::deallocate(void* ptr, size_t bytes) { host_allocator().free(ptr, bytes); }
AllocatorStats CpuBackend::memory_stats() const { return host_allocator().stats(); }
void CpuBackend::reset_peak() { host_allocator().reset_peak(); }
void CpuBackend::release_cached() { host_allocator().release_cached(); }

void CpuBackend::copy(void* dst, const void* src, size_t bytes) { std::memcpy(dst, src, bytes); }
void CpuBackend::upload(void* dst, const void* host_src, size_t bytes) { std::memcpy(dst, host_src, bytes); }
void CpuBackend::download(void* host_dst, const void* src, size_t bytes) { std::memcpy(host_dst, src, bytes); }

void CpuBackend::fill(DType dtype, void* dst, int64_t n, double value) {
  if (dtype == DType::I32) {
    std::fill_n(static_cast<int32_t*>(dst), n, static_cast<int32_t>(value));
    return;
  }
  dispatch_float(dtype, "fill", [&](auto tag) {
    using T = decltype(tag);
    std::fill_n(static_cast<T*>(dst), n, static_cast<T>(value));
  });
}

namespace {
template <class Src, class Dst>
void convert_loop(const void* src, void* dst, int64_t n) {
  const Src* s = static_cast<const Src*>(src);
  Dst* d = static_cast<Dst*>(dst);
  for (int64_t i = 0; i < n; ++i) d[i] = static_cast<Dst>(s[i]);
}
template <class Src>
void convert_from(const void* src, DType dst_dtype, void* dst, int64_t n) {
  switch (dst_dtype) {
    case DType::F32: convert_loop<Src, float>(src, dst, n); break;
    case DType::F64: convert_loop<Src, double>(src, dst, n); break;
    case DType::I32: convert_loop<Src, int32_t>(src, dst, n); break;
  }
}
}  // namespace

void CpuBackend::convert(DType src_dtype, const void* src, DType dst_dtype, void* dst, int64_t n) {
  switch (src_dtype) {
    case DType::F32: convert_from<float>(src, dst_dtype, dst, n); break;
    case DType::F64: convert_from<double>(src, dst_dtype, dst, n); break;
    case DType::I32: convert_from<int32_t>(src, dst_dtype, dst, n); break;
  }
}

// ---------------------------------------------------------------------------------------------
// GEMM: row-major cblas. Attention's batched products loop over cblas calls (OpenBLAS 0.3.21, the
// Debian 12 version, has no batched cblas entry point); each call is large enough to use all cores.
// ---------------------------------------------------------------------------------------------

void CpuBackend::gemm(DType dtype, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha,
                      const void* a, int64_t lda, const void* b, int64_t ldb, double beta, void* c, int64_t ldc) {
  gemm_batched(dtype, trans_a, trans_b, m, n, k, alpha, a, lda, 0, b, ldb, 0, beta, c, ldc, 0, 1);
}

void CpuBackend::gemm_batched(DType dtype, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
                              double alpha, const void* a, int64_t lda, int64_t stride_a, const void* b,
                              int64_t ldb, int64_t stride_b, double beta, void* c, int64_t ldc, int64_t stride_c,
                              int64_t batch) {
  if (m == 0 || n == 0) return;
  const CBLAS_TRANSPOSE ta = trans_a ? CblasTrans : CblasNoTrans;
  const CBLAS_TRANSPOSE tb = trans_b ? CblasTrans : CblasNoTrans;
  for (int64_t i = 0; i < batch; ++i) {
    if (dtype == DType::F32) {
      cblas_sgemm(CblasRowMajor, ta, tb, m, n, k, static_cast<float>(alpha),
                  static_cast<const float*>(a) + i * stride_a, lda, static_cast<const float*>(b) + i * stride_b, ldb,
                  static_cast<float>(beta), static_cast<float*>(c) + i * stride_c, ldc);
    } else if (dtype == DType::F64) {
      cblas_dgemm(CblasRowMajor, ta, tb, m, n, k, alpha, static_cast<const double*>(a) + i * stride_a, lda,
                  static_cast<const double*>(b) + i * stride_b, ldb, beta, static_cast<double*>(c) + i * stride_c,
                  ldc);
    } else {
      throw std::invalid_argument("gemm: needs f32 or f64");
    }
  }
}

}  // namespace unipelt

// CPU backend, part 1: BLAS information, memory, dtype conversion, GEMM (OpenBLAS).
#include "autograd/cpu_backend.h"

#include <cblas.h>
#include <malloc.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <type_traits>

#include "autograd/cpu_parallel.h"

namespace unipelt {

std::string cpu_blas_info() {
  std::string info = openblas_get_config();
  while (!info.empty() && info.back() == ' ') info.pop_back();
  return info + ", core " + openblas_get_corename() + "; " + std::to_string(cpu_threads()) +
         " threads (unipelt's, matrix products split into blocks; OpenBLAS runs each block on one)";
}

std::string blas_core_hint(const std::string& core, bool cpu_has_avx2, bool cpu_has_avx512) {
  const bool sse_only = core == "Prescott" || core == "Core2" || core == "Nehalem";  // generic kernels
  const bool avx2_only = core == "Haswell" || core == "Zen";  // what 0.3.21 picks on AMD Zen 4 and 5
  if (sse_only && cpu_has_avx2)
    return "OpenBLAS did not recognise this CPU and runs its generic " + core + " (SSE) kernels although the CPU has " +
           (cpu_has_avx512 ? "AVX-512" : "AVX2") + "; matrix products run several times faster with OPENBLAS_CORETYPE=" +
           (cpu_has_avx512 ? "SkylakeX" : "Haswell") + " set before the program starts";
  if (avx2_only && cpu_has_avx512)
    return "OpenBLAS runs its " + core + " (AVX2) kernels although the CPU has AVX-512; matrix products run about " +
           "1.7x faster with OPENBLAS_CORETYPE=SkylakeX set before the program starts";
  return "";
}

std::string cpu_blas_fallback_hint() {
  // AVX-512 as OpenBLAS's SkylakeX kernels use it: foundation, double/quad-word, byte/word, vector length.
  const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
                      __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
  return blas_core_hint(openblas_get_corename(), __builtin_cpu_supports("avx2"), avx512);
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

// glibc gives large freed blocks back to the kernel: a block of at least M_MMAP_THRESHOLD bytes is an
// mmap of its own and free unmaps it, and free memory at the top of the heap beyond M_TRIM_THRESHOLD
// is trimmed. The next allocation then gets fresh pages and pays a page fault for every 4 KiB it
// touches. The cache above keeps the blocks a loop reuses, but when the sizes move on (evaluation's
// batches, an epoch's length-bucketed batches) it hands its blocks back to glibc, whose defaults
// (thresholds that grow to at most 32 and 64 MiB) return most of them to the kernel. Both thresholds at
// 1 GiB keep those pages in the process for the next batch. Measured (docs/benchmarks.md, "glibc keeps
// the pages"): one SST-2 epoch of unipelt-apl at 1 thread 6.91 s -> 4.65 s, SST-2 dev evaluation 7-13 %
// faster at 1 thread, the same peak RSS for one workload per process; the fixed 16 x 128 step at 2
// threads measured 5-10 % slower, then 2-4 % in a later A/B (page-aligned blocks did not change it; the
// cause is not known). Resident memory does not shrink after its peak until
// release_cached(), which trims. A setting of the user's (MALLOC_MMAP_THRESHOLD_,
// MALLOC_TRIM_THRESHOLD_, glibc.malloc tunables) is left alone.
void keep_freed_pages_in_process() {
#ifdef __GLIBC__
  const char* tunables = std::getenv("GLIBC_TUNABLES");
  if (std::getenv("MALLOC_MMAP_THRESHOLD_") || std::getenv("MALLOC_TRIM_THRESHOLD_") ||
      (tunables && std::strstr(tunables, "glibc.malloc.")))
    return;
  mallopt(M_MMAP_THRESHOLD, 1 << 30);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
#endif
}

// Never destroyed, like the backend that uses it: tensors held by static objects may be freed after
// main returns.
CachingAllocator<HostMemory>& host_allocator() {
  static auto* instance = [] {
    keep_freed_pages_in_process();
    return new CachingAllocator<HostMemory>;
  }();
  return *instance;
}

}  // namespace

void* CpuBackend::allocate(size_t bytes) { return host_allocator().allocate(bytes); }
void CpuBackend::deallocate(void* ptr, size_t bytes) { host_allocator().free(ptr, bytes); }
AllocatorStats CpuBackend::memory_stats() const { return host_allocator().stats(); }
void CpuBackend::reset_peak() { host_allocator().reset_peak(); }
void CpuBackend::release_cached() {
  host_allocator().release_cached();
#ifdef __GLIBC__
  malloc_trim(0);  // and from glibc to the kernel (see keep_freed_pages_in_process)
#endif
}

void CpuBackend::copy(void* dst, const void* src, size_t bytes) { std::memcpy(dst, src, bytes); }
void CpuBackend::upload(void* dst, const void* host_src, size_t bytes) { std::memcpy(dst, host_src, bytes); }
void CpuBackend::download(void* host_dst, const void* src, size_t bytes) { std::memcpy(host_dst, src, bytes); }

void CpuBackend::fill(DType dtype, void* dst, int64_t n, double value) {
  if (dtype == DType::I32) {
    parallel_fill(static_cast<int32_t*>(dst), n, static_cast<int32_t>(value));
    return;
  }
  dispatch_float(dtype, "fill", [&](auto tag) {
    using T = decltype(tag);
    parallel_fill(static_cast<T*>(dst), n, static_cast<T>(value));
  });
}

namespace {
template <class Src, class Dst>
void convert_loop(const void* src, void* dst, int64_t n) {
  const Src* s = static_cast<const Src*>(src);
  Dst* d = static_cast<Dst*>(dst);
  parallel_for(n, kElementGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) d[i] = static_cast<Dst>(s[i]);
  });
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
// GEMM: row-major cblas, OpenBLAS at one thread per call (parallel.cpp says why), split into blocks that
// the backend's threads run.
//
// A batched product (attention) hands out whole matrices. A single product is cut along the longer of
// M (rows of C) and N (columns of C) into 2^j equal blocks of at least kGemmMinBlock: each block is one
// cblas call on a slice of A or B. The cut depends only on the shape, so every element of C comes from
// the same OpenBLAS call whatever the thread count (OpenBLAS may pick other kernels for other sizes:
// cutting per thread count would change the bits). The price is a repacked operand per block: with
// blocks of >= 256 rows it costs ~2 % of the product's instructions (measured with callgrind).
// When neither M nor N is long enough to cut, a long K is cut instead (split_k_gemm), and a product with
// a single row or column of C is one matrix-vector call (gemv_gemm).
// ---------------------------------------------------------------------------------------------

namespace {

std::vector<GemmCall>* g_gemm_log = nullptr;

constexpr int64_t kGemmMinBlock = 256;
constexpr int64_t kGemmMaxBlocks = 16;
constexpr double kGemmMinBlockMacs = 1 << 20;  // below ~1M multiply-adds a block is not worth a thread

// The length of the cut dimension's blocks, for a product whose cut dimension is `dim` long.
int64_t gemm_block_length(int64_t dim, int64_t other, int64_t k) {
  int64_t blocks = 1;
  while (blocks * 2 <= kGemmMaxBlocks && dim / (blocks * 2) >= kGemmMinBlock &&
         static_cast<double>(dim / (blocks * 2)) * static_cast<double>(other) * static_cast<double>(k) >=
             kGemmMinBlockMacs)
    blocks *= 2;
  return (dim + blocks - 1) / blocks;
}

template <class T>
void cblas_gemm(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int64_t m, int64_t n, int64_t k, T alpha, const T* a,
                int64_t lda, const T* b, int64_t ldb, T beta, T* c, int64_t ldc) {
  if constexpr (std::is_same_v<T, float>)
    cblas_sgemm(CblasRowMajor, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  else
    cblas_dgemm(CblasRowMajor, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

template <class T>
void cblas_gemv(CBLAS_TRANSPOSE t, int64_t rows, int64_t cols, T alpha, const T* a, int64_t lda, const T* x,
                int64_t incx, T beta, T* y, int64_t incy) {
  if constexpr (std::is_same_v<T, float>)
    cblas_sgemv(CblasRowMajor, t, rows, cols, alpha, a, lda, x, incx, beta, y, incy);
  else
    cblas_dgemv(CblasRowMajor, t, rows, cols, alpha, a, lda, x, incx, beta, y, incy);
}

// A product with one row or one column of C (a gate's w·x over every token, its weight gradient) is a
// matrix-vector product. sgemm would pack the whole matrix operand first: 2048 x 256 x 1 took 88 us
// as sgemm and 31 us as sgemv. One call, on the calling thread: the bits do not depend on the threads.
template <class T>
void gemv_gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a, int64_t lda,
               const T* b, int64_t ldb, T beta, T* c, int64_t ldc) {
  if (beta == T(0)) {  // C may hold anything, NaN included: gemv would scale it by 0
    if (n == 1) {
      for (int64_t i = 0; i < m; ++i) c[i * ldc] = T(0);
    } else {
      std::fill(c, c + n, T(0));
    }
  }
  if (n == 1)  // c[i·ldc] = alpha Σ_p op(A)[i,p] op(B)[p,0] + beta c[i·ldc]
    cblas_gemv<T>(trans_a ? CblasTrans : CblasNoTrans, trans_a ? k : m, trans_a ? m : k, alpha, a, lda, b,
                  trans_b ? 1 : ldb, beta, c, ldc);
  else  // m == 1: c[j] = alpha Σ_p op(A)[0,p] op(B)[p,j] + beta c[j], i.e. op(B)ᵀ times a vector
    cblas_gemv<T>(trans_b ? CblasNoTrans : CblasTrans, trans_b ? n : k, trans_b ? k : n, alpha, b, ldb, a,
                  trans_a ? lda : 1, beta, c, 1);
}

// A product whose M and N are both too short to cut (a LoRA or adapter weight gradient: 8 x 256 summed
// over k = B·T = 2048 tokens) is cut along K instead: chunk c computes its partial product P_c (alpha
// included, beta 0) into scratch, and C = beta·C + (((P_0 + P_1) + P_2) + ...), summed in chunk order
// for every element. The chunks depend only on the shape, so the bits do not depend on the threads.
template <class T>
void split_k_gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, int64_t chunk, T alpha, const T* a,
                  int64_t lda, const T* b, int64_t ldb, T beta, T* c, int64_t ldc) {
  const CBLAS_TRANSPOSE ta = trans_a ? CblasTrans : CblasNoTrans, tb = trans_b ? CblasTrans : CblasNoTrans;
  const int64_t chunks = block_count(k, chunk), mn = m * n;
  std::unique_ptr<T[]> partial(new T[static_cast<size_t>(chunks * mn)]);  // [chunks, m, n], every chunk written
  parallel_for(k, chunk, [&](int64_t p0, int64_t p1) {
    // op(A)'s columns p0.. and op(B)'s rows p0..
    const T* a0 = a + (trans_a ? p0 * lda : p0);
    const T* b0 = b + (trans_b ? p0 : p0 * ldb);
    cblas_gemm<T>(ta, tb, m, n, p1 - p0, alpha, a0, lda, b0, ldb, T(0), partial.get() + (p0 / chunk) * mn, n);
  });
  const int64_t row_grain = std::max<int64_t>(1, (1 << 14) / std::max<int64_t>(1, n * chunks));
  parallel_for(m, row_grain, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i)
      for (int64_t j = 0; j < n; ++j) {
        T sum = partial[static_cast<size_t>(i * n + j)];
        for (int64_t q = 1; q < chunks; ++q) sum += partial[static_cast<size_t>(q * mn + i * n + j)];
        T& out = c[i * ldc + j];
        out = beta == T(0) ? sum : beta * out + sum;
      }
  });
}

// One product, cut into blocks along the longer of M and N (see above; one block when it is too
// short). op(A) row i starts at a + i·lda (no transpose) or a + i (transpose); op(B) column j at b + j
// (no transpose) or b + j·ldb (transpose).
template <class T>
void blocked_gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a, int64_t lda,
                  const T* b, int64_t ldb, T beta, T* c, int64_t ldc) {
  const CBLAS_TRANSPOSE ta = trans_a ? CblasTrans : CblasNoTrans, tb = trans_b ? CblasTrans : CblasNoTrans;
  const int64_t block = gemm_block_length(std::max(m, n), std::min(m, n), k);
  if (m >= n) {
    parallel_for(m, block, [&](int64_t i0, int64_t i1) {
      cblas_gemm<T>(ta, tb, i1 - i0, n, k, alpha, a + (trans_a ? i0 : i0 * lda), lda, b, ldb, beta, c + i0 * ldc,
                    ldc);
    });
  } else {
    parallel_for(n, block, [&](int64_t j0, int64_t j1) {
      cblas_gemm<T>(ta, tb, m, j1 - j0, k, alpha, a, lda, b + (trans_b ? j0 * ldb : j0), ldb, beta, c + j0, ldc);
    });
  }
}

}  // namespace

CpuGemmPath cpu_gemm_path(int64_t m, int64_t n, int64_t k, int64_t batch) {
  if (batch > 1) return CpuGemmPath::Batched;
  if ((m == 1 || n == 1) && k > 1) return CpuGemmPath::Gemv;
  const int64_t longer = std::max(m, n);
  if (gemm_block_length(longer, std::min(m, n), k) < longer) return m >= n ? CpuGemmPath::CutM : CpuGemmPath::CutN;
  if (gemm_block_length(k, m, n) < k) return CpuGemmPath::SplitK;
  return CpuGemmPath::OneBlock;
}

void CpuBackend::log_gemms(std::vector<GemmCall>* log) { g_gemm_log = log; }

void CpuBackend::gemm(DType dtype, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha,
                      const void* a, int64_t lda, const void* b, int64_t ldb, double beta, void* c, int64_t ldc) {
  gemm_batched(dtype, trans_a, trans_b, m, n, k, alpha, a, lda, 0, b, ldb, 0, beta, c, ldc, 0, 1);
}

void CpuBackend::gemm_batched(DType dtype, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
                              double alpha, const void* a, int64_t lda, int64_t stride_a, const void* b,
                              int64_t ldb, int64_t stride_b, double beta, void* c, int64_t ldc, int64_t stride_c,
                              int64_t batch) {
  if (m == 0 || n == 0 || batch == 0) return;
  if (dtype != DType::F32 && dtype != DType::F64) throw std::invalid_argument("gemm: needs f32 or f64");
  if (g_gemm_log)
    g_gemm_log->push_back({dtype, trans_a, trans_b, m, n, k, lda, stride_a, ldb, stride_b, ldc, stride_c, batch, beta});
  dispatch_float(dtype, "gemm", [&](auto tag) {
    using T = decltype(tag);
    const T* pa = static_cast<const T*>(a);
    const T* pb = static_cast<const T*>(b);
    T* pc = static_cast<T*>(c);
    switch (cpu_gemm_path(m, n, k, batch)) {
      case CpuGemmPath::Gemv:
        return gemv_gemm<T>(trans_a, trans_b, m, n, k, T(alpha), pa, lda, pb, ldb, T(beta), pc, ldc);
      case CpuGemmPath::SplitK:
        return split_k_gemm<T>(trans_a, trans_b, m, n, k, gemm_block_length(k, m, n), T(alpha), pa, lda, pb, ldb,
                               T(beta), pc, ldc);
      case CpuGemmPath::CutM:
      case CpuGemmPath::CutN:
      case CpuGemmPath::OneBlock:
        return blocked_gemm<T>(trans_a, trans_b, m, n, k, T(alpha), pa, lda, pb, ldb, T(beta), pc, ldc);
      case CpuGemmPath::Batched:
        break;
    }
    const CBLAS_TRANSPOSE ta = trans_a ? CblasTrans : CblasNoTrans, tb = trans_b ? CblasTrans : CblasNoTrans;
    const double macs = static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k);
    const int64_t grain = std::max<int64_t>(1, static_cast<int64_t>(kGemmMinBlockMacs / std::max(macs, 1.0)));
    parallel_for(batch, grain, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i)
        cblas_gemm<T>(ta, tb, m, n, k, T(alpha), pa + i * stride_a, lda, pb + i * stride_b, ldb, T(beta),
                      pc + i * stride_c, ldc);
    });
  });
}

}  // namespace unipelt

// Matrix products through cuBLAS, with row-major semantics.
//
//   gemm:          C[m×n] = alpha · op(A)[m×k] · op(B)[k×n] + beta · C           (leading dims lda, ldb, ldc)
//   gemm_batched:  the same for `batch` products, operand i at base + i·stride (elements)
//
// cuBLAS is column-major. A row-major matrix X with leading dimension ld, read as column-major with the
// same ld, is Xᵀ. So instead of C = op(A)·op(B) we ask cuBLAS for
//     Cᵀ = op(B)ᵀ · op(A)ᵀ
// by passing B first and A second, with the same transpose flags, and n and m swapped:
//     cublas<S|D>gemm(handle, op_b, op_a, n, m, k, alpha, B, ldb, A, lda, beta, C, ldc)
// No data moves; the leading dimensions stay exactly as the caller gave them.
//
// float32 uses cublasSgemm (cuBLAS's default math mode: true fp32, no TF32), float64 cublasDgemm.
#include <climits>
#include <mutex>

#include "cuda/common.cuh"

namespace unipelt::cuda {

namespace {

// One handle for the process, bound to the default stream. Never destroyed (see allocator()).
cublasHandle_t cublas() {
  static cublasHandle_t handle = [] {
    cublasHandle_t h = nullptr;
    UNIPELT_CUBLAS_CHECK(cublasCreate(&h));
    UNIPELT_CUBLAS_CHECK(cublasSetStream(h, 0));
    UNIPELT_CUBLAS_CHECK(cublasSetPointerMode(h, CUBLAS_POINTER_MODE_HOST));  // alpha, beta on the host
    return h;
  }();
  return handle;
}

int to_int(int64_t v, const char* what) {
  if (v < 0 || v > INT_MAX)
    throw std::invalid_argument(std::string("gemm: ") + what + " = " + std::to_string(v) +
                                " is outside cuBLAS's int range");
  return static_cast<int>(v);
}

cublasOperation_t op(bool transpose) { return transpose ? CUBLAS_OP_T : CUBLAS_OP_N; }

// k == 0: the product is empty, so C = beta·C (beta == 0 writes zeros, even over NaN).
template <class T>
__global__ void scale_matrix_kernel(int64_t batch, int64_t m, int64_t n, T beta, T* c, int64_t ldc,
                                    int64_t stride_c) {
  for (int64_t i = first_index(); i < batch * m * n; i += index_step()) {
    const int64_t bi = i / (m * n), row = i / n % m, col = i % n;
    T& x = c[bi * stride_c + row * ldc + col];
    x = beta == T(0) ? T(0) : beta * x;
  }
}

}  // namespace

void CudaBackend::gemm(DType dtype, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha,
                       const void* a, int64_t lda, const void* b, int64_t ldb, double beta, void* c, int64_t ldc) {
  gemm_batched(dtype, trans_a, trans_b, m, n, k, alpha, a, lda, 0, b, ldb, 0, beta, c, ldc, 0, 1);
}

void CudaBackend::gemm_batched(DType dtype, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
                               double alpha, const void* a, int64_t lda, int64_t stride_a, const void* b,
                               int64_t ldb, int64_t stride_b, double beta, void* c, int64_t ldc, int64_t stride_c,
                               int64_t batch) {
  if (m == 0 || n == 0 || batch == 0) return;
  dispatch_float(dtype, "gemm", [&](auto tag) {
    using T = decltype(tag);
    if (k == 0) {
      scale_matrix_kernel<T><<<blocks_for(batch * m * n), kBlock>>>(batch, m, n, static_cast<T>(beta),
                                                                      static_cast<T*>(c), ldc, stride_c);
      UNIPELT_CUDA_CHECK_LAUNCH();
      return;
    }
    const int im = to_int(m, "m"), in = to_int(n, "n"), ik = to_int(k, "k");
    const int ilda = to_int(lda, "lda"), ildb = to_int(ldb, "ldb"), ildc = to_int(ldc, "ldc");
    const int ibatch = to_int(batch, "batch");
    const T al = static_cast<T>(alpha), be = static_cast<T>(beta);
    const T* pa = static_cast<const T*>(a);
    const T* pb = static_cast<const T*>(b);
    T* pc = static_cast<T*>(c);
    if constexpr (std::is_same_v<T, float>) {
      if (batch == 1)
        UNIPELT_CUBLAS_CHECK(cublasSgemm(cublas(), op(trans_b), op(trans_a), in, im, ik, &al, pb, ildb, pa, ilda,
                                         &be, pc, ildc));
      else
        UNIPELT_CUBLAS_CHECK(cublasSgemmStridedBatched(cublas(), op(trans_b), op(trans_a), in, im, ik, &al, pb,
                                                       ildb, stride_b, pa, ilda, stride_a, &be, pc, ildc, stride_c,
                                                       ibatch));
    } else {
      if (batch == 1)
        UNIPELT_CUBLAS_CHECK(cublasDgemm(cublas(), op(trans_b), op(trans_a), in, im, ik, &al, pb, ildb, pa, ilda,
                                         &be, pc, ildc));
      else
        UNIPELT_CUBLAS_CHECK(cublasDgemmStridedBatched(cublas(), op(trans_b), op(trans_a), in, im, ik, &al, pb,
                                                       ildb, stride_b, pa, ilda, stride_a, &be, pc, ildc, stride_c,
                                                       ibatch));
    }
  });
}

}  // namespace unipelt::cuda

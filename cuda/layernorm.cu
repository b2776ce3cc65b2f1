// Layer norm over the last axis.
//
//   forward   x[rows, cols], gamma[cols], beta[cols] -> y[rows, cols], mean[rows], rstd[rows]
//             μ = mean(x_r), var = mean((x_r - μ)²) (biased), rstd = 1/sqrt(var + eps),
//             y = (x - μ) · rstd · γ + β
//   backward  with x̂ = (x - μ)·rstd and g = dy ⊙ γ (each of dx, dγ, dβ may be null):
//             dx[rows, cols] = rstd · (g - mean_c(g) - x̂ · mean_c(g ⊙ x̂))
//             dγ[cols] = Σ_rows dy ⊙ x̂,   dβ[cols] = Σ_rows dy
//
// Rows are independent: one block per row (two-pass mean and variance, as the CPU does). dγ and dβ
// are column sums over all rows: the rows are cut into chunks (32 rows or more), a grid row per chunk
// writes partial sums, and a second kernel adds the chunks in a fixed order (no atomics).
#include "cuda/common.cuh"

namespace unipelt::cuda {

namespace {

template <class T>
__global__ void layernorm_forward_kernel(int64_t rows, int64_t cols, T eps, const T* x, const T* gamma,
                                         const T* beta, T* y, T* mean, T* rstd) {
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* xr = x + r * cols;
    T sum = 0;
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) sum += xr[c];
    const T mu = block_sum(sum) / T(cols);
    T sq = 0;
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) sq += (xr[c] - mu) * (xr[c] - mu);
    const T var = block_sum(sq) / T(cols);
    const T rs = T(1) / math::sqrt(var + eps);
    T* yr = y + r * cols;
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) yr[c] = (xr[c] - mu) * rs * gamma[c] + beta[c];
    if (threadIdx.x == 0) {
      mean[r] = mu;
      rstd[r] = rs;
    }
  }
}

template <class T>
__global__ void layernorm_dx_kernel(int64_t rows, int64_t cols, const T* x, const T* gamma, const T* mean,
                                    const T* rstd, const T* dy, T* dx) {
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* xr = x + r * cols;
    const T* gr = dy + r * cols;
    const T mu = mean[r], rs = rstd[r];
    T sum_g = 0, sum_gx = 0;
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
      const T g = gr[c] * gamma[c];
      sum_g += g;
      sum_gx += g * (xr[c] - mu) * rs;
    }
    const T mean_g = block_sum(sum_g) / T(cols);
    const T mean_gx = block_sum(sum_gx) / T(cols);
    T* dr = dx + r * cols;
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
      const T xhat = (xr[c] - mu) * rs;
      dr[c] = rs * (gr[c] * gamma[c] - mean_g - xhat * mean_gx);
    }
  }
}

// Chunk blockIdx.y: partial[chunk, c] = Σ over its rows of dy·x̂ (for dγ) and of dy (for dβ).
template <class T>
__global__ void layernorm_param_partial_kernel(int64_t rows, int64_t cols, int64_t rows_per_chunk, const T* x,
                                               const T* mean, const T* rstd, const T* dy, T* partial_gamma,
                                               T* partial_beta) {
  const int64_t r_begin = blockIdx.y * rows_per_chunk;
  const int64_t r_end = min(r_begin + rows_per_chunk, rows);
  for (int64_t c = first_index(); c < cols; c += index_step()) {
    T acc_gamma = 0, acc_beta = 0;
    for (int64_t r = r_begin; r < r_end; ++r) {
      const T g = dy[r * cols + c];
      acc_gamma += g * (x[r * cols + c] - mean[r]) * rstd[r];
      acc_beta += g;
    }
    if (partial_gamma) partial_gamma[blockIdx.y * cols + c] = acc_gamma;
    if (partial_beta) partial_beta[blockIdx.y * cols + c] = acc_beta;
  }
}

// out[c] = Σ_chunk partial[chunk, c]; for dγ and dβ in one launch (either may be null).
template <class T>
__global__ void sum_chunks_kernel(int64_t chunks, int64_t cols, const T* partial_gamma, const T* partial_beta,
                                  T* dgamma, T* dbeta) {
  for (int64_t c = first_index(); c < cols; c += index_step()) {
    T acc_gamma = 0, acc_beta = 0;
    for (int64_t k = 0; k < chunks; ++k) {
      if (dgamma) acc_gamma += partial_gamma[k * cols + c];
      if (dbeta) acc_beta += partial_beta[k * cols + c];
    }
    if (dgamma) dgamma[c] = acc_gamma;
    if (dbeta) dbeta[c] = acc_beta;
  }
}

}  // namespace

void CudaBackend::layernorm_forward(DType dtype, int64_t rows, int64_t cols, double eps, const void* x,
                                    const void* gamma, const void* beta, void* y, void* mean, void* rstd) {
  if (rows <= 0 || cols <= 0) return;
  dispatch_float(dtype, "layernorm_forward", [&](auto tag) {
    using T = decltype(tag);
    layernorm_forward_kernel<T><<<blocks_for_rows(rows), threads_for_cols(cols)>>>(
        rows, cols, static_cast<T>(eps), static_cast<const T*>(x), static_cast<const T*>(gamma),
        static_cast<const T*>(beta), static_cast<T*>(y), static_cast<T*>(mean), static_cast<T*>(rstd));
    UNIPELT_CUDA_CHECK_LAUNCH();
  });
}

void CudaBackend::layernorm_backward(DType dtype, int64_t rows, int64_t cols, const void* x, const void* gamma,
                                     const void* mean, const void* rstd, const void* dy, void* dx, void* dgamma,
                                     void* dbeta) {
  if (cols <= 0) return;
  if (rows <= 0) {  // no rows: the parameter gradients are empty sums
    if (dgamma) fill(dtype, dgamma, cols, 0.0);
    if (dbeta) fill(dtype, dbeta, cols, 0.0);
    return;
  }
  dispatch_float(dtype, "layernorm_backward", [&](auto tag) {
    using T = decltype(tag);
    const T* px = static_cast<const T*>(x);
    const T* pmean = static_cast<const T*>(mean);
    const T* prstd = static_cast<const T*>(rstd);
    const T* pdy = static_cast<const T*>(dy);
    if (dx) {
      layernorm_dx_kernel<T><<<blocks_for_rows(rows), threads_for_cols(cols)>>>(
          rows, cols, px, static_cast<const T*>(gamma), pmean, prstd, pdy, static_cast<T*>(dx));
      UNIPELT_CUDA_CHECK_LAUNCH();
    }
    if (!dgamma && !dbeta) return;
    constexpr int64_t kMinRowsPerChunk = 32, kMaxChunks = 65535;  // gridDim.y limit
    const int64_t rows_per_chunk = std::max(kMinRowsPerChunk, (rows + kMaxChunks - 1) / kMaxChunks);
    const int64_t chunks = (rows + rows_per_chunk - 1) / rows_per_chunk;
    const size_t partial_bytes = static_cast<size_t>(chunks * cols) * sizeof(T);
    Scratch partial_gamma(dgamma ? partial_bytes : 0), partial_beta(dbeta ? partial_bytes : 0);
    const unsigned col_blocks = blocks_for(cols);
    layernorm_param_partial_kernel<T><<<dim3(col_blocks, static_cast<unsigned>(chunks)), kBlock>>>(
        rows, cols, rows_per_chunk, px, pmean, prstd, pdy, partial_gamma.as<T>(), partial_beta.as<T>());
    UNIPELT_CUDA_CHECK_LAUNCH();
    sum_chunks_kernel<T><<<col_blocks, kBlock>>>(chunks, cols, partial_gamma.as<T>(), partial_beta.as<T>(),
                                                 static_cast<T*>(dgamma), static_cast<T*>(dbeta));
    UNIPELT_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace unipelt::cuda

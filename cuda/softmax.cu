// Row-wise normalisations over the last axis, one thread block per row.
//
//   softmax_forward   y[rows, cols] = softmax(x[r, :] + mask[r / rows_per_mask, :])   (mask nullable)
//   softmax_backward  dx[rows, cols] = y ⊙ (dy - Σ_c dy·y)                           (per row)
//   normalize_rows    out[rows, cols] = in[r, :] / Σ_c in[r, :]; a row summing to 0 gives zeros
//
// Each block strides over its row with blockDim.x threads (32..256, by row length), then combines
// the per-thread results with block_max / block_sum. A thread rereads only the elements it wrote
// itself, so no synchronisation is needed between the passes beyond the reductions'.
#include "cuda/common.cuh"

namespace unipelt::cuda {

namespace {

template <class T>
__global__ void softmax_forward_kernel(int64_t rows, int64_t cols, const T* x, const T* mask, int64_t rows_per_mask,
                                       T* y) {
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* xr = x + r * cols;
    const T* mr = mask ? mask + (r / rows_per_mask) * cols : nullptr;
    T* yr = y + r * cols;
    T mx = math::neg_infinity<T>();
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
      const T v = mr ? xr[c] + mr[c] : xr[c];
      yr[c] = v;
      mx = v > mx ? v : mx;
    }
    mx = block_max(mx);
    T total = 0;
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) total += (yr[c] = math::exp(yr[c] - mx));
    const T inv = T(1) / block_sum(total);
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) yr[c] *= inv;
  }
}

template <class T>
__global__ void softmax_backward_kernel(int64_t rows, int64_t cols, const T* y, const T* dy, T* dx) {
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* yr = y + r * cols;
    const T* gr = dy + r * cols;
    T* dr = dx + r * cols;
    T inner = 0;
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) inner += yr[c] * gr[c];
    inner = block_sum(inner);
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) dr[c] = yr[c] * (gr[c] - inner);
  }
}

template <class T>
__global__ void normalize_rows_kernel(int64_t rows, int64_t cols, const T* in, T* out) {
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* ir = in + r * cols;
    T* orow = out + r * cols;
    T total = 0;
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) total += ir[c];
    total = block_sum(total);
    const T inv = total != T(0) ? T(1) / total : T(0);
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) orow[c] = ir[c] * inv;
  }
}

}  // namespace

void CudaBackend::softmax_forward(DType dtype, int64_t rows, int64_t cols, const void* x, const void* mask,
                                  int64_t rows_per_mask, void* y) {
  if (rows <= 0 || cols <= 0) return;
  if (mask && rows_per_mask <= 0) throw std::invalid_argument("softmax_forward: rows_per_mask must be positive");
  dispatch_float(dtype, "softmax_forward", [&](auto tag) {
    using T = decltype(tag);
    softmax_forward_kernel<T><<<blocks_for_rows(rows), threads_for_cols(cols)>>>(
        rows, cols, static_cast<const T*>(x), static_cast<const T*>(mask), rows_per_mask, static_cast<T*>(y));
    UNIPELT_CUDA_CHECK_LAUNCH();
  });
}

void CudaBackend::softmax_backward(DType dtype, int64_t rows, int64_t cols, const void* y, const void* dy, void* dx) {
  if (rows <= 0 || cols <= 0) return;
  dispatch_float(dtype, "softmax_backward", [&](auto tag) {
    using T = decltype(tag);
    softmax_backward_kernel<T><<<blocks_for_rows(rows), threads_for_cols(cols)>>>(
        rows, cols, static_cast<const T*>(y), static_cast<const T*>(dy), static_cast<T*>(dx));
    UNIPELT_CUDA_CHECK_LAUNCH();
  });
}

void CudaBackend::normalize_rows(DType dtype, int64_t rows, int64_t cols, const void* in, void* out) {
  if (rows <= 0 || cols <= 0) return;
  dispatch_float(dtype, "normalize_rows", [&](auto tag) {
    using T = decltype(tag);
    normalize_rows_kernel<T><<<blocks_for_rows(rows), threads_for_cols(cols)>>>(
        rows, cols, static_cast<const T*>(in), static_cast<T*>(out));
    UNIPELT_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace unipelt::cuda

// Data movement (any dtype, f32 / f64 / i32).
//
//   permute  out = in permuted: in[in_shape] (4-D), out.shape[d] = in_shape[perm[d]]
//   copy_2d  dst[r·dst_ld + c] = src[r·src_ld + c] for r < rows, c < cols (concat and slice)
//   copy_strided  dst[i·dst_stride] = src[i·src_stride] over a 4-D index space (split_heads' backward)
//
// permute: one thread per output element, reading in at the permuted strides (reads are strided,
// writes coalesced). copy_2d is a pitched copy: cudaMemcpyAsync when both sides are contiguous,
// cudaMemcpy2DAsync otherwise, and a plain kernel for pitches beyond what the copy engine takes (2³¹ B).
#include "cuda/common.cuh"

namespace unipelt::cuda {

namespace {

struct PermutePlan {
  int64_t out_shape[4];
  int64_t in_stride[4];  // stride in `in` of output dim d: in_stride_of(perm[d])
};

template <class T>
__global__ void permute_kernel(PermutePlan p, int64_t n, const T* in, T* out) {
  for (int64_t i = first_index(); i < n; i += index_step()) {
    int64_t rest = i, offset = 0;
    for (int d = 3; d >= 0; --d) {
      offset += (rest % p.out_shape[d]) * p.in_stride[d];
      rest /= p.out_shape[d];
    }
    out[i] = in[offset];
  }
}

template <class T>
__global__ void copy_2d_kernel(int64_t rows, int64_t cols, const T* src, int64_t src_ld, T* dst, int64_t dst_ld) {
  for (int64_t i = first_index(); i < rows * cols; i += index_step())
    dst[(i / cols) * dst_ld + i % cols] = src[(i / cols) * src_ld + i % cols];
}

struct Strides4 {
  int64_t shape[4], src[4], dst[4];
};

template <class T>
__global__ void copy_strided_kernel(Strides4 p, int64_t n, const T* src, T* dst) {
  for (int64_t i = first_index(); i < n; i += index_step()) {
    int64_t rest = i, from = 0, to = 0;
    for (int d = 3; d >= 0; --d) {
      const int64_t index = rest % p.shape[d];
      rest /= p.shape[d];
      from += index * p.src[d];
      to += index * p.dst[d];
    }
    dst[to] = src[from];
  }
}

}  // namespace

void CudaBackend::copy_strided(DType dtype, const int64_t shape[4], const void* src, const int64_t src_stride[4],
                               void* dst, const int64_t dst_stride[4]) {
  const int64_t n = shape[0] * shape[1] * shape[2] * shape[3];
  if (n <= 0) return;
  Strides4 plan{};
  for (int d = 0; d < 4; ++d) {
    plan.shape[d] = shape[d];
    plan.src[d] = src_stride[d];
    plan.dst[d] = dst_stride[d];
  }
  dispatch_any(dtype, [&](auto tag) {
    using T = decltype(tag);
    copy_strided_kernel<T><<<blocks_for(n), kBlock>>>(plan, n, static_cast<const T*>(src), static_cast<T*>(dst));
    UNIPELT_CUDA_CHECK_LAUNCH();
  });
}

void CudaBackend::permute(DType dtype, const int64_t in_shape[4], const int perm[4], const void* in, void* out) {
  const int64_t n = in_shape[0] * in_shape[1] * in_shape[2] * in_shape[3];
  if (n <= 0) return;
  const int64_t in_stride[4] = {in_shape[1] * in_shape[2] * in_shape[3], in_shape[2] * in_shape[3], in_shape[3], 1};
  PermutePlan plan{};
  for (int d = 0; d < 4; ++d) {
    if (perm[d] < 0 || perm[d] > 3) throw std::invalid_argument("permute: perm entries must be in 0..3");
    plan.out_shape[d] = in_shape[perm[d]];
    plan.in_stride[d] = in_stride[perm[d]];
  }
  dispatch_any(dtype, [&](auto tag) {
    using T = decltype(tag);
    permute_kernel<T><<<blocks_for(n), kBlock>>>(plan, n, static_cast<const T*>(in), static_cast<T*>(out));
    UNIPELT_CUDA_CHECK_LAUNCH();
  });
}

void CudaBackend::copy_2d(DType dtype, int64_t rows, int64_t cols, const void* src, int64_t src_ld, void* dst,
                          int64_t dst_ld) {
  if (rows <= 0 || cols <= 0) return;
  const size_t es = dtype_size(dtype);
  if (rows == 1 || (src_ld == cols && dst_ld == cols)) {
    UNIPELT_CUDA_CHECK(cudaMemcpyAsync(dst, src, static_cast<size_t>(rows * cols) * es, cudaMemcpyDeviceToDevice, 0));
    return;
  }
  constexpr size_t kMaxPitch = (size_t(1) << 31) - 1;
  if (static_cast<size_t>(std::max(src_ld, dst_ld)) * es > kMaxPitch) {
    dispatch_any(dtype, [&](auto tag) {
      using T = decltype(tag);
      copy_2d_kernel<T><<<blocks_for(rows * cols), kBlock>>>(rows, cols, static_cast<const T*>(src), src_ld,
                                                             static_cast<T*>(dst), dst_ld);
      UNIPELT_CUDA_CHECK_LAUNCH();
    });
    return;
  }
  UNIPELT_CUDA_CHECK(cudaMemcpy2DAsync(dst, static_cast<size_t>(dst_ld) * es, src, static_cast<size_t>(src_ld) * es,
                                       static_cast<size_t>(cols) * es, static_cast<size_t>(rows),
                                       cudaMemcpyDeviceToDevice, 0));
}

}  // namespace unipelt::cuda

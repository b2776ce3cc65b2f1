// Elementwise kernels and broadcasting.
//
//   binary            out[shape] = a[bcast] (+|-|*) b[bcast]       shape, strides: Broadcast4 (4-D, padded)
//   expand            out[shape] = in read at in_stride (0 on broadcast dims)
//   reduce_broadcast  out[out_numel] = Σ in[shape] over the dims where out_stride is 0 (adjoint of expand)
//   axpy              y[n] += alpha · x[n]
//   scale             y[n] = alpha · x[n]
//   dot               Σ x[n] · y[n], accumulated in double, returned to the host
//
// One thread per output element (grid-stride); a 4-D index is recovered from the flat index by
// division, innermost dimension last.
#include "cuda/common.cuh"

namespace unipelt::cuda {

namespace {

// Offset of flat (row-major) index i of `shape` in an array with `stride`.
__device__ inline int64_t offset_4d(int64_t i, const int64_t shape[4], const int64_t stride[4]) {
  int64_t offset = 0;
  for (int d = 3; d >= 0; --d) {
    offset += (i % shape[d]) * stride[d];
    i /= shape[d];
  }
  return offset;
}

template <class T>
__global__ void binary_kernel(Binary op, Broadcast4 bc, int64_t n, const T* a, const T* b, T* out) {
  for (int64_t i = first_index(); i < n; i += index_step()) {
    int64_t rest = i, offset_a = 0, offset_b = 0;  // one index decode serves both operands
    for (int d = 3; d >= 0; --d) {
      const int64_t index = rest % bc.shape[d];
      rest /= bc.shape[d];
      offset_a += index * bc.a_stride[d];
      offset_b += index * bc.b_stride[d];
    }
    const T x = a[offset_a], y = b[offset_b];
    out[i] = op == Binary::Add ? x + y : op == Binary::Sub ? x - y : x * y;
  }
}

struct Dims4 {
  int64_t v[4];
};

template <class T>
__global__ void expand_kernel(Dims4 shape, Dims4 in_stride, int64_t n, const T* in, T* out) {
  for (int64_t i = first_index(); i < n; i += index_step()) out[i] = in[offset_4d(i, shape.v, in_stride.v)];
}

// reduce_broadcast, split into the dims that survive (out_stride != 0, "kept") and the dims that are
// summed away ("reduced"). Each list is padded to 4 dims with extent 1, so offset_4d works on both.
struct ReducePlan {
  int64_t kept_shape[4] = {1, 1, 1, 1}, kept_in_stride[4] = {0, 0, 0, 0}, kept_out_stride[4] = {0, 0, 0, 0};
  int64_t red_shape[4] = {1, 1, 1, 1}, red_in_stride[4] = {0, 0, 0, 0};
  int64_t kept_numel = 1, red_numel = 1;
};

ReducePlan make_plan(const int64_t shape[4], const int64_t out_stride[4]) {
  ReducePlan p;
  const int64_t in_stride[4] = {shape[1] * shape[2] * shape[3], shape[2] * shape[3], shape[3], 1};
  int nk = 0, nr = 0;
  // Fill from the innermost dim outwards so the padding (extent 1) lands in front.
  for (int d = 3; d >= 0; --d) {
    if (out_stride[d] != 0) {
      const int slot = 3 - nk++;
      p.kept_shape[slot] = shape[d];
      p.kept_in_stride[slot] = in_stride[d];
      p.kept_out_stride[slot] = out_stride[d];
      p.kept_numel *= shape[d];
    } else {
      const int slot = 3 - nr++;
      p.red_shape[slot] = shape[d];
      p.red_in_stride[slot] = in_stride[d];
      p.red_numel *= shape[d];
    }
  }
  return p;
}

// Sums the reduced positions [r_begin, r_end) for every kept position t. With `partial` null the sum
// goes straight to out; otherwise to partial[chunk · kept_numel + t] (chunk = blockIdx.y).
template <class T>
__global__ void reduce_chunk_kernel(ReducePlan p, int64_t rows_per_chunk, const T* in, T* out, T* partial) {
  const int64_t r_begin = blockIdx.y * rows_per_chunk;
  const int64_t r_end = min(r_begin + rows_per_chunk, p.red_numel);
  for (int64_t t = first_index(); t < p.kept_numel; t += index_step()) {
    const int64_t base = offset_4d(t, p.kept_shape, p.kept_in_stride);
    T acc = 0;
    for (int64_t r = r_begin; r < r_end; ++r) acc += in[base + offset_4d(r, p.red_shape, p.red_in_stride)];
    if (partial)
      partial[blockIdx.y * p.kept_numel + t] = acc;
    else
      out[offset_4d(t, p.kept_shape, p.kept_out_stride)] = acc;
  }
}

template <class T>
__global__ void reduce_finish_kernel(ReducePlan p, int64_t chunks, const T* partial, T* out) {
  for (int64_t t = first_index(); t < p.kept_numel; t += index_step()) {
    T acc = 0;
    for (int64_t c = 0; c < chunks; ++c) acc += partial[c * p.kept_numel + t];
    out[offset_4d(t, p.kept_shape, p.kept_out_stride)] = acc;
  }
}

template <class T>
__global__ void axpy_kernel(int64_t n, T alpha, const T* x, T* y) {
  for (int64_t i = first_index(); i < n; i += index_step()) y[i] += alpha * x[i];
}

template <class T>
__global__ void scale_kernel(int64_t n, T alpha, const T* x, T* y) {
  for (int64_t i = first_index(); i < n; i += index_step()) y[i] = alpha * x[i];
}

template <class T>
struct DotTerm {
  const T* x;
  const T* y;
  __device__ double operator()(int64_t i) const { return static_cast<double>(x[i]) * static_cast<double>(y[i]); }
};

}  // namespace

void CudaBackend::binary(Binary op, DType dtype, const Broadcast4& bc, const void* a, const void* b, void* out) {
  const int64_t n = bc.numel();
  if (n <= 0) return;
  dispatch_float(dtype, "binary", [&](auto tag) {
    using T = decltype(tag);
    binary_kernel<T><<<blocks_for(n), kBlock>>>(op, bc, n, static_cast<const T*>(a), static_cast<const T*>(b),
                                                static_cast<T*>(out));
    UNIPELT_CUDA_CHECK_LAUNCH();
  });
}

void CudaBackend::expand(DType dtype, const int64_t shape[4], const int64_t in_stride[4], const void* in, void* out) {
  const int64_t n = shape[0] * shape[1] * shape[2] * shape[3];
  if (n <= 0) return;
  Dims4 s{}, st{};
  for (int d = 0; d < 4; ++d) {
    s.v[d] = shape[d];
    st.v[d] = in_stride[d];
  }
  dispatch_float(dtype, "expand", [&](auto tag) {
    using T = decltype(tag);
    expand_kernel<T><<<blocks_for(n), kBlock>>>(s, st, n, static_cast<const T*>(in), static_cast<T*>(out));
    UNIPELT_CUDA_CHECK_LAUNCH();
  });
}

// Two passes when there are few outputs and much to sum (a bias gradient: [B·T, H] -> [H]): the reduced
// range is cut into chunks of rows_per_chunk, one grid row (blockIdx.y) each, so the whole GPU works;
// then one more kernel adds the chunks. Otherwise one pass, one thread per output. Deterministic.
void CudaBackend::reduce_broadcast(DType dtype, const int64_t shape[4], const int64_t out_stride[4], const void* in,
                                   void* out, int64_t out_numel) {
  if (out_numel <= 0) return;
  const ReducePlan plan = make_plan(shape, out_stride);
  dispatch_float(dtype, "reduce_broadcast", [&](auto tag) {
    using T = decltype(tag);
    const T* pin = static_cast<const T*>(in);
    T* pout = static_cast<T*>(out);
    if (plan.red_numel == 0 || plan.kept_numel == 0) {  // an empty input sums to zero
      fill(dtype, out, out_numel, 0.0);
      return;
    }
    constexpr int64_t kMinRowsPerChunk = 64, kMaxChunks = 65535;  // gridDim.y limit
    const int64_t rows_per_chunk =
        std::max(kMinRowsPerChunk, (plan.red_numel + kMaxChunks - 1) / kMaxChunks);
    const int64_t chunks = (plan.red_numel + rows_per_chunk - 1) / rows_per_chunk;
    const unsigned blocks = blocks_for(plan.kept_numel);
    if (chunks == 1 || plan.kept_numel >= (int64_t(1) << 16)) {
      reduce_chunk_kernel<T><<<blocks, kBlock>>>(plan, plan.red_numel, pin, pout, nullptr);
      UNIPELT_CUDA_CHECK_LAUNCH();
      return;
    }
    Scratch partial(static_cast<size_t>(chunks * plan.kept_numel) * sizeof(T));
    reduce_chunk_kernel<T><<<dim3(blocks, static_cast<unsigned>(chunks)), kBlock>>>(plan, rows_per_chunk, pin,
                                                                                      pout, partial.as<T>());
    UNIPELT_CUDA_CHECK_LAUNCH();
    reduce_finish_kernel<T><<<blocks, kBlock>>>(plan, chunks, partial.as<T>(), pout);
    UNIPELT_CUDA_CHECK_LAUNCH();
  });
}

void CudaBackend::axpy(DType dtype, int64_t n, double alpha, const void* x, void* y) {
  if (n <= 0) return;
  dispatch_float(dtype, "axpy", [&](auto tag) {
    using T = decltype(tag);
    axpy_kernel<T><<<blocks_for(n), kBlock>>>(n, static_cast<T>(alpha), static_cast<const T*>(x), static_cast<T*>(y));
    UNIPELT_CUDA_CHECK_LAUNCH();
  });
}

void CudaBackend::scale(DType dtype, int64_t n, double alpha, const void* x, void* y) {
  if (n <= 0) return;
  dispatch_float(dtype, "scale", [&](auto tag) {
    using T = decltype(tag);
    scale_kernel<T><<<blocks_for(n), kBlock>>>(n, static_cast<T>(alpha), static_cast<const T*>(x),
                                               static_cast<T*>(y));
    UNIPELT_CUDA_CHECK_LAUNCH();
  });
}

// The one elementwise kernel that synchronises: its result is a host double.
double CudaBackend::dot(DType dtype, int64_t n, const void* x, const void* y) {
  double result = 0;
  if (n <= 0) return result;
  dispatch_float(dtype, "dot", [&](auto tag) {
    using T = decltype(tag);
    Scratch total(sizeof(double));
    sum_to_device(n, DotTerm<T>{static_cast<const T*>(x), static_cast<const T*>(y)}, 1.0, total.as<double>());
    download(&result, total.as<double>(), sizeof result);
  });
  return result;
}

}  // namespace unipelt::cuda

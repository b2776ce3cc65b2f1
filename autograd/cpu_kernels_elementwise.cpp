// CPU backend, part 2: elementwise ops with broadcasting, activations, dropout.
//
// These kernels are memory-bound or transcendental-bound, and in a PELT training step (frozen weights,
// no weight-gradient GEMMs) they are a large share of the time. Three rules make them fast:
//   1. The innermost loop is a plain unit-stride (or scalar-broadcast) loop the compiler vectorises:
//      broadcast loop nests are first collapsed (collapse_dims) so that loop is as long as possible.
//   2. Transcendentals in float use autograd/cpu_vector_math.h instead of scalar libm calls, and the
//      compute-heavy loops are built for AVX2 and AVX-512 too (UNIPELT_CPU_KERNEL).
//   3. Every kernel runs on the backend's threads (autograd/parallel.h) in blocks of about
//      kElementGrain elements; a sum is cut into blocks that depend only on the shape and its partial
//      sums are added in block order, so the thread count never changes a result.
#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstring>
#include <vector>

#include <cblas.h>

#include "autograd/cpu_backend.h"
#include "autograd/cpu_parallel.h"
#include "autograd/cpu_vector_math.h"
#include "autograd/dropout_hash.h"

namespace unipelt {

namespace {

// ---------------------------------------------------------------------------------------------
// Broadcast loop nests. A 4-D loop over `shape` reads each operand k at Σ_d index[d]·stride_k[d].
// Dimension d can be folded into the next kept one (d') when every operand walks them as one run:
// stride_k[d] == stride_k[d']·shape[d']. Size-1 dimensions are dropped. Examples: a same-shape add
// becomes one loop over all elements; [B,T,H] + [H] becomes B·T rows of H; [B,T,H] · [B,1,1] becomes
// B rows of T·H times one scalar each. The result is padded back to 4-D at the front.
// ---------------------------------------------------------------------------------------------

void collapse_dims(int64_t shape[4], int64_t* const strides[], int operands) {
  assert(operands <= 2);
  int64_t new_shape[4] = {1, 1, 1, 1}, new_strides[2][4] = {{0, 0, 0, 0}, {0, 0, 0, 0}};
  int kept = 0;  // dimensions kept so far, outermost first
  for (int d = 0; d < 4; ++d) {
    if (shape[d] == 1) continue;
    bool fold = kept > 0;
    for (int k = 0; k < operands && fold; ++k) fold = new_strides[k][kept - 1] == strides[k][d] * shape[d];
    if (fold) {
      new_shape[kept - 1] *= shape[d];
      for (int k = 0; k < operands; ++k) new_strides[k][kept - 1] = strides[k][d];
    } else {
      new_shape[kept] = shape[d];
      for (int k = 0; k < operands; ++k) new_strides[k][kept] = strides[k][d];
      ++kept;
    }
  }
  const int pad = 4 - std::max(kept, 1);
  for (int d = 0; d < 4; ++d) {
    const int from = d - pad;
    shape[d] = from >= 0 ? new_shape[from] : 1;
    for (int k = 0; k < operands; ++k) strides[k][d] = from >= 0 ? new_strides[k][from] : 0;
  }
}

struct AddOp {
  template <class T>
  T operator()(T x, T y) const { return x + y; }
};
struct SubOp {
  template <class T>
  T operator()(T x, T y) const { return x - y; }
};
struct MulOp {
  template <class T>
  T operator()(T x, T y) const { return x * y; }
};

// The offset of outer row r (r = (i0·shape[1] + i1)·shape[2] + i2) of a collapsed nest in an operand.
inline int64_t row_offset(const int64_t shape[4], const int64_t stride[4], int64_t r) {
  const int64_t i2 = r % shape[2], i01 = r / shape[2];
  return (i01 / shape[1]) * stride[0] + (i01 % shape[1]) * stride[1] + i2 * stride[2];
}

// out (contiguous) = op(a, b) over a collapsed nest; the inner loop picks one of four stride patterns.
// Threads take segments of rows (element-wise: any split gives the same result).
template <class T, class Op>
void binary_kernel(Broadcast4 bc, const T* a, const T* b, T* out, Op op) {
  int64_t* strides[2] = {bc.a_stride, bc.b_stride};
  collapse_dims(bc.shape, strides, 2);
  if (bc.numel() == 0) return;
  const int64_t n = bc.shape[3], sa = bc.a_stride[3], sb = bc.b_stride[3];
  parallel_row_segments(bc.numel() / n, n, [&](int64_t r, int64_t c0, int64_t c1) {
    const T* ra = a + row_offset(bc.shape, bc.a_stride, r) + c0 * sa;
    const T* rb = b + row_offset(bc.shape, bc.b_stride, r) + c0 * sb;
    T* o = out + r * n + c0;
    const int64_t len = c1 - c0;
    if (sa == 1 && sb == 1) {
      for (int64_t i = 0; i < len; ++i) o[i] = op(ra[i], rb[i]);
    } else if (sa == 1 && sb == 0) {
      const T y = *rb;
      for (int64_t i = 0; i < len; ++i) o[i] = op(ra[i], y);
    } else if (sa == 0 && sb == 1) {
      const T x = *ra;
      for (int64_t i = 0; i < len; ++i) o[i] = op(x, rb[i]);
    } else {
      for (int64_t i = 0; i < len; ++i) o[i] = op(ra[i * sa], rb[i * sb]);
    }
  });
}

// out = Σ of `in` (contiguous) over the dimensions where out_stride is 0. Two cases after collapsing:
//   - each input row adds element-wise onto an output row (inner out stride != 0; a bias gradient adds
//     every row onto one): threads take blocks of columns, and each column sums its rows in row
//     order, exactly as one thread would;
//   - each input row sums into one output element (inner out stride 0; a per-example gate): every row
//     is cut into kSumBlock-long blocks whose sums are added in order, then the row totals are added
//     to their elements in row order.
template <class T>
void reduce_broadcast_kernel(const int64_t full_shape[4], const int64_t output_stride[4], const T* in, T* out,
                             int64_t out_numel) {
  int64_t shape[4], out_stride[4], in_stride[4];
  int64_t contiguous = 1;
  for (int d = 3; d >= 0; --d) {
    shape[d] = full_shape[d];
    out_stride[d] = output_stride[d];
    in_stride[d] = contiguous;
    contiguous *= full_shape[d];
  }
  int64_t* strides[2] = {out_stride, in_stride};
  collapse_dims(shape, strides, 2);
  parallel_fill(out, out_numel, T(0));
  const int64_t total = shape[0] * shape[1] * shape[2] * shape[3];
  if (total == 0) return;
  const int64_t n = shape[3], so = out_stride[3], rows = total / n;
  if (so != 0) {
    parallel_for(n, column_grain(rows), [&](int64_t c0, int64_t c1) {
      for (int64_t r = 0; r < rows; ++r) {
        const T* row_in = in + r * n;
        T* row_out = out + row_offset(shape, out_stride, r);
        if (so == 1) {
          for (int64_t i = c0; i < c1; ++i) row_out[i] += row_in[i];
        } else {
          for (int64_t i = c0; i < c1; ++i) row_out[i * so] += row_in[i];
        }
      }
    });
    return;
  }
  const std::vector<T> totals = row_sums(in, rows, n);
  for (int64_t r = 0; r < rows; ++r) out[row_offset(shape, out_stride, r)] += totals[static_cast<size_t>(r)];
}

// out (contiguous, shape) = in read at broadcast strides.
template <class T>
void expand_kernel(const int64_t full_shape[4], const int64_t input_stride[4], const T* in, T* out) {
  int64_t shape[4], in_stride[4], out_stride[4];
  int64_t contiguous = 1;
  for (int d = 3; d >= 0; --d) {
    shape[d] = full_shape[d];
    in_stride[d] = input_stride[d];
    out_stride[d] = contiguous;
    contiguous *= full_shape[d];
  }
  int64_t* strides[2] = {in_stride, out_stride};
  collapse_dims(shape, strides, 2);
  const int64_t total = shape[0] * shape[1] * shape[2] * shape[3];
  if (total == 0) return;
  const int64_t n = shape[3], si = in_stride[3];
  parallel_row_segments(total / n, n, [&](int64_t r, int64_t c0, int64_t c1) {
    const T* row = in + row_offset(shape, in_stride, r) + c0 * si;
    T* o = out + r * n + c0;
    const int64_t len = c1 - c0;
    if (si == 1) {
      std::memcpy(o, row, static_cast<size_t>(len) * sizeof(T));
    } else if (si == 0) {
      std::fill_n(o, len, *row);
    } else {
      for (int64_t i = 0; i < len; ++i) o[i] = row[i * si];
    }
  });
}

// dst (strided) = src (strided) over a collapsed nest, in segments of rows.
template <class T>
void copy_strided_kernel(const int64_t full_shape[4], const T* src, const int64_t src_stride[4], T* dst,
                         const int64_t dst_stride[4]) {
  int64_t shape[4], ss[4], ds[4];
  for (int d = 0; d < 4; ++d) {
    shape[d] = full_shape[d];
    ss[d] = src_stride[d];
    ds[d] = dst_stride[d];
  }
  int64_t* strides[2] = {ss, ds};
  collapse_dims(shape, strides, 2);
  const int64_t total = shape[0] * shape[1] * shape[2] * shape[3];
  if (total == 0) return;
  const int64_t n = shape[3], si = ss[3], di = ds[3];
  parallel_row_segments(total / n, n, [&](int64_t r, int64_t c0, int64_t c1) {
    const T* s = src + row_offset(shape, ss, r) + c0 * si;
    T* o = dst + row_offset(shape, ds, r) + c0 * di;
    const int64_t len = c1 - c0;
    if (si == 1 && di == 1) {
      std::memcpy(o, s, static_cast<size_t>(len) * sizeof(T));
    } else {
      for (int64_t i = 0; i < len; ++i) o[i * di] = s[i * si];
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Activations. GELU is the exact erf form: gelu(x) = x·Φ(x), gelu'(x) = Φ(x) + x·φ(x), with Φ and φ
// the standard normal CDF and density (float: cpu_vector_math.h; double: the C library).
// ---------------------------------------------------------------------------------------------

template <class T>
UNIPELT_CPU_KERNEL void gelu_forward_kernel(int64_t n, const T* x, T* y) {
  for (int64_t i = 0; i < n; ++i) {
    T cdf, pdf;
    vmath::normal_cdf_pdf(x[i], cdf, pdf);
    y[i] = x[i] * cdf;
  }
}

template <class T>
UNIPELT_CPU_KERNEL void gelu_backward_kernel(int64_t n, const T* x, const T* dy, T* dx) {
  for (int64_t i = 0; i < n; ++i) {
    T cdf, pdf;
    vmath::normal_cdf_pdf(x[i], cdf, pdf);
    dx[i] = dy[i] * (cdf + x[i] * pdf);
  }
}

// y = x ⊙ mask(seed): kept elements scaled by 1/(1-p), dropped ones multiplied by 0 (not set to 0, so a
// NaN or inf in x still reaches the loss and the trainer's NaN check).
// Elements [begin, end): the mask of element i is drawn from its global index, whatever the block.
template <class T>
UNIPELT_CPU_KERNEL void dropout_kernel(int64_t begin, int64_t end, int64_t keep_threshold, T keep_scale, uint64_t seed,
                                       const T* x, T* y) {
  for (int64_t i = begin; i < end; ++i) y[i] = x[i] * (dropout_bits(seed, i) >= keep_threshold ? keep_scale : T(0));
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Backend entry points
// ---------------------------------------------------------------------------------------------

namespace {
// f(begin, end) over [0, n) in element-wise blocks.
template <class F>
void elementwise(int64_t n, const F& f) {
  parallel_for(n, kElementGrain, f);
}
}  // namespace

void CpuBackend::binary(Binary op, DType dtype, const Broadcast4& bc, const void* a, const void* b, void* out) {
  dispatch_float(dtype, "binary", [&](auto tag) {
    using T = decltype(tag);
    const T* pa = static_cast<const T*>(a);
    const T* pb = static_cast<const T*>(b);
    T* po = static_cast<T*>(out);
    switch (op) {
      case Binary::Add: binary_kernel(bc, pa, pb, po, AddOp{}); break;
      case Binary::Sub: binary_kernel(bc, pa, pb, po, SubOp{}); break;
      case Binary::Mul: binary_kernel(bc, pa, pb, po, MulOp{}); break;
    }
  });
}

void CpuBackend::reduce_broadcast(DType dtype, const int64_t shape[4], const int64_t out_stride[4], const void* in,
                                  void* out, int64_t out_numel) {
  dispatch_float(dtype, "reduce_broadcast", [&](auto tag) {
    using T = decltype(tag);
    reduce_broadcast_kernel(shape, out_stride, static_cast<const T*>(in), static_cast<T*>(out), out_numel);
  });
}

void CpuBackend::expand(DType dtype, const int64_t shape[4], const int64_t in_stride[4], const void* in, void* out) {
  dispatch_float(dtype, "expand", [&](auto tag) {
    using T = decltype(tag);
    expand_kernel(shape, in_stride, static_cast<const T*>(in), static_cast<T*>(out));
  });
}

void CpuBackend::copy_strided(DType dtype, const int64_t shape[4], const void* src, const int64_t src_stride[4],
                              void* dst, const int64_t dst_stride[4]) {
  dispatch_float(dtype, "copy_strided", [&](auto tag) {
    using T = decltype(tag);
    copy_strided_kernel(shape, static_cast<const T*>(src), src_stride, static_cast<T*>(dst), dst_stride);
  });
}

void CpuBackend::axpy(DType dtype, int64_t n, double alpha, const void* x, void* y) {
  if (dtype == DType::F32) {
    const float* px = static_cast<const float*>(x);
    float* py = static_cast<float*>(y);
    elementwise(n, [&](int64_t b, int64_t e) { cblas_saxpy(e - b, static_cast<float>(alpha), px + b, 1, py + b, 1); });
  } else if (dtype == DType::F64) {
    const double* px = static_cast<const double*>(x);
    double* py = static_cast<double*>(y);
    elementwise(n, [&](int64_t b, int64_t e) { cblas_daxpy(e - b, alpha, px + b, 1, py + b, 1); });
  } else {
    throw std::invalid_argument("axpy: needs f32 or f64");
  }
}

void CpuBackend::scale(DType dtype, int64_t n, double alpha, const void* x, void* y) {
  dispatch_float(dtype, "scale", [&](auto tag) {
    using T = decltype(tag);
    const T* px = static_cast<const T*>(x);
    T* py = static_cast<T*>(y);
    const T a = static_cast<T>(alpha);
    elementwise(n, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) py[i] = a * px[i];
    });
  });
}

// Σ x·y in double, in kSumBlock-long blocks added in order (the clip norm's sum of squares).
double CpuBackend::dot(DType dtype, int64_t n, const void* x, const void* y) {
  std::vector<double> partial(static_cast<size_t>(block_count(n, kSumBlock)), 0.0);
  dispatch_float(dtype, "dot", [&](auto tag) {
    using T = decltype(tag);
    const T* px = static_cast<const T*>(x);
    const T* py = static_cast<const T*>(y);
    parallel_for(n, kSumBlock, [&](int64_t b, int64_t e) {
      double acc = 0;
      for (int64_t i = b; i < e; ++i) acc += static_cast<double>(px[i]) * static_cast<double>(py[i]);
      partial[static_cast<size_t>(b / kSumBlock)] = acc;
    });
  });
  double acc = 0;
  for (double p : partial) acc += p;
  return acc;
}

void CpuBackend::unary_forward(Unary op, DType dtype, int64_t n, const void* x, void* y) {
  dispatch_float(dtype, "unary_forward", [&](auto tag) {
    using T = decltype(tag);
    const T* px = static_cast<const T*>(x);
    T* py = static_cast<T*>(y);
    elementwise(n, [&](int64_t b, int64_t e) {
      switch (op) {
        case Unary::Gelu:
          gelu_forward_kernel(e - b, px + b, py + b);
          break;
        case Unary::Relu:
          for (int64_t i = b; i < e; ++i) py[i] = px[i] > T(0) ? px[i] : T(0);
          break;
        case Unary::Tanh:
          for (int64_t i = b; i < e; ++i) py[i] = std::tanh(px[i]);
          break;
        case Unary::Sigmoid:
          for (int64_t i = b; i < e; ++i) py[i] = T(1) / (T(1) + std::exp(-px[i]));
          break;
      }
    });
  });
}

void CpuBackend::unary_backward(Unary op, DType dtype, int64_t n, const void* saved, const void* dy, void* dx) {
  dispatch_float(dtype, "unary_backward", [&](auto tag) {
    using T = decltype(tag);
    const T* s = static_cast<const T*>(saved);
    const T* g = static_cast<const T*>(dy);
    T* out = static_cast<T*>(dx);
    elementwise(n, [&](int64_t b, int64_t e) {
      switch (op) {
        case Unary::Gelu:  // saved = x
          gelu_backward_kernel(e - b, s + b, g + b, out + b);
          break;
        case Unary::Relu:  // saved = x
          for (int64_t i = b; i < e; ++i) out[i] = s[i] > T(0) ? g[i] : T(0);
          break;
        case Unary::Tanh:  // saved = y
          for (int64_t i = b; i < e; ++i) out[i] = g[i] * (T(1) - s[i] * s[i]);
          break;
        case Unary::Sigmoid:  // saved = y
          for (int64_t i = b; i < e; ++i) out[i] = g[i] * s[i] * (T(1) - s[i]);
          break;
      }
    });
  });
}

void CpuBackend::dropout(DType dtype, int64_t n, double p, uint64_t seed, const void* x, void* y) {
  dispatch_float(dtype, "dropout", [&](auto tag) {
    using T = decltype(tag);
    const int64_t threshold = dropout_keep_threshold(p);
    const T keep_scale = static_cast<T>(1.0 / (1.0 - p));
    const T* px = static_cast<const T*>(x);
    T* py = static_cast<T*>(y);
    elementwise(n, [&](int64_t b, int64_t e) { dropout_kernel(b, e, threshold, keep_scale, seed, px, py); });
  });
}

}  // namespace unipelt

// CPU backend, part 2: elementwise ops with broadcasting, activations, dropout.
//
// These kernels are memory-bound or transcendental-bound, and in a PELT training step (frozen weights,
// no weight-gradient GEMMs) they are a large share of the time. Two rules make them fast:
//   1. The innermost loop is a plain unit-stride (or scalar-broadcast) loop the compiler vectorises:
//      broadcast loop nests are first collapsed (collapse_dims) so that loop is as long as possible.
//   2. Transcendentals in float use autograd/cpu_vector_math.h instead of scalar libm calls, and the
//      compute-heavy loops are built for AVX2 and AVX-512 too (UNIPELT_CPU_KERNEL).
#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstring>

#include <cblas.h>

#include "autograd/cpu_backend.h"
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

// out (contiguous) = op(a, b) over a collapsed nest; the inner loop picks one of four stride patterns.
template <class T, class Op>
void binary_kernel(Broadcast4 bc, const T* a, const T* b, T* out, Op op) {
  int64_t* strides[2] = {bc.a_stride, bc.b_stride};
  collapse_dims(bc.shape, strides, 2);
  if (bc.numel() == 0) return;
  const int64_t n = bc.shape[3], sa = bc.a_stride[3], sb = bc.b_stride[3];
  T* o = out;
  for (int64_t i0 = 0; i0 < bc.shape[0]; ++i0)
    for (int64_t i1 = 0; i1 < bc.shape[1]; ++i1)
      for (int64_t i2 = 0; i2 < bc.shape[2]; ++i2, o += n) {
        const T* ra = a + i0 * bc.a_stride[0] + i1 * bc.a_stride[1] + i2 * bc.a_stride[2];
        const T* rb = b + i0 * bc.b_stride[0] + i1 * bc.b_stride[1] + i2 * bc.b_stride[2];
        if (sa == 1 && sb == 1) {
          for (int64_t i = 0; i < n; ++i) o[i] = op(ra[i], rb[i]);
        } else if (sa == 1 && sb == 0) {
          const T y = *rb;
          for (int64_t i = 0; i < n; ++i) o[i] = op(ra[i], y);
        } else if (sa == 0 && sb == 1) {
          const T x = *ra;
          for (int64_t i = 0; i < n; ++i) o[i] = op(x, rb[i]);
        } else {
          for (int64_t i = 0; i < n; ++i) o[i] = op(ra[i * sa], rb[i * sb]);
        }
      }
}

// out = Σ of `in` (contiguous) over the dimensions where out_stride is 0.
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
  std::fill_n(out, out_numel, T(0));
  if (shape[0] * shape[1] * shape[2] * shape[3] == 0) return;
  const int64_t n = shape[3], so = out_stride[3];
  const T* row_in = in;
  for (int64_t i0 = 0; i0 < shape[0]; ++i0)
    for (int64_t i1 = 0; i1 < shape[1]; ++i1)
      for (int64_t i2 = 0; i2 < shape[2]; ++i2, row_in += n) {
        T* row_out = out + i0 * out_stride[0] + i1 * out_stride[1] + i2 * out_stride[2];
        if (so == 1) {  // e.g. a bias gradient: add this row onto the output row
          for (int64_t i = 0; i < n; ++i) row_out[i] += row_in[i];
        } else if (so == 0) {  // e.g. a per-example gate: the whole row sums into one element
          T total = 0;
#pragma omp simd reduction(+ : total)
          for (int64_t i = 0; i < n; ++i) total += row_in[i];
          *row_out += total;
        } else {
          for (int64_t i = 0; i < n; ++i) row_out[i * so] += row_in[i];
        }
      }
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
  if (shape[0] * shape[1] * shape[2] * shape[3] == 0) return;
  const int64_t n = shape[3], si = in_stride[3];
  T* o = out;
  for (int64_t i0 = 0; i0 < shape[0]; ++i0)
    for (int64_t i1 = 0; i1 < shape[1]; ++i1)
      for (int64_t i2 = 0; i2 < shape[2]; ++i2, o += n) {
        const T* row = in + i0 * in_stride[0] + i1 * in_stride[1] + i2 * in_stride[2];
        if (si == 1) {
          std::memcpy(o, row, static_cast<size_t>(n) * sizeof(T));
        } else if (si == 0) {
          std::fill_n(o, n, *row);
        } else {
          for (int64_t i = 0; i < n; ++i) o[i] = row[i * si];
        }
      }
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
template <class T>
UNIPELT_CPU_KERNEL void dropout_kernel(int64_t n, int64_t keep_threshold, T keep_scale, uint64_t seed, const T* x,
                                       T* y) {
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * (dropout_bits(seed, i) >= keep_threshold ? keep_scale : T(0));
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Backend entry points
// ---------------------------------------------------------------------------------------------

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

void CpuBackend::axpy(DType dtype, int64_t n, double alpha, const void* x, void* y) {
  if (dtype == DType::F32) {
    cblas_saxpy(n, static_cast<float>(alpha), static_cast<const float*>(x), 1, static_cast<float*>(y), 1);
  } else if (dtype == DType::F64) {
    cblas_daxpy(n, alpha, static_cast<const double*>(x), 1, static_cast<double*>(y), 1);
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
    for (int64_t i = 0; i < n; ++i) py[i] = a * px[i];
  });
}

double CpuBackend::dot(DType dtype, int64_t n, const void* x, const void* y) {
  double acc = 0;
  dispatch_float(dtype, "dot", [&](auto tag) {
    using T = decltype(tag);
    const T* px = static_cast<const T*>(x);
    const T* py = static_cast<const T*>(y);
    for (int64_t i = 0; i < n; ++i) acc += static_cast<double>(px[i]) * static_cast<double>(py[i]);
  });
  return acc;
}

void CpuBackend::unary_forward(Unary op, DType dtype, int64_t n, const void* x, void* y) {
  dispatch_float(dtype, "unary_forward", [&](auto tag) {
    using T = decltype(tag);
    const T* px = static_cast<const T*>(x);
    T* py = static_cast<T*>(y);
    switch (op) {
      case Unary::Gelu:
        gelu_forward_kernel(n, px, py);
        break;
      case Unary::Relu:
        for (int64_t i = 0; i < n; ++i) py[i] = px[i] > T(0) ? px[i] : T(0);
        break;
      case Unary::Tanh:
        for (int64_t i = 0; i < n; ++i) py[i] = std::tanh(px[i]);
        break;
      case Unary::Sigmoid:
        for (int64_t i = 0; i < n; ++i) py[i] = T(1) / (T(1) + std::exp(-px[i]));
        break;
    }
  });
}

void CpuBackend::unary_backward(Unary op, DType dtype, int64_t n, const void* saved, const void* dy, void* dx) {
  dispatch_float(dtype, "unary_backward", [&](auto tag) {
    using T = decltype(tag);
    const T* s = static_cast<const T*>(saved);
    const T* g = static_cast<const T*>(dy);
    T* out = static_cast<T*>(dx);
    switch (op) {
      case Unary::Gelu:  // saved = x
        gelu_backward_kernel(n, s, g, out);
        break;
      case Unary::Relu:  // saved = x
        for (int64_t i = 0; i < n; ++i) out[i] = s[i] > T(0) ? g[i] : T(0);
        break;
      case Unary::Tanh:  // saved = y
        for (int64_t i = 0; i < n; ++i) out[i] = g[i] * (T(1) - s[i] * s[i]);
        break;
      case Unary::Sigmoid:  // saved = y
        for (int64_t i = 0; i < n; ++i) out[i] = g[i] * s[i] * (T(1) - s[i]);
        break;
    }
  });
}

void CpuBackend::dropout(DType dtype, int64_t n, double p, uint64_t seed, const void* x, void* y) {
  dispatch_float(dtype, "dropout", [&](auto tag) {
    using T = decltype(tag);
    dropout_kernel(n, dropout_keep_threshold(p), static_cast<T>(1.0 / (1.0 - p)), seed, static_cast<const T*>(x),
                   static_cast<T*>(y));
  });
}

}  // namespace unipelt

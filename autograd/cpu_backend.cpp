// CPU backend, part 1: memory, GEMM (OpenBLAS), elementwise ops with broadcasting, activations.
#include "autograd/cpu_backend.h"

#include <cblas.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <new>

#ifdef UNIPELT_WITH_CUDA
#include "cuda/cuda_backend.h"
#endif

namespace unipelt {

// ---------------------------------------------------------------------------------------------
// Backend registry
// ---------------------------------------------------------------------------------------------

Backend& backend(Device device) {
  static CpuBackend cpu;
  if (device == Device::CPU) return cpu;
#ifdef UNIPELT_WITH_CUDA
  if (!cuda_device_present()) throw std::runtime_error("--device cuda: no CUDA device is available on this machine");
  return cuda_backend();
#else
  throw std::runtime_error("--device cuda: this build has no CUDA backend (nvcc was not found at configure time)");
#endif
}

bool cuda_available() {
#ifdef UNIPELT_WITH_CUDA
  return cuda_device_present();
#else
  return false;
#endif
}

std::string cpu_blas_info() {
  std::string info = openblas_get_config();
  return info + ", core " + openblas_get_corename() + ", " + std::to_string(openblas_get_num_threads()) + " threads";
}

bool cpu_blas_generic_fallback() {
  return std::string(openblas_get_corename()) == "Prescott" && __builtin_cpu_supports("avx2");
}

// ---------------------------------------------------------------------------------------------
// Memory: 64-byte aligned blocks (what AVX-512 loads like), counted for peak-memory reports.
// ---------------------------------------------------------------------------------------------

void* CpuBackend::allocate(size_t bytes) {
  size_t rounded = (bytes + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, rounded);
  if (!p) throw std::bad_alloc();
  size_t now = in_use_.fetch_add(bytes) + bytes;
  size_t peak = peak_.load();
  while (now > peak && !peak_.compare_exchange_weak(peak, now)) {
  }
  return p;
}

void CpuBackend::deallocate(void* ptr, size_t bytes) {
  std::free(ptr);
  in_use_.fetch_sub(bytes);
}

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

// ---------------------------------------------------------------------------------------------
// Elementwise with broadcasting
// ---------------------------------------------------------------------------------------------

void CpuBackend::binary(Binary op, DType dtype, const Broadcast4& bc, const void* a, const void* b, void* out) {
  dispatch_float(dtype, "binary", [&](auto tag) {
    using T = decltype(tag);
    const T* pa = static_cast<const T*>(a);
    const T* pb = static_cast<const T*>(b);
    T* po = static_cast<T*>(out);
    const int64_t* s = bc.shape;
    int64_t o = 0;
    for (int64_t i0 = 0; i0 < s[0]; ++i0)
      for (int64_t i1 = 0; i1 < s[1]; ++i1)
        for (int64_t i2 = 0; i2 < s[2]; ++i2) {
          const T* ra = pa + i0 * bc.a_stride[0] + i1 * bc.a_stride[1] + i2 * bc.a_stride[2];
          const T* rb = pb + i0 * bc.b_stride[0] + i1 * bc.b_stride[1] + i2 * bc.b_stride[2];
          const int64_t sa = bc.a_stride[3], sb = bc.b_stride[3];
          for (int64_t i3 = 0; i3 < s[3]; ++i3, ++o) {
            T x = ra[i3 * sa], y = rb[i3 * sb];
            po[o] = op == Binary::Add ? x + y : op == Binary::Sub ? x - y : x * y;
          }
        }
  });
}

void CpuBackend::reduce_broadcast(DType dtype, const int64_t shape[4], const int64_t out_stride[4], const void* in,
                                  void* out, int64_t out_numel) {
  dispatch_float(dtype, "reduce_broadcast", [&](auto tag) {
    using T = decltype(tag);
    const T* pi = static_cast<const T*>(in);
    T* po = static_cast<T*>(out);
    std::fill_n(po, out_numel, T(0));
    int64_t i = 0;
    for (int64_t i0 = 0; i0 < shape[0]; ++i0)
      for (int64_t i1 = 0; i1 < shape[1]; ++i1)
        for (int64_t i2 = 0; i2 < shape[2]; ++i2) {
          T* row = po + i0 * out_stride[0] + i1 * out_stride[1] + i2 * out_stride[2];
          for (int64_t i3 = 0; i3 < shape[3]; ++i3, ++i) row[i3 * out_stride[3]] += pi[i];
        }
  });
}

void CpuBackend::expand(DType dtype, const int64_t shape[4], const int64_t in_stride[4], const void* in, void* out) {
  dispatch_float(dtype, "expand", [&](auto tag) {
    using T = decltype(tag);
    const T* pi = static_cast<const T*>(in);
    T* po = static_cast<T*>(out);
    int64_t o = 0;
    for (int64_t i0 = 0; i0 < shape[0]; ++i0)
      for (int64_t i1 = 0; i1 < shape[1]; ++i1)
        for (int64_t i2 = 0; i2 < shape[2]; ++i2) {
          const T* row = pi + i0 * in_stride[0] + i1 * in_stride[1] + i2 * in_stride[2];
          for (int64_t i3 = 0; i3 < shape[3]; ++i3, ++o) po[o] = row[i3 * in_stride[3]];
        }
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

// ---------------------------------------------------------------------------------------------
// Activations. GELU is the exact erf form: gelu(x) = x·Φ(x) = x/2 · (1 + erf(x/√2)),
// gelu'(x) = Φ(x) + x·φ(x) with φ the standard normal density.
// ---------------------------------------------------------------------------------------------

void CpuBackend::unary_forward(Unary op, DType dtype, int64_t n, const void* x, void* y) {
  dispatch_float(dtype, "unary_forward", [&](auto tag) {
    using T = decltype(tag);
    const T* px = static_cast<const T*>(x);
    T* py = static_cast<T*>(y);
    switch (op) {
      case Unary::Gelu:
        for (int64_t i = 0; i < n; ++i) py[i] = T(0.5) * px[i] * (T(1) + std::erf(px[i] * T(M_SQRT1_2)));
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
    const T inv_sqrt_2pi = T(0.3989422804014327);
    switch (op) {
      case Unary::Gelu:  // saved = x
        for (int64_t i = 0; i < n; ++i) {
          T cdf = T(0.5) * (T(1) + std::erf(s[i] * T(M_SQRT1_2)));
          T pdf = inv_sqrt_2pi * std::exp(T(-0.5) * s[i] * s[i]);
          out[i] = g[i] * (cdf + s[i] * pdf);
        }
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

}  // namespace unipelt

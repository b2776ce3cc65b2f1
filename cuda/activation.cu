// Activations, elementwise over n values.
//
//   unary_forward   y[n] = f(x[n])                   f = GELU (erf form) | ReLU | tanh | sigmoid
//   unary_backward  dx[n] = dy[n] · f'(saved[n])      saved = x for GELU and ReLU, y = f(x) for tanh, sigmoid
//
//   gelu(x)  = x/2 · (1 + erf(x/√2))          gelu'(x) = Φ(x) + x·φ(x),  φ(x) = exp(-x²/2)/√(2π)
//   relu'(x) = 1 if x > 0 else 0              tanh'    = 1 - y²           sigmoid' = y·(1 - y)
// The formulas are the CPU backend's. In float64 both call the C library's erf/exp and round alike; in
// float32 the CPU uses vectorised approximations (autograd/cpu_vector_math.h, within 3e-7) and CUDA its
// erff/expf (within 2 ulp).
#include "cuda/common.cuh"

namespace unipelt::cuda {

namespace {

constexpr double kSqrtHalf = 0.70710678118654752440;   // 1/√2
constexpr double kInvSqrt2Pi = 0.3989422804014327;     // 1/√(2π)

template <class T>
__global__ void unary_forward_kernel(Unary op, int64_t n, const T* x, T* y) {
  for (int64_t i = first_index(); i < n; i += index_step()) {
    const T v = x[i];
    switch (op) {
      case Unary::Gelu: y[i] = T(0.5) * v * (T(1) + math::erf(v * T(kSqrtHalf))); break;
      case Unary::Relu: y[i] = v > T(0) ? v : T(0); break;
      case Unary::Tanh: y[i] = math::tanh(v); break;
      case Unary::Sigmoid: y[i] = T(1) / (T(1) + math::exp(-v)); break;
    }
  }
}

template <class T>
__global__ void unary_backward_kernel(Unary op, int64_t n, const T* saved, const T* dy, T* dx) {
  for (int64_t i = first_index(); i < n; i += index_step()) {
    const T s = saved[i], g = dy[i];
    switch (op) {
      case Unary::Gelu: {
        const T cdf = T(0.5) * (T(1) + math::erf(s * T(kSqrtHalf)));
        const T pdf = T(kInvSqrt2Pi) * math::exp(T(-0.5) * s * s);
        dx[i] = g * (cdf + s * pdf);
        break;
      }
      case Unary::Relu: dx[i] = s > T(0) ? g : T(0); break;
      case Unary::Tanh: dx[i] = g * (T(1) - s * s); break;
      case Unary::Sigmoid: dx[i] = g * s * (T(1) - s); break;
    }
  }
}

}  // namespace

void CudaBackend::unary_forward(Unary op, DType dtype, int64_t n, const void* x, void* y) {
  if (n <= 0) return;
  dispatch_float(dtype, "unary_forward", [&](auto tag) {
    using T = decltype(tag);
    unary_forward_kernel<T><<<blocks_for(n), kBlock>>>(op, n, static_cast<const T*>(x), static_cast<T*>(y));
    UNIPELT_CUDA_CHECK_LAUNCH();
  });
}

void CudaBackend::unary_backward(Unary op, DType dtype, int64_t n, const void* saved, const void* dy, void* dx) {
  if (n <= 0) return;
  dispatch_float(dtype, "unary_backward", [&](auto tag) {
    using T = decltype(tag);
    unary_backward_kernel<T><<<blocks_for(n), kBlock>>>(op, n, static_cast<const T*>(saved),
                                                        static_cast<const T*>(dy), static_cast<T*>(dx));
    UNIPELT_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace unipelt::cuda

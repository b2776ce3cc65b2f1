// AdamW, one thread per parameter element, all arrays [n], updated in place.
//
//   m = β1·m + (1-β1)·g          m̂ = m / (1-β1^t)       (bias corrections come in AdamWStep)
//   v = β2·v + (1-β2)·g²         v̂ = v / (1-β2^t)
//   p -= lr · (m̂ / (sqrt(v̂) + eps) + wd · p)          decoupled weight decay (Loshchilov & Hutter)
//
// Arithmetic in the parameter's dtype with the hyper-parameters cast to it, exactly as the CPU does.
#include "cuda/common.cuh"

namespace unipelt::cuda {

namespace {

template <class T>
struct AdamWCoefficients {
  T lr, beta1, one_minus_beta1, beta2, one_minus_beta2, eps, weight_decay, bias_correction1, bias_correction2;
};

template <class T>
__global__ void adamw_kernel(int64_t n, T* param, const T* grad, T* m, T* v, AdamWCoefficients<T> k) {
  for (int64_t i = first_index(); i < n; i += index_step()) {
    const T g = grad[i];
    const T mi = k.beta1 * m[i] + k.one_minus_beta1 * g;
    const T vi = k.beta2 * v[i] + k.one_minus_beta2 * g * g;
    m[i] = mi;
    v[i] = vi;
    const T mhat = mi / k.bias_correction1;
    const T vhat = vi / k.bias_correction2;
    param[i] -= k.lr * (mhat / (math::sqrt(vhat) + k.eps) + k.weight_decay * param[i]);
  }
}

}  // namespace

void CudaBackend::adamw_update(DType dtype, int64_t n, void* param, const void* grad, void* m, void* v,
                               const AdamWStep& step) {
  if (n <= 0) return;
  dispatch_float(dtype, "adamw_update", [&](auto tag) {
    using T = decltype(tag);
    const AdamWCoefficients<T> k{T(step.lr),    T(step.beta1),        T(1 - step.beta1),
                                 T(step.beta2), T(1 - step.beta2),    T(step.eps),
                                 T(step.weight_decay), T(step.bias_correction1), T(step.bias_correction2)};
    adamw_kernel<T><<<blocks_for(n), kBlock>>>(n, static_cast<T*>(param), static_cast<const T*>(grad),
                                               static_cast<T*>(m), static_cast<T*>(v), k);
    UNIPELT_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace unipelt::cuda

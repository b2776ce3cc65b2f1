// Losses. The loss and its incoming gradient are one-element device arrays, so nothing here waits
// for the GPU except the label check of cross_entropy_forward.
//
//   cross_entropy_forward   logits[n, c], labels int32 [n] -> probs[n, c] = softmax(logits),
//                           loss[1] = mean_i (logsumexp(logits_i) - logits_i[label_i])
//   cross_entropy_backward  dlogits[n, c] = (probs - onehot(labels)) · dloss[0] / n
//   mse_forward             pred[n], target[n] -> loss[1] = mean((pred - target)²)
//   mse_backward            dpred[n] = 2 (pred - target) · dloss[0] / n
//
// Cross-entropy: one block per row computes max, Σ exp, the probabilities and the row's loss
// (from the logits via log-sum-exp, as the CPU does, so tiny probabilities never meet log(0)); the
// row losses are then added by the deterministic two-pass sum (sum_to_device). A label outside [0, c)
// is recorded in an IndexCheck slot and thrown as std::out_of_range after the kernel.
#include "cuda/common.cuh"

namespace unipelt::cuda {

namespace {

template <class T>
__global__ void cross_entropy_rows_kernel(int64_t n, int64_t c, const T* logits, const int32_t* labels, T* probs,
                                          double* row_loss, unsigned long long* bad) {
  for (int64_t r = blockIdx.x; r < n; r += gridDim.x) {
    const T* xr = logits + r * c;
    T* pr = probs + r * c;
    T mx = math::neg_infinity<T>();
    for (int64_t j = threadIdx.x; j < c; j += blockDim.x) mx = xr[j] > mx ? xr[j] : mx;
    mx = block_max(mx);
    T total = 0;
    for (int64_t j = threadIdx.x; j < c; j += blockDim.x) total += (pr[j] = math::exp(xr[j] - mx));
    total = block_sum(total);
    const T inv = T(1) / total;
    for (int64_t j = threadIdx.x; j < c; j += blockDim.x) pr[j] *= inv;
    if (threadIdx.x == 0) {
      const int64_t label = labels[r];
      if (label < 0 || label >= c) {
        atomicMin(bad, static_cast<unsigned long long>(r));
        row_loss[r] = 0;
      } else {
        row_loss[r] = static_cast<double>(math::log(total) + mx - xr[label]);
      }
    }
  }
}

struct ArrayTerm {
  const double* values;
  __device__ double operator()(int64_t i) const { return values[i]; }
};

template <class T>
struct SquaredErrorTerm {
  const T* pred;
  const T* target;
  __device__ double operator()(int64_t i) const {
    const T d = pred[i] - target[i];
    return static_cast<double>(d * d);
  }
};

template <class T>
__global__ void cross_entropy_backward_kernel(int64_t n, int64_t c, const T* probs, const int32_t* labels,
                                              const T* dloss, T* dlogits) {
  const T s = dloss[0] / T(n);
  for (int64_t i = first_index(); i < n * c; i += index_step()) {
    const int64_t row = i / c, j = i % c;
    dlogits[i] = (probs[i] - (j == labels[row] ? T(1) : T(0))) * s;
  }
}

template <class T>
__global__ void mse_backward_kernel(int64_t n, const T* pred, const T* target, const T* dloss, T* dpred) {
  const T s = T(2) * dloss[0] / T(n);
  for (int64_t i = first_index(); i < n; i += index_step()) dpred[i] = (pred[i] - target[i]) * s;
}

}  // namespace

void CudaBackend::cross_entropy_forward(DType dtype, int64_t n, int64_t c, const void* logits, const int32_t* labels,
                                        void* probs, void* loss) {
  dispatch_float(dtype, "cross_entropy_forward", [&](auto tag) {
    using T = decltype(tag);
    if (n <= 0 || c <= 0) {
      if (n > 0) throw std::invalid_argument("cross_entropy: no classes");
      fill(dtype, loss, 1, 0.0);  // the mean over no examples is defined as 0, as on the CPU
      return;
    }
    IndexCheck check;
    Scratch row_loss(static_cast<size_t>(n) * sizeof(double));
    cross_entropy_rows_kernel<T><<<blocks_for_rows(n), threads_for_cols(c)>>>(
        n, c, static_cast<const T*>(logits), labels, static_cast<T*>(probs), row_loss.as<double>(), check.slot());
    UNIPELT_CUDA_CHECK_LAUNCH();
    sum_to_device(n, ArrayTerm{row_loss.as<double>()}, 1.0 / static_cast<double>(n), static_cast<T*>(loss));
    const int64_t position = check.first_bad();
    if (position >= 0) throw_bad_label(check.value_at(labels, position), position, c);
  });
}

void CudaBackend::cross_entropy_backward(DType dtype, int64_t n, int64_t c, const void* probs, const int32_t* labels,
                                         const void* dloss, void* dlogits) {
  if (n <= 0 || c <= 0) return;
  dispatch_float(dtype, "cross_entropy_backward", [&](auto tag) {
    using T = decltype(tag);
    cross_entropy_backward_kernel<T><<<blocks_for(n * c), kBlock>>>(
        n, c, static_cast<const T*>(probs), labels, static_cast<const T*>(dloss), static_cast<T*>(dlogits));
    UNIPELT_CUDA_CHECK_LAUNCH();
  });
}

void CudaBackend::mse_forward(DType dtype, int64_t n, const void* pred, const void* target, void* loss) {
  dispatch_float(dtype, "mse_forward", [&](auto tag) {
    using T = decltype(tag);
    const double scale = n > 0 ? 1.0 / static_cast<double>(n) : 0.0;
    sum_to_device(std::max<int64_t>(n, 0), SquaredErrorTerm<T>{static_cast<const T*>(pred), static_cast<const T*>(target)},
                  scale, static_cast<T*>(loss));
  });
}

void CudaBackend::mse_backward(DType dtype, int64_t n, const void* pred, const void* target, const void* dloss,
                               void* dpred) {
  if (n <= 0) return;
  dispatch_float(dtype, "mse_backward", [&](auto tag) {
    using T = decltype(tag);
    mse_backward_kernel<T><<<blocks_for(n), kBlock>>>(n, static_cast<const T*>(pred), static_cast<const T*>(target),
                                                      static_cast<const T*>(dloss), static_cast<T*>(dpred));
    UNIPELT_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace unipelt::cuda

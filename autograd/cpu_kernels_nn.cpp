// CPU backend, part 3: softmax, layer norm, embedding, data movement, losses, AdamW.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "autograd/cpu_backend.h"
#include "autograd/cpu_parallel.h"
#include "autograd/cpu_vector_math.h"

namespace unipelt {

// ---------------------------------------------------------------------------------------------
// Softmax over rows: y = exp(x + mask - max) / sum. Backward: dx = y ⊙ (dy - Σ dy·y).
// Layer norm (derivation in docs/autograd.md). With x̂ = (x - μ)·rstd and g = dy ⊙ γ:
//   dx = rstd · (g - mean(g) - x̂ · mean(g ⊙ x̂)),  dγ = Σ_rows dy ⊙ x̂,  dβ = Σ_rows dy.
// Each row is a few passes of unit-stride loops; `omp simd reduction` lets the compiler vectorise the
// row sums (it may reorder the additions, which plain C++ forbids without -ffast-math). The kernels
// take a range of rows [r0, r1): threads run blocks of rows (parallel.h). dγ and dβ sum over rows:
// each block of rows writes its own partial sums, which are added in block order.
// ---------------------------------------------------------------------------------------------

namespace {

template <class T>
UNIPELT_CPU_KERNEL void softmax_forward_kernel(int64_t r0, int64_t r1, int64_t cols, const T* x, const T* mask,
                                               int64_t rows_per_mask, T* y) {
  for (int64_t r = r0; r < r1; ++r) {
    const T* xr = x + r * cols;
    const T* mr = mask ? mask + (r / rows_per_mask) * cols : nullptr;
    T* yr = y + r * cols;
    if (mr) {
      for (int64_t c = 0; c < cols; ++c) yr[c] = xr[c] + mr[c];
    } else if (yr != xr) {  // (in place, y == x, is allowed)
      std::copy_n(xr, cols, yr);
    }
    T mx = -INFINITY;
#pragma omp simd reduction(max : mx)
    for (int64_t c = 0; c < cols; ++c) mx = yr[c] > mx ? yr[c] : mx;
    T total = 0;
#pragma omp simd reduction(+ : total)
    for (int64_t c = 0; c < cols; ++c) {
      const T e = vmath::exp(yr[c] - mx);
      yr[c] = e;
      total += e;
    }
    const T inv = T(1) / total;
    for (int64_t c = 0; c < cols; ++c) yr[c] *= inv;
  }
}

template <class T>
UNIPELT_CPU_KERNEL void softmax_backward_kernel(int64_t r0, int64_t r1, int64_t cols, const T* y, const T* dy, T* dx) {
  for (int64_t r = r0; r < r1; ++r) {
    const T* yr = y + r * cols;
    const T* gr = dy + r * cols;
    T* dr = dx + r * cols;
    T inner = 0;
#pragma omp simd reduction(+ : inner)
    for (int64_t c = 0; c < cols; ++c) inner += yr[c] * gr[c];
    for (int64_t c = 0; c < cols; ++c) dr[c] = yr[c] * (gr[c] - inner);
  }
}

template <class T>
UNIPELT_CPU_KERNEL void layernorm_forward_kernel(int64_t r0, int64_t r1, int64_t cols, T eps, const T* x,
                                                 const T* gamma, const T* beta, T* y, T* mean, T* rstd) {
  for (int64_t r = r0; r < r1; ++r) {
    const T* xr = x + r * cols;
    T sum = 0;
#pragma omp simd reduction(+ : sum)
    for (int64_t c = 0; c < cols; ++c) sum += xr[c];
    const T mu = sum / T(cols);
    T sq = 0;
#pragma omp simd reduction(+ : sq)
    for (int64_t c = 0; c < cols; ++c) sq += (xr[c] - mu) * (xr[c] - mu);
    const T rs = T(1) / std::sqrt(sq / T(cols) + eps);
    T* yr = y + r * cols;
    for (int64_t c = 0; c < cols; ++c) yr[c] = (xr[c] - mu) * rs * gamma[c] + beta[c];
    mean[r] = mu;
    rstd[r] = rs;
  }
}

// Rows [r0, r1). dgamma and dbeta (each nullable) receive this block's sums over its rows.
template <class T>
UNIPELT_CPU_KERNEL void layernorm_backward_kernel(int64_t r0, int64_t r1, int64_t cols, const T* x, const T* gamma,
                                                  const T* mean, const T* rstd, const T* dy, T* dx, T* dgamma,
                                                  T* dbeta) {
  if (dgamma) std::fill_n(dgamma, cols, T(0));
  if (dbeta) std::fill_n(dbeta, cols, T(0));
  for (int64_t r = r0; r < r1; ++r) {
    const T* xr = x + r * cols;
    const T* gr = dy + r * cols;
    const T mu = mean[r], rs = rstd[r];
    if (dgamma)
      for (int64_t c = 0; c < cols; ++c) dgamma[c] += gr[c] * ((xr[c] - mu) * rs);
    if (dbeta)
      for (int64_t c = 0; c < cols; ++c) dbeta[c] += gr[c];
    if (!dx) continue;
    T sum_g = 0, sum_gx = 0;
#pragma omp simd reduction(+ : sum_g, sum_gx)
    for (int64_t c = 0; c < cols; ++c) {
      const T g = gr[c] * gamma[c];
      sum_g += g;
      sum_gx += g * ((xr[c] - mu) * rs);
    }
    const T mean_g = sum_g / T(cols), mean_gx = sum_gx / T(cols);
    T* dr = dx + r * cols;
    for (int64_t c = 0; c < cols; ++c) dr[c] = rs * (gr[c] * gamma[c] - mean_g - ((xr[c] - mu) * rs) * mean_gx);
  }
}

// The whole backward: blocks of rows in parallel, each with its own partial dγ and dβ rows, then the
// partials added in block order (the block size depends on the shape only).
template <class T>
void layernorm_backward_rows(int64_t rows, int64_t cols, const T* x, const T* gamma, const T* mean, const T* rstd,
                             const T* dy, T* dx, T* dgamma, T* dbeta) {
  const int64_t grain = row_grain(cols), blocks = block_count(rows, grain);
  std::vector<T> partial_gamma(dgamma ? static_cast<size_t>(blocks * cols) : 0);
  std::vector<T> partial_beta(dbeta ? static_cast<size_t>(blocks * cols) : 0);
  parallel_for(rows, grain, [&](int64_t r0, int64_t r1) {
    const int64_t b = r0 / grain;
    layernorm_backward_kernel(r0, r1, cols, x, gamma, mean, rstd, dy, dx,
                              dgamma ? partial_gamma.data() + b * cols : nullptr,
                              dbeta ? partial_beta.data() + b * cols : nullptr);
  });
  for (auto [out, partial] : {std::pair{dgamma, &partial_gamma}, std::pair{dbeta, &partial_beta}}) {
    if (!out) continue;
    std::fill_n(out, cols, T(0));
    for (int64_t b = 0; b < blocks; ++b)
      for (int64_t c = 0; c < cols; ++c) out[c] += (*partial)[static_cast<size_t>(b * cols + c)];
  }
}

}  // namespace

void CpuBackend::softmax_forward(DType dtype, int64_t rows, int64_t cols, const void* x, const void* mask,
                                 int64_t rows_per_mask, void* y) {
  dispatch_float(dtype, "softmax_forward", [&](auto tag) {
    using T = decltype(tag);
    parallel_for(rows, row_grain(cols), [&](int64_t r0, int64_t r1) {
      softmax_forward_kernel(r0, r1, cols, static_cast<const T*>(x), static_cast<const T*>(mask), rows_per_mask,
                             static_cast<T*>(y));
    });
  });
}

void CpuBackend::softmax_backward(DType dtype, int64_t rows, int64_t cols, const void* y, const void* dy, void* dx) {
  dispatch_float(dtype, "softmax_backward", [&](auto tag) {
    using T = decltype(tag);
    parallel_for(rows, row_grain(cols), [&](int64_t r0, int64_t r1) {
      softmax_backward_kernel(r0, r1, cols, static_cast<const T*>(y), static_cast<const T*>(dy), static_cast<T*>(dx));
    });
  });
}

void CpuBackend::layernorm_forward(DType dtype, int64_t rows, int64_t cols, double eps, const void* x,
                                   const void* gamma, const void* beta, void* y, void* mean, void* rstd) {
  dispatch_float(dtype, "layernorm_forward", [&](auto tag) {
    using T = decltype(tag);
    parallel_for(rows, row_grain(cols), [&](int64_t r0, int64_t r1) {
      layernorm_forward_kernel(r0, r1, cols, static_cast<T>(eps), static_cast<const T*>(x),
                               static_cast<const T*>(gamma), static_cast<const T*>(beta), static_cast<T*>(y),
                               static_cast<T*>(mean), static_cast<T*>(rstd));
    });
  });
}

void CpuBackend::layernorm_backward(DType dtype, int64_t rows, int64_t cols, const void* x, const void* gamma,
                                    const void* mean, const void* rstd, const void* dy, void* dx, void* dgamma,
                                    void* dbeta) {
  dispatch_float(dtype, "layernorm_backward", [&](auto tag) {
    using T = decltype(tag);
    layernorm_backward_rows(rows, cols, static_cast<const T*>(x), static_cast<const T*>(gamma),
                            static_cast<const T*>(mean), static_cast<const T*>(rstd), static_cast<const T*>(dy),
                            static_cast<T*>(dx), static_cast<T*>(dgamma), static_cast<T*>(dbeta));
  });
}

// ---------------------------------------------------------------------------------------------
// Embedding gather / scatter-add
// ---------------------------------------------------------------------------------------------

void CpuBackend::embedding_forward(DType dtype, int64_t n, int64_t dim, const int32_t* ids, const void* table,
                                   int64_t vocab, void* out) {
  for (int64_t i = 0; i < n; ++i)  // first, so that a bad id is reported before anything runs
    if (ids[i] < 0 || ids[i] >= vocab) throw_bad_embedding_id(ids[i], i, vocab);
  const size_t row_bytes = static_cast<size_t>(dim) * dtype_size(dtype);
  parallel_for(n, row_grain(dim), [&](int64_t r0, int64_t r1) {
    for (int64_t i = r0; i < r1; ++i)
      std::memcpy(static_cast<char*>(out) + i * row_bytes, static_cast<const char*>(table) + ids[i] * row_bytes,
                  row_bytes);
  });
}

// Rows of one id add up in index order: threads take blocks of columns and walk every id for them.
void CpuBackend::embedding_backward(DType dtype, int64_t n, int64_t dim, const int32_t* ids, const void* dout,
                                    int64_t vocab, void* dtable) {
  for (int64_t i = 0; i < n; ++i)
    if (ids[i] < 0 || ids[i] >= vocab) throw_bad_embedding_id(ids[i], i, vocab);
  dispatch_float(dtype, "embedding_backward", [&](auto tag) {
    using T = decltype(tag);
    T* dt = static_cast<T*>(dtable);
    const T* g = static_cast<const T*>(dout);
    parallel_fill(dt, vocab * dim, T(0));
    parallel_for(dim, column_grain(n), [&](int64_t c0, int64_t c1) {
      for (int64_t i = 0; i < n; ++i) {
        T* row = dt + static_cast<int64_t>(ids[i]) * dim;
        for (int64_t d = c0; d < c1; ++d) row[d] += g[i * dim + d];
      }
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Data movement
// ---------------------------------------------------------------------------------------------

void CpuBackend::permute(DType dtype, const int64_t in_shape[4], const int perm[4], const void* in, void* out) {
  const size_t es = dtype_size(dtype);
  const int64_t in_stride[4] = {in_shape[1] * in_shape[2] * in_shape[3], in_shape[2] * in_shape[3], in_shape[3], 1};
  int64_t os[4], st[4];
  for (int d = 0; d < 4; ++d) {
    os[d] = in_shape[perm[d]];
    st[d] = in_stride[perm[d]];
  }
  const char* src = static_cast<const char*>(in);
  char* dst = static_cast<char*>(out);
  // One block = some rows (i0, i1, i2) of the output, each os[3] elements long.
  parallel_for(os[0] * os[1] * os[2], row_grain(os[3]), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t i2 = r % os[2], i1 = (r / os[2]) % os[1], i0 = r / (os[2] * os[1]);
      const int64_t base = i0 * st[0] + i1 * st[1] + i2 * st[2];
      char* o = dst + r * os[3] * static_cast<int64_t>(es);
      if (st[3] == 1) {  // innermost run is contiguous: one memcpy
        std::memcpy(o, src + base * static_cast<int64_t>(es), static_cast<size_t>(os[3]) * es);
      } else if (es == 4) {
        const uint32_t* s32 = reinterpret_cast<const uint32_t*>(src) + base;
        uint32_t* o32 = reinterpret_cast<uint32_t*>(o);
        for (int64_t i3 = 0; i3 < os[3]; ++i3) o32[i3] = s32[i3 * st[3]];
      } else {
        for (int64_t i3 = 0; i3 < os[3]; ++i3)
          std::memcpy(o + i3 * static_cast<int64_t>(es), src + (base + i3 * st[3]) * static_cast<int64_t>(es), es);
      }
    }
  });
}

void CpuBackend::copy_2d(DType dtype, int64_t rows, int64_t cols, const void* src, int64_t src_ld, void* dst,
                         int64_t dst_ld) {
  const size_t es = dtype_size(dtype);
  parallel_for(rows, row_grain(cols), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r)
      std::memcpy(static_cast<char*>(dst) + r * dst_ld * static_cast<int64_t>(es),
                  static_cast<const char*>(src) + r * src_ld * static_cast<int64_t>(es), static_cast<size_t>(cols) * es);
  });
}

void CpuBackend::normalize_rows(DType dtype, int64_t rows, int64_t cols, const void* in, void* out) {
  dispatch_float(dtype, "normalize_rows", [&](auto tag) {
    using T = decltype(tag);
    const T* pi = static_cast<const T*>(in);
    T* po = static_cast<T*>(out);
    parallel_for(rows, row_grain(cols), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        T total = 0;
        for (int64_t c = 0; c < cols; ++c) total += pi[r * cols + c];
        const T inv = total != T(0) ? T(1) / total : T(0);
        for (int64_t c = 0; c < cols; ++c) po[r * cols + c] = pi[r * cols + c] * inv;
      }
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Losses
// ---------------------------------------------------------------------------------------------

void CpuBackend::cross_entropy_forward(DType dtype, int64_t n, int64_t c, const void* logits, const int32_t* labels,
                                       void* probs, void* loss) {
  softmax_forward(dtype, n, c, logits, nullptr, 1, probs);
  dispatch_float(dtype, "cross_entropy_forward", [&](auto tag) {
    using T = decltype(tag);
    const T* pl = static_cast<const T*>(logits);
    T total = 0;
    for (int64_t i = 0; i < n; ++i) {
      if (labels[i] < 0 || labels[i] >= c) throw_bad_label(labels[i], i, c);
      // -log softmax computed from the logits (log-sum-exp), not log(probs), so tiny probabilities
      // do not underflow to log(0).
      const T* row = pl + i * c;
      T mx = *std::max_element(row, row + c);
      T lse = 0;
      for (int64_t j = 0; j < c; ++j) lse += std::exp(row[j] - mx);
      total += std::log(lse) + mx - row[labels[i]];
    }
    *static_cast<T*>(loss) = n ? total / T(n) : T(0);
  });
}

void CpuBackend::cross_entropy_backward(DType dtype, int64_t n, int64_t c, const void* probs, const int32_t* labels,
                                        const void* dloss, void* dlogits) {
  dispatch_float(dtype, "cross_entropy_backward", [&](auto tag) {
    using T = decltype(tag);
    const T* pp = static_cast<const T*>(probs);
    T* pd = static_cast<T*>(dlogits);
    const T s = *static_cast<const T*>(dloss) / T(n);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < c; ++j) pd[i * c + j] = (pp[i * c + j] - (j == labels[i] ? T(1) : T(0))) * s;
  });
}

void CpuBackend::mse_forward(DType dtype, int64_t n, const void* pred, const void* target, void* loss) {
  dispatch_float(dtype, "mse_forward", [&](auto tag) {
    using T = decltype(tag);
    const T* p = static_cast<const T*>(pred);
    const T* t = static_cast<const T*>(target);
    T total = 0;
    for (int64_t i = 0; i < n; ++i) total += (p[i] - t[i]) * (p[i] - t[i]);
    *static_cast<T*>(loss) = n ? total / T(n) : T(0);
  });
}

void CpuBackend::mse_backward(DType dtype, int64_t n, const void* pred, const void* target, const void* dloss,
                              void* dpred) {
  dispatch_float(dtype, "mse_backward", [&](auto tag) {
    using T = decltype(tag);
    const T* p = static_cast<const T*>(pred);
    const T* t = static_cast<const T*>(target);
    T* d = static_cast<T*>(dpred);
    const T s = T(2) * *static_cast<const T*>(dloss) / T(n);
    for (int64_t i = 0; i < n; ++i) d[i] = (p[i] - t[i]) * s;
  });
}

// ---------------------------------------------------------------------------------------------
// AdamW
// ---------------------------------------------------------------------------------------------

namespace {

template <class T>
UNIPELT_CPU_KERNEL void adamw_kernel(int64_t n, T* p, const T* g, T* m, T* v, const AdamWStep& st) {
  const T beta1 = T(st.beta1), beta2 = T(st.beta2), bc1 = T(st.bias_correction1), bc2 = T(st.bias_correction2);
  const T one_minus_beta1 = T(1 - st.beta1), one_minus_beta2 = T(1 - st.beta2);  // in double, then rounded
  const T lr = T(st.lr), eps = T(st.eps), wd = T(st.weight_decay);
  for (int64_t i = 0; i < n; ++i) {
    m[i] = beta1 * m[i] + one_minus_beta1 * g[i];
    v[i] = beta2 * v[i] + one_minus_beta2 * g[i] * g[i];
    const T mhat = m[i] / bc1;
    const T vhat = v[i] / bc2;
    p[i] -= lr * (mhat / (std::sqrt(vhat) + eps) + wd * p[i]);
  }
}

}  // namespace

void CpuBackend::adamw_update(DType dtype, int64_t n, void* param, const void* grad, void* m, void* v,
                              const AdamWStep& st) {
  dispatch_float(dtype, "adamw_update", [&](auto tag) {
    using T = decltype(tag);
    T* p = static_cast<T*>(param);
    const T* g = static_cast<const T*>(grad);
    T* pm = static_cast<T*>(m);
    T* pv = static_cast<T*>(v);
    parallel_for(n, kElementGrain, [&](int64_t b, int64_t e) { adamw_kernel(e - b, p + b, g + b, pm + b, pv + b, st); });
  });
}

}  // namespace unipelt

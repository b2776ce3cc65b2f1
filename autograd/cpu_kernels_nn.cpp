// CPU backend, part 2: softmax, layer norm, embedding, dropout, data movement, losses, AdamW.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "autograd/cpu_backend.h"

namespace unipelt {

// ---------------------------------------------------------------------------------------------
// Softmax over rows: y = exp(x + mask - max) / sum. Backward: dx = y ⊙ (dy - Σ dy·y).
// ---------------------------------------------------------------------------------------------

void CpuBackend::softmax_forward(DType dtype, int64_t rows, int64_t cols, const void* x, const void* mask,
                                 int64_t rows_per_mask, void* y) {
  dispatch_float(dtype, "softmax_forward", [&](auto tag) {
    using T = decltype(tag);
    const T* px = static_cast<const T*>(x);
    const T* pm = static_cast<const T*>(mask);
    T* py = static_cast<T*>(y);
    for (int64_t r = 0; r < rows; ++r) {
      const T* xr = px + r * cols;
      const T* mr = pm ? pm + (r / rows_per_mask) * cols : nullptr;
      T* yr = py + r * cols;
      T mx = -INFINITY;
      for (int64_t c = 0; c < cols; ++c) {
        yr[c] = mr ? xr[c] + mr[c] : xr[c];
        mx = std::max(mx, yr[c]);
      }
      T total = 0;
      for (int64_t c = 0; c < cols; ++c) total += (yr[c] = std::exp(yr[c] - mx));
      const T inv = T(1) / total;
      for (int64_t c = 0; c < cols; ++c) yr[c] *= inv;
    }
  });
}

void CpuBackend::softmax_backward(DType dtype, int64_t rows, int64_t cols, const void* y, const void* dy, void* dx) {
  dispatch_float(dtype, "softmax_backward", [&](auto tag) {
    using T = decltype(tag);
    const T* py = static_cast<const T*>(y);
    const T* pg = static_cast<const T*>(dy);
    T* pd = static_cast<T*>(dx);
    for (int64_t r = 0; r < rows; ++r) {
      const T* yr = py + r * cols;
      const T* gr = pg + r * cols;
      T* dr = pd + r * cols;
      T inner = 0;
      for (int64_t c = 0; c < cols; ++c) inner += yr[c] * gr[c];
      for (int64_t c = 0; c < cols; ++c) dr[c] = yr[c] * (gr[c] - inner);
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Layer norm (derivation in docs/autograd.md). With x̂ = (x - μ)·rstd and g = dy ⊙ γ:
//   dx = rstd · (g - mean(g) - x̂ · mean(g ⊙ x̂)),  dγ = Σ_rows dy ⊙ x̂,  dβ = Σ_rows dy.
// ---------------------------------------------------------------------------------------------

void CpuBackend::layernorm_forward(DType dtype, int64_t rows, int64_t cols, double eps, const void* x,
                                   const void* gamma, const void* beta, void* y, void* mean, void* rstd) {
  dispatch_float(dtype, "layernorm_forward", [&](auto tag) {
    using T = decltype(tag);
    const T* px = static_cast<const T*>(x);
    const T* pg = static_cast<const T*>(gamma);
    const T* pb = static_cast<const T*>(beta);
    T* py = static_cast<T*>(y);
    T* pm = static_cast<T*>(mean);
    T* pr = static_cast<T*>(rstd);
    for (int64_t r = 0; r < rows; ++r) {
      const T* xr = px + r * cols;
      T mu = 0;
      for (int64_t c = 0; c < cols; ++c) mu += xr[c];
      mu /= T(cols);
      T var = 0;
      for (int64_t c = 0; c < cols; ++c) var += (xr[c] - mu) * (xr[c] - mu);
      var /= T(cols);
      const T rs = T(1) / std::sqrt(var + T(eps));
      T* yr = py + r * cols;
      for (int64_t c = 0; c < cols; ++c) yr[c] = (xr[c] - mu) * rs * pg[c] + pb[c];
      pm[r] = mu;
      pr[r] = rs;
    }
  });
}

void CpuBackend::layernorm_backward(DType dtype, int64_t rows, int64_t cols, const void* x, const void* gamma,
                                    const void* mean, const void* rstd, const void* dy, void* dx, void* dgamma,
                                    void* dbeta) {
  dispatch_float(dtype, "layernorm_backward", [&](auto tag) {
    using T = decltype(tag);
    const T* px = static_cast<const T*>(x);
    const T* pg = static_cast<const T*>(gamma);
    const T* pm = static_cast<const T*>(mean);
    const T* pr = static_cast<const T*>(rstd);
    const T* pdy = static_cast<const T*>(dy);
    T* pdx = static_cast<T*>(dx);
    T* pdg = static_cast<T*>(dgamma);
    T* pdb = static_cast<T*>(dbeta);
    if (pdg) std::fill_n(pdg, cols, T(0));
    if (pdb) std::fill_n(pdb, cols, T(0));
    for (int64_t r = 0; r < rows; ++r) {
      const T* xr = px + r * cols;
      const T* gr = pdy + r * cols;
      const T mu = pm[r], rs = pr[r];
      T mean_g = 0, mean_gx = 0;
      for (int64_t c = 0; c < cols; ++c) {
        const T xhat = (xr[c] - mu) * rs;
        const T g = gr[c] * pg[c];
        mean_g += g;
        mean_gx += g * xhat;
        if (pdg) pdg[c] += gr[c] * xhat;
        if (pdb) pdb[c] += gr[c];
      }
      if (!pdx) continue;
      mean_g /= T(cols);
      mean_gx /= T(cols);
      T* dr = pdx + r * cols;
      for (int64_t c = 0; c < cols; ++c) {
        const T xhat = (xr[c] - mu) * rs;
        dr[c] = rs * (gr[c] * pg[c] - mean_g - xhat * mean_gx);
      }
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Embedding gather / scatter-add
// ---------------------------------------------------------------------------------------------

void CpuBackend::embedding_forward(DType dtype, int64_t n, int64_t dim, const int32_t* ids, const void* table,
                                   int64_t vocab, void* out) {
  const size_t row_bytes = static_cast<size_t>(dim) * dtype_size(dtype);
  for (int64_t i = 0; i < n; ++i) {
    if (ids[i] < 0 || ids[i] >= vocab)
      throw std::out_of_range("embedding: id " + std::to_string(ids[i]) + " at position " + std::to_string(i) +
                              " is outside the table of " + std::to_string(vocab) + " rows");
    std::memcpy(static_cast<char*>(out) + i * row_bytes, static_cast<const char*>(table) + ids[i] * row_bytes,
                row_bytes);
  }
}

void CpuBackend::embedding_backward(DType dtype, int64_t n, int64_t dim, const int32_t* ids, const void* dout,
                                    int64_t vocab, void* dtable) {
  dispatch_float(dtype, "embedding_backward", [&](auto tag) {
    using T = decltype(tag);
    T* dt = static_cast<T*>(dtable);
    const T* g = static_cast<const T*>(dout);
    std::fill_n(dt, vocab * dim, T(0));
    for (int64_t i = 0; i < n; ++i) {
      if (ids[i] < 0 || ids[i] >= vocab)
        throw std::out_of_range("embedding: id " + std::to_string(ids[i]) + " at position " + std::to_string(i) +
                                " is outside the table of " + std::to_string(vocab) + " rows");
      T* row = dt + static_cast<int64_t>(ids[i]) * dim;
      for (int64_t d = 0; d < dim; ++d) row[d] += g[i * dim + d];
    }
  });
}

void CpuBackend::dropout_mask(DType dtype, int64_t n, double p, uint64_t seed, void* mask) {
  dispatch_float(dtype, "dropout_mask", [&](auto tag) {
    using T = decltype(tag);
    T* pm = static_cast<T*>(mask);
    const T keep_scale = static_cast<T>(1.0 / (1.0 - p));
    for (int64_t i = 0; i < n; ++i) pm[i] = dropout_uniform(seed, i) >= p ? keep_scale : T(0);
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
  int64_t o = 0;
  for (int64_t i0 = 0; i0 < os[0]; ++i0)
    for (int64_t i1 = 0; i1 < os[1]; ++i1)
      for (int64_t i2 = 0; i2 < os[2]; ++i2) {
        const int64_t base = i0 * st[0] + i1 * st[1] + i2 * st[2];
        if (st[3] == 1) {  // innermost run is contiguous: one memcpy
          std::memcpy(dst + o * es, src + base * es, static_cast<size_t>(os[3]) * es);
          o += os[3];
        } else {
          for (int64_t i3 = 0; i3 < os[3]; ++i3, ++o) std::memcpy(dst + o * es, src + (base + i3 * st[3]) * es, es);
        }
      }
}

void CpuBackend::copy_2d(DType dtype, int64_t rows, int64_t cols, const void* src, int64_t src_ld, void* dst,
                         int64_t dst_ld) {
  const size_t es = dtype_size(dtype);
  for (int64_t r = 0; r < rows; ++r)
    std::memcpy(static_cast<char*>(dst) + r * dst_ld * es, static_cast<const char*>(src) + r * src_ld * es,
                static_cast<size_t>(cols) * es);
}

void CpuBackend::normalize_rows(DType dtype, int64_t rows, int64_t cols, const void* in, void* out) {
  dispatch_float(dtype, "normalize_rows", [&](auto tag) {
    using T = decltype(tag);
    const T* pi = static_cast<const T*>(in);
    T* po = static_cast<T*>(out);
    for (int64_t r = 0; r < rows; ++r) {
      T total = 0;
      for (int64_t c = 0; c < cols; ++c) total += pi[r * cols + c];
      const T inv = total != T(0) ? T(1) / total : T(0);
      for (int64_t c = 0; c < cols; ++c) po[r * cols + c] = pi[r * cols + c] * inv;
    }
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
      if (labels[i] < 0 || labels[i] >= c)
        throw std::out_of_range("cross_entropy: label " + std::to_string(labels[i]) + " of example " +
                                std::to_string(i) + " is outside [0, " + std::to_string(c) + ")");
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

void CpuBackend::adamw_update(DType dtype, int64_t n, void* param, const void* grad, void* m, void* v,
                              const AdamWStep& st) {
  dispatch_float(dtype, "adamw_update", [&](auto tag) {
    using T = decltype(tag);
    T* p = static_cast<T*>(param);
    const T* g = static_cast<const T*>(grad);
    T* pm = static_cast<T*>(m);
    T* pv = static_cast<T*>(v);
    for (int64_t i = 0; i < n; ++i) {
      pm[i] = T(st.beta1) * pm[i] + T(1 - st.beta1) * g[i];
      pv[i] = T(st.beta2) * pv[i] + T(1 - st.beta2) * g[i] * g[i];
      const T mhat = pm[i] / T(st.bias_correction1);
      const T vhat = pv[i] / T(st.bias_correction2);
      p[i] -= T(st.lr) * (mhat / (std::sqrt(vhat) + T(st.eps)) + T(st.weight_decay) * p[i]);
    }
  });
}

}  // namespace unipelt

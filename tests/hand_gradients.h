// The backward of every PELT method, written out by hand as plain loops in float64: no autograd, no
// BLAS, no broadcasting. Each function is one section of docs/gradients.md, line for line, in the
// code's notation (row vectors, y = x·Wᵀ + b, W [out, in]); tests/test_hand_gradients*.cpp compare each
// with the tape's gradients. This file: the array type, LayerNorm, the gate, the adapter and LoRA;
// tests/hand_gradients_prefix_heads.h: prefix-tuning, BitFit and the heads.
//
// Every function takes the forward's inputs and the gradient arriving at its output (dL/d output,
// written d<name>), recomputes the forward, and returns the forward's output with the gradient of
// every input and parameter. Shapes are in the comments: B examples, T tokens, H hidden, h heads,
// d = H/h, m adapter bottleneck, r LoRA rank, L prefix length, C labels.
#pragma once

#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <vector>

#include "autograd/tensor.h"
#include "pelt/config.h"

namespace unipelt::hand {

// A row-major float64 array with its shape: the reference code's only data type.
// a(i, j, k) reads element [i, j, k]; a[i] is the flat element i.
struct Array {
  Shape shape;
  std::vector<double> v;

  Array() = default;
  explicit Array(Shape s) : shape(std::move(s)), v(static_cast<size_t>(shape_numel(shape)), 0.0) {}
  int64_t size(size_t axis) const { return shape[axis]; }
  int64_t numel() const { return static_cast<int64_t>(v.size()); }
  double& operator[](int64_t i) { return v[static_cast<size_t>(i)]; }
  double operator[](int64_t i) const { return v[static_cast<size_t>(i)]; }
  template <class... I>
  double& operator()(I... i) { return v[offset({static_cast<int64_t>(i)...})]; }
  template <class... I>
  double operator()(I... i) const { return v[offset({static_cast<int64_t>(i)...})]; }

 private:
  size_t offset(std::initializer_list<int64_t> index) const {
    int64_t flat = 0;
    size_t axis = 0;
    for (int64_t i : index) flat = flat * shape[axis++] + i;
    return static_cast<size_t>(flat);
  }
};

inline double sigmoid(double z) { return 1.0 / (1.0 + std::exp(-z)); }

// ---------------------------------------------------------------------------------------------------
// Building blocks: LayerNorm (docs/autograd.md §6) over the last axis of x [rows, N] (any leading dims).
// ---------------------------------------------------------------------------------------------------

struct LayerNormGrads {
  Array dx, dgamma, dbeta;
};

inline Array layer_norm(const Array& x, const Array& gamma, const Array& beta, double eps) {
  const int64_t N = gamma.numel(), rows = x.numel() / N;
  Array y(x.shape);
  for (int64_t row = 0; row < rows; ++row) {
    double mu = 0, var = 0;
    for (int64_t j = 0; j < N; ++j) mu += x[row * N + j] / N;
    for (int64_t j = 0; j < N; ++j) var += (x[row * N + j] - mu) * (x[row * N + j] - mu) / N;
    const double rstd = 1.0 / std::sqrt(var + eps);
    for (int64_t j = 0; j < N; ++j) y[row * N + j] = gamma[j] * (x[row * N + j] - mu) * rstd + beta[j];
  }
  return y;
}

// dx = rstd·(g − mean(g) − x̂·mean(g·x̂)) with g = dy·γ;  dγ = Σ_rows dy·x̂;  dβ = Σ_rows dy.
inline LayerNormGrads layer_norm_backward(const Array& x, const Array& gamma, double eps, const Array& dy) {
  const int64_t N = gamma.numel(), rows = x.numel() / N;
  LayerNormGrads out{Array(x.shape), Array(gamma.shape), Array(gamma.shape)};
  std::vector<double> xhat(static_cast<size_t>(N)), g(static_cast<size_t>(N));
  for (int64_t row = 0; row < rows; ++row) {
    double mu = 0, var = 0;
    for (int64_t j = 0; j < N; ++j) mu += x[row * N + j] / N;
    for (int64_t j = 0; j < N; ++j) var += (x[row * N + j] - mu) * (x[row * N + j] - mu) / N;
    const double rstd = 1.0 / std::sqrt(var + eps);
    double mean_g = 0, mean_gx = 0;
    for (int64_t j = 0; j < N; ++j) {
      const size_t k = static_cast<size_t>(j);
      xhat[k] = (x[row * N + j] - mu) * rstd;
      g[k] = dy[row * N + j] * gamma[j];
      mean_g += g[k] / N;
      mean_gx += g[k] * xhat[k] / N;
      out.dgamma[j] += dy[row * N + j] * xhat[k];
      out.dbeta[j] += dy[row * N + j];
    }
    for (int64_t j = 0; j < N; ++j) {
      const size_t k = static_cast<size_t>(j);
      out.dx[row * N + j] = rstd * (g[k] - mean_g - xhat[k] * mean_gx);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// 1. The gate: g[b] = Σ_t ω[b,t]·σ(w·h[b,t] + c)                          docs/gradients.md §1
// ---------------------------------------------------------------------------------------------------

struct GateParams {
  Array w;         // [1,H]   (score.weight)
  double c = 0.0;  //         (score.bias)
};

struct GateGrads {
  Array g;   // forward: [B]
  Array dw;  // [1,H]
  double dc = 0.0;
  Array dh;  // [B,T,H]
};

// ω[b,t]: masked = mask[b,t] / Σ_t mask[b,t] (0 for a row with no real token); all = 1/T.
inline Array pooling_weights(const Array& mask, GatePool pool) {
  const int64_t B = mask.size(0), T = mask.size(1);
  Array omega({B, T});
  for (int64_t b = 0; b < B; ++b) {
    double real = 0;
    for (int64_t t = 0; t < T; ++t) real += mask(b, t);
    for (int64_t t = 0; t < T; ++t)
      omega(b, t) = pool == GatePool::All ? 1.0 / T : (real > 0 ? mask(b, t) / real : 0.0);
  }
  return omega;
}

// dz[b,t] = dg[b]·ω[b,t]·s(1 − s), s = σ(z[b,t]);  dw = Σ_{b,t} dz·h[b,t];  dc = Σ dz;  dh[b,t] = dz·w.
inline GateGrads gate_backward(const Array& h, const Array& mask, GatePool pool, const GateParams& p,
                               const Array& dg) {
  const int64_t B = h.size(0), T = h.size(1), H = h.size(2);
  const Array omega = pooling_weights(mask, pool);
  GateGrads out{Array({B}), Array({1, H}), 0.0, Array(h.shape)};
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t) {
      double z = p.c;
      for (int64_t i = 0; i < H; ++i) z += p.w(0, i) * h(b, t, i);
      const double s = sigmoid(z);
      out.g(b) += omega(b, t) * s;
      const double dz = dg(b) * omega(b, t) * s * (1 - s);
      out.dc += dz;
      for (int64_t i = 0; i < H; ++i) {
        out.dw(0, i) += dz * h(b, t, i);
        out.dh(b, t, i) = dz * p.w(0, i);
      }
    }
  return out;
}

inline Array gate_forward(const Array& h, const Array& mask, GatePool pool, const GateParams& p) {
  return gate_backward(h, mask, pool, p, Array({h.size(0)})).g;
}

// ---------------------------------------------------------------------------------------------------
// 2. The adapter: x = LN(f + a), h_A = ReLU(x·W_downᵀ + b_down)·W_upᵀ + b_up, out = LN(g_A·h_A + f + a)
//                                                                          docs/gradients.md §2
// ---------------------------------------------------------------------------------------------------

struct AdapterParams {
  Array w_down, b_down;  // [m,H], [m]
  Array w_up, b_up;      // [H,m], [H]
  bool gated = false;
  GateParams gate;       // reads x
};

struct AdapterGrads {
  Array out;                                // forward: [B,T,H]
  Array g;                                  // forward: g_A [B] (ones when ungated)
  Array d_residual;                         // dL/df = dL/da [B,T,H]
  Array dgamma, dbeta;                      // [H]: the sum of both LayerNorm uses
  Array dgamma_first, dbeta_first;          // use 1, LN(f + a)
  Array dgamma_second, dbeta_second;        // use 2, LN(g_A·h_A + f + a)
  Array dw_down, db_down, dw_up, db_up;
  GateGrads gate;                           // dw, dc of the gate (and its dh, part of dx)
};

inline AdapterGrads adapter_backward(const Array& f, const Array& a, const Array& gamma, const Array& beta,
                                     double eps, const AdapterParams& p, const Array& mask, GatePool pool,
                                     const Array& dout) {
  const int64_t B = f.size(0), T = f.size(1), H = f.size(2), m = p.w_down.size(0);
  AdapterGrads r;
  // Forward.
  Array residual(f.shape);  // f + a
  for (int64_t k = 0; k < f.numel(); ++k) residual[k] = f[k] + a[k];
  const Array x = layer_norm(residual, gamma, beta, eps);
  Array z({B, T, m}), u({B, T, m}), h_a({B, T, H});
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t) {
      for (int64_t j = 0; j < m; ++j) {
        z(b, t, j) = p.b_down[j];
        for (int64_t i = 0; i < H; ++i) z(b, t, j) += x(b, t, i) * p.w_down(j, i);
        u(b, t, j) = z(b, t, j) > 0 ? z(b, t, j) : 0.0;
      }
      for (int64_t i = 0; i < H; ++i) {
        h_a(b, t, i) = p.b_up[i];
        for (int64_t j = 0; j < m; ++j) h_a(b, t, i) += u(b, t, j) * p.w_up(i, j);
      }
    }
  r.g = Array({B});
  if (p.gated) r.g = gate_forward(x, mask, pool, p.gate);
  else for (int64_t b = 0; b < B; ++b) r.g(b) = 1.0;
  Array y(f.shape);  // g_A·h_A + f + a, the second LayerNorm's input
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t)
      for (int64_t i = 0; i < H; ++i) y(b, t, i) = r.g(b) * h_a(b, t, i) + residual(b, t, i);
  r.out = layer_norm(y, gamma, beta, eps);

  // Backward. Second LayerNorm use: dy, and its share of dγ, dβ.
  LayerNormGrads second = layer_norm_backward(y, gamma, eps, dout);
  // y = g_A·h_A + residual:  dh_A = g_A·dy,  dg_A[b] = Σ_{t,i} dy·h_A.
  Array dh_a(f.shape), dg({B});
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t)
      for (int64_t i = 0; i < H; ++i) {
        dh_a(b, t, i) = r.g(b) * second.dx(b, t, i);
        dg(b) += second.dx(b, t, i) * h_a(b, t, i);
      }
  // Up-projection, ReLU, down-projection.
  r.dw_up = Array(p.w_up.shape);
  r.db_up = Array(p.b_up.shape);
  r.dw_down = Array(p.w_down.shape);
  r.db_down = Array(p.b_down.shape);
  Array dx(f.shape);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t) {
      std::vector<double> dz(static_cast<size_t>(m), 0.0);
      for (int64_t j = 0; j < m; ++j) {
        double du = 0;
        for (int64_t i = 0; i < H; ++i) {
          r.dw_up(i, j) += dh_a(b, t, i) * u(b, t, j);
          du += dh_a(b, t, i) * p.w_up(i, j);
        }
        dz[static_cast<size_t>(j)] = z(b, t, j) > 0 ? du : 0.0;
        r.db_down[j] += dz[static_cast<size_t>(j)];
      }
      for (int64_t i = 0; i < H; ++i) {
        r.db_up[i] += dh_a(b, t, i);
        for (int64_t j = 0; j < m; ++j) {
          r.dw_down(j, i) += dz[static_cast<size_t>(j)] * x(b, t, i);
          dx(b, t, i) += dz[static_cast<size_t>(j)] * p.w_down(j, i);
        }
      }
    }
  // The gate reads x too: its dh joins dx.
  if (p.gated) {
    r.gate = gate_backward(x, mask, pool, p.gate, dg);
    for (int64_t k = 0; k < dx.numel(); ++k) dx[k] += r.gate.dh[k];
  }
  // First LayerNorm use, x = LN(f + a); the residual also reaches y directly.
  LayerNormGrads first = layer_norm_backward(residual, gamma, eps, dx);
  r.d_residual = Array(f.shape);
  for (int64_t k = 0; k < f.numel(); ++k) r.d_residual[k] = second.dx[k] + first.dx[k];
  r.dgamma_first = first.dgamma, r.dbeta_first = first.dbeta;
  r.dgamma_second = second.dgamma, r.dbeta_second = second.dbeta;
  r.dgamma = Array(gamma.shape), r.dbeta = Array(gamma.shape);
  for (int64_t i = 0; i < H; ++i) {
    r.dgamma[i] = first.dgamma[i] + second.dgamma[i];
    r.dbeta[i] = first.dbeta[i] + second.dbeta[i];
  }
  return r;
}

// ---------------------------------------------------------------------------------------------------
// 3. LoRA: Δ = s·(x·Aᵀ)·Bᵀ, s = g_L (gated, reading x) or α/r             docs/gradients.md §3
// ---------------------------------------------------------------------------------------------------

struct LoraParams {
  Array lora_a, lora_b;  // A [r,H], B [H,r]
  double scaling = 2.0;  // α/r, when ungated
  bool gated = false;
  GateParams gate;       // reads x
};

struct LoraGrads {
  Array delta;  // forward: [B,T,H]
  Array s;      // forward: the scale per example [B]
  Array d_lora_a, d_lora_b, dx;
  GateGrads gate;
};

inline LoraGrads lora_backward(const Array& x, const LoraParams& p, const Array& mask, GatePool pool,
                               const Array& ddelta) {
  const int64_t B = x.size(0), T = x.size(1), H = x.size(2), r = p.lora_a.size(0);
  LoraGrads out{Array(x.shape), Array({B}), Array(p.lora_a.shape), Array(p.lora_b.shape), Array(x.shape), {}};
  if (p.gated) out.s = gate_forward(x, mask, pool, p.gate);
  else for (int64_t b = 0; b < B; ++b) out.s(b) = p.scaling;
  Array ds({B});
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t) {
      std::vector<double> u(static_cast<size_t>(r), 0.0), du(static_cast<size_t>(r), 0.0);  // x·Aᵀ and its grad
      for (int64_t k = 0; k < r; ++k)
        for (int64_t i = 0; i < H; ++i) u[static_cast<size_t>(k)] += x(b, t, i) * p.lora_a(k, i);
      for (int64_t i = 0; i < H; ++i) {
        double low_rank = 0;  // (x·Aᵀ·Bᵀ)[i]
        for (int64_t k = 0; k < r; ++k) low_rank += u[static_cast<size_t>(k)] * p.lora_b(i, k);
        out.delta(b, t, i) = out.s(b) * low_rank;
        ds(b) += ddelta(b, t, i) * low_rank;
        const double dl = out.s(b) * ddelta(b, t, i);  // dL/d(low_rank)
        for (int64_t k = 0; k < r; ++k) {
          out.d_lora_b(i, k) += dl * u[static_cast<size_t>(k)];
          du[static_cast<size_t>(k)] += dl * p.lora_b(i, k);
        }
      }
      for (int64_t k = 0; k < r; ++k)
        for (int64_t i = 0; i < H; ++i) {
          out.d_lora_a(k, i) += du[static_cast<size_t>(k)] * x(b, t, i);
          out.dx(b, t, i) += du[static_cast<size_t>(k)] * p.lora_a(k, i);
        }
    }
  if (p.gated) {  // s = g_L reads x: the gate's dh is the second part of dx
    out.gate = gate_backward(x, mask, pool, p.gate, ds);
    for (int64_t k = 0; k < x.numel(); ++k) out.dx[k] += out.gate.dh[k];
  }
  return out;
}

}  // namespace unipelt::hand

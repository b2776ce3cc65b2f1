// The backward of prefix-tuning (through one layer's attention), BitFit (through BERT's feed-forward
// sublayer) and the classification/regression heads, as plain float64 loops: docs/gradients.md §4-6.
// The conventions are those of tests/hand_gradients.h.
#pragma once

#include <algorithm>
#include <cmath>
#include <numbers>
#include <vector>

#include "tests/hand_gradients.h"

namespace unipelt::hand {

// ---------------------------------------------------------------------------------------------------
// 4. Prefix-tuning through one layer's attention                          docs/gradients.md §4
//    P = tanh(E·W_1ᵀ + b_1)·W_2ᵀ + b_2 [L, n·2·H];  K' = [g_P·P_K ; k], V' = [g_P·P_V ; v];
//    ctx = softmax((q/√d)·K'ᵀ + [0_L ; m])·V'
// ---------------------------------------------------------------------------------------------------

struct PrefixParams {
  Array embed;          // E [L,H]
  Array w1, b1;         // [mid,H], [mid]
  Array w2, b2;         // [n·2·H, mid], [n·2·H]
  int layers = 1, heads = 1;
  bool gated = false;
  GateParams gate;      // this layer's gate, reading the layer input x
};

struct PrefixGrads {
  Array context;         // forward: [B,h,T,d]
  Array g;               // forward: g_P [B] (ones when ungated)
  Array d_embed, dw1, db1, dw2, db2;
  Array dq, dk, dv;      // [B,h,T,d]
  GateGrads gate;        // dw, dc, and dh = the gate's dL/dx [B,T,H]
};

inline PrefixGrads prefix_attention_backward(const PrefixParams& p, int layer, const Array& x, const Array& mask,
                                             GatePool pool, const Array& q, const Array& k, const Array& v,
                                             const Array& dcontext) {
  const int64_t L = p.embed.size(0), Hd = p.embed.size(1), mid = p.w1.size(0), cols = p.w2.size(0);
  const int64_t B = q.size(0), h = q.size(1), T = q.size(2), d = q.size(3), S = L + T;
  const double inv_sqrt_d = 1.0 / std::sqrt(static_cast<double>(d));
  // The column of P holding (layer, key or value, head, component j).
  auto column = [&](int kv, int64_t head, int64_t j) { return ((2 * layer + kv) * h + head) * d + j; };

  // Forward: the MLP, then this layer's gated keys and values prepended.
  Array th({L, mid}), P({L, cols});
  for (int64_t l = 0; l < L; ++l)
    for (int64_t j = 0; j < mid; ++j) {
      double pre = p.b1[j];
      for (int64_t i = 0; i < Hd; ++i) pre += p.embed(l, i) * p.w1(j, i);
      th(l, j) = std::tanh(pre);
    }
  for (int64_t l = 0; l < L; ++l)
    for (int64_t c = 0; c < cols; ++c) {
      P(l, c) = p.b2[c];
      for (int64_t j = 0; j < mid; ++j) P(l, c) += th(l, j) * p.w2(c, j);
    }
  PrefixGrads r;
  r.g = Array({B});
  if (p.gated) r.g = gate_forward(x, mask, pool, p.gate);
  else for (int64_t b = 0; b < B; ++b) r.g(b) = 1.0;
  Array keys({B, h, S, d}), values({B, h, S, d});  // K', V'
  for (int64_t b = 0; b < B; ++b)
    for (int64_t hd = 0; hd < h; ++hd)
      for (int64_t s = 0; s < S; ++s)
        for (int64_t j = 0; j < d; ++j) {
          keys(b, hd, s, j) = s < L ? r.g(b) * P(s, column(0, hd, j)) : k(b, hd, s - L, j);
          values(b, hd, s, j) = s < L ? r.g(b) * P(s, column(1, hd, j)) : v(b, hd, s - L, j);
        }
  // Scores and softmax; prefix positions have additive mask 0, padded keys −10000.
  Array probs({B, h, T, S});
  for (int64_t b = 0; b < B; ++b)
    for (int64_t hd = 0; hd < h; ++hd)
      for (int64_t t = 0; t < T; ++t) {
        double top = -1e300;
        for (int64_t s = 0; s < S; ++s) {
          double score = s < L ? 0.0 : (1.0 - mask(b, s - L)) * -10000.0;
          for (int64_t j = 0; j < d; ++j) score += q(b, hd, t, j) * inv_sqrt_d * keys(b, hd, s, j);
          probs(b, hd, t, s) = score;
          top = std::max(top, score);
        }
        double total = 0;
        for (int64_t s = 0; s < S; ++s) total += (probs(b, hd, t, s) = std::exp(probs(b, hd, t, s) - top));
        for (int64_t s = 0; s < S; ++s) probs(b, hd, t, s) /= total;
      }
  r.context = Array({B, h, T, d});
  for (int64_t b = 0; b < B; ++b)
    for (int64_t hd = 0; hd < h; ++hd)
      for (int64_t t = 0; t < T; ++t)
        for (int64_t j = 0; j < d; ++j)
          for (int64_t s = 0; s < S; ++s) r.context(b, hd, t, j) += probs(b, hd, t, s) * values(b, hd, s, j);

  // Backward through the attention: dprobs, dV', the softmax, dq, dK'.
  Array dkeys({B, h, S, d}), dvalues({B, h, S, d});
  r.dq = Array(q.shape);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t hd = 0; hd < h; ++hd)
      for (int64_t t = 0; t < T; ++t) {
        std::vector<double> dprobs(static_cast<size_t>(S), 0.0);
        double dot = 0;  // Σ_s dprobs·probs
        for (int64_t s = 0; s < S; ++s) {
          for (int64_t j = 0; j < d; ++j) {
            dprobs[static_cast<size_t>(s)] += dcontext(b, hd, t, j) * values(b, hd, s, j);
            dvalues(b, hd, s, j) += probs(b, hd, t, s) * dcontext(b, hd, t, j);
          }
          dot += dprobs[static_cast<size_t>(s)] * probs(b, hd, t, s);
        }
        for (int64_t s = 0; s < S; ++s) {
          const double dscore = probs(b, hd, t, s) * (dprobs[static_cast<size_t>(s)] - dot);
          for (int64_t j = 0; j < d; ++j) {
            r.dq(b, hd, t, j) += dscore * keys(b, hd, s, j) * inv_sqrt_d;
            dkeys(b, hd, s, j) += dscore * q(b, hd, t, j) * inv_sqrt_d;
          }
        }
      }
  // Split K', V' back: the sequence's own rows go to k and v, the prefix rows to g_P and P.
  r.dk = Array(k.shape), r.dv = Array(v.shape);
  Array dP({L, cols}), dg({B});
  for (int64_t b = 0; b < B; ++b)
    for (int64_t hd = 0; hd < h; ++hd)
      for (int64_t s = 0; s < S; ++s)
        for (int64_t j = 0; j < d; ++j) {
          if (s >= L) {
            r.dk(b, hd, s - L, j) = dkeys(b, hd, s, j);
            r.dv(b, hd, s - L, j) = dvalues(b, hd, s, j);
            continue;
          }
          dP(s, column(0, hd, j)) += r.g(b) * dkeys(b, hd, s, j);
          dP(s, column(1, hd, j)) += r.g(b) * dvalues(b, hd, s, j);
          dg(b) += dkeys(b, hd, s, j) * P(s, column(0, hd, j)) + dvalues(b, hd, s, j) * P(s, column(1, hd, j));
        }
  // Through the MLP: dW_2 = dPᵀ·th, dth = dP·W_2, dpre = dth·(1 − th²), dW_1 = dpreᵀ·E, dE = dpre·W_1.
  r.dw2 = Array(p.w2.shape), r.db2 = Array(p.b2.shape), r.dw1 = Array(p.w1.shape), r.db1 = Array(p.b1.shape);
  r.d_embed = Array(p.embed.shape);
  for (int64_t l = 0; l < L; ++l)
    for (int64_t j = 0; j < mid; ++j) {
      double dth = 0;
      for (int64_t c = 0; c < cols; ++c) {
        r.dw2(c, j) += dP(l, c) * th(l, j);
        dth += dP(l, c) * p.w2(c, j);
      }
      const double dpre = dth * (1 - th(l, j) * th(l, j));
      r.db1[j] += dpre;
      for (int64_t i = 0; i < Hd; ++i) {
        r.dw1(j, i) += dpre * p.embed(l, i);
        r.d_embed(l, i) += dpre * p.w1(j, i);
      }
    }
  for (int64_t l = 0; l < L; ++l)
    for (int64_t c = 0; c < cols; ++c) r.db2[c] += dP(l, c);
  if (p.gated) r.gate = gate_backward(x, mask, pool, p.gate, dg);
  return r;
}

// ---------------------------------------------------------------------------------------------------
// 5. BitFit through BERT's feed-forward sublayer, every weight frozen, every bias trained
//    out = LN(gelu(a·W_iᵀ + b_i)·W_oᵀ + b_o + a)                           docs/gradients.md §5
// ---------------------------------------------------------------------------------------------------

struct BitFitGrads {
  Array out;                        // forward: [B,T,H]
  Array db_i, db_o, dbeta, da;      // [I], [H], [H], [B,T,H]; no dW_i, dW_o, dγ: frozen
};

inline BitFitGrads bitfit_ffn_backward(const Array& a, const Array& w_i, const Array& b_i, const Array& w_o,
                                       const Array& b_o, const Array& gamma, const Array& beta, double eps,
                                       const Array& dout) {
  const int64_t B = a.size(0), T = a.size(1), H = a.size(2), I = w_i.size(0);
  const double inv_sqrt2 = 1.0 / std::sqrt(2.0), inv_sqrt_2pi = 1.0 / std::sqrt(2.0 * std::numbers::pi);
  Array z({B, T, I}), y(a.shape);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t) {
      for (int64_t j = 0; j < I; ++j) {
        z(b, t, j) = b_i[j];
        for (int64_t i = 0; i < H; ++i) z(b, t, j) += a(b, t, i) * w_i(j, i);
      }
      for (int64_t i = 0; i < H; ++i) {
        y(b, t, i) = b_o[i] + a(b, t, i);
        for (int64_t j = 0; j < I; ++j) {
          const double gelu = z(b, t, j) * 0.5 * (1 + std::erf(z(b, t, j) * inv_sqrt2));
          y(b, t, i) += gelu * w_o(i, j);
        }
      }
    }
  BitFitGrads r{layer_norm(y, gamma, beta, eps), Array(b_i.shape), Array(b_o.shape), Array(beta.shape),
                Array(a.shape)};
  LayerNormGrads ln = layer_norm_backward(y, gamma, eps, dout);
  r.dbeta = ln.dbeta;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t) {
      for (int64_t i = 0; i < H; ++i) {
        r.db_o[i] += ln.dx(b, t, i);
        r.da(b, t, i) = ln.dx(b, t, i);  // the residual
      }
      for (int64_t j = 0; j < I; ++j) {
        double du = 0;  // (dy·W_o)[j]: dx of the frozen output projection
        for (int64_t i = 0; i < H; ++i) du += ln.dx(b, t, i) * w_o(i, j);
        const double zj = z(b, t, j);
        const double cdf = 0.5 * (1 + std::erf(zj * inv_sqrt2)), pdf = inv_sqrt_2pi * std::exp(-0.5 * zj * zj);
        const double dz = du * (cdf + zj * pdf);
        r.db_i[j] += dz;
        for (int64_t i = 0; i < H; ++i) r.da(b, t, i) += dz * w_i(j, i);  // dx of the frozen input projection
      }
    }
  return r;
}

// ---------------------------------------------------------------------------------------------------
// 6. The heads: pooled = tanh(h[:,0]·W_pᵀ + b_p), z = pooled·W_cᵀ + b_c, then cross-entropy (C > 1)
//    or mean squared error (C = 1)                                         docs/gradients.md §6
// ---------------------------------------------------------------------------------------------------

struct HeadGrads {
  Array logits;  // forward: [B,C]
  double loss = 0.0;
  Array dw_pool, db_pool, dw_cls, db_cls, dhidden;  // dhidden [B,T,H]: zero except at t = 0
};

// labels: class ids (C > 1) or targets (C = 1), one per example.
inline HeadGrads head_backward(const Array& hidden, const Array& w_pool, const Array& b_pool, const Array& w_cls,
                               const Array& b_cls, const std::vector<double>& labels) {
  const int64_t B = hidden.size(0), H = hidden.size(2), C = w_cls.size(0);
  HeadGrads r{Array({B, C}), 0.0, Array(w_pool.shape), Array(b_pool.shape), Array(w_cls.shape),
              Array(b_cls.shape), Array(hidden.shape)};
  Array pooled({B, H}), dz({B, C});
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t o = 0; o < H; ++o) {
      double pre = b_pool[o];
      for (int64_t i = 0; i < H; ++i) pre += hidden(b, 0, i) * w_pool(o, i);
      pooled(b, o) = std::tanh(pre);
    }
    for (int64_t c = 0; c < C; ++c) {
      r.logits(b, c) = b_cls[c];
      for (int64_t o = 0; o < H; ++o) r.logits(b, c) += pooled(b, o) * w_cls(c, o);
    }
    if (C == 1) {  // loss = mean (z − t)²,  dz = 2(z − t)/B
      const double diff = r.logits(b, 0) - labels[static_cast<size_t>(b)];
      r.loss += diff * diff / B;
      dz(b, 0) = 2 * diff / B;
    } else {       // loss = mean [logsumexp(z) − z_label],  dz = (softmax(z) − onehot)/B
      double top = -1e300, total = 0;
      for (int64_t c = 0; c < C; ++c) top = std::max(top, r.logits(b, c));
      for (int64_t c = 0; c < C; ++c) total += std::exp(r.logits(b, c) - top);
      const int64_t label = static_cast<int64_t>(labels[static_cast<size_t>(b)]);
      r.loss += (top + std::log(total) - r.logits(b, label)) / B;
      for (int64_t c = 0; c < C; ++c) dz(b, c) = (std::exp(r.logits(b, c) - top) / total - (c == label)) / B;
    }
  }
  for (int64_t b = 0; b < B; ++b)
    for (int64_t o = 0; o < H; ++o) {
      double dpooled = 0;
      for (int64_t c = 0; c < C; ++c) {
        r.dw_cls(c, o) += dz(b, c) * pooled(b, o);
        dpooled += dz(b, c) * w_cls(c, o);
      }
      const double dpre = dpooled * (1 - pooled(b, o) * pooled(b, o));
      r.db_pool[o] += dpre;
      for (int64_t i = 0; i < H; ++i) {
        r.dw_pool(o, i) += dpre * hidden(b, 0, i);
        r.dhidden(b, 0, i) += dpre * w_pool(o, i);
      }
    }
  for (int64_t b = 0; b < B; ++b)
    for (int64_t c = 0; c < C; ++c) r.db_cls[c] += dz(b, c);
  return r;
}

}  // namespace unipelt::hand

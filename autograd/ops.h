// Differentiable ops. Each is implemented in autograd/ops_<family>.cpp with its forward and backward
// side by side; shapes are given as [..] in the comments. Every op checks its inputs and raises a
// ShapeError naming the op and the shapes.
#pragma once

#include <cstdint>
#include <vector>

#include "autograd/tensor.h"

namespace unipelt::ops {

// ---- ops_linear.cpp ----------------------------------------------------------------------
// y[..., out] = x[..., in] · W[out, in]ᵀ + b[out]   (b may be undefined)
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());
// 2-D: op(a)[m,k] · op(b)[k,n]; op transposes when the flag is set.
Tensor matmul(const Tensor& a, const Tensor& b, bool trans_a = false, bool trans_b = false);
// Batched over every leading dim (3-D or 4-D, identical leading dims): a[..., m, k] · b[..., k, n].
Tensor bmm(const Tensor& a, const Tensor& b, bool trans_a = false, bool trans_b = false);

// ---- ops_elementwise.cpp -----------------------------------------------------------------
// numpy broadcasting (up to 4-D): add(x[B,T,H], bias[H]), mul(h[B,T,H], gate[B,1,1]), ...
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor scale(const Tensor& x, double alpha);

// ---- ops_activation.cpp ------------------------------------------------------------------
Tensor gelu(const Tensor& x);  // x·Φ(x), the erf form BERT uses
Tensor relu(const Tensor& x);
Tensor tanh(const Tensor& x);
Tensor sigmoid(const Tensor& x);

// ---- ops_reduce.cpp ----------------------------------------------------------------------
Tensor sum(const Tensor& x);   // -> [1]
Tensor mean(const Tensor& x);  // -> [1]
// x[B,T,H], mask[B,T] (1 = real token, 0 = padding) -> [B,H]: the mean over real tokens.
// A row whose mask is all zero gives zeros. The mask is a constant (no gradient).
Tensor masked_mean(const Tensor& x, const Tensor& mask);

// ---- ops_softmax.cpp ---------------------------------------------------------------------
// Softmax over the last axis. mask (optional, constant): additive, [B, cols] where x is [B, ..., cols].
Tensor softmax(const Tensor& x, const Tensor& mask = Tensor());

// ---- ops_layernorm.cpp -------------------------------------------------------------------
// Over the last axis: (x - mean)/sqrt(var + eps) · gamma + beta, gamma and beta [cols].
Tensor layer_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, double eps);

// ---- ops_embedding.cpp -------------------------------------------------------------------
// ids (I32) [...] , table [V, D] -> [..., D]. Backward scatter-adds into the table.
Tensor embedding(const Tensor& ids, const Tensor& table);
// Dropout with probability p; identity when !training or p == 0. The mask is drawn from `seed`: element i
// of x gets the mask bit of element index_offset + i (a shard of a larger tensor draws its own slice).
Tensor dropout(const Tensor& x, double p, uint64_t seed, bool training, int64_t index_offset = 0);

// ---- ops_shape.cpp (split_heads: ops_heads.cpp) ------------------------------------------
Tensor reshape(const Tensor& x, const Shape& shape);  // one dim may be -1
Tensor permute(const Tensor& x, const std::vector<int>& perm);
Tensor transpose(const Tensor& x, int axis0, int axis1);
Tensor concat(const std::vector<Tensor>& xs, int axis);
Tensor slice(const Tensor& x, int axis, int64_t start, int64_t length);
Tensor select(const Tensor& x, int axis, int64_t index);  // slice of length 1, axis removed
// x [B, T, parts·H] -> `parts` tensors [B, heads, T, H/heads]: part p is the columns [p·H, (p+1)·H) of x,
// plus deltas[p] ([B, T, H], when given and defined), split into attention heads. One op, several
// outputs: attention's q, k and v come out of one fused projection this way, and its backward writes
// one gradient [B, T, parts·H] for that projection's single GEMM.
std::vector<Tensor> split_heads(const Tensor& x, int parts, int heads, const std::vector<Tensor>& deltas = {});

// ---- ops_loss.cpp ------------------------------------------------------------------------
// Mean cross-entropy: logits [N, C], labels I32 [N] -> [1].
Tensor cross_entropy(const Tensor& logits, const Tensor& labels);
// Mean squared error: pred [N] or [N,1], target [N] -> [1]. target is a constant.
Tensor mse_loss(const Tensor& pred, const Tensor& target);

}  // namespace unipelt::ops

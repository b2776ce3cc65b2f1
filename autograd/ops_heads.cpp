// split_heads: the head split of attention's fused q, k, v projection, as one op with several outputs.
//
// nn/bert.cpp projects x [B,T,H] once against [W_q; W_k; W_v] (one GEMM, N = 3H) and gets y [B,T,3H].
// Part p of y (columns p·H ... (p+1)·H) is q, k or v; split into heads it is [B, heads, T, d] with
//   out_p[b, h, t, e] = y[b, t, p·H + h·d + e] (+ delta_p[b, t, h·d + e])
// which is one strided read of y per part (Backend::expand), or a strided add when a seam adds a LoRA
// delta to that part (Backend::binary). Backward is the same movement the other way: each output's
// gradient lands in its column block of one dy [B, T, 3H] (Backend::copy_strided), so the projection's
// backward is a single GEMM (dx = dy·[W_q; W_k; W_v]) instead of three GEMMs and two accumulations.
#include "autograd/op_util.h"

namespace unipelt::ops {
using detail::be;

namespace {

// The strides, over the index space [B, heads, T, d], of part p of y [B, T, parts·H] and of a [B, T, H]
// tensor (a delta, or a delta's gradient).
struct HeadLayout {
  int64_t shape[4];
  int64_t in_y[4];     // offset of element (b, h, t, e) of part p in y, minus p·H
  int64_t in_part[4];  // the same in a contiguous [B, T, H]
  int64_t out[4];      // contiguous [B, heads, T, d]
};

HeadLayout head_layout(int64_t B, int64_t T, int64_t H, int parts, int heads) {
  const int64_t d = H / heads, row = int64_t{parts} * H;
  return {{B, heads, T, d}, {T * row, d, row, 1}, {T * H, d, H, 1}, {heads * T * d, T * d, d, 1}};
}

}  // namespace

std::vector<Tensor> split_heads(const Tensor& x, int parts, int heads, const std::vector<Tensor>& deltas) {
  detail::check_float("split_heads", x);
  check(x.ndim() == 3 && parts > 0 && heads > 0 && x.size(2) % (int64_t{parts} * heads) == 0, "split_heads", [&] {
    return "x must be [B, T, parts·heads·d], got " + shape_str(x.shape()) + " for " + std::to_string(parts) +
           " parts of " + std::to_string(heads) + " heads";
  });
  check(deltas.size() <= static_cast<size_t>(parts), "split_heads", "more deltas than parts");
  const int64_t B = x.size(0), T = x.size(1), H = x.size(2) / parts;
  for (const Tensor& delta : deltas)
    if (delta.defined()) {
      check_same_dtype_device("split_heads", x, delta);
      check(delta.shape() == Shape({B, T, H}), "split_heads", [&] {
        return "a delta must be [B, T, H] = " + shape_str({B, T, H}) + ", got " + shape_str(delta.shape());
      });
    }
  const HeadLayout L = head_layout(B, T, H, parts, heads);
  const size_t es = dtype_size(x.dtype());
  const char* y = static_cast<const char*>(x.data());
  std::vector<Tensor> outs;
  std::vector<GradTarget> delta_targets(static_cast<size_t>(parts));
  bool any_grad = needs_grad({&x});
  for (int p = 0; p < parts; ++p) {
    Tensor out = detail::empty_as({B, heads, T, H / heads}, x);
    const void* part = y + static_cast<size_t>(p * H) * es;
    const Tensor* delta = static_cast<size_t>(p) < deltas.size() && deltas[p].defined() ? &deltas[p] : nullptr;
    if (delta) {
      Broadcast4 bc;
      for (int d = 0; d < 4; ++d) {
        bc.shape[d] = L.shape[d];
        bc.a_stride[d] = L.in_y[d];
        bc.b_stride[d] = L.in_part[d];
      }
      be(x).binary(Binary::Add, x.dtype(), bc, part, delta->data(), out.data());
      delta_targets[static_cast<size_t>(p)] = grad_target(*delta);
      any_grad = any_grad || needs_grad({delta});
    } else {
      be(x).expand(x.dtype(), L.shape, L.in_y, part, out.data());
    }
    outs.push_back(out);
  }
  if (any_grad) {
    tape().record_outputs("split_heads", outs, [x_t = grad_target(x), delta_targets, L, H, parts, es](
                                                   std::span<const Tensor> grads) {
      bool all = true;
      for (const Tensor& g : grads) all = all && g.defined();
      if (x_t) {  // dy [B, T, parts·H]: each part's gradient in its column block, zeros where none came
        Tensor dx = all ? empty_for(x_t) : Tensor::zeros(x_t->shape, x_t->dtype, x_t->device);
        for (int p = 0; p < parts; ++p) {
          if (!grads[p].defined()) continue;
          be(grads[p]).copy_strided(grads[p].dtype(), L.shape, grads[p].data(), L.out,
                                    static_cast<char*>(dx.data()) + static_cast<size_t>(p * H) * es, L.in_y);
        }
        accumulate_grad(x_t, dx);
      }
      for (int p = 0; p < parts; ++p) {
        const GradTarget& t = delta_targets[static_cast<size_t>(p)];
        if (!t || !grads[p].defined()) continue;
        Tensor d_delta = empty_for(t);  // the gradient merged back from heads to [B, T, H]
        be(grads[p]).copy_strided(grads[p].dtype(), L.shape, grads[p].data(), L.out, d_delta.data(), L.in_part);
        accumulate_grad(t, d_delta);
      }
    });
  }
  return outs;
}

}  // namespace unipelt::ops

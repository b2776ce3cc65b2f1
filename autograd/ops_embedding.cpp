// Embedding lookup (gather; backward scatter-adds into the table) and dropout (seeded mask, regenerated in backward).
#include "autograd/dropout_hash.h"
#include "autograd/op_util.h"

namespace unipelt::ops {
using detail::be;

// ids (i32) [...] , table [V, D] -> [..., D]
Tensor embedding(const Tensor& ids, const Tensor& table) {
  check(ids.dtype() == DType::I32, "embedding",
        [&] { return std::string("ids must be i32, got ") + dtype_name(ids.dtype()); });
  detail::check_float("embedding", table);
  check(table.ndim() == 2, "embedding", [&] { return "table must be [V, D], got " + shape_str(table.shape()); });
  check(ids.device() == table.device(), "embedding", "ids and table are on different devices");
  check(ids.ndim() < 4, "embedding",
        [&] { return "ids may have at most 3 dimensions, got " + shape_str(ids.shape()); });
  const int64_t n = ids.numel(), V = table.size(0), D = table.size(1);
  Shape out_shape = ids.shape();
  out_shape.push_back(D);
  Tensor y = detail::empty_as(out_shape, table);
  be(table).embedding_forward(table.dtype(), n, D, ids.data_as<int32_t>(), table.data(), V, y.data());
  if (needs_grad({&table})) {
    tape().record("embedding", y, [ids, table_t = grad_target(table), n, V, D](const Tensor& dy) {
      Tensor dt = empty_for(table_t);
      be(dy).embedding_backward(dy.dtype(), n, D, ids.data_as<int32_t>(), dy.data(), V, dt.data());
      accumulate_grad(table_t, dt);
    });
  }
  return y;
}

// y = x ⊙ mask, mask ∈ {0, 1/(1-p)} drawn from `seed` (inverted dropout); dx = dy ⊙ mask.
// The mask is a pure function of (seed, index), so backward regenerates it instead of saving it: the
// closure keeps two numbers, not an activation-sized tensor.
Tensor dropout(const Tensor& x, double p, uint64_t seed, bool training, int64_t index_offset) {
  detail::check_float("dropout", x);
  check(p >= 0.0 && p < 1.0, "dropout", [&] { return "probability must be in [0, 1), got " + std::to_string(p); });
  check(index_offset >= 0, "dropout", [&] { return "index offset must be >= 0, got " + std::to_string(index_offset); });
  if (!training || p == 0.0) return x;
  seed = dropout_seed_at(seed, index_offset);  // the same seed when the offset is 0
  Tensor y = detail::empty_like(x);
  be(x).dropout(x.dtype(), x.numel(), p, seed, x.data(), y.data());
  if (needs_grad({&x})) {
    tape().record("dropout", y, [x_t = grad_target(x), p, seed](const Tensor& dy) {
      Tensor dx = detail::empty_like(dy);
      be(dy).dropout(dy.dtype(), dy.numel(), p, seed, dy.data(), dx.data());
      accumulate_grad(x_t, dx);
    });
  }
  return y;
}

}  // namespace unipelt::ops

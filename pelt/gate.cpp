#include "pelt/gate.h"

#include "nn/init.h"

namespace unipelt {

Gate::Gate(int64_t hidden, DType dtype, Device device) : score(hidden, 1, true, dtype, device) {}

Tensor Gate::forward(const Tensor& h, const Tensor& mask, GatePool pool) const {
  const int64_t B = h.size(0), T = h.size(1);
  Tensor per_token = ops::sigmoid(score.forward(h));  // [B,T,1]
  // `all` pooling is a masked mean whose mask is all ones.
  Tensor weights = pool == GatePool::Masked ? mask : Tensor::full({B, T}, 1.0, h.dtype(), h.device());
  return ops::reshape(ops::masked_mean(per_token, weights), {B});  // [B,1] -> [B]
}

void Gate::init(Rng& rng) const { score.init_bert(rng, 0.02); }

void Gate::named_parameters(const std::string& prefix, std::vector<NamedTensor>& out) const {
  score.named_parameters(prefix, out);
}

}  // namespace unipelt

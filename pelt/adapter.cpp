#include "pelt/adapter.h"

#include "nn/init.h"

namespace unipelt {

Adapter::Adapter(int64_t hidden, int64_t bottleneck, bool gated_, DType dtype, Device device)
    : down(hidden, bottleneck, true, dtype, device), up(bottleneck, hidden, true, dtype, device), gated(gated_) {
  if (gated) gate = Gate(hidden, dtype, device);
}

Tensor Adapter::forward(const Tensor& f, const Tensor& a, const LayerNorm& ln, const Tensor& mask, GatePool pool,
                        Tensor* gate_out) const {
  Tensor residual = ops::add(f, a);                           // f + a       [B,T,H]
  Tensor x = ln.forward(residual);                            // LN(f + a)   [B,T,H]
  Tensor h = up.forward(ops::relu(down.forward(x)));          // h_A         [B,T,H]
  if (gated) {
    Tensor g = gate.forward(x, mask, pool);                   // g_A         [B]
    if (gate_out) *gate_out = g;
    h = ops::mul(h, ops::reshape(g, {g.size(0), 1, 1}));      // g_A · h_A
  }
  return ln.forward(ops::add(h, residual));                   // LN(g_A·h_A + f + a)
}

void Adapter::init(Rng& rng) const {
  down.init_bert(rng, 0.02);
  up.init_bert(rng, 0.02);
  if (gated) gate.init(rng);
}

void Adapter::named_parameters(const std::string& prefix, std::vector<NamedTensor>& out) const {
  down.named_parameters(prefix + "down.", out);
  up.named_parameters(prefix + "up.", out);
  if (gated) gate.named_parameters(prefix + "gate.", out);
}

}  // namespace unipelt

#include "pelt/prefix.h"

#include "autograd/tape.h"
#include "nn/init.h"

namespace unipelt {

PrefixTuning::PrefixTuning(int64_t hidden, int layers, int heads, int length, int mid, bool gated, DType dtype,
                           Device device)
    : embed(Tensor::zeros({length, hidden}, dtype, device)),
      mlp_in(hidden, mid, true, dtype, device),
      mlp_out(mid, int64_t{layers} * 2 * hidden, true, dtype, device),
      layers_(layers),
      heads_(heads),
      length_(length),
      hidden_(hidden) {
  if (gated)
    for (int i = 0; i < layers; ++i) gates_.emplace_back(hidden, dtype, device);
}

void PrefixTuning::begin_forward() {
  Tensor p = ejected() ? ejected_ : mlp_out.forward(ops::tanh(mlp_in.forward(embed)));  // [L, n·2·H]
  // [L, n·2, heads, d] -> [n·2, heads, L, d]: entry (2·layer + kv) is one layer's key or value prefix.
  p = ops::reshape(p, {length_, int64_t{layers_} * 2, heads_, hidden_ / heads_});
  per_layer_ = ops::permute(p, {1, 2, 0, 3});
}

std::pair<Tensor, Tensor> PrefixTuning::key_values(int layer, const Tensor& layer_input, const Tensor& mask,
                                                   GatePool pool, Tensor* gate_out) const {
  check(per_layer_.defined(), "prefix", "begin_forward() was not called");
  const int64_t B = layer_input.size(0), d = hidden_ / heads_;
  // [heads, L, d] -> [1, heads, L, d], then broadcast over the batch by multiplying with the gate
  // (or with ones): every example gets the same prefix, scaled by its own gate value.
  Tensor keys = ops::reshape(ops::select(per_layer_, 0, 2 * layer), {1, heads_, length_, d});
  Tensor values = ops::reshape(ops::select(per_layer_, 0, 2 * layer + 1), {1, heads_, length_, d});
  Tensor scale;
  if (gated()) {
    Tensor g = gates_[static_cast<size_t>(layer)].forward(layer_input, mask, pool);  // [B]
    if (gate_out) *gate_out = g;
    scale = ops::reshape(g, {B, 1, 1, 1});
  } else {
    scale = Tensor::full({B, 1, 1, 1}, 1.0, keys.dtype(), keys.device());
  }
  return {ops::mul(keys, scale), ops::mul(values, scale)};
}

void PrefixTuning::eject() {
  if (ejected()) return;
  NoGradGuard no_grad;
  Tensor p = mlp_out.forward(ops::tanh(mlp_in.forward(embed)));
  load_ejected(p.clone());
}

void PrefixTuning::load_ejected(const Tensor& table) {
  check(table.shape() == Shape({length_, int64_t{layers_} * 2 * hidden_}), "prefix", [&] {
    return "ejected prefix must be " + shape_str({length_, int64_t{layers_} * 2 * hidden_}) + ", got " +
           shape_str(table.shape());
  });
  ejected_ = table;
  embed = Tensor();
  mlp_in = Linear();
  mlp_out = Linear();
}

void PrefixTuning::init(Rng& rng) const {
  if (ejected()) return;
  init_normal(embed, 0.02, rng);
  mlp_in.init_bert(rng, 0.02);
  mlp_out.init_bert(rng, 0.02);
  for (const Gate& g : gates_) g.init(rng);
}

void PrefixTuning::named_parameters(const std::string& prefix, std::vector<NamedTensor>& out) const {
  if (ejected()) {
    out.push_back({prefix + "prefix_ejected", ejected_});
    return;
  }
  out.push_back({prefix + "prefix_enc_embed.weight", embed});
  mlp_in.named_parameters(prefix + "prefix_embed_MLP.0.", out);
  mlp_out.named_parameters(prefix + "prefix_embed_MLP.2.", out);
}

}  // namespace unipelt

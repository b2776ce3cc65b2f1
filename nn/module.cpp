#include "nn/module.h"

#include "nn/init.h"

namespace unipelt {

std::vector<NamedTensor> Module::parameters(const std::string& prefix) const {
  std::vector<NamedTensor> out;
  named_parameters(prefix, out);
  return out;
}

int64_t Module::num_parameters(bool trainable_only) const {
  int64_t total = 0;
  for (const NamedTensor& p : parameters())
    if (!trainable_only || p.tensor.requires_grad()) total += p.tensor.numel();
  return total;
}

void Module::set_trainable(bool trainable) const {
  for (const NamedTensor& p : parameters()) {
    Tensor t = p.tensor;
    t.set_requires_grad(trainable);
  }
}

Linear::Linear(int64_t in, int64_t out, bool has_bias, DType dtype, Device device)
    : weight(Tensor::zeros({out, in}, dtype, device)) {
  if (has_bias) bias = Tensor::zeros({out}, dtype, device);
}

void Linear::named_parameters(const std::string& prefix, std::vector<NamedTensor>& out) const {
  out.push_back({prefix + "weight", weight});
  if (bias.defined()) out.push_back({prefix + "bias", bias});
}

void Linear::init_bert(Rng& rng, double stddev) const {
  init_normal(weight, stddev, rng);
  if (bias.defined()) init_constant(bias, 0.0);
}

Embedding::Embedding(int64_t count, int64_t dim, DType dtype, Device device)
    : weight(Tensor::zeros({count, dim}, dtype, device)) {}

void Embedding::named_parameters(const std::string& prefix, std::vector<NamedTensor>& out) const {
  out.push_back({prefix + "weight", weight});
}

LayerNorm::LayerNorm(int64_t dim, double eps_, DType dtype, Device device)
    : weight(Tensor::full({dim}, 1.0, dtype, device)), bias(Tensor::zeros({dim}, dtype, device)), eps(eps_) {}

void LayerNorm::named_parameters(const std::string& prefix, std::vector<NamedTensor>& out) const {
  out.push_back({prefix + "weight", weight});
  out.push_back({prefix + "bias", bias});
}

}  // namespace unipelt

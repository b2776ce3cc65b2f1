#include "nn/optim.h"

#include <cmath>

#include "autograd/backend.h"

namespace unipelt {

AdamW::AdamW(std::vector<NamedTensor> params, const AdamWOptions& options)
    : params_(std::move(params)), options_(options) {
  for (const NamedTensor& p : params_) {
    check(p.tensor.requires_grad(), "AdamW",
          [&] { return p.name + " does not require a gradient: pass trainable parameters only"; });
    m_.push_back(Tensor::zeros(p.tensor.shape(), p.tensor.dtype(), p.tensor.device()));
    v_.push_back(Tensor::zeros(p.tensor.shape(), p.tensor.dtype(), p.tensor.device()));
  }
}

void AdamW::step(double lr) {
  ++step_;
  AdamWStep s{lr, options_.beta1, options_.beta2, options_.eps, options_.weight_decay,
              1.0 - std::pow(options_.beta1, static_cast<double>(step_)),
              1.0 - std::pow(options_.beta2, static_cast<double>(step_))};
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i].tensor;
    Tensor g = p.grad();
    if (!g.defined()) continue;
    backend(p.device()).adamw_update(p.dtype(), p.numel(), p.data(), g.data(), m_[i].data(), v_[i].data(), s);
  }
}

std::vector<std::pair<std::string, Tensor>> AdamW::state() const {
  std::vector<std::pair<std::string, Tensor>> out;
  for (size_t i = 0; i < params_.size(); ++i) {
    out.emplace_back("m/" + params_[i].name, m_[i].to(Device::CPU));
    out.emplace_back("v/" + params_[i].name, v_[i].to(Device::CPU));
  }
  return out;
}

void AdamW::load_state(const std::map<std::string, Tensor>& state, int64_t steps) {
  for (size_t i = 0; i < params_.size(); ++i) {
    for (auto [prefix, target] : {std::pair{"m/", &m_[i]}, std::pair{"v/", &v_[i]}}) {
      auto it = state.find(prefix + params_[i].name);
      if (it == state.end()) throw std::runtime_error("optimizer state lacks " + std::string(prefix) + params_[i].name);
      if (it->second.shape() != target->shape())
        throw std::runtime_error("optimizer state " + std::string(prefix) + params_[i].name + " has shape " +
                                 shape_str(it->second.shape()) + ", the parameter has " + shape_str(target->shape()));
      target->copy_from(it->second.to(target->dtype()).to(target->device()));
    }
  }
  step_ = steps;
}

int64_t AdamW::state_numel() const {
  int64_t n = 0;
  for (const Tensor& m : m_) n += 2 * m.numel();
  return n;
}

double linear_schedule(double base_lr, int64_t step, int64_t total, int64_t warmup) {
  if (warmup > 0 && step < warmup) return base_lr * static_cast<double>(step) / static_cast<double>(warmup);
  if (total <= warmup) return base_lr;
  const double remaining = static_cast<double>(total - step) / static_cast<double>(total - warmup);
  return base_lr * std::max(0.0, remaining);
}

double clip_grad_norm(const std::vector<NamedTensor>& params, double max_norm) {
  double sum_sq = 0.0;
  for (const NamedTensor& p : params) {
    Tensor g = p.tensor.grad();
    if (g.defined()) sum_sq += backend(g.device()).dot(g.dtype(), g.numel(), g.data(), g.data());
  }
  const double norm = std::sqrt(sum_sq);
  if (norm > max_norm && std::isfinite(norm)) {
    const double factor = max_norm / (norm + 1e-6);  // as torch.nn.utils.clip_grad_norm_
    for (const NamedTensor& p : params) {
      Tensor g = p.tensor.grad();
      if (g.defined()) backend(g.device()).scale(g.dtype(), g.numel(), factor, g.data(), g.data());
    }
  }
  return norm;
}

}  // namespace unipelt

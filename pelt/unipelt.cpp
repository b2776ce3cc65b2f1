#include "pelt/unipelt.h"

#include "nn/init.h"

namespace unipelt {

namespace {
std::string layer_prefix(int i) { return "bert.encoder.layer." + std::to_string(i) + "."; }
}  // namespace

PeltModel::PeltModel(BertForSequenceClassification& base, const PeltConfig& config, uint64_t seed)
    : base_(base), config_(config) {
  config_.validate();
  const BertConfig& c = base.config();
  const DType dt = base.dtype();
  const Device dev = base.device();
  Rng rng(seed);
  for (int i = 0; i < c.num_hidden_layers; ++i) {
    if (config_.adapter) {
      adapters_.push_back(std::make_unique<Adapter>(c.hidden_size, config_.resolved_adapter_size(c.hidden_size),
                                                    config_.gated, dt, dev));
      adapters_.back()->init(rng);
    }
    if (config_.lora) {
      for (auto* list : {&lora_query_, &lora_value_}) {
        list->push_back(std::make_unique<LoRA>(c.hidden_size, config_.lora_r, config_.lora_scaling(), config_.gated,
                                               dt, dev));
        list->back()->init(rng);
      }
    }
  }
  if (config_.prefix) {
    prefix_ = std::make_unique<PrefixTuning>(c.hidden_size, c.num_hidden_layers, c.num_attention_heads,
                                             config_.prefix_len, config_.prefix_mid, config_.gated, dt, dev);
    prefix_->init(rng);
  }
  apply_trainable_flags(base_, config_);
  for (const NamedTensor& p : pelt_parameters()) {
    Tensor t = p.tensor;
    t.set_requires_grad(true);
  }
}

std::vector<NamedTensor> PeltModel::pelt_parameters() const {
  std::vector<NamedTensor> out;
  if (prefix_) prefix_->named_parameters("bert.encoder.", out);
  for (size_t i = 0; i < static_cast<size_t>(base_.config().num_hidden_layers); ++i) {
    const std::string lp = layer_prefix(static_cast<int>(i));
    if (prefix_ && prefix_->gated()) prefix_->gate(static_cast<int>(i)).named_parameters(lp + "attention.self.prefix_gate.", out);
    if (!lora_query_.empty()) {
      lora_query_[i]->named_parameters(lp + "attention.self.query.", out);
      lora_value_[i]->named_parameters(lp + "attention.self.value.", out);
    }
    if (!adapters_.empty()) adapters_[i]->named_parameters(lp + "output.adapter.", out);
  }
  return out;
}

std::vector<NamedTensor> PeltModel::trainable_parameters() const {
  std::vector<NamedTensor> out;
  for (const NamedTensor& p : all_parameters())
    if (p.tensor.requires_grad()) out.push_back(p);
  return out;
}

std::vector<NamedTensor> PeltModel::all_parameters() const {
  std::vector<NamedTensor> out = base_.parameters();
  for (NamedTensor& p : pelt_parameters()) out.push_back(std::move(p));
  return out;
}

BertForSequenceClassification::Output PeltModel::forward(const Batch& batch, ForwardContext& ctx) {
  gates_.clear();
  return base_.forward(batch, ctx, this);
}

void PeltModel::record_gate(int layer, const char* which, const Tensor& g) {
  if (g.defined()) gates_["layer." + std::to_string(layer) + "." + which] = g;
}

void PeltModel::begin_forward(const Batch&, ForwardContext&) {
  if (prefix_) prefix_->begin_forward();
}

KeyValuePrefix PeltModel::attention_prefix(int layer, const Tensor& layer_input, const Tensor& mask) {
  if (!prefix_) return {};
  Tensor g;
  auto [keys, values] = prefix_->key_values(layer, layer_input, mask, config_.gate_pool, &g);
  record_gate(layer, "prefix", g);
  return {keys, values};
}

Tensor PeltModel::query_delta(int layer, const Tensor& x, const Tensor& mask) {
  if (lora_query_.empty()) return {};
  Tensor g;
  Tensor d = lora_query_[static_cast<size_t>(layer)]->delta(x, mask, config_.gate_pool, &g);
  record_gate(layer, "lora_query", g);
  return d;
}

Tensor PeltModel::value_delta(int layer, const Tensor& x, const Tensor& mask) {
  if (lora_value_.empty()) return {};
  Tensor g;
  Tensor d = lora_value_[static_cast<size_t>(layer)]->delta(x, mask, config_.gate_pool, &g);
  record_gate(layer, "lora_value", g);
  return d;
}

Tensor PeltModel::output_sublayer(int layer, const Tensor& f, const Tensor& a, const LayerNorm& ln,
                                  const Tensor& mask) {
  if (adapters_.empty()) return BertSeams::output_sublayer(layer, f, a, ln, mask);
  Tensor g;
  Tensor out = adapters_[static_cast<size_t>(layer)]->forward(f, a, ln, mask, config_.gate_pool, &g);
  record_gate(layer, "adapter", g);
  return out;
}

void PeltModel::eject_prefix() {
  if (prefix_) prefix_->eject();
}

void PeltModel::merge_lora() {
  if (lora_query_.empty()) return;
  if (config_.gated)
    throw std::logic_error("cannot merge gated LoRA: its scale g_L = pool σ(w·x + c) depends on each input, so no "
                           "fixed weight matrix reproduces it (merge works for the ungated `lora` preset only)");
  for (size_t i = 0; i < lora_query_.size(); ++i) {
    lora_query_[i]->merge_into(base_.layers[i]->query.weight);
    lora_value_[i]->merge_into(base_.layers[i]->value.weight);
  }
  lora_query_.clear();
  lora_value_.clear();
  config_.lora = false;
  lora_merged_ = true;
}

}  // namespace unipelt

// What trains for each method, and the parameter counts of `unipelt params` (paper Table 4).
//
//   finetune  every base parameter
//   bitfit    every parameter whose name ends in "bias" (embedding/attention/FFN/LayerNorm/pooler)
//   all       classifier.* — a deliberate choice: the official UniPELT code leaves the head frozen at its
//             random init for prefix and LoRA runs (and, for BitFit, trains only classifier.bias, as its
//             freezing keeps every name containing "bias"); we train it for every method (docs/methods.md)
//   otherwise frozen, including the pooler
#include "pelt/unipelt.h"

namespace unipelt {

namespace {
bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}
bool is_head(const std::string& name) { return name.rfind("classifier.", 0) == 0; }
}  // namespace

void apply_trainable_flags(const BertForSequenceClassification& base, const PeltConfig& config) {
  for (const NamedTensor& p : base.parameters()) {
    const bool trainable = config.finetune || is_head(p.name) || (config.bitfit && ends_with(p.name, "bias"));
    Tensor t = p.tensor;
    t.set_requires_grad(trainable);
  }
}

ParameterCounts count_parameters(const PeltModel& model) {
  ParameterCounts counts;
  for (const NamedTensor& p : model.base().parameters()) {
    if (is_head(p.name)) {
      counts.head += p.tensor.numel();
      continue;
    }
    counts.base += p.tensor.numel();
    if (p.tensor.requires_grad()) counts.trained += p.tensor.numel();
  }
  counts.stored = counts.trained;
  const BertConfig& c = model.base().config();
  for (const NamedTensor& p : model.pelt_parameters()) {
    if (p.tensor.requires_grad()) counts.trained += p.tensor.numel();  // an ejected prefix no longer trains
    const bool prefix_mlp = p.name.find("prefix_enc_embed") != std::string::npos ||
                            p.name.find("prefix_embed_MLP") != std::string::npos;
    if (!prefix_mlp) counts.stored += p.tensor.numel();
  }
  // Stored prefix-tuning keeps the ejected table P [L, n_layers·2·H] instead of its MLP.
  if (model.prefix() && !model.prefix()->ejected())
    counts.stored += int64_t{model.config().prefix_len} * c.num_hidden_layers * 2 * c.hidden_size;
  return counts;
}

}  // namespace unipelt

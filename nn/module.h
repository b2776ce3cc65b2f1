// Module: a named bag of parameters, and the basic layers BERT is built from.
//
// A parameter is a Tensor; "trainable" is simply requires_grad. Each module lists its parameters with
// their Hugging Face names through named_parameters(prefix, out), in a fixed order, so checkpoints,
// optimizers and tests all see the same names. Modules own no autograd state: forward() calls ops.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "autograd/ops.h"
#include "autograd/tensor.h"

namespace unipelt {

class Rng;

struct NamedTensor {
  std::string name;
  Tensor tensor;
};

class Module {
 public:
  virtual ~Module() = default;
  // Appends (prefix + local name, parameter) for every parameter of this module and its children.
  virtual void named_parameters(const std::string& prefix, std::vector<NamedTensor>& out) const = 0;

  std::vector<NamedTensor> parameters(const std::string& prefix = "") const;
  int64_t num_parameters(bool trainable_only = false) const;
  void set_trainable(bool trainable) const;  // every parameter of this module
};

// Per-forward settings: training mode (dropout on) and a stream of distinct dropout seeds.
struct ForwardContext {
  bool training = false;
  uint64_t seed = 0;
  uint64_t calls = 0;
  // Data-parallel training (train/distributed.h): this batch is the shard of a larger batch that starts
  // after `example_offset` examples. Dropout then draws, for each [B, ...] tensor, the mask of these rows
  // of the whole batch's tensor, so the masks do not depend on how the batch was split (0: a whole batch).
  int64_t example_offset = 0;
  uint64_t next_seed() { return seed * 0x100000001B3ull + (++calls); }
};

// y = x·Wᵀ + b. W is [out, in] as in PyTorch and Hugging Face checkpoints.
class Linear : public Module {
 public:
  Linear() = default;
  Linear(int64_t in, int64_t out, bool bias, DType dtype, Device device);
  Tensor forward(const Tensor& x) const { return ops::linear(x, weight, bias); }
  void named_parameters(const std::string& prefix, std::vector<NamedTensor>& out) const override;
  void init_bert(Rng& rng, double stddev) const;  // N(0, stddev) weight, zero bias

  Tensor weight, bias;
};

class Embedding : public Module {
 public:
  Embedding() = default;
  Embedding(int64_t count, int64_t dim, DType dtype, Device device);
  Tensor forward(const Tensor& ids) const { return ops::embedding(ids, weight); }
  void named_parameters(const std::string& prefix, std::vector<NamedTensor>& out) const override;

  Tensor weight;
};

class LayerNorm : public Module {
 public:
  LayerNorm() = default;
  LayerNorm(int64_t dim, double eps, DType dtype, Device device);
  Tensor forward(const Tensor& x) const { return ops::layer_norm(x, weight, bias, eps); }
  void named_parameters(const std::string& prefix, std::vector<NamedTensor>& out) const override;

  Tensor weight, bias;
  double eps = 1e-12;
};

class Dropout {
 public:
  explicit Dropout(double p = 0.0) : p_(p) {}
  // x is [B, ...] (hidden states [B,T,H], attention probabilities [B,heads,T,P+T], pooled [B,H]): element
  // i of this shard is element example_offset·(numel/B) + i of the whole batch's tensor.
  Tensor forward(const Tensor& x, ForwardContext& ctx) const {
    if (!ctx.training || p_ <= 0) return x;
    const int64_t per_example = x.numel() / x.size(0);
    return ops::dropout(x, p_, ctx.next_seed(), true, ctx.example_offset * per_example);
  }

 private:
  double p_;
};

}  // namespace unipelt

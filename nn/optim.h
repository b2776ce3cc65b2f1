// AdamW with a linear learning-rate schedule and global gradient-norm clipping — the optimiser setup of
// the paper's experiments (Hugging Face Trainer defaults: β = (0.9, 0.999), eps = 1e-8, weight decay 0).
//
// State (m, v) exists only for the parameters handed in, i.e. the trainable ones: a frozen parameter
// has no optimizer state at all.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "nn/module.h"

namespace unipelt {

struct AdamWOptions {
  double lr = 1e-4;
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  double weight_decay = 0.0;
};

class AdamW {
 public:
  AdamW(std::vector<NamedTensor> params, const AdamWOptions& options);
  // One update with learning rate `lr` (the schedule's value for this step). Parameters without a
  // gradient (they did not influence the loss) are left alone.
  void step(double lr);
  int64_t steps() const { return step_; }
  // Optimizer state by name ("m/<param>", "v/<param>") for checkpoints, and its inverse.
  std::vector<std::pair<std::string, Tensor>> state() const;
  void load_state(const std::map<std::string, Tensor>& state, int64_t steps);
  int64_t state_numel() const;  // number of floats held as optimizer state

 private:
  std::vector<NamedTensor> params_;
  std::vector<Tensor> m_, v_;
  AdamWOptions options_;
  int64_t step_ = 0;
};

// Linear warm-up over `warmup` steps, then linear decay to 0 at `total` steps.
double linear_schedule(double base_lr, int64_t step, int64_t total, int64_t warmup = 0);

// Scales all gradients so their global L2 norm is at most max_norm; returns the norm before clipping.
double clip_grad_norm(const std::vector<NamedTensor>& params, double max_norm);

}  // namespace unipelt

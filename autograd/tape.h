// The tape: an explicit Wengert list of the ops run since the last clear().
//
// Each differentiable op, when it runs with gradients enabled and at least one input that requires a
// gradient, appends one Node: the op's name and a backward closure. The closure captures only what its
// backward needs (e.g. linear captures x only if W needs a gradient). backward(loss) seeds dloss = 1 and
// runs the closures in reverse order; each reads its output's gradient and accumulates into the inputs
// that require one (accumulate_grad: a tensor used twice receives the sum).
//
// A closure never touches an input that does not require a gradient: no GEMM, no buffer. That is
// where parameter-efficient tuning saves its time and memory.
#pragma once

#include <functional>
#include <span>
#include <string>
#include <vector>

#include "autograd/tensor.h"

namespace unipelt {

// A closure's handle on an input's gradient (see GradSlot in tensor.h); null when none is needed.
using GradTarget = std::shared_ptr<GradSlot>;

// Gradient mode (NoGradGuard below). Off: ops record nothing and outputs never require gradients.
bool grad_enabled();

struct Node {
  const char* op;                   // the op's name, for debugging and tests
  std::vector<GradTarget> outputs;  // where the outputs' gradients arrive (the outputs' bytes are not kept)
  // One gradient per output; an undefined Tensor for an output that received none (most ops have one
  // output; split_heads has several).
  std::function<void(std::span<const Tensor> grad_outputs)> backward;
};

// Takes the gradients that reached the node's outputs (clearing their slots) and runs its backward.
// Returns false, running nothing, when none of its outputs received a gradient.
bool run_backward(const Node& node);

class Tape {
 public:
  // Called by ops. Records nothing when grad mode is off.
  template <class Backward>  // void(const Tensor& grad_output)
  void record(const char* op, const Tensor& output, Backward&& backward) {
    if (!grad_enabled()) return;
    record_outputs(op, {output},
                   [fn = std::forward<Backward>(backward)](std::span<const Tensor> grads) { fn(grads[0]); });
  }
  // An op with several outputs.
  void record_outputs(const char* op, const std::vector<Tensor>& outputs,
                      std::function<void(std::span<const Tensor> grad_outputs)> backward);
  // Reverse-mode sweep from a one-element tensor. Intermediate gradients are freed as soon as the node
  // that consumes them has run; leaf gradients (parameters) stay in Tensor::grad().
  void backward(const Tensor& loss);
  void clear() { nodes_.clear(); }
  size_t size() const { return nodes_.size(); }
  const std::vector<Node>& nodes() const { return nodes_; }

 private:
  std::vector<Node> nodes_;
};

// The tape ops record on (one per thread).
Tape& tape();

// Convenience: tape().backward(loss).
void backward(const Tensor& loss);

// Turns gradient mode off for its lifetime (inference).
class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

// True when an op should record: grad mode on and any input requires a gradient.
bool needs_grad(std::initializer_list<const Tensor*> inputs);

// The slot backward deposits t's gradient into, or null when t requires none. Closures capture this
// instead of t, so that t's bytes are not kept alive when backward does not read them.
GradTarget grad_target(const Tensor& t);

// Adds g into the target's gradient (g itself the first time; a sum afterwards). Null: does nothing.
void accumulate_grad(const GradTarget& target, const Tensor& g);
// The same for a tensor (nothing when it does not require a gradient).
void accumulate_grad(const Tensor& t, const Tensor& g);

// An uninitialised tensor shaped like the target's tensor (for gradient buffers).
Tensor empty_for(const GradTarget& target);

// Where a backward GEMM writes its contribution to the target's gradient. When the target already
// holds a gradient, the GEMM adds straight into it (β = 1) instead of writing a scratch buffer that
// accumulate_grad then adds with an axpy: one pass over the gradient instead of three. A layer input
// read by many products (q, k, v, two LoRA A's and three gates in unipelt-apl) gets most of its
// gradient this way. Otherwise the buffer is fresh and finish() stores it.
struct GradDestination {
  Tensor buffer;
  double beta = 0.0;  // 1: buffer is the target's gradient itself; 0: a fresh buffer
  void finish(const GradTarget& target) const {
    if (beta == 0.0) accumulate_grad(target, buffer);
  }
};
// For a null target: an undefined buffer (the caller skips the product).
GradDestination grad_destination(const GradTarget& target);

}  // namespace unipelt

#include "autograd/tape.h"

#include "autograd/backend.h"

namespace unipelt {

namespace {
thread_local bool g_grad_enabled = true;
}  // namespace

Tape& tape() {
  thread_local Tape t;
  return t;
}

bool grad_enabled() { return g_grad_enabled; }

NoGradGuard::NoGradGuard() : previous_(g_grad_enabled) { g_grad_enabled = false; }
NoGradGuard::~NoGradGuard() { g_grad_enabled = previous_; }

bool needs_grad(std::initializer_list<const Tensor*> inputs) {
  if (!g_grad_enabled) return false;
  for (const Tensor* t : inputs)
    if (t && t->defined() && t->requires_grad()) return true;
  return false;
}

void Tape::record_outputs(const char* op, const std::vector<Tensor>& outputs,
                          std::function<void(std::span<const Tensor>)> backward_fn) {
  if (!g_grad_enabled) return;
  std::vector<GradTarget> slots;
  slots.reserve(outputs.size());
  for (Tensor out : outputs) {
    out.set_requires_grad(true);
    slots.push_back(out.grad_slot());
  }
  nodes_.push_back(Node{op, std::move(slots), std::move(backward_fn)});
}

bool run_backward(const Node& node) {
  if (node.outputs.size() == 1) {  // the common case, without a vector
    std::shared_ptr<TensorImpl> grad = node.outputs[0]->grad;
    if (!grad) return false;  // this output did not influence the loss
    node.outputs[0]->grad.reset();
    const Tensor g(grad);
    node.backward(std::span<const Tensor>(&g, 1));
    return true;
  }
  std::vector<Tensor> grads;
  bool any = false;
  for (const GradTarget& slot : node.outputs) {
    grads.emplace_back(slot->grad);
    any = any || slot->grad != nullptr;
    slot->grad.reset();
  }
  if (any) node.backward(grads);
  return any;
}

GradTarget grad_target(const Tensor& t) {
  return t.defined() && t.requires_grad() ? t.grad_slot() : GradTarget();
}

Tensor empty_for(const GradTarget& target) { return Tensor::empty(target->shape, target->dtype, target->device); }

void accumulate_grad(const Tensor& t, const Tensor& g) { accumulate_grad(grad_target(t), g); }

namespace {
// The slot's (non-null) gradient, ready to be added into in place. It may share bytes with another
// tensor's gradient or with a gradient a backward closure is still reading (the dy it is given);
// adding in place would change both, so a shared gradient is copied first and the copy stored.
Tensor gradient_to_add_into(GradSlot& slot) {
  Tensor current(slot.grad);
  if (current.storage().use_count() > 1) {
    current = current.clone();
    slot.grad = current.impl_ptr();
  }
  return current;
}
}  // namespace

void accumulate_grad(const GradTarget& target, const Tensor& g) {
  if (!target) return;
  check(g.numel() == shape_numel(target->shape), "accumulate_grad",
        [&] { return "gradient " + shape_str(g.shape()) + " does not fit tensor " + shape_str(target->shape); });
  GradSlot& slot = *target;
  // Always a fresh TensorImpl over g's bytes: the same gradient tensor may be handed to several
  // inputs (add passes dy to both operands), and the use count below must see that sharing.
  Tensor incoming = g.view(slot.shape);
  if (!slot.grad) {
    slot.grad = incoming.impl_ptr();
    return;
  }
  const Tensor current = gradient_to_add_into(slot);
  backend(slot.device).axpy(slot.dtype, incoming.numel(), 1.0, incoming.data(), current.data());
}

GradDestination grad_destination(const GradTarget& target) {
  if (!target) return {};
  if (!target->grad) return {empty_for(target), 0.0};
  return {gradient_to_add_into(*target), 1.0};
}

void Tape::backward(const Tensor& loss) {
  check(loss.numel() == 1, "backward",
        [&] { return "the loss must have one element, got shape " + shape_str(loss.shape()); });
  check(loss.requires_grad(), "backward", "the loss does not depend on anything that requires a gradient");
  accumulate_grad(loss, Tensor::full(loss.shape(), 1.0, loss.dtype(), loss.device()));
  // The gradients of non-leaf tensors are intermediate: free each as soon as its node has run.
  for (auto it = nodes_.rbegin(); it != nodes_.rend(); ++it) run_backward(*it);
  nodes_.clear();
}

void backward(const Tensor& loss) { tape().backward(loss); }

}  // namespace unipelt

// One training step and one epoch's batches, as the trainer (trainer.cpp) and `bench epoch` run them.
#include <algorithm>
#include <cmath>

#include "autograd/tape.h"
#include "datasets/glue.h"
#include "nn/optim.h"
#include "train/trainer.h"

namespace unipelt {

std::vector<std::vector<size_t>> epoch_batches(const TrainConfig& c, size_t examples, int epoch) {
  const std::vector<size_t> order = shuffled_order(examples, c.seed * 1000003ull + static_cast<uint64_t>(epoch));
  std::vector<std::vector<size_t>> batches;
  for (size_t first = 0; first < order.size(); first += static_cast<size_t>(c.batch_size))
    batches.emplace_back(order.begin() + static_cast<long>(first),
                         order.begin() + static_cast<long>(std::min(order.size(), first + c.batch_size)));
  return batches;
}

double training_step(PeltModel& model, const std::vector<NamedTensor>& params, AdamW& optimizer, const Batch* batch,
                     const TrainConfig& c, int64_t step, double lr, const StepShare& share) {
  ForwardContext ctx{true, c.seed * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(step), 0, share.example_offset};
  tape().clear();
  for (const NamedTensor& p : params) p.tensor.zero_grad();
  BertForSequenceClassification::Output outputs;
  if (batch) outputs = model.forward(*batch, ctx);
  double loss = outputs.loss.defined() ? outputs.loss.item() : 0.0;
  if (share.comm) loss = GradientAllReduce::mean_loss(*share.comm, loss, share.mine, share.global);
  if (!std::isfinite(loss)) {
    tape().clear();
    return loss;
  }
  if (outputs.loss.defined()) backward(outputs.loss);
  if (share.gradients) share.gradients->reduce(*share.comm, share.mine, share.global);
  clip_grad_norm(params, c.max_grad_norm);
  optimizer.step(lr);
  return loss;
}

}  // namespace unipelt

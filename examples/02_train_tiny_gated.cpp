// Learner program 2: the tiny BERT of program 1 with a gated LoRA, trained for a few dozen steps on a
// synthetic task a linear probe can separate. It prints the loss falling and the gate values moving.
//
//   build/example_train_tiny_gated [steps]        (default 60)
//
// The task: each sequence is [CLS] w_1 … w_n [SEP] with n from 2 to 6, padded to 8. Class 0 draws its
// words from ids 5–19, class 1 from ids 20–34. The training loop is the one train/trainer.cpp runs,
// written out: zero the gradients, forward, backward, clip the global norm to 1, AdamW with a linearly
// decaying learning rate. LoRA starts at B = 0 (the frozen BERT exactly) and the gates at σ(≈0) ≈ 0.5.
// Exit status 0 when the loss on a held-out batch fell by more than half and the gates moved, 1 otherwise.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>

#include "autograd/tape.h"
#include "nn/optim.h"
#include "pelt/method_checks.h"

using namespace unipelt;

namespace {

constexpr int64_t kBatch = 16, kLength = 8;

// A batch of the synthetic task (float32, as training runs), drawn from `rng`.
Batch synthetic_batch(std::mt19937_64& rng) {
  std::vector<int32_t> ids(kBatch * kLength, 0), types(kBatch * kLength, 0), labels(kBatch);
  std::vector<double> mask(kBatch * kLength, 0.0);
  for (int64_t b = 0; b < kBatch; ++b) {
    const int label = static_cast<int>(rng() % 2), words = 2 + static_cast<int>(rng() % 5);
    labels[b] = label;
    ids[b * kLength] = 2;                                                     // [CLS]
    for (int w = 1; w <= words; ++w) ids[b * kLength + w] = 5 + 15 * label + static_cast<int32_t>(rng() % 15);
    ids[b * kLength + words + 1] = 3;                                         // [SEP]
    for (int t = 0; t <= words + 1; ++t) mask[b * kLength + t] = 1.0;
  }
  return {Tensor::from_ints(ids, {kBatch, kLength}), Tensor::from_ints(types, {kBatch, kLength}),
          Tensor::from_vector(mask, {kBatch, kLength}, DType::F32), Tensor::from_ints(labels, {kBatch})};
}

// Loss and mean gate values (one per gate, in model.gate_values() order) on a batch, without dropout
// and without recording.
struct Watch {
  double loss = 0;
  std::vector<double> gates;
};
Watch watch(PeltModel& model, const Batch& batch) {
  NoGradGuard no_grad;
  ForwardContext eval;
  Watch w{model.forward(batch, eval).loss.item(), {}};
  for (const auto& [name, g] : model.gate_values()) {
    double sum = 0;
    for (double v : g.to_vector()) sum += v;
    w.gates.push_back(sum / static_cast<double>(g.numel()));
  }
  return w;
}

}  // namespace

int main(int argc, char** argv) {
  const int steps = argc > 1 ? std::atoi(argv[1]) : 60;
  if (steps < 10) {
    std::fprintf(stderr, "usage: %s [steps]   (steps >= 10, default 60)\n", argv[0]);
    return 2;
  }
  // The tiny BERT with random frozen weights, as in program 1; the PELT modules at their real init.
  BertForSequenceClassification bert(tiny_bert_config(/*num_labels=*/2), DType::F32);
  init_tiny_bert(bert, /*seed=*/7);
  PeltConfig config = preset("lora");
  config.gated = true;
  config.lora_r = 4;
  config.lora_alpha = 8;
  PeltModel model(bert, config, /*seed=*/8);
  const std::vector<NamedTensor> trainable = model.trainable_parameters();
  AdamW optimizer(trainable, AdamWOptions{});
  const double lr = 2e-2;

  std::mt19937_64 rng(11);
  const Batch held_out = synthetic_batch(rng);  // a fixed batch to watch the loss and the gates on
  const Watch before = watch(model, held_out);
  std::printf("gated LoRA (rank %d) on the tiny BERT, %zu trainable tensors; synthetic task, batch %lld, "
              "lr %.0e with linear decay\n", config.lora_r, trainable.size(), static_cast<long long>(kBatch), lr);
  std::printf("columns: the training batch's loss and accuracy, then the loss and every gate's mean value on a "
              "fixed held-out batch\n\n%5s %10s %9s %13s", "step", "train loss", "accuracy", "held-out loss");
  std::vector<int> widths;  // one column per gate, as wide as its name
  for (const auto& [name, g] : model.gate_values()) {
    widths.push_back(static_cast<int>(name.size()));
    std::printf("  %s", name.c_str());
  }
  auto print_gates = [&widths](const Watch& w) {
    for (size_t i = 0; i < w.gates.size(); ++i) std::printf("  %*.4f", widths[i], w.gates[i]);
    std::printf("\n");
  };
  std::printf("\n%5s %10s %9s %13.4f", "start", "", "", before.loss);
  print_gates(before);

  Watch after = before;
  for (int step = 1; step <= steps; ++step) {
    const Batch batch = synthetic_batch(rng);
    tape().clear();
    for (const NamedTensor& p : trainable) p.tensor.zero_grad();
    ForwardContext ctx;
    ctx.training = true;  // dropout on (the tiny config's 0.1)
    ctx.seed = static_cast<uint64_t>(step);
    auto out = model.forward(batch, ctx);
    backward(out.loss);
    clip_grad_norm(trainable, 1.0);
    optimizer.step(linear_schedule(lr, step - 1, steps));

    after = watch(model, held_out);
    if (step % 5 == 0) {
      const std::vector<double> logits = out.logits.to_vector();
      const std::vector<int32_t> labels = batch.labels.to_ints();
      int correct = 0;
      for (int64_t b = 0; b < kBatch; ++b) correct += (logits[2 * b + 1] > logits[2 * b]) == (labels[b] == 1);
      std::printf("%5d %10.4f %8.0f%% %13.4f", step, out.loss.item(), 100.0 * correct / kBatch, after.loss);
      print_gates(after);
    }
  }

  double moved = 0;
  for (size_t i = 0; i < before.gates.size(); ++i) moved = std::max(moved, std::abs(after.gates[i] - before.gates[i]));
  const bool fell = after.loss < 0.5 * before.loss, gates_moved = moved > 1e-3;
  std::printf("\nheld-out loss %s from %.4f to %.4f; gates %s (largest change of a mean gate %.4f)\n",
              fell ? "fell" : "did NOT fall by half", before.loss, after.loss, gates_moved ? "moved" : "did NOT move",
              moved);
  return fell && gates_moved ? 0 : 1;
}

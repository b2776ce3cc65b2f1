// Training and evaluating a PELT model on a GLUE task with the paper's protocol (Mao et al. 2022,
// §4.1 and Appendix B): K training examples from a seeded shuffle, the next 1,000 as the development
// set, the GLUE dev set as the test set; AdamW, linear decay, clipping at 1.0; early stopping on the
// dev metric; the best dev checkpoint restored before the test evaluation.
//
// A run directory holds:
//   config.json     the resolved configuration (everything needed to rerun or resume)
//   metrics.jsonl   one line per epoch: train loss, dev metrics, mean gate value per layer/submodule
//   results.json    written last: best dev, test metrics, wall time, peak memory
//   best/           the best trainable-only checkpoint (pelt/checkpoint.h)
//   state/          the end of the last finished epoch: parameters, optimizer, counters (for --resume)
// Every file is written atomically, so Ctrl-C or a crash never leaves a half-written one.
#pragma once

#include <filesystem>
#include <iosfwd>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "datasets/encoding.h"
#include "pelt/unipelt.h"

namespace unipelt {

struct TrainConfig {
  std::string task = "SST-2";
  PeltConfig pelt;
  std::string model_dir, data_dir, out_dir;
  size_t k = 100;  // 0 = all
  uint64_t data_seed = 111, seed = 42;
  double lr = 0.0;  // 0: the paper's rate for the method (default_learning_rate)
  int epochs = 50, patience = 10, batch_size = 16, max_len = 128, eval_batch_size = 64;
  double weight_decay = 0.0, beta1 = 0.9, beta2 = 0.999, adam_eps = 1e-8, max_grad_norm = 1.0;
  int warmup_steps = 0;
  std::string dtype = "f32", device = "cpu";
  int stop_after_epochs = 0;  // > 0: stop after this many epochs *of this invocation*, as if interrupted

  nlohmann::json to_json() const;
  static TrainConfig from_json(const nlohmann::json& j);
  // Throws std::invalid_argument naming the `unipelt train` flag and the accepted range, e.g. for a
  // batch size of 0 (which would otherwise divide by zero) or an evaluation batch size of 0.
  void validate() const;
};

// The paper's learning rates: fine-tuning 2e-5, adapter 1e-4, prefix 2e-4, LoRA 5e-4, BitFit 1e-4,
// UniPELT (any combination of several methods) 5e-4.
double default_learning_rate(const PeltConfig& pelt);

struct EvalResult {
  std::map<std::string, double> metrics;          // "main" plus the task's secondary metrics
  std::map<std::string, std::vector<double>> gates;  // "adapter" -> mean gate value per layer
  std::vector<double> predictions;                 // class id, or score for regression
  double loss = 0.0;
};

// Evaluates without recording anything (no-grad). Labels are needed for metrics and loss.
EvalResult evaluate(PeltModel& model, const std::string& task, const std::vector<EncodedExample>& data,
                    int batch_size, int pad_to, bool with_labels = true);

struct TrainResult {
  bool finished = false;      // false when stopped early by stop_after_epochs or Ctrl-C
  int epochs_run = 0, best_epoch = 0;
  std::map<std::string, double> best_dev, test;
  double wall_seconds = 0.0;
};

// Runs (or, with resume, continues) a training run. Progress goes to `log`.
TrainResult train_glue(const TrainConfig& config, bool resume, std::ostream& log);

}  // namespace unipelt

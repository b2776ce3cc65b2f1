// Training and evaluating a PELT model on a GLUE task with the paper's protocol (Mao et al. 2022,
// §4.1 and Appendix B): K training examples from a seeded shuffle, the next 1,000 as the development
// set, the GLUE dev set as the test set; AdamW, linear decay, clipping at 1.0; early stopping on the
// dev metric; the best dev checkpoint restored before the test evaluation.
//
// The run directory (config.json, state/, metrics.jsonl, best/, results.json) is described in
// train/run_dir.h; every file is written atomically, and a run killed at any moment resumes (--resume)
// to exactly the result of an uninterrupted one.
#pragma once

#include <iosfwd>
#include <map>
#include <string>

#include "nn/optim.h"
#include "train/distributed.h"
#include "train/evaluate.h"
#include "train/settings.h"

namespace unipelt {

struct TrainResult {
  bool finished = false;      // false when stopped early by stop_after_epochs or Ctrl-C
  int epochs_run = 0, best_epoch = 0;
  std::map<std::string, double> best_dev, test;
  double wall_seconds = 0.0;
};

// One epoch's batches as the trainer makes them: the `examples` training examples in the order drawn from
// (config.seed, epoch), cut into config.batch_size-long batches (the last one shorter), each padded to
// its longest sequence (or padded_length(config)) by make_batch. `bench epoch` times exactly these.
std::vector<std::vector<size_t>> epoch_batches(const TrainConfig& config, size_t examples, int epoch);

// This process's part of a data-parallel step (train/distributed.h): `mine` of the global batch's
// `global` examples, the first of them example `example_offset` of the batch (dropout masks follow the
// global index). The default is one process holding the whole batch.
struct StepShare {
  Communicator* comm = nullptr;
  const GradientAllReduce* gradients = nullptr;
  size_t mine = 0, global = 0;
  int64_t example_offset = 0;
};

// One optimisation step as the trainer takes it: zero_grad, forward in training mode (dropout seeded
// from config.seed and `step`, the run's step counter), loss.item(), backward, with a share the loss
// averaged and the gradients all-reduced over the ranks, clip_grad_norm to config.max_grad_norm, AdamW
// at learning rate `lr`. `batch` may be null for a rank whose share of a short last batch is empty.
// Returns the (global) loss; when it is not finite, nothing is updated (the tape is cleared and the
// caller decides).
double training_step(PeltModel& model, const std::vector<NamedTensor>& params, AdamW& optimizer, const Batch* batch,
                     const TrainConfig& config, int64_t step, double lr, const StepShare& share = {});

// Runs (or, with resume, continues) a training run. Progress goes to `log`. Throws
// std::invalid_argument for settings that break a rule (naming the flag) before any work, and
// std::runtime_error for everything else (data, model, a diverged loss: the last good state is kept).
TrainResult train_glue(const TrainConfig& config, bool resume, std::ostream& log);
// The same run as one rank of a data-parallel group (train/distributed.h; `mpirun -np N unipelt train`):
// the losses and metrics of the single-process run, whatever N. Only rank 0 writes the run directory
// and the log; every rank must see the directory (a shared filesystem on several machines).
TrainResult train_glue(const TrainConfig& config, bool resume, std::ostream& log, Communicator& comm);

}  // namespace unipelt

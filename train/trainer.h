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

// Runs (or, with resume, continues) a training run. Progress goes to `log`. Throws
// std::invalid_argument for settings that break a rule (naming the flag) before any work, and
// std::runtime_error for everything else (data, model, a diverged loss: the last good state is kept).
TrainResult train_glue(const TrainConfig& config, bool resume, std::ostream& log);
// The same run as one rank of a data-parallel group (train/distributed.h; `mpirun -np N unipelt train`):
// the losses and metrics of the single-process run, whatever N. Only rank 0 writes the run directory
// and the log; every rank must see the directory (a shared filesystem on several machines).
TrainResult train_glue(const TrainConfig& config, bool resume, std::ostream& log, Communicator& comm);

}  // namespace unipelt

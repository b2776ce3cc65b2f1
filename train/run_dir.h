// The run directory and its resumable state. docs/training.md ("The run directory") has the layout:
//
//   RUN/config.json               the run's settings (TrainConfig::to_json), written first
//   RUN/state/state.safetensors   everything --resume needs, committed as ONE file by one rename:
//                                 param/<name> (trainable tensors), m/<name> and v/<name> (AdamW),
//                                 best/<name> (the best epoch's trainable tensors) and, in the file's
//                                 metadata, "trainer_state": the counters, the metrics history and the
//                                 fingerprint of the run the state belongs to
//   RUN/metrics.jsonl             derived: the state's history, one line per finished epoch
//   RUN/best/                     derived: the state's best/ tensors (pelt/checkpoint.h format)
//   RUN/results.json              written last, from best/
//   RUN/.lock                     held (flock) by the process training in the directory
//
// The derived files are rewritten from the state whenever a run starts or resumes, so a crash between
// any two writes leaves a directory that resumes to exactly what an uninterrupted run produces. The
// random streams need no saved position: batch order is seeded by (seed, epoch) and dropout by
// (seed, step), both counters the state holds.
#pragma once

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "nn/optim.h"
#include "pelt/unipelt.h"
#include "train/settings.h"

namespace unipelt {

// RUN/config.json as a TrainConfig. Throws std::runtime_error naming the file when it is missing
// ("not a run directory"), not JSON, or not a valid configuration (which key, what is wrong).
TrainConfig read_run_config(const std::filesystem::path& run);

// Everything the training loop carries from one epoch to the next.
struct TrainingState {
  int epoch = 0;            // epochs finished
  int64_t step = 0;         // optimizer steps taken
  double best = -INFINITY;  // best dev "main" metric so far
  int best_epoch = 0, bad_epochs = 0;
  nlohmann::json history = nlohmann::json::array();  // the metrics.jsonl lines so far
  double wall_seconds = 0.0;                         // spent by all invocations so far
  std::vector<std::pair<std::string, Tensor>> best_tensors;  // best epoch's trainable tensors (CPU copies)
};

// What a state belongs to: the run's settings (config.json) and the base model's weights.
struct RunFingerprint {
  std::string settings_hash;      // FNV-1a of config.json's text
  std::string base_weights_hash;  // pelt/checkpoint.h: base_weights_hash
};
RunFingerprint run_fingerprint(const TrainConfig& config, const std::string& base_weights_hash);

// Writes RUN/state/state.safetensors (one atomic file).
void save_training_state(const std::filesystem::path& run, const TrainingState& state, const PeltModel& model,
                         const AdamW& optimizer, const RunFingerprint& fingerprint);

// Reads RUN/state/state.safetensors into the model's trainable tensors and the optimizer, when the file
// exists (nothing otherwise). Refuses, with a message naming the file and the reason, a state that
// belongs to another run (settings or base weights differ), whose counters are inconsistent (epoch beyond
// --epochs, a history of another length, a step count that does not match the epochs), or whose tensors
// do not match the model.
std::optional<TrainingState> load_training_state(const std::filesystem::path& run, const PeltModel& model,
                                                 AdamW& optimizer, const RunFingerprint& fingerprint,
                                                 const TrainConfig& config, int64_t steps_per_epoch);

// Rewrites the derived files from the state: best/ (when `with_best` and there is a best epoch), then
// metrics.jsonl. `checkpoint_config` is best/pelt_config.json (pelt/checkpoint.h: pelt_checkpoint_config).
void write_derived_files(const std::filesystem::path& run, const TrainingState& state,
                         const nlohmann::json& checkpoint_config, bool with_best);

// An exclusive lock on RUN/.lock for as long as the object lives: two processes never train in the
// same run directory (a sweep rerun while an orphaned run still writes, say). Throws std::runtime_error
// naming the directory when another process holds it.
class RunDirectoryLock {
 public:
  explicit RunDirectoryLock(const std::filesystem::path& run);
  ~RunDirectoryLock();
  RunDirectoryLock(const RunDirectoryLock&) = delete;
  RunDirectoryLock& operator=(const RunDirectoryLock&) = delete;

 private:
  int fd_ = -1;
};

}  // namespace unipelt

// Evaluating a PELT model on encoded examples: metrics, loss, mean gate values, predictions.
// The trainer evaluates the dev set after each epoch and the test set at the end; `unipelt eval` and
// `predict` reuse it through train/saved_run.h.
#pragma once

#include <functional>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "datasets/encoding.h"
#include "pelt/unipelt.h"
#include "train/distributed.h"

namespace unipelt {

struct EvalResult {
  std::map<std::string, double> metrics;             // "main" plus the task's secondary metrics
  std::map<std::string, std::vector<double>> gates;  // "adapter" -> mean gate value per layer
  std::vector<double> predictions;                   // class id, or score for regression
  double loss = 0.0;
};

// A NaN or an infinity in a logit, a gate or the loss of an evaluation: the model has diverged.
struct NonFiniteError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The inference pass behind evaluate() and `unipelt predict` (train/saved_run.h): the examples sorted by
// length (stable), cut into batches of `batch_size`, each padded to its longest sequence (or to pad_to
// when that is larger), and run forward with gradients off: no tape, no gradient buffers, dropout off.
// `each_batch(indices, output)` receives every batch's output with the positions of its examples in
// `data`, so that callers put results back in input order. Labels go into the batches when with_labels.
// `share` runs batches mine, mine + of, mine + 2 of, ... only (one rank's share of the same batches).
using InferenceBatchFn = std::function<void(const std::vector<size_t>& indices,
                                            const BertForSequenceClassification::Output& output)>;
struct BatchShare {
  size_t mine = 0, of = 1;
};
void run_inference(PeltModel& model, const std::vector<EncodedExample>& data, int batch_size, int pad_to,
                   bool with_labels, const InferenceBatchFn& each_batch, BatchShare share = {});

// Evaluates through run_inference; results come back in input order. Labels are needed for metrics and
// loss. Throws NonFiniteError naming the first example whose logits, gates or loss are not finite.
// With several ranks (train/distributed.h) rank r evaluates batches r, r + N, ... of the same batches and
// the sums come back to every rank: the predictions, so the metrics, exactly those of one process (when
// there are fewer batches than ranks, every rank evaluates all of them).
EvalResult evaluate(PeltModel& model, const std::string& task, const std::vector<EncodedExample>& data,
                    int batch_size, int pad_to, bool with_labels = true, Communicator& comm = single_process());

}  // namespace unipelt

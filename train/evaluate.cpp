// evaluate(): batches sorted by length, no tape, predictions put back in input order, gates averaged
// per layer, the task's metrics at the end.
#include "train/evaluate.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "autograd/tape.h"
#include "datasets/metrics.h"

namespace unipelt {

namespace {

// Throws when any value is not finite; `what` names the quantity, `rows` maps a value's row to its
// example index (values are [rows.size(), values.size() / rows.size()]).
void require_finite(const std::vector<double>& values, const std::string& what, const std::vector<size_t>& rows) {
  const size_t per_row = rows.empty() ? 1 : std::max<size_t>(1, values.size() / rows.size());
  for (size_t i = 0; i < values.size(); ++i)
    if (!std::isfinite(values[i]))
      throw NonFiniteError("evaluation: the " + what + " of example " + std::to_string(rows[i / per_row]) + " is " +
                           std::to_string(values[i]) + "; the model has diverged (try a lower --lr)");
}

// The predicted class of row i of logits [n, c]: the first largest logit.
double argmax_row(const std::vector<double>& logits, size_t i, size_t c) {
  const auto row = logits.begin() + static_cast<long>(i * c);
  return static_cast<double>(std::max_element(row, row + static_cast<long>(c)) - row);
}

// "layer.3.adapter" -> gates["adapter"][3] = sum / n.
std::map<std::string, std::vector<double>> per_layer_gates(const std::map<std::string, double>& sums, size_t n) {
  std::map<std::string, std::vector<double>> gates;
  for (const auto& [name, sum] : sums) {
    const size_t dot1 = name.find('.'), dot2 = name.find('.', dot1 + 1);
    const size_t layer = std::stoul(name.substr(dot1 + 1, dot2 - dot1 - 1));
    auto& per_layer = gates[name.substr(dot2 + 1)];
    if (per_layer.size() <= layer) per_layer.resize(layer + 1, 0.0);
    per_layer[layer] = sum / static_cast<double>(n);
  }
  return gates;
}

std::map<std::string, double> task_metrics(const std::string& task, const std::vector<double>& predictions,
                                           const std::vector<EncodedExample>& data, bool regression) {
  if (regression) {
    std::vector<float> pred, gold;
    for (size_t i = 0; i < data.size(); ++i) {
      pred.push_back(static_cast<float>(predictions[i]));
      gold.push_back(data[i].score);
    }
    return compute_task_metrics(task, pred, gold);
  }
  std::vector<int> pred, gold;
  for (size_t i = 0; i < data.size(); ++i) {
    pred.push_back(static_cast<int>(predictions[i]));
    gold.push_back(data[i].label);
  }
  return compute_task_metrics(task, pred, gold);
}

// Sums the ranks' partial results: the predictions (each example's comes from one rank, the others add
// zeros, so the sum is exact), the gate sums (the same names on every rank that evaluated a batch, and
// every rank did) and the loss, in one all-reduce.
void reduce_sums(Communicator& comm, std::vector<double>& predictions, std::map<std::string, double>& gate_sums,
                 double& loss_sum) {
  std::vector<double> flat = predictions;
  for (const auto& [name, sum] : gate_sums) flat.push_back(sum);
  flat.push_back(loss_sum);
  comm.all_reduce_sum(flat.data(), flat.size());
  std::copy(flat.begin(), flat.begin() + static_cast<long>(predictions.size()), predictions.begin());
  size_t at = predictions.size();
  for (auto& [name, sum] : gate_sums) sum = flat[at++];
  loss_sum = flat[at];
}

}  // namespace

void run_inference(PeltModel& model, const std::vector<EncodedExample>& data, int batch_size, int pad_to,
                   bool with_labels, const InferenceBatchFn& each_batch, BatchShare share) {
  NoGradGuard no_grad;
  const bool regression = model.base().is_regression();
  // Sort by length so that each batch pads little (callers put the results back in the original order).
  std::vector<size_t> order(data.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return data[a].input_ids.size() < data[b].input_ids.size(); });
  const size_t batch = static_cast<size_t>(std::max(1, batch_size));
  for (size_t start = 0, n = 0; start < order.size(); start += batch, ++n) {
    if (n % share.of != share.mine) continue;  // another rank's batch
    const std::vector<size_t> idx(order.begin() + static_cast<long>(start),
                                  order.begin() + static_cast<long>(std::min(order.size(), start + batch)));
    Batch b = make_batch(data, idx, regression, with_labels, pad_to, model.base().dtype(), model.base().device());
    ForwardContext ctx;  // training = false: dropout is the identity
    each_batch(idx, model.forward(b, ctx));
  }
}

EvalResult evaluate(PeltModel& model, const std::string& task, const std::vector<EncodedExample>& data,
                    int batch_size, int pad_to, bool with_labels, Communicator& comm) {
  const bool regression = model.base().is_regression();
  EvalResult r;
  r.predictions.assign(data.size(), 0.0);
  std::map<std::string, double> gate_sums;
  double loss_sum = 0.0;
  const size_t batches = (data.size() + static_cast<size_t>(batch_size) - 1) / static_cast<size_t>(batch_size);
  const bool sharded = comm.size() > 1 && batches >= static_cast<size_t>(comm.size());
  const BatchShare share = sharded ? BatchShare{static_cast<size_t>(comm.rank()), static_cast<size_t>(comm.size())}
                                   : BatchShare{};
  run_inference(model, data, batch_size, pad_to, with_labels, [&](const std::vector<size_t>& idx, const auto& out) {
    const std::vector<double> logits = out.logits.to_vector();
    require_finite(logits, "logits", idx);
    if (out.loss.defined()) {
      require_finite({out.loss.item()}, "loss of the batch starting at", idx);
      loss_sum += out.loss.item() * static_cast<double>(idx.size());
    }
    const size_t c = static_cast<size_t>(out.logits.size(1));
    for (size_t i = 0; i < idx.size(); ++i) r.predictions[idx[i]] = regression ? logits[i] : argmax_row(logits, i, c);
    for (const auto& [name, g] : model.gate_values()) {
      const std::vector<double> values = g.to_vector();
      require_finite(values, "gate " + name, idx);
      gate_sums[name] += std::accumulate(values.begin(), values.end(), 0.0);
    }
  }, share);
  if (sharded) reduce_sums(comm, r.predictions, gate_sums, loss_sum);
  r.gates = per_layer_gates(gate_sums, data.size());
  if (with_labels && !data.empty()) {
    r.loss = loss_sum / static_cast<double>(data.size());
    r.metrics = task_metrics(task, r.predictions, data, regression);
  }
  return r;
}

}  // namespace unipelt

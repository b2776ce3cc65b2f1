// GLUE metrics. Formulas follow scikit-learn and scipy so that our numbers are comparable with the
// HF `glue` metric the paper's code used; see metrics.h for the degenerate-case conventions.
#include "datasets/metrics.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>

#include "datasets/glue.h"

namespace unipelt {

namespace {

template <typename A, typename B>
void check_sizes(const char* metric, const std::vector<A>& predictions, const std::vector<B>& labels) {
  if (predictions.size() != labels.size())
    throw std::invalid_argument(std::string(metric) + ": " + std::to_string(predictions.size()) +
                                " predictions but " + std::to_string(labels.size()) + " labels");
  if (predictions.empty()) throw std::invalid_argument(std::string(metric) + ": no examples");
}

double mean(const std::vector<double>& v) { return std::accumulate(v.begin(), v.end(), 0.0) / v.size(); }

std::vector<double> to_double(const std::vector<float>& v) { return {v.begin(), v.end()}; }

}  // namespace

double accuracy(const std::vector<int>& predictions, const std::vector<int>& labels) {
  check_sizes("accuracy", predictions, labels);
  size_t correct = 0;
  for (size_t i = 0; i < labels.size(); ++i) correct += predictions[i] == labels[i];
  return static_cast<double>(correct) / labels.size();
}

double f1_positive(const std::vector<int>& predictions, const std::vector<int>& labels) {
  check_sizes("f1", predictions, labels);
  double tp = 0, fp = 0, fn = 0;
  for (size_t i = 0; i < labels.size(); ++i) {
    const bool predicted = predictions[i] == 1, actual = labels[i] == 1;
    tp += predicted && actual;
    fp += predicted && !actual;
    fn += !predicted && actual;
  }
  // 2TP / (2TP + FP + FN) is the harmonic mean of precision and recall without dividing by zero
  // when there are no positive predictions; with no positives at all anywhere it is 0/0 -> 0.
  const double denominator = 2 * tp + fp + fn;
  return denominator == 0 ? 0.0 : 2 * tp / denominator;
}

double matthews_corrcoef(const std::vector<int>& predictions, const std::vector<int>& labels) {
  check_sizes("matthews_corrcoef", predictions, labels);
  int classes = 0;
  for (size_t i = 0; i < labels.size(); ++i) {
    if (predictions[i] < 0 || labels[i] < 0)
      throw std::invalid_argument("matthews_corrcoef: class ids must be >= 0");
    classes = std::max({classes, predictions[i] + 1, labels[i] + 1});
  }
  // Per class k: t_k = how often it is the true class, p_k = how often it is predicted.
  std::vector<double> t(classes, 0.0), p(classes, 0.0);
  double correct = 0;
  for (size_t i = 0; i < labels.size(); ++i) {
    t[labels[i]] += 1;
    p[predictions[i]] += 1;
    correct += predictions[i] == labels[i];
  }
  const double n = static_cast<double>(labels.size());
  const double tp_dot = std::inner_product(t.begin(), t.end(), p.begin(), 0.0);
  const double pp_dot = std::inner_product(p.begin(), p.end(), p.begin(), 0.0);
  const double tt_dot = std::inner_product(t.begin(), t.end(), t.begin(), 0.0);
  const double cov_true_pred = correct * n - tp_dot;
  const double cov_pred_pred = n * n - pp_dot;  // 0 iff the predictions are constant
  const double cov_true_true = n * n - tt_dot;  // 0 iff only one class occurs in the labels
  if (cov_pred_pred == 0 || cov_true_true == 0) return 0.0;
  return cov_true_pred / std::sqrt(cov_pred_pred * cov_true_true);
}

double pearson(const std::vector<double>& x, const std::vector<double>& y) {
  check_sizes("pearson", x, y);
  // Two passes (means first, then centred sums) to avoid the cancellation of the one-pass formula.
  const double mx = mean(x), my = mean(y);
  double sxy = 0, sxx = 0, syy = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double dx = x[i] - mx, dy = y[i] - my;
    sxy += dx * dy;
    sxx += dx * dx;
    syy += dy * dy;
  }
  if (sxx == 0 || syy == 0) return 0.0;  // a constant side: correlation undefined, report none
  // Rounding can push |r| a hair above 1 for perfectly (anti-)correlated data.
  return std::clamp(sxy / std::sqrt(sxx * syy), -1.0, 1.0);
}

std::vector<double> average_ranks(const std::vector<double>& values) {
  std::vector<size_t> order(values.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return values[a] < values[b]; });
  std::vector<double> ranks(values.size());
  // Walk runs of equal values; positions first..last (0-based) share rank (first+last)/2 + 1.
  for (size_t first = 0; first < order.size();) {
    size_t last = first;
    while (last + 1 < order.size() && values[order[last + 1]] == values[order[first]]) ++last;
    const double rank = (first + last) / 2.0 + 1.0;
    for (size_t i = first; i <= last; ++i) ranks[order[i]] = rank;
    first = last + 1;
  }
  return ranks;
}

double spearman(const std::vector<double>& x, const std::vector<double>& y) {
  check_sizes("spearman", x, y);
  return pearson(average_ranks(x), average_ranks(y));
}

Metrics compute_task_metrics(const std::string& task, const std::vector<int>& predictions,
                             const std::vector<int>& labels) {
  const TaskInfo& info = task_info(task);
  if (info.kind != TaskKind::Classification)
    throw std::invalid_argument(info.name + " is a regression task: pass float scores, not class ids");
  Metrics m;
  m["accuracy"] = accuracy(predictions, labels);
  if (info.metric == "mcc") {
    m["mcc"] = matthews_corrcoef(predictions, labels);
  } else if (info.metric == "f1") {
    m["f1"] = f1_positive(predictions, labels);
    m["acc_and_f1"] = (m["accuracy"] + m["f1"]) / 2;
  }
  m["main"] = m.at(info.metric);
  return m;
}

Metrics compute_task_metrics(const std::string& task, const std::vector<float>& predictions,
                             const std::vector<float>& labels) {
  const TaskInfo& info = task_info(task);
  if (info.kind != TaskKind::Regression)
    throw std::invalid_argument(info.name + " is a classification task: pass class ids, not floats");
  const std::vector<double> x = to_double(predictions), y = to_double(labels);
  Metrics m;
  m["pearson"] = pearson(x, y);
  m["spearman"] = spearman(x, y);
  m["corr"] = (m["pearson"] + m["spearman"]) / 2;
  m["main"] = m.at(info.metric);
  return m;
}

}  // namespace unipelt

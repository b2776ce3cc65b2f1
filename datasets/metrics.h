// Evaluation metrics for GLUE, matching scikit-learn / scipy as used by the HF `glue` metric.
//
// Every metric is returned as a FRACTION (accuracy 0.875, not 87.5). The paper's tables report
// them x100; convert only when printing.
//
// Degenerate inputs never produce NaN, because a NaN would silently lose every "is this checkpoint
// better?" comparison during model selection:
//   * F1 with no true positives (e.g. no positive predictions) is 0, as sklearn's zero_division=0.
//   * MCC is 0 when the denominator is 0 (constant predictions or one class only), as sklearn.
//   * Pearson / Spearman are 0 when either side is constant (scipy would give NaN).
// (NaN in the inputs, e.g. from a diverged regression head, still propagates to the result.)
// Empty inputs and inputs of different lengths raise std::invalid_argument.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace unipelt {

double accuracy(const std::vector<int>& predictions, const std::vector<int>& labels);

// F1 of the positive class (label 1): 2 TP / (2 TP + FP + FN); sklearn f1_score(average="binary").
double f1_positive(const std::vector<int>& predictions, const std::vector<int>& labels);

// Matthews correlation coefficient, sklearn's multiclass definition (Gorodkin's R_K), which equals
// the usual (TP*TN - FP*FN) / sqrt(...) for two classes. Labels must be >= 0.
double matthews_corrcoef(const std::vector<int>& predictions, const std::vector<int>& labels);

double pearson(const std::vector<double>& x, const std::vector<double>& y);

// Spearman's rho: Pearson correlation of the ranks, ties given their average rank (scipy.stats).
double spearman(const std::vector<double>& x, const std::vector<double>& y);

// Ranks 1..n, ties sharing the average of the ranks they span: {10, 20, 20, 30} -> {1, 2.5, 2.5, 4}.
std::vector<double> average_ranks(const std::vector<double>& values);

using Metrics = std::map<std::string, double>;

// All the metrics the paper uses for `task`, with the primary one duplicated under "main":
//   CoLA:        mcc (main), accuracy
//   MRPC, QQP:   f1 (main), accuracy, acc_and_f1 = (accuracy + f1) / 2
//   STS-B:       spearman (main), pearson, corr = (pearson + spearman) / 2
//   the others:  accuracy (main)
// The int overload is for classification tasks (predicted class ids), the float one for STS-B;
// calling the wrong one raises std::invalid_argument. Pass typed vectors: a braced list would be
// ambiguous between the two.
Metrics compute_task_metrics(const std::string& task, const std::vector<int>& predictions,
                             const std::vector<int>& labels);
Metrics compute_task_metrics(const std::string& task, const std::vector<float>& predictions,
                             const std::vector<float>& labels);

}  // namespace unipelt

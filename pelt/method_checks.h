// `unipelt gradcheck methods`: for each preset, a float64 finite-difference check of the loss with
// respect to every trainable parameter, on a tiny random BERT with padding in the batch. Shared by the
// CLI and tests/test_pelt.cpp.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "autograd/gradcheck.h"
#include "pelt/unipelt.h"

namespace unipelt {

// The tiny model the checks use: 2 layers, hidden 16, 2 heads, intermediate 32, vocab 50.
BertConfig tiny_bert_config(int num_labels);
// A batch of 3 sequences of length 6, two of them padded (lengths 6, 4, 2); labels for the task.
Batch tiny_batch(bool regression, DType dtype = DType::F64);

struct TinyPeltSetup {
  std::unique_ptr<BertForSequenceClassification> bert;
  std::unique_ptr<PeltModel> model;
};
// Random base weights at a scale where every path carries a gradient well above gradcheck's atol:
// weights N(0, 0.2), biases U(-0.5, 0.5), LayerNorm γ U(0.5, 1.5). (BERT's own init, N(0, 0.02) with
// LayerNorm 1 and 0, leaves most gradients of a classification loss on this tiny model below 1e-5, where
// a wrong backward would pass the check unnoticed.)
void init_tiny_bert(const BertForSequenceClassification& bert, uint64_t seed);
// init_tiny_bert, and every PELT tensor random too (including LoRA's B, which real init sets to zero,
// and every bias), so that every gradient path is exercised.
TinyPeltSetup make_tiny_pelt(const PeltConfig& config, bool regression, uint64_t seed = 7);

struct MethodCheck {
  std::string method;
  GatePool pool;
  bool regression;
  GradcheckResult result;  // result.inputs[i] belongs to tensor_names[i]
  int64_t trainable_tensors = 0;
  std::vector<std::string> tensor_names;  // the trainable tensors, in the order they were checked
};
MethodCheck check_method(const std::string& method, GatePool pool, bool regression,
                         const GradcheckOptions& options = {});

}  // namespace unipelt

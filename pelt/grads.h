// One forward and backward of a PELT model on a fixed batch, with dropout off: what `unipelt grads`
// writes and what the parity tests compare with the PyTorch reference (tests/reference/).
#pragma once

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "pelt/unipelt.h"

namespace unipelt {

// Overwrites PELT and trainable base tensors by name from a safetensors file. Strict: every name in
// the file must be a tensor of the model (with the same shape); the error lists all offenders.
void load_named_tensors(const PeltModel& model, const std::filesystem::path& path);

// Runs the batch and returns, in order: logits, loss, gate/layer.{i}.{...} and grad/<name> for every
// trainable parameter (and nothing else), all as CPU tensors of the model's dtype.
std::vector<std::pair<std::string, Tensor>> forward_backward_outputs(PeltModel& model, const Batch& batch);

}  // namespace unipelt

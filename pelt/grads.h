// One forward and backward of a PELT model on a fixed batch, with dropout off: what `unipelt grads`
// writes and what the parity tests compare with the PyTorch reference (tests/reference/).
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "nn/tensor_file.h"
#include "pelt/unipelt.h"

namespace unipelt {

// Overwrites PELT and trainable base tensors by name from a safetensors file. Strict: every name in
// the file must be a tensor of the model (with the same shape); the error lists all offenders.
// `path` may also be a peft LoRA adapter directory (pelt/peft_format.h): the model must then have an
// ungated LoRA with the adapter's r and lora_alpha, and the adapter's names are mapped to ours.
void load_named_tensors(const PeltModel& model, const std::filesystem::path& path);

// The same from any tensor file, each name in the file mapped through `rename` first (empty: as is).
void load_named_tensors(const PeltModel& model, const TensorFile& file,
                        const std::function<std::string(const std::string&)>& rename = {});

// Runs the batch and returns, in order: logits, loss, gate/layer.{i}.{...} and grad/<name> for every
// trainable parameter (and nothing else), all as CPU tensors of the model's dtype.
std::vector<std::pair<std::string, Tensor>> forward_backward_outputs(PeltModel& model, const Batch& batch);

}  // namespace unipelt

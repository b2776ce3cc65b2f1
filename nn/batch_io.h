// Reading a batch from a safetensors file (the format `unipelt grads` and the parity fixtures use):
//   input_ids, token_type_ids, attention_mask  [B,T]  I64 or I32
//   labels                                     [B]    I64 (classification) or F32/F64 (regression); optional
#pragma once

#include <filesystem>

#include "nn/batch.h"

namespace unipelt {

Batch read_batch(const std::filesystem::path& path, DType dtype, Device device, bool regression);

}  // namespace unipelt

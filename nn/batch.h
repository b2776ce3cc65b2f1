// One model input: a padded batch of token ids with its attention mask and (optionally) labels.
// What datasets/encoding.cpp builds, nn/batch_io.cpp reads from a file, and BERT's forward consumes.
#pragma once

#include <cstdint>

#include "autograd/tensor.h"

namespace unipelt {

struct Batch {
  Tensor input_ids;       // i32 [B, T]
  Tensor token_type_ids;  // i32 [B, T]
  Tensor attention_mask;  // model dtype [B, T]: 1 for real tokens, 0 for padding
  Tensor labels;          // i32 [B] (classification) or model dtype [B] (regression); may be undefined
  int64_t batch_size() const { return input_ids.size(0); }
  int64_t seq_len() const { return input_ids.size(1); }
};

}  // namespace unipelt

// From GLUE examples to model batches: tokenize once, then pad each batch to its longest sequence
// (or to a fixed length when the gates must see the official code's padding).
#pragma once

#include <cstdint>
#include <vector>

#include "datasets/glue.h"
#include "datasets/tokenizer.h"
#include "nn/batch.h"

namespace unipelt {

struct EncodedExample {
  std::vector<int32_t> input_ids, token_type_ids;
  int label = -1;      // classification
  float score = 0.0f;  // regression
};

std::vector<EncodedExample> encode_examples(const std::vector<Example>& examples, const WordPieceTokenizer& tokenizer,
                                            int max_len, bool pair);

// Batch of examples[indices]: padded to the longest sequence, or to pad_to when it is larger.
// Labels are i32 for classification and `dtype` scores for regression; none when with_labels is false.
Batch make_batch(const std::vector<EncodedExample>& examples, const std::vector<size_t>& indices, bool regression,
                 bool with_labels, int pad_to, DType dtype, Device device);

}  // namespace unipelt

#include "datasets/encoding.h"

#include <algorithm>

namespace unipelt {

std::vector<EncodedExample> encode_examples(const std::vector<Example>& examples, const WordPieceTokenizer& tokenizer,
                                            int max_len, bool pair) {
  std::vector<EncodedExample> out;
  out.reserve(examples.size());
  for (const Example& e : examples) {
    Encoding enc = pair ? tokenizer.encode_pair(e.text_a, e.text_b, max_len) : tokenizer.encode(e.text_a, max_len);
    out.push_back({std::move(enc.input_ids), std::move(enc.token_type_ids), e.label, e.score});
  }
  return out;
}

Batch make_batch(const std::vector<EncodedExample>& examples, const std::vector<size_t>& indices, bool regression,
                 bool with_labels, int pad_to, DType dtype, Device device) {
  const int64_t B = static_cast<int64_t>(indices.size());
  int64_t T = pad_to;
  for (size_t i : indices) T = std::max<int64_t>(T, static_cast<int64_t>(examples[i].input_ids.size()));
  std::vector<int32_t> ids(static_cast<size_t>(B * T), 0), types(static_cast<size_t>(B * T), 0), labels;
  std::vector<double> mask(static_cast<size_t>(B * T), 0.0), scores;
  for (int64_t b = 0; b < B; ++b) {
    const EncodedExample& e = examples[indices[static_cast<size_t>(b)]];
    for (size_t t = 0; t < e.input_ids.size(); ++t) {
      ids[static_cast<size_t>(b * T) + t] = e.input_ids[t];
      types[static_cast<size_t>(b * T) + t] = e.token_type_ids[t];
      mask[static_cast<size_t>(b * T) + t] = 1.0;
    }
    labels.push_back(e.label);
    scores.push_back(e.score);
  }
  Batch batch;
  batch.input_ids = Tensor::from_ints(ids, {B, T}, device);
  batch.token_type_ids = Tensor::from_ints(types, {B, T}, device);
  batch.attention_mask = Tensor::from_vector(mask, {B, T}, dtype, device);
  if (with_labels)
    batch.labels = regression ? Tensor::from_vector(scores, {B}, dtype, device) : Tensor::from_ints(labels, {B}, device);
  return batch;
}

}  // namespace unipelt

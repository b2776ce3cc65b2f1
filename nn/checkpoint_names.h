// Hugging Face checkpoint names -> this project's canonical BERT parameter names.
//
// The canonical names are those of transformers' BertForSequenceClassification:
//   bert.embeddings.{word,position,token_type}_embeddings.weight, bert.embeddings.LayerNorm.{weight,bias}
//   bert.encoder.layer.{i}.attention.self.{query,key,value}.{weight,bias}
//   bert.encoder.layer.{i}.attention.output.dense.{weight,bias}
//   bert.encoder.layer.{i}.attention.output.LayerNorm.{weight,bias}
//   bert.encoder.layer.{i}.intermediate.dense.{weight,bias}
//   bert.encoder.layer.{i}.output.dense.{weight,bias}, bert.encoder.layer.{i}.output.LayerNorm.{weight,bias}
//   bert.pooler.dense.{weight,bias}, classifier.{weight,bias}
//
// Checkpoints in the wild differ only in wrapping: BertModel has no "bert." prefix; BertForPreTraining
// and BertForMaskedLM add "cls.*" heads; old conversions spell LayerNorm's parameters gamma/beta.
// map_checkpoint_names() undoes those differences by name alone (a pure function, easy to test);
// load_expected() then checks shapes against what the model wants and loads the tensors.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "autograd/tensor.h"
#include "nn/tensor_file.h"

namespace unipelt {

struct NameMapping {
  std::map<std::string, std::string> canonical_to_file;  // canonical name -> name in the file
  // Tensors deliberately skipped, each written "name: reason" (pre-training heads, position_ids buffers).
  std::vector<std::string> ignored;
  // Names that are neither canonical (after normalisation) nor known to be skippable: a sign that the
  // checkpoint is not a BERT, or is one with extra modules. Callers usually report them.
  std::vector<std::string> unused;
};

// True for the canonical names listed above ({i} any decimal layer index).
bool is_canonical_bert_name(const std::string& name);

// Maps file names to canonical names. Throws std::runtime_error when two file names map to the same
// canonical name (e.g. both "bert.x" and "x", or both LayerNorm.gamma and LayerNorm.weight): the file is
// ambiguous and guessing which copy is meant would be wrong half the time.
NameMapping map_checkpoint_names(const std::vector<std::string>& file_names);

// Loads every expected (canonical name, shape) through `mapping` from `file`, converted to `dtype`
// (on the CPU; the caller moves them). Checks everything before loading anything, and throws ONE
// std::runtime_error listing every missing name and every tensor whose shape differs (both shapes given).
// When allow_missing_classifier is set, absent "classifier.*" tensors are not errors (a pre-trained
// checkpoint has no task head yet): they are appended to *missing_optional (if non-null) instead.
// A 0-d tensor in the file counts as shape [1].
std::map<std::string, Tensor> load_expected(const TensorFile& file, const NameMapping& mapping,
                                            const std::vector<std::pair<std::string, Shape>>& expected,
                                            DType dtype = DType::F32, bool allow_missing_classifier = false,
                                            std::vector<std::string>* missing_optional = nullptr);

}  // namespace unipelt

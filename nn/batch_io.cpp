#include "nn/batch_io.h"

#include "nn/safetensors.h"

namespace unipelt {

Batch read_batch(const std::filesystem::path& path, DType dtype, Device device, bool regression) {
  SafetensorsFile file(path);
  for (const char* name : {"input_ids", "token_type_ids", "attention_mask"})
    if (!file.contains(name))
      throw std::runtime_error(path.string() + ": batch needs tensor '" + name + "' ([B,T], I64 or I32)");
  Batch b;
  b.input_ids = file.load("input_ids", DType::I32, device);
  b.token_type_ids = file.load("token_type_ids", DType::I32, device);
  b.attention_mask = file.load("attention_mask", DType::I32, device).to(dtype);
  if (b.input_ids.ndim() != 2 || b.token_type_ids.shape() != b.input_ids.shape() ||
      b.attention_mask.shape() != b.input_ids.shape())
    throw std::runtime_error(path.string() + ": input_ids, token_type_ids and attention_mask must all be [B,T]; got " +
                             shape_str(b.input_ids.shape()) + ", " + shape_str(b.token_type_ids.shape()) + ", " +
                             shape_str(b.attention_mask.shape()));
  if (file.contains("labels")) {
    const bool float_labels = file.info("labels").dtype == StDType::F32 || file.info("labels").dtype == StDType::F64;
    if (regression && !float_labels)
      throw std::runtime_error(path.string() + ": regression (num_labels = 1) needs F32 or F64 labels");
    if (!regression && float_labels)
      throw std::runtime_error(path.string() + ": classification needs integer (I64/I32) labels");
    b.labels = file.load("labels", regression ? dtype : DType::I32, device);
    if (b.labels.shape() != Shape{b.batch_size()})
      throw std::runtime_error(path.string() + ": labels must be [" + std::to_string(b.batch_size()) + "], got " +
                               shape_str(b.labels.shape()));
  }
  return b;
}

}  // namespace unipelt

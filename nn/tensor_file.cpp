#include "nn/tensor_file.h"

#include "nn/safetensors.h"
#include "nn/torch_checkpoint.h"

namespace unipelt {

std::unique_ptr<TensorFile> open_weights_file(const std::filesystem::path& path) {
  if (path.extension() == ".safetensors") return std::make_unique<SafetensorsFile>(path);
  return std::make_unique<TorchCheckpoint>(path);
}

}  // namespace unipelt

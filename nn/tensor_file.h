// A read-only file of named tensors: what the model loaders need from a checkpoint, whatever its format.
//
//   SafetensorsFile  model.safetensors, adapter_model.safetensors, ... (nn/safetensors.h)
//   TorchCheckpoint  pytorch_model.bin in either torch.save format (nn/torch_checkpoint.h)
//
// open_weights_file() picks the right one for a path.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "autograd/tensor.h"

namespace unipelt {

class TensorFile {
 public:
  virtual ~TensorFile() = default;
  virtual const std::filesystem::path& path() const = 0;
  virtual std::vector<std::string> names() const = 0;  // sorted
  virtual bool contains(const std::string& name) const = 0;
  // The shape as stored (empty for a 0-d scalar); throws naming the file when `name` is absent.
  virtual std::vector<int64_t> shape(const std::string& name) const = 0;
  // The tensor converted to `dtype` (F16/BF16/F32/F64 data to F32 or F64; integer data to I32), on `device`.
  // A 0-d scalar loads as shape [1].
  virtual Tensor load(const std::string& name, DType dtype = DType::F32, Device device = Device::CPU) const = 0;
};

// A safetensors file when `path` ends in ".safetensors", else a PyTorch checkpoint (.bin, .pt, .pth).
std::unique_ptr<TensorFile> open_weights_file(const std::filesystem::path& path);

}  // namespace unipelt

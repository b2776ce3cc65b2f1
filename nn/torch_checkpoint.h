// PyTorch checkpoints (pytorch_model.bin, *.pt), read without running any of their code.
//
// torch.save writes one of two containers (docs/checkpoints.md has the byte layouts):
//
//   zip (PyTorch >= 1.6)   ARCHIVE/data.pkl      the pickled state_dict; tensors refer to storages by key
//                          ARCHIVE/data/<key>    each storage's raw little-endian bytes
//                          ARCHIVE/version       the format version; ARCHIVE/byteorder (newer torch)
//   legacy (older torch)   five pickles in a row: magic number, protocol version, sys_info
//                          ({little_endian, type_sizes}), the state_dict, the list of storage keys;
//                          then, per key in that order, an int64 element count and the raw bytes
//
// The state_dict pickle is read by the restricted unpickler (nn/pickle.h), which accepts only the
// globals below — what torch.load(weights_only=True) accepts for a state_dict — and refuses any other
// global or opcode with an error naming it:
//   collections.OrderedDict                          the dict itself and each tensor's backward hooks
//   torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata])
//   torch._utils._rebuild_parameter(tensor, requires_grad, hooks)
//   torch.{Float,Half,BFloat16,Double,Long}Storage  storage types, inside persistent ids only
//
// A tensor is a strided view of a storage: element i_0..i_k lives at offset + sum(i_j * stride_j) in the
// storage, so several tensors may share one storage (tied weights) and a tensor need not be contiguous.
// Every view is checked against its storage's size, every storage's bytes against the record or the
// bytes left in the file, before any tensor is loaded. Big-endian files are refused (torch records the
// byte order; we read little-endian data only). Errors name the file and, where there is one, the tensor.
#pragma once

#include <cstddef>
#include <filesystem>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "nn/safetensors.h"
#include "nn/tensor_file.h"

namespace unipelt {

// One tensor of the state_dict: a view of a storage.
struct TorchTensorInfo {
  std::string name, storage;      // storage key
  StDType dtype = StDType::F32;   // the storage's element type
  std::vector<int64_t> shape, stride;
  int64_t offset = 0;             // in elements, from the start of the storage
  int64_t numel() const;
};

class TorchCheckpoint : public TensorFile {
 public:
  // Reads and validates the whole file (storages are held in memory; the file is closed afterwards).
  explicit TorchCheckpoint(const std::filesystem::path& path);
  // The same from bytes in memory; `name` stands for the file in error messages (tests, the fuzzer).
  TorchCheckpoint(std::span<const std::byte> bytes, const std::filesystem::path& name);

  const std::filesystem::path& path() const override { return path_; }
  std::vector<std::string> names() const override;
  bool contains(const std::string& name) const override { return tensors_.count(name) != 0; }
  std::vector<int64_t> shape(const std::string& name) const override { return info(name).shape; }
  Tensor load(const std::string& name, DType dtype = DType::F32, Device device = Device::CPU) const override;

  const std::string& format() const { return format_; }  // "zip" or "legacy"
  const TorchTensorInfo& info(const std::string& name) const;
  // The tensor's elements in row-major order, as stored (little-endian `info(name).dtype`).
  std::vector<std::byte> contiguous_bytes(const std::string& name) const;

 private:
  friend class TorchCheckpointReader;  // torch_checkpoint.cpp: fills the members below
  struct Storage {
    StDType dtype = StDType::F32;
    int64_t numel = 0;
    std::vector<std::byte> bytes;  // numel × element size, little-endian
  };
  [[noreturn]] void fail(const std::string& what) const;

  std::filesystem::path path_;
  std::string format_;
  std::map<std::string, TorchTensorInfo> tensors_;
  std::map<std::string, Storage> storages_;
};

// Writes every tensor of `checkpoint` to a safetensors file, dtypes unchanged (`unipelt convert`).
void write_checkpoint_as_safetensors(const TorchCheckpoint& checkpoint, const std::filesystem::path& out);

}  // namespace unipelt

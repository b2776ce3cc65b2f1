// Safetensors: the Hugging Face file format for tensors, read memory-mapped and written atomically.
//
// Layout (docs/safetensors.md has the byte diagram):
//
//   [ u64 little-endian N ][ N bytes of JSON header ][ byte buffer ]
//
// The header maps each tensor name to {"dtype", "shape", "data_offsets": [begin, end]}, offsets
// relative to the start of the byte buffer; an optional "__metadata__" entry holds string pairs.
//
// The reader trusts nothing in the file: every offset, size and name is checked before any byte of
// tensor data is touched, and a bad file raises std::runtime_error naming the file, the tensor and
// what was expected. The writer writes `path.tmp.<pid>` beside the target, fsyncs it and renames it
// into place, so a crash or an error never leaves a half-written file under the real name.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "autograd/tensor.h"
#include "nn/file_io.h"
#include "nn/tensor_file.h"

namespace unipelt {

// Element types of the format. We compute in F32/F64/I32 only; the others are converted on load
// (F16, BF16 -> float; I64, I16, I8, U8, BOOL -> int32) or can at least be listed and read raw.
enum class StDType { F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL };

size_t st_dtype_size(StDType dtype);                // bytes per element
const char* st_dtype_name(StDType dtype);           // "F32", "BF16", ... as spelled in the header
bool parse_st_dtype(const std::string& name, StDType* out);  // false for unknown spellings
StDType st_dtype_of(DType dtype);                   // F32 -> F32, F64 -> F64, I32 -> I32

// Half-precision decoding, written out by hand (IEEE 754 binary16 and bfloat16 bit patterns).
// Both are exact: every F16 and BF16 value, subnormals, infinities and NaNs included, is a float.
float f16_to_f32(uint16_t bits);
float bf16_to_f32(uint16_t bits);

// One tensor's entry in the header. begin/end are byte offsets into the data buffer.
struct StTensorInfo {
  std::string name;
  StDType dtype = StDType::F32;
  std::vector<int64_t> shape;  // as stored: may be empty (a 0-d scalar)
  size_t begin = 0, end = 0;
  int64_t numel() const;       // product of shape (1 for a scalar)
};

// A safetensors file opened read-only and memory-mapped: opening reads and validates only the header;
// tensor bytes are paged in by the OS when load() or raw() touches them.
class SafetensorsFile : public TensorFile {
 public:
  explicit SafetensorsFile(const std::filesystem::path& path);
  ~SafetensorsFile();
  SafetensorsFile(SafetensorsFile&& other) noexcept;
  SafetensorsFile& operator=(SafetensorsFile&& other) noexcept;
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::filesystem::path& path() const override { return path_; }
  // Every tensor, sorted by name.
  const std::vector<StTensorInfo>& tensors() const { return tensors_; }
  std::vector<std::string> names() const override;
  bool contains(const std::string& name) const override { return index_.count(name) != 0; }
  const StTensorInfo& info(const std::string& name) const;  // throws naming the file if absent
  std::vector<int64_t> shape(const std::string& name) const override { return info(name).shape; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

  // The tensor converted to `dtype` and placed on `device`:
  //   F16, BF16, F32, F64       -> DType::F32 or DType::F64
  //   I64, I32, I16, I8, U8, BOOL -> DType::I32 (I64 values outside int32 raise an error)
  // Other pairings (float file data into I32, integers into F32) are refused rather than guessed.
  // A 0-d scalar loads as shape [1]; more than 4 dimensions is an error (the project's limit).
  Tensor load(const std::string& name, DType dtype = DType::F32, Device device = Device::CPU) const override;

  // The tensor's bytes exactly as stored (little-endian, possibly unaligned: copy with memcpy).
  std::span<const std::byte> raw(const std::string& name) const;

 private:
  void parse_header(const std::byte* header, size_t header_len, size_t buffer_len);
  void parse_metadata(const nlohmann::json& entry);
  StTensorInfo parse_entry(const std::string& name, const nlohmann::json& entry, size_t buffer_len) const;
  void check_coverage(size_t buffer_len) const;
  [[noreturn]] void fail(const std::string& what) const;

  std::filesystem::path path_;
  void* map_ = nullptr;              // the whole file, mapped read-only
  size_t map_size_ = 0;
  const std::byte* buffer_ = nullptr;  // start of the byte buffer inside map_
  std::vector<StTensorInfo> tensors_;
  std::map<std::string, size_t> index_;  // name -> position in tensors_
  std::map<std::string, std::string> metadata_;
};

// numel(shape) elements of type `stored`, little-endian at `data` (possibly unaligned), converted as
// SafetensorsFile::load converts them. Shared with the PyTorch checkpoint reader. Errors are
// std::runtime_error(where + what), e.g. where = "safetensors file 'm.safetensors': tensor 'w': ".
Tensor decode_tensor(StDType stored, const std::vector<int64_t>& shape, const std::byte* data, DType dtype,
                     Device device, const std::string& where);

// One tensor for the low-level writer: raw little-endian bytes, not copied (they must outlive the call).
struct StWriteEntry {
  std::string name;
  StDType dtype = StDType::F32;
  std::vector<int64_t> shape;
  std::span<const std::byte> bytes;
};

// Writes a safetensors file atomically. Entries are validated first (unique non-empty names, none
// called "__metadata__", bytes == numel × element size), so a bad entry never creates a file.
// Buffer order: element size descending, then name — the reference implementation's order, which
// keeps every tensor aligned to its element size; for a single-dtype file it is simply name order.
// The JSON header is padded with spaces to a multiple of 8 bytes, as the reference writer does.
void write_safetensors_raw(const std::filesystem::path& path, const std::vector<StWriteEntry>& entries,
                           const std::map<std::string, std::string>& metadata = {});

// Writes Tensors (F32, F64 or I32, on any device: device tensors are copied to the host first).
void write_safetensors(const std::filesystem::path& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace unipelt

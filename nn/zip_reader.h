// Reading the records of a zip archive held in memory, through libzip (Debian's libzip-dev).
// Used for PyTorch's zip checkpoints (nn/torch_checkpoint.h). The archive's consistency is checked when
// it is opened (ZIP_CHECKCONS), every record's CRC when it is read, and a record's size against what
// its compression method can produce before any memory is allocated for it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

typedef struct zip zip_t;  // libzip's archive handle

namespace unipelt {

class ZipReader {
 public:
  // `bytes` must outlive the reader. Errors are std::runtime_error(where + ": " + what).
  ZipReader(std::span<const std::byte> bytes, const std::string& where);
  ~ZipReader();
  ZipReader(const ZipReader&) = delete;
  ZipReader& operator=(const ZipReader&) = delete;

  std::vector<std::string> names() const;  // every record, in archive order
  bool has(const std::string& name) const;
  // A whole record. `expected` (when >= 0): the size it must have, checked before anything is read;
  // `what` follows the record's name in that error (e.g. " (storage of tensor 'w')").
  std::vector<std::byte> read(const std::string& name, int64_t expected = -1, const std::string& what = "") const;

 private:
  [[noreturn]] void fail(const std::string& what) const;
  zip_t* zip_ = nullptr;
  std::string where_;
};

}  // namespace unipelt

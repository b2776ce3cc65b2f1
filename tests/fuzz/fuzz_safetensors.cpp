// libFuzzer harness: arbitrary bytes as a .safetensors file. Opening must validate the header
// (offsets, sizes, names, dtypes) and every load must either succeed or throw an error naming the
// file; nothing may read outside the mapping or allocate more than the file describes.
#include <cstdint>
#include <exception>

#include "nn/batch_io.h"
#include "nn/safetensors.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace unipelt;
  const auto path = fuzz::write_input("model.safetensors", fuzz::as_chars(data, size));
  try {
    SafetensorsFile file(path);
    for (const StTensorInfo& info : file.tensors()) {
      (void)file.raw(info.name);
      for (DType dtype : {DType::F32, DType::F64, DType::I32}) {
        try {
          (void)file.load(info.name, dtype);
        } catch (const std::exception& e) {
          fuzz::require_names_file(e, path);
        }
      }
    }
    (void)read_batch(path, DType::F32, Device::CPU, false);  // the batch reader of `unipelt grads`
  } catch (const std::exception& e) {
    fuzz::require_names_file(e, path);
  }
  return 0;
}

// libFuzzer harness for the PyTorch checkpoint reader: the restricted unpickler, the zip and legacy
// containers and the view checks (nn/torch_checkpoint.h). Any input must either load or raise a
// std::exception; a crash, a sanitizer report or a hang is a bug. Each tensor that loads is also
// decoded, so the strided gather runs on whatever views passed the checks.
//
//   clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -I. tests/fuzz/fuzz_torch_checkpoint.cpp \
//       nn/torch_checkpoint.cpp nn/torch_pickle_rules.cpp nn/pickle.cpp nn/zip_reader.cpp nn/safetensors.cpp \
//       nn/file_io.cpp autograd/*.cpp -lzip -lopenblas -o fuzz_torch_checkpoint
//   ./fuzz_torch_checkpoint tests/fuzz/corpus/torch_checkpoint -max_total_time=60
#include <cstddef>
#include <cstdint>
#include <exception>
#include <span>

#include "nn/torch_checkpoint.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
    const unipelt::TorchCheckpoint checkpoint(bytes, "fuzz-input.bin");
    for (const std::string& name : checkpoint.names()) {
      const unipelt::TorchTensorInfo& info = checkpoint.info(name);
      if (info.numel() > (1 << 20)) continue;  // large but valid: not worth the fuzzer's time
      (void)checkpoint.contiguous_bytes(name);
    }
  } catch (const std::exception&) {
    // Refusing the input is the expected outcome for almost every mutation.
  }
  return 0;
}

// libFuzzer harness: arbitrary bytes as one of a run directory's JSON files, read by the public
// function that reads it: the first byte picks config.json (TrainConfig::from_json), results.json
// or config.json alone (read_run_record) or sweep.json (read_sweep_manifest). Only std::exception
// may come out. (Kept minimal: the run-file formats are being reworked.)
#include <cstdint>
#include <exception>

#include "nn/file_io.h"
#include "tests/fuzz/fuzz_util.h"
#include "train/report.h"
#include "train/sweep.h"
#include "train/trainer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace unipelt;
  if (size == 0) return 0;
  const int pick = data[0] % 4;
  const auto bytes = fuzz::as_chars(data + 1, size - 1);
  const auto dir = fuzz::scratch() / ("run" + std::to_string(pick));
  std::filesystem::remove_all(dir);
  try {
    switch (pick) {
      case 0: (void)TrainConfig::from_json(read_json_file(fuzz::write_input("run0/config.json", bytes))); break;
      case 1: fuzz::write_input("run1/results.json", bytes); (void)read_run_record(dir); break;
      case 2: fuzz::write_input("run2/config.json", bytes); (void)read_run_record(dir); break;
      default: fuzz::write_input("run3/sweep.json", bytes); (void)read_sweep_manifest(dir); break;
    }
  } catch (const std::exception&) {
  }
  return 0;
}

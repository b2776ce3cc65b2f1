// libFuzzer harness: arbitrary bytes as a model's config.json. load_bert_config either returns a
// config that passes validate() or throws an error naming the file.
#include <cstdint>
#include <exception>

#include "nn/bert_config.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace unipelt;
  const auto path = fuzz::write_input("config.json", fuzz::as_chars(data, size));
  try {
    BertConfig config = load_bert_config(path);
    config.validate();                                   // what was accepted is valid,
    (void)parse_bert_config(config.to_json(), "again");  // and survives a round trip
  } catch (const std::exception& e) {
    fuzz::require_names_file(e, path);
  }
  return 0;
}

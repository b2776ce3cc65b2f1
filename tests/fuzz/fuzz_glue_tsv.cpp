// libFuzzer harness: arbitrary bytes as a GLUE TSV of any task and split, or as a `unipelt predict`
// input. The first byte picks the reader: byte % 29 < 27 is task (byte % 29) / 3 of the nine GLUE tasks
// with split train, dev or test; 27 and 28 are read_predict_inputs for single sentences and pairs.
// Every reader returns examples whose texts pass check_text, or throws a DataError naming the file.
#include <cstdint>
#include <exception>

#include "datasets/glue.h"
#include "datasets/text_check.h"
#include "tests/fuzz/fuzz_util.h"
#include "train/saved_run.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace unipelt;
  if (size == 0) return 0;
  const int pick = data[0] % 29;
  const auto bytes = fuzz::as_chars(data + 1, size - 1);
  static const char* const kSplits[] = {"train", "dev", "test"};
  const bool predict = pick >= 27;
  const std::string task = glue_task_names()[static_cast<size_t>(predict ? 0 : pick / 3)];
  const std::string split = kSplits[pick % 3];
  // The file the reader opens: MNLI's dev and test splits are dev_matched.tsv and test_matched.tsv.
  const std::string stem = predict ? "predict" : task == "MNLI" && split != "train" ? split + "_matched" : split;
  const auto path = fuzz::write_input(task + "/" + stem + ".tsv", bytes);
  try {
    const std::vector<Example> examples =
        predict ? read_predict_inputs(path, pick == 28) : read_glue_split(task, path.parent_path(), split);
    for (const Example& e : examples)
      if (!text_problem(e.text_a).empty() || (!e.text_b.empty() && !text_problem(e.text_b).empty())) std::abort();
  } catch (const DataError& e) {
    fuzz::require_names_file(e, path);
  }
  return 0;
}

// libFuzzer harness: arbitrary bytes as a vocab.txt, then arbitrary text through the tokenizer built
// from it. The input is split by FuzzedDataProvider: one flag byte (bit 0: append the five special
// tokens so that most vocabularies load; bit 1: lower-case), the vocabulary, then the text (a TAB
// splits it into a pair). A vocabulary is loaded or refused naming the file; any text tokenizes.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>
#include <exception>
#include <string>

#include "datasets/text_check.h"
#include "datasets/tokenizer.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace unipelt;
  FuzzedDataProvider in(data, size);
  const uint8_t flags = in.ConsumeIntegral<uint8_t>();
  std::string vocab = in.ConsumeRandomLengthString(4096);
  if (flags & 1) vocab += "\n[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n";
  const std::string text = in.ConsumeRemainingBytesAsString();
  const auto path = fuzz::write_input("vocab.txt", vocab);
  try {
    const WordPieceTokenizer tok = WordPieceTokenizer::from_vocab_file(path.string(), flags & 2);
    const int max_len = 3 + (flags >> 2);
    (void)tok.tokenize(text);
    (void)text_problem(text);
    const size_t tab = text.find('\t');
    const Encoding e = tab == std::string::npos
                           ? tok.encode(text, max_len, Padding::to_max_len)
                           : tok.encode_pair(std::string_view(text).substr(0, tab),
                                             std::string_view(text).substr(tab + 1), max_len, Padding::to_max_len);
    if (e.input_ids.size() != static_cast<size_t>(max_len)) std::abort();  // padded to exactly max_len
    for (int32_t id : e.input_ids) (void)tok.id_to_token(id);              // every id is in the vocabulary
  } catch (const std::exception& e) {
    fuzz::require_names_file(e, path);
  }
  return 0;
}

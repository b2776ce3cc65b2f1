// `unipelt tokenize`: runs the BERT WordPiece tokenizer (datasets/tokenizer.h) over standard input,
// one text (or one TAB-separated pair of texts) per line, and prints the model's input ids.
//
//   $ printf 'Hello world!\nfirst\tsecond\n' | unipelt tokenize --vocab vocab.txt
//   101 7592 2088 999 102
//   101 2034 102 2117 102
#include <cstdio>
#include <exception>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "datasets/text_check.h"
#include "datasets/tokenizer.h"
#include "examples/cli/cli.h"

namespace {

struct Options {
  std::string vocab;
  bool cased = false;
  int max_len = 128;
  bool tokens = false;
};

void run(const Options& opt) {
  std::optional<unipelt::WordPieceTokenizer> tok;
  try {
    tok = unipelt::WordPieceTokenizer::from_vocab_file(opt.vocab, !opt.cased);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "unipelt tokenize: %s\n", e.what());
    throw unipelt::cli::Exit{2};
  }

  std::string line;
  for (int line_no = 1; std::getline(std::cin, line); ++line_no) {
    // The first TAB separates a pair; later TABs belong to the second text (where they are just
    // whitespace). A CR left by CRLF line endings is whitespace too, so it needs no special care.
    // Each text must be usable (UTF-8, no NUL, not empty), as in every other input: check_text.
    const auto tab = line.find('\t');
    const std::string_view text(line);
    const std::string where = "<stdin>:" + std::to_string(line_no);
    unipelt::Encoding enc;
    if (tab == std::string::npos) {
      unipelt::check_text(text, where, "text");
      enc = tok->encode(text, opt.max_len);
    } else {
      unipelt::check_text(text.substr(0, tab), where, "text_a");
      unipelt::check_text(text.substr(tab + 1), where, "text_b");
      enc = tok->encode_pair(text.substr(0, tab), text.substr(tab + 1), opt.max_len);
    }
    std::string out;
    for (std::size_t i = 0; i < enc.input_ids.size(); ++i) {
      if (i > 0) out += ' ';
      out += opt.tokens ? tok->id_to_token(enc.input_ids[i]) : std::to_string(enc.input_ids[i]);
    }
    std::cout << out << '\n';
  }
}

}  // namespace

namespace unipelt::cli {

void add_tokenize_command(CLI::App& app) {
  auto opt = std::make_shared<Options>();
  auto* sub = app.add_subcommand(
      "tokenize",
      "Tokenize standard input with BERT's WordPiece tokenizer: each line is one text, or a pair of "
      "texts separated by a TAB; prints one line of token ids per input line, with [CLS]/[SEP]. A text "
      "that is empty, not UTF-8 or holds a NUL byte is an error naming its line (<stdin>:LINE)");
  sub->add_option("--vocab", opt->vocab, "BERT vocabulary file (vocab.txt: one token per line, id = line number - 1)")
      ->required();
  sub->add_flag("--cased", opt->cased,
                "Keep upper case and accents (for cased models such as bert-base-cased); by default "
                "text is lower-cased and accents are stripped, as uncased models expect");
  sub->add_option("--max-len", opt->max_len,
                  "Longest output in tokens, [CLS] and [SEP] included; longer inputs are truncated "
                  "(pairs: from the end of the longer text first). At least 3")
      ->check(CLI::Range(3, 1 << 20))
      ->capture_default_str();
  sub->add_flag("--tokens", opt->tokens, "Print the word pieces (e.g. \"token ##ization\") instead of their ids");
  sub->callback([opt] { run(*opt); });
}

}  // namespace unipelt::cli

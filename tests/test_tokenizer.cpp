// Tests for the BERT WordPiece tokenizer (datasets/tokenizer.h).
//
// The first group uses a tiny vocabulary written by the test itself, so the logic is checked even
// without the data mirror. The second group uses the real bert-base-uncased / bert-base-cased
// vocabularies; every expected id there was looked up by hand in vocab.txt (id = line number - 1,
// e.g. `grep -n -x 'hello' vocab.txt` prints 7593:hello, so "hello" is 7592) after applying
// Hugging Face's BertTokenizer rules step by step, as the comments show.
#include <catch2/catch.hpp>

#include <cstdio>
#include <fstream>
#include <functional>
#include <string>
#include <sys/wait.h>
#include <vector>

#include "datasets/tokenizer.h"
#include "tests/test_util.h"

using unipelt::basic_tokenize;
using unipelt::Encoding;
using unipelt::Padding;
using unipelt::WordPieceTokenizer;
using Strings = std::vector<std::string>;
using Ids = std::vector<int32_t>;
using namespace std::string_literals;  // "a\0b"s keeps the NUL

namespace {

// Ids 0-4 are the special tokens, in the order of BERT's vocabularies' first entries.
const Strings kTinyVocab = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",            // 0-4
                            "un",    "##aff", "##able", "hello", "world",            // 5-9
                            ",",     "!",     ".",      "a",     "##a",              // 10-14
                            "b",     "[",     "]",      "sep",   "你",               // 15-19
                            "cafe",  "##s",   "token",  "##ization", "é",        // 20-24
                            "##é"};                                                  // 25

WordPieceTokenizer tiny(bool lower_case = true) { return WordPieceTokenizer::from_tokens(kTinyVocab, lower_case); }

std::filesystem::path write_file(const std::string& dir, const std::string& name, const std::string& content) {
  auto path = unipelt::testing::scratch_dir(dir) / name;
  std::ofstream(path, std::ios::binary) << content;
  return path;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

// ---- Basic tokenizer ---------------------------------------------------------------------------

TEST_CASE("tokenizer: basic_tokenize lower-cases, strips accents and splits punctuation", "[tokenizer]") {
  CHECK(basic_tokenize("Héllo, WÖRLD!", true) == Strings{"hello", ",", "world", "!"});
  CHECK(basic_tokenize("Héllo, WÖRLD!", false) == Strings{"Héllo", ",", "WÖRLD", "!"});
  // A decomposed accent (e + U+0301) is stripped the same way; a lone combining mark vanishes.
  CHECK(basic_tokenize("caf\xC3\xA9 cafe\xCC\x81 \xCC\x81 x", true) == Strings{"cafe", "cafe", "x"});
  // "ß" has no decomposition and no single-letter lower case change: it stays.
  CHECK(basic_tokenize("Straße", true) == Strings{"straße"});
  // U+0130 (İ): Python's lower() gives "i" + U+0307, whose accent is then stripped; utf8proc's
  // one-code-point lower case gives "i" directly. Same result.
  CHECK(basic_tokenize("\xC4\xB0stanbul", true) == Strings{"istanbul"});
}

TEST_CASE("tokenizer: basic_tokenize punctuation: ASCII symbols and category P split, other symbols do not", "[tokenizer]") {
  CHECK(basic_tokenize("...!!??", true) == Strings{".", ".", ".", "!", "!", "?", "?"});
  CHECK(basic_tokenize("a$b+c^d`e|f~g", true) == Strings{"a", "$", "b", "+", "c", "^", "d", "`", "e", "|", "f", "~", "g"});
  CHECK(basic_tokenize("don't", true) == Strings{"don", "'", "t"});
  CHECK(basic_tokenize("\xC2\xBFQu\xC3\xA9?", true) == Strings{"\xC2\xBF", "que", "?"});  // ¿Qué?
  // "€" (Sc) and an emoji (So) are not punctuation, so they stay glued to their word.
  CHECK(basic_tokenize("5\xE2\x82\xAC hi\xF0\x9F\x99\x82", true) == Strings{"5\xE2\x82\xAC", "hi\xF0\x9F\x99\x82"});
}

TEST_CASE("tokenizer: basic_tokenize puts every CJK ideograph in a word of its own", "[tokenizer]") {
  CHECK(basic_tokenize("ab\xE4\xBD\xA0\xE5\xA5\xBD" "c", true) == Strings{"ab", "你", "好", "c"});
  // Hangul and Kana are not in BERT's CJK ranges: "한국" stays one word (decomposed to jamo by NFD
  // when lower-casing, as in Hugging Face, so compare the cased form).
  CHECK(basic_tokenize("\xED\x95\x9C\xEA\xB5\xAD", false) == Strings{"\xED\x95\x9C\xEA\xB5\xAD"});
}

TEST_CASE("tokenizer: basic_tokenize cleans control characters, whitespace and invalid UTF-8", "[tokenizer]") {
  CHECK(basic_tokenize("tab\there\nnew\rline", true) == Strings{"tab", "here", "new", "line"});
  // NUL, U+0001, DEL and a zero-width space (Cf) are deleted without splitting the word.
  CHECK(basic_tokenize("ab\0c\x01" "d\x7f" "e\xE2\x80\x8B" "f"s, true) == Strings{"abcdef"});
  // No-break space and ideographic space (Zs), line and paragraph separators (Zl, Zp) split.
  CHECK(basic_tokenize("a\xC2\xA0" "b\xE3\x80\x80" "c\xE2\x80\xA8" "d\xE2\x80\xA9" "e", true) ==
        Strings{"a", "b", "c", "d", "e"});
  // Invalid bytes become U+FFFD, which cleaning deletes: never a crash, never a split.
  CHECK(basic_tokenize("ab\xFF" "cd \xC3(x \xE2\x82", true) == Strings{"abcd", "(", "x"});
  CHECK(basic_tokenize("", true).empty());
  CHECK(basic_tokenize(" \t\n ", true).empty());
}

// ---- WordPiece and the tokenizer on a tiny vocabulary --------------------------------------

TEST_CASE("tokenizer: wordpiece is greedy longest-match-first with ## continuations", "[tokenizer]") {
  auto tok = tiny();
  CHECK(tok.wordpiece("unaffable") == Strings{"un", "##aff", "##able"});
  CHECK(tok.wordpiece("tokenization") == Strings{"token", "##ization"});
  CHECK(tok.wordpiece("unknown") == Strings{"[UNK]"});  // "un" matches, "##known" does not: all [UNK]
  CHECK(tok.wordpiece("").empty());
}

TEST_CASE("tokenizer: wordpiece turns words over 100 code points into [UNK]", "[tokenizer]") {
  auto tok = tiny();
  auto pieces = tok.wordpiece(std::string(100, 'a'));
  REQUIRE(pieces.size() == 100);
  CHECK(pieces.front() == "a");
  CHECK(pieces.back() == "##a");
  CHECK(tok.wordpiece(std::string(101, 'a')) == Strings{"[UNK]"});
  // The limit counts code points, not bytes: 100 "é" are 200 bytes but only 100 characters.
  std::string e100;
  for (int i = 0; i < 100; ++i) e100 += "é";
  CHECK(tok.wordpiece(e100).size() == 100);
  CHECK(tok.wordpiece(e100 + "é") == Strings{"[UNK]"});
}

TEST_CASE("tokenizer: tokenize keeps literal special tokens and maps them to their ids", "[tokenizer]") {
  auto tok = tiny();
  CHECK(tok.tokenize("[SEP]hello [MASK] world[CLS]") == Strings{"[SEP]", "hello", "[MASK]", "world", "[CLS]"});
  // Matching is case-sensitive: "[sep]" is ordinary text, split at its brackets.
  CHECK(tok.tokenize("[sep]") == Strings{"[", "sep", "]"});
  CHECK(tok.tokenize("[Sep]") == Strings{"[", "sep", "]"});
  CHECK(tok.convert_tokens_to_ids(tok.tokenize("Hello, [SEP] world!")) == Ids{8, 10, 3, 9, 11});
  CHECK(tok.tokenize("").empty());
}

TEST_CASE("tokenizer: token <-> id lookups", "[tokenizer]") {
  auto tok = tiny();
  CHECK(tok.vocab_size() == kTinyVocab.size());
  CHECK((tok.pad_id() == 0 && tok.unk_id() == 1 && tok.cls_id() == 2 && tok.sep_id() == 3 && tok.mask_id() == 4));
  CHECK(tok.token_to_id("##able") == 7);
  CHECK(tok.token_to_id("nope") == tok.unk_id());
  CHECK_FALSE(tok.find("nope").has_value());
  CHECK(tok.id_to_token(19) == "你");
  CHECK_THROWS_AS(tok.id_to_token(-1), std::out_of_range);
  CHECK_THROWS_AS(tok.id_to_token(static_cast<int32_t>(kTinyVocab.size())), std::out_of_range);
}

TEST_CASE("tokenizer: encode builds [CLS] A [SEP] with segment ids, mask and optional padding", "[tokenizer]") {
  auto tok = tiny();
  Encoding e = tok.encode("Hello world!", 16);
  CHECK(e.input_ids == Ids{2, 8, 9, 11, 3});
  CHECK(e.token_type_ids == Ids{0, 0, 0, 0, 0});
  CHECK(e.attention_mask == Ids{1, 1, 1, 1, 1});

  e = tok.encode("Hello world!", 7, Padding::to_max_len);
  CHECK(e.input_ids == Ids{2, 8, 9, 11, 3, 0, 0});
  CHECK(e.token_type_ids == Ids{0, 0, 0, 0, 0, 0, 0});
  CHECK(e.attention_mask == Ids{1, 1, 1, 1, 1, 0, 0});

  CHECK(tok.encode("Hello world!", 4).input_ids == Ids{2, 8, 9, 3});  // truncated from the end
  CHECK(tok.encode("Hello world!", 2).input_ids == Ids{2, 3});
  CHECK(tok.encode("", 8).input_ids == Ids{2, 3});
  CHECK_THROWS_AS(tok.encode("x", 1), std::invalid_argument);
}

TEST_CASE("tokenizer: encode_pair: segments and longest-first truncation", "[tokenizer]") {
  auto tok = tiny();
  Encoding e = tok.encode_pair("a a", "b", 16);
  CHECK(e.input_ids == Ids{2, 13, 13, 3, 15, 3});
  CHECK(e.token_type_ids == Ids{0, 0, 0, 0, 1, 1});
  CHECK(e.attention_mask == Ids{1, 1, 1, 1, 1, 1});

  // 5 + 2 + 3 specials = 10 > 8: both removals hit the longer A.
  CHECK(tok.encode_pair("a a a a a", "b b", 8).input_ids == Ids{2, 13, 13, 13, 3, 15, 15, 3});
  // 3 + 3 + 3 = 9 > 7: tie -> remove from B (3,2), then A is longer (2,2).
  CHECK(tok.encode_pair("a a a", "b b b", 7).input_ids == Ids{2, 13, 13, 3, 15, 15, 3});
  // 1 + 4 + 3 = 8 > 6: B loses two.
  CHECK(tok.encode_pair("a", "b b b b", 6).input_ids == Ids{2, 13, 3, 15, 15, 3});
  CHECK(tok.encode_pair("a a", "b b", 3).input_ids == Ids{2, 3, 3});

  e = tok.encode_pair("a", "", 6, Padding::to_max_len);
  CHECK(e.input_ids == Ids{2, 13, 3, 3, 0, 0});
  CHECK(e.token_type_ids == Ids{0, 0, 0, 1, 0, 0});
  CHECK(e.attention_mask == Ids{1, 1, 1, 1, 0, 0});
  CHECK_THROWS_AS(tok.encode_pair("a", "b", 2), std::invalid_argument);
}

TEST_CASE("tokenizer: cased tokenizer keeps case and accents", "[tokenizer]") {
  auto tok = tiny(false);
  CHECK(tok.tokenize("hello Hello") == Strings{"hello", "[UNK]"});
  CHECK(tok.tokenize("cafe café") == Strings{"cafe", "[UNK]"});
}

TEST_CASE("tokenizer: vocabulary files: CRLF lines and clear errors", "[tokenizer]") {
  std::string crlf;
  for (const auto& t : kTinyVocab) crlf += t + "\r\n";
  auto tok = WordPieceTokenizer::from_vocab_file(write_file("tok_vocab_crlf", "vocab.txt", crlf).string());
  CHECK(tok.vocab_size() == kTinyVocab.size());
  CHECK(tok.token_to_id("world") == 9);

  CHECK_THAT(error_of([] { WordPieceTokenizer::from_vocab_file("/nonexistent/vocab.txt"); }),
             Catch::Contains("cannot open") && Catch::Contains("/nonexistent/vocab.txt"));
  auto empty = write_file("tok_vocab_empty", "vocab.txt", "").string();
  CHECK_THAT(error_of([&] { WordPieceTokenizer::from_vocab_file(empty); }), Catch::Contains("empty"));
  auto dup = write_file("tok_vocab_dup", "vocab.txt", "[PAD]\n[UNK]\nx\n[CLS]\nx\n").string();
  CHECK_THAT(error_of([&] { WordPieceTokenizer::from_vocab_file(dup); }),
             Catch::Contains("line 5") && Catch::Contains("duplicate token 'x'") && Catch::Contains("line 3"));
  auto nomask = write_file("tok_vocab_nomask", "vocab.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\n").string();
  CHECK_THAT(error_of([&] { WordPieceTokenizer::from_vocab_file(nomask); }), Catch::Contains("no [MASK] token"));
  auto bad = write_file("tok_vocab_bad", "vocab.txt", "[PAD]\nab\xFF\n").string();
  CHECK_THAT(error_of([&] { WordPieceTokenizer::from_vocab_file(bad); }),
             Catch::Contains("line 2") && Catch::Contains("not valid UTF-8"));
}

// ---- The real BERT vocabularies (skipped without the data mirror) -------------------------------

TEST_CASE("tokenizer: bert-base-uncased: accents, CJK, punctuation, emoji, control characters", "[tokenizer][data]") {
  auto tok = WordPieceTokenizer::from_vocab_file(unipelt::testing::require_data("bert/bert-base-uncased/vocab.txt").string());
  REQUIRE(tok.vocab_size() == 30522);
  CHECK((tok.pad_id() == 0 && tok.unk_id() == 100 && tok.cls_id() == 101 && tok.sep_id() == 102 && tok.mask_id() == 103));
  auto ids = [&](std::string_view text) { return tok.convert_tokens_to_ids(tok.tokenize(text)); };

  // hello=7592 world=2088
  CHECK(tok.encode("Héllo Wörld", 128).input_ids == Ids{101, 7592, 2088, 102});
  // Greedy: the longest vocabulary prefix of "unaffable" is "una", then "##ffa", then "##ble".
  CHECK(tok.tokenize("unaffable") == Strings{"una", "##ffa", "##ble"});
  CHECK(ids("unaffable") == Ids{14477, 20961, 3468});
  CHECK(ids("tokenization") == Ids{19204, 3989});                 // token ##ization
  CHECK(ids("naïve café") == Ids{15743, 7668});                   // naive cafe
  CHECK(ids("Straße") == Ids{2358, 27807});                       // st ##raße
  // i=1045 like=2066 北=1781 京=1755 very=2200 much=2172 .=1012
  CHECK(ids("I like 北京 very much.") == Ids{1045, 2066, 1781, 1755, 2200, 2172, 1012});
  // 你, 好, 界 are not in the vocabulary, 世=1745 is.
  CHECK(ids("你好世界") == Ids{100, 100, 1745, 100});
  CHECK(ids("...!!??") == Ids{1012, 1012, 1012, 999, 999, 1029, 1029});
  // "hi🙂" is one word (an emoji is not punctuation); no "##🙂" piece exists, so it is [UNK].
  CHECK(ids("hi🙂 there 🙂") == Ids{100, 2045, 100});
  CHECK(ids(std::string(101, 'a')) == Ids{100});
  Ids a100 = ids(std::string(100, 'a'));  // aaa ##aa x 48 ##a
  REQUIRE(a100.size() == 50);
  CHECK((a100.front() == 13360 && a100[1] == 11057 && a100.back() == 2050));
  // NUL, U+0001, DEL and U+200B vanish: "ctrlcharszw" -> ct ##rl ##cha ##rs ##z ##w
  CHECK(ids("ctrl\0\x01\x7f" "chars\xE2\x80\x8Bzw"s) == Ids{14931, 12190, 7507, 2869, 2480, 2860});
  CHECK(ids("tab\there\nnew\rline") == Ids{21628, 2182, 2047, 2240});
  CHECK(tok.encode("", 128).input_ids == Ids{101, 102});
  // Literal special tokens: [SEP]=102 a=1037 b=1038 [CLS]=101; "[sep]" is [=1031 sep=19802 ]=1033.
  CHECK(ids("[SEP] a [SEP]b[CLS]") == Ids{102, 1037, 102, 1038, 101});
  CHECK(ids("[sep]") == Ids{1031, 19802, 1033});
}

TEST_CASE("tokenizer: bert-base-uncased: sentence pair with truncation", "[tokenizer][data]") {
  auto tok = WordPieceTokenizer::from_vocab_file(unipelt::testing::require_data("bert/bert-base-uncased/vocab.txt").string());
  // A = the cat sat on the mat .  (7: 1996 4937 2938 2006 1996 13523 1012)
  // B = a dog bark ##s loudly today (6: 1037 3899 11286 2015 9928 2651)
  // 7 + 6 + 3 = 16 > 10, remove 6: (7,6) -> (6,6) -> tie, B (6,5) -> (5,5) -> (5,4) -> (4,4) -> (4,3).
  Encoding e = tok.encode_pair("The cat sat on the mat.", "A dog barks loudly today", 10);
  CHECK(e.input_ids == Ids{101, 1996, 4937, 2938, 2006, 102, 1037, 3899, 11286, 102});
  CHECK(e.token_type_ids == Ids{0, 0, 0, 0, 0, 0, 1, 1, 1, 1});
  CHECK(e.attention_mask == Ids(10, 1));

  e = tok.encode_pair("The cat sat on the mat.", "A dog barks loudly today", 20, Padding::to_max_len);
  CHECK(e.input_ids == Ids{101, 1996, 4937, 2938, 2006, 1996, 13523, 1012, 102,
                           1037, 3899, 11286, 2015, 9928, 2651, 102, 0, 0, 0, 0});
  CHECK(e.token_type_ids == Ids{0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0});
  CHECK(e.attention_mask == Ids{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0});
}

TEST_CASE("tokenizer: bert-base-cased: case and accents are kept", "[tokenizer][data]") {
  auto tok = WordPieceTokenizer::from_vocab_file(unipelt::testing::require_data("bert/bert-base-cased/vocab.txt").string(), false);
  REQUIRE(tok.vocab_size() == 28996);
  auto ids = [&](std::string_view text) { return tok.convert_tokens_to_ids(tok.tokenize(text)); };
  CHECK(ids("Hello World") == Ids{8667, 1291});
  CHECK(ids("hello world") == Ids{19082, 1362});
  // H ##é ##llo W ##ö ##rl ##d
  CHECK(tok.tokenize("Héllo Wörld") == Strings{"H", "##é", "##llo", "W", "##ö", "##rl", "##d"});
  CHECK(ids("Héllo Wörld") == Ids{145, 2744, 6643, 160, 19593, 17670, 1181});
  CHECK(ids("naïve café") == Ids{9468, 28203, 2707, 20583});  // na ##ï ##ve café
  CHECK(ids("I like 北京 very much.") == Ids{146, 1176, 993, 984, 1304, 1277, 119});
}

// ---- The command-line program ------------------------------------------------------------------

TEST_CASE("tokenizer: unipelt tokenize reads lines and pairs from standard input", "[tokenizer][cli]") {
  std::string vocab;
  for (const auto& t : kTinyVocab) vocab += t + "\n";
  auto dir = unipelt::testing::scratch_dir("tok_cli");
  auto vocab_path = dir / "vocab.txt";
  std::ofstream(vocab_path) << vocab;
  auto input = dir / "input.txt";
  std::ofstream(input) << "Hello, world!\nunaffable\ta b\n";

  auto run = [&](const std::string& args, std::string& out) {
    return unipelt::testing::run_command(std::string("'") + UNIPELT_CLI + "' tokenize " + args + " < '" +
                                             input.string() + "'",
                                         &out);
  };

  std::string out;
  CHECK(run("--vocab '" + vocab_path.string() + "'", out) == 0);
  CHECK(out == "2 8 10 9 11 3\n2 5 6 7 3 13 15 3\n");
  CHECK(run("--vocab '" + vocab_path.string() + "' --tokens --max-len 5", out) == 0);
  CHECK(out == "[CLS] hello , world [SEP]\n[CLS] un [SEP] a [SEP]\n");
  CHECK(run("--vocab '" + (dir / "missing.txt").string() + "'", out) == 2);
  CHECK_THAT(out, Catch::Contains("cannot open"));
}

TEST_CASE("tokenizer: unipelt tokenize refuses an empty, NUL or non-UTF-8 line, naming <stdin>:LINE", "[tokenizer][cli]") {
  std::string vocab;
  for (const auto& t : kTinyVocab) vocab += t + "\n";
  auto dir = unipelt::testing::scratch_dir("tok_cli_bad");
  std::ofstream(dir / "vocab.txt") << vocab;
  struct Case {
    std::string input, message;
  };
  const Case cases[] = {
      {"hello\n\nworld\n", "<stdin>:2: text is empty"},
      {"hello\n   \n", "<stdin>:2: text is blank"},
      {"hello\nab\tcd\nx\t\n", "<stdin>:3: text_b is empty"},
      {std::string("a\0b\n", 4), "<stdin>:1: text holds a NUL byte (byte 2"},
      {"ok\nbad \xff byte\n", "<stdin>:2: text is not valid UTF-8 (byte 5 is 0xff)"},
      {"ok\n\xC3(\tfine\n", "<stdin>:2: text_a is not valid UTF-8 (byte 1 is 0xc3)"},
  };
  for (const Case& c : cases) {
    INFO(c.message);
    std::ofstream(dir / "input.txt", std::ios::binary) << c.input;
    std::string out;
    const int status = unipelt::testing::run_command(std::string("'") + UNIPELT_CLI + "' tokenize --vocab '" +
                                                         (dir / "vocab.txt").string() + "' < '" +
                                                         (dir / "input.txt").string() + "'",
                                                     &out);
    CHECK(status == 1);
    CHECK_THAT(out, Catch::Contains(c.message));
  }
}

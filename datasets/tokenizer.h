// BERT's WordPiece tokenizer, written to give the same tokens as Hugging Face's (slow, Python)
// `BertTokenizer`. The pipeline, a worked example and the compatibility notes are in
// docs/tokenizer.md; in short, one text goes through
//
//   1. split out special tokens   a literal "[SEP]" in the text stays the [SEP] token
//   2. basic tokenization          clean, isolate CJK characters, lower-case + strip accents,
//                                  split on whitespace and punctuation   -> words
//   3. WordPiece                   greedy longest-match-first into vocabulary pieces ("##" marks
//                                  a piece that continues a word)        -> word pieces
//
// and encode()/encode_pair() add [CLS]/[SEP], truncate and pad to produce model inputs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace unipelt {

// One model input. All three vectors have the same length.
struct Encoding {
  std::vector<int32_t> input_ids;
  std::vector<int32_t> token_type_ids;  // segment: 0 for "[CLS] A [SEP]", 1 for "B [SEP]"
  std::vector<int32_t> attention_mask;  // 1 for real tokens, 0 for padding
};

// Whether encode() pads its result up to max_len (with [PAD], segment 0, mask 0).
enum class Padding { none, to_max_len };

// Step 2 on its own: BERT's "basic tokenizer". Turns UTF-8 text into words: removes control
// characters, puts CJK ideographs into words of their own, lower-cases and strips accents when
// `lower_case`, and splits on whitespace and punctuation. Words listed in `never_split` are kept
// whole and untouched. Invalid UTF-8 bytes are read as U+FFFD, which the cleaning then removes.
std::vector<std::string> basic_tokenize(std::string_view text, bool lower_case,
                                        std::span<const std::string> never_split = {});

class WordPieceTokenizer {
 public:
  // Words longer than this many code points become [UNK] without trying WordPiece (as in BERT).
  static constexpr std::size_t kMaxInputCharsPerWord = 100;

  // Reads a vocab.txt: one token per line, id = line index (0-based). Throws std::runtime_error
  // naming the file when it is missing, empty, not UTF-8, holds a duplicate token, or lacks one
  // of [PAD] [UNK] [CLS] [SEP] [MASK]. `lower_case` must match the vocabulary: true for
  // "uncased" models, false for "cased" ones.
  static WordPieceTokenizer from_vocab_file(const std::string& path, bool lower_case = true);

  // The same from tokens already in memory (token i gets id i); errors name the token index.
  static WordPieceTokenizer from_tokens(std::vector<std::string> tokens, bool lower_case = true);

  // Text -> word pieces (steps 1-3), without [CLS]/[SEP].
  std::vector<std::string> tokenize(std::string_view text) const;

  // Step 3 for one word from basic_tokenize(): its pieces, or {"[UNK]"} when the word is longer
  // than kMaxInputCharsPerWord code points or cannot be covered by vocabulary pieces.
  std::vector<std::string> wordpiece(std::string_view word) const;

  // Token -> id; tokens outside the vocabulary get the [UNK] id (as in Hugging Face).
  int32_t token_to_id(std::string_view token) const;
  std::vector<int32_t> convert_tokens_to_ids(const std::vector<std::string>& tokens) const;
  // The id of `token`, or nothing when it is not in the vocabulary.
  std::optional<int32_t> find(std::string_view token) const;
  // Id -> token; throws std::out_of_range for an id outside [0, vocab_size()).
  const std::string& id_to_token(int32_t id) const;

  // "[CLS] A [SEP]", truncated to at most max_len tokens (max_len >= 2).
  Encoding encode(std::string_view a, int max_len, Padding padding = Padding::none) const;
  // "[CLS] A [SEP] B [SEP]" (max_len >= 3). Truncation is Hugging Face's "longest_first": while
  // too long, drop the last token of A if A is longer than B, otherwise the last token of B.
  Encoding encode_pair(std::string_view a, std::string_view b, int max_len,
                       Padding padding = Padding::none) const;

  int32_t pad_id() const { return pad_id_; }
  int32_t unk_id() const { return unk_id_; }
  int32_t cls_id() const { return cls_id_; }
  int32_t sep_id() const { return sep_id_; }
  int32_t mask_id() const { return mask_id_; }
  std::size_t vocab_size() const { return id_to_token_.size(); }
  bool lower_case() const { return lower_case_; }
  // The special tokens that a text may contain literally: [PAD] [UNK] [CLS] [SEP] [MASK].
  const std::vector<std::string>& special_tokens() const { return special_tokens_; }

 private:
  WordPieceTokenizer(std::vector<std::string> tokens, bool lower_case,
                     const std::function<std::string(std::size_t)>& where, const std::string& source);
  Encoding build(std::vector<int32_t> a, std::vector<int32_t>* b, int max_len,
                 Padding padding) const;

  // Lets the map be searched with a std::string_view without building a std::string.
  struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };

  std::vector<std::string> id_to_token_;
  std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>> token_to_id_;
  std::vector<std::string> special_tokens_;
  std::size_t longest_token_bytes_ = 0;  // no vocabulary entry is longer: bounds the search
  bool lower_case_ = true;
  int32_t pad_id_ = 0, unk_id_ = 0, cls_id_ = 0, sep_id_ = 0, mask_id_ = 0;
};

}  // namespace unipelt

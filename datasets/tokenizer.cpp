// WordPieceTokenizer: the vocabulary, special-token splitting (step 1), WordPiece (step 3) and the
// assembly of model inputs. Step 2, basic_tokenize(), lives in tokenizer_basic.cpp.
#include "datasets/tokenizer.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <stdexcept>
#include <utf8proc.h>

#include "datasets/text_check.h"
#include "nn/file_io.h"

namespace unipelt {
namespace {

// The tokens every BERT vocabulary has and that a text may contain literally (Hugging Face keeps
// them whole: "a [SEP] b" gives the [SEP] token, not "[", "sep", "]").
const char* const kSpecialTokens[] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};

// Byte offsets where the code points of `word` start, followed by word.size(). A byte that is not
// valid UTF-8 counts as one character of its own.
std::vector<std::size_t> code_point_starts(std::string_view word) {
  std::vector<std::size_t> starts;
  std::size_t i = 0;
  while (i < word.size()) {
    starts.push_back(i);
    utf8proc_int32_t cp = 0;
    utf8proc_ssize_t n = utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(word.data() + i),
                                          static_cast<utf8proc_ssize_t>(word.size() - i), &cp);
    i += n > 0 ? static_cast<std::size_t>(n) : 1;
  }
  starts.push_back(word.size());
  return starts;
}

// Step 1: cut `text` at every literal occurrence of a special token, keeping the tokens as parts
// of their own: "a[SEP]b" -> "a", "[SEP]", "b". Scans left to right and takes the longest token
// starting at each position, like the trie of Hugging Face's PreTrainedTokenizer.tokenize().
// Matching is case-sensitive, so "[sep]" is ordinary text.
std::vector<std::string_view> split_on_special_tokens(std::string_view text,
                                                      const std::vector<std::string>& specials) {
  std::vector<std::string_view> parts;
  std::size_t part_start = 0, i = 0;
  while (i < text.size()) {
    std::size_t match = 0;
    for (const auto& s : specials)
      if (s.size() > match && text.substr(i).starts_with(s)) match = s.size();
    if (match == 0) {
      ++i;
      continue;
    }
    if (i > part_start) parts.push_back(text.substr(part_start, i - part_start));
    parts.push_back(text.substr(i, match));
    i += match;
    part_start = i;
  }
  if (text.size() > part_start) parts.push_back(text.substr(part_start));
  return parts;
}

}  // namespace

// ---- Construction ------------------------------------------------------------------------------

// Shared by both factories. `where(i)` names token i in error messages ("line 7 of 'vocab.txt'"),
// `source` names the whole vocabulary.
WordPieceTokenizer::WordPieceTokenizer(std::vector<std::string> tokens, bool lower_case,
                                       const std::function<std::string(std::size_t)>& where,
                                       const std::string& source)
    : lower_case_(lower_case) {
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    if (invalid_utf8_offset(tokens[i]) != std::string_view::npos) throw std::runtime_error(where(i) + " is not valid UTF-8");
    auto [it, inserted] = token_to_id_.emplace(tokens[i], static_cast<int32_t>(i));
    if (!inserted)
      throw std::runtime_error(where(i) + ": duplicate token '" + tokens[i] + "' (first at " +
                               where(static_cast<std::size_t>(it->second)) + ")");
    longest_token_bytes_ = std::max(longest_token_bytes_, tokens[i].size());
  }
  id_to_token_ = std::move(tokens);

  for (const char* s : kSpecialTokens) {
    if (!find(s)) throw std::runtime_error(source + ": the vocabulary has no " + s + " token");
    special_tokens_.emplace_back(s);
  }
  pad_id_ = token_to_id("[PAD]");
  unk_id_ = token_to_id("[UNK]");
  cls_id_ = token_to_id("[CLS]");
  sep_id_ = token_to_id("[SEP]");
  mask_id_ = token_to_id("[MASK]");
}

WordPieceTokenizer WordPieceTokenizer::from_vocab_file(const std::string& path, bool lower_case) {
  // (A directory would "open" fine and then read as empty, hence the explicit check.)
  std::ifstream in(path, std::ios::binary);
  if (!in || std::filesystem::is_directory(path))
    throw std::runtime_error("cannot open vocabulary file '" + path + "'");
  std::ostringstream content;
  content << in.rdbuf();
  std::vector<std::string> lines = split_lines(content.str());
  if (lines.empty()) throw std::runtime_error("vocabulary file '" + path + "' is empty");
  auto where = [&](std::size_t i) { return "line " + std::to_string(i + 1) + " of '" + path + "'"; };
  return WordPieceTokenizer(std::move(lines), lower_case, where, "'" + path + "'");
}

WordPieceTokenizer WordPieceTokenizer::from_tokens(std::vector<std::string> tokens, bool lower_case) {
  if (tokens.empty()) throw std::runtime_error("the vocabulary is empty");
  auto where = [](std::size_t i) { return "token " + std::to_string(i); };
  return WordPieceTokenizer(std::move(tokens), lower_case, where, "vocabulary");
}

// ---- Lookups -----------------------------------------------------------------------------------

std::optional<int32_t> WordPieceTokenizer::find(std::string_view token) const {
  auto it = token_to_id_.find(token);
  if (it == token_to_id_.end()) return std::nullopt;
  return it->second;
}

int32_t WordPieceTokenizer::token_to_id(std::string_view token) const {
  return find(token).value_or(unk_id_);
}

std::vector<int32_t> WordPieceTokenizer::convert_tokens_to_ids(const std::vector<std::string>& tokens) const {
  std::vector<int32_t> ids;
  ids.reserve(tokens.size());
  for (const auto& t : tokens) ids.push_back(token_to_id(t));
  return ids;
}

const std::string& WordPieceTokenizer::id_to_token(int32_t id) const {
  if (id < 0 || static_cast<std::size_t>(id) >= id_to_token_.size())
    throw std::out_of_range("token id " + std::to_string(id) + " is outside the vocabulary (size " +
                            std::to_string(id_to_token_.size()) + ")");
  return id_to_token_[static_cast<std::size_t>(id)];
}

// ---- Tokenization ------------------------------------------------------------------------------

std::vector<std::string> WordPieceTokenizer::tokenize(std::string_view text) const {
  std::vector<std::string> pieces;
  for (std::string_view part : split_on_special_tokens(text, special_tokens_)) {
    if (std::find(special_tokens_.begin(), special_tokens_.end(), part) != special_tokens_.end()) {
      pieces.emplace_back(part);
      continue;
    }
    // Hugging Face lower-cases an uncased text (all but its special tokens) before anything else,
    // so a "[SEP]" that only appears once cleaning removed a control character is "[sep]" and
    // gets split; in a cased text it stays whole. Passing never_split only when cased mirrors that.
    std::span<const std::string> never_split;
    if (!lower_case_) never_split = special_tokens_;
    for (const std::string& word : basic_tokenize(part, lower_case_, never_split)) {
      auto word_pieces = wordpiece(word);
      pieces.insert(pieces.end(), std::make_move_iterator(word_pieces.begin()),
                    std::make_move_iterator(word_pieces.end()));
    }
  }
  return pieces;
}

// Greedy longest-match-first: take the longest prefix of the word that is in the vocabulary, then
// the longest "##"-prefixed vocabulary entry matching what follows, and so on. If some position
// has no match at all, the whole word becomes [UNK] (not just the unmatched rest).
std::vector<std::string> WordPieceTokenizer::wordpiece(std::string_view word) const {
  const std::string& unk = id_to_token_[static_cast<std::size_t>(unk_id_)];
  const std::vector<std::size_t> starts = code_point_starts(word);
  const std::size_t n_chars = starts.size() - 1;
  if (n_chars > kMaxInputCharsPerWord) return {unk};

  std::vector<std::string> pieces;
  std::size_t start = 0;
  while (start < n_chars) {
    const std::string prefix = start > 0 ? "##" : "";
    std::size_t end = n_chars;
    for (; end > start; --end) {
      const std::size_t bytes = prefix.size() + starts[end] - starts[start];
      if (bytes > longest_token_bytes_) continue;  // cannot be in the vocabulary
      std::string candidate = prefix + std::string(word.substr(starts[start], starts[end] - starts[start]));
      if (token_to_id_.contains(candidate)) {
        pieces.push_back(std::move(candidate));
        break;
      }
    }
    if (end == start) return {unk};
    start = end;
  }
  return pieces;
}

// ---- Model inputs ------------------------------------------------------------------------------

Encoding WordPieceTokenizer::encode(std::string_view a, int max_len, Padding padding) const {
  if (max_len < 2) throw std::invalid_argument("encode: max_len must be at least 2 ([CLS] and [SEP])");
  return build(convert_tokens_to_ids(tokenize(a)), nullptr, max_len, padding);
}

Encoding WordPieceTokenizer::encode_pair(std::string_view a, std::string_view b, int max_len,
                                         Padding padding) const {
  if (max_len < 3) throw std::invalid_argument("encode_pair: max_len must be at least 3 ([CLS] and two [SEP])");
  std::vector<int32_t> ids_b = convert_tokens_to_ids(tokenize(b));
  return build(convert_tokens_to_ids(tokenize(a)), &ids_b, max_len, padding);
}

Encoding WordPieceTokenizer::build(std::vector<int32_t> a, std::vector<int32_t>* b, int max_len,
                                   Padding padding) const {
  const auto limit = static_cast<std::size_t>(max_len);
  if (b) {
    // "longest_first": one token at a time from the end of the longer sequence; on a tie from B.
    while (a.size() + b->size() + 3 > limit) {
      if (a.size() > b->size()) a.pop_back();
      else b->pop_back();
    }
  } else if (a.size() + 2 > limit) {
    a.resize(limit - 2);
  }

  Encoding e;
  auto append = [&e](int32_t id, int32_t type, int32_t mask) {
    e.input_ids.push_back(id);
    e.token_type_ids.push_back(type);
    e.attention_mask.push_back(mask);
  };
  append(cls_id_, 0, 1);
  for (int32_t id : a) append(id, 0, 1);
  append(sep_id_, 0, 1);
  if (b) {
    for (int32_t id : *b) append(id, 1, 1);
    append(sep_id_, 1, 1);
  }
  if (padding == Padding::to_max_len)
    while (e.input_ids.size() < limit) append(pad_id_, 0, 0);
  return e;
}

}  // namespace unipelt

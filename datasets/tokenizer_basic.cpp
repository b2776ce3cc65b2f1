// BERT's "basic tokenizer" (step 2 of datasets/tokenizer.h): text -> words.
//
// Each rule mirrors a function of Hugging Face's BasicTokenizer (transformers, tokenization_bert.py)
// and is named after it. All Unicode knowledge (categories, lower case, NFD) comes from utf8proc;
// the only hand-written table is the list of CJK blocks that BERT itself hard-codes.
#include <algorithm>
#include <string>
#include <string_view>
#include <utf8proc.h>
#include <vector>

#include "datasets/tokenizer.h"

namespace unipelt {
namespace {

constexpr char32_t kReplacementChar = 0xFFFD;

// ---- UTF-8 <-> code points -------------------------------------------------------------------

// Decodes UTF-8. A byte that does not start a valid sequence becomes U+FFFD and decoding resumes
// at the next byte; Python's bytes.decode(errors="replace") also yields U+FFFD there, and BERT's
// cleaning deletes U+FFFD, so broken bytes simply vanish (without splitting the word around them).
std::u32string decode_utf8(std::string_view text) {
  std::u32string out;
  out.reserve(text.size());
  const auto* p = reinterpret_cast<const utf8proc_uint8_t*>(text.data());
  utf8proc_ssize_t left = static_cast<utf8proc_ssize_t>(text.size());
  while (left > 0) {
    utf8proc_int32_t cp = 0;
    utf8proc_ssize_t n = utf8proc_iterate(p, left, &cp);
    if (n <= 0) {  // invalid: replace this one byte
      out.push_back(kReplacementChar);
      n = 1;
    } else {
      out.push_back(static_cast<char32_t>(cp));
    }
    p += n;
    left -= n;
  }
  return out;
}

std::string encode_utf8(std::u32string_view cps) {
  std::string out;
  out.reserve(cps.size());
  utf8proc_uint8_t buf[4];
  for (char32_t cp : cps) {
    auto n = utf8proc_encode_char(static_cast<utf8proc_int32_t>(cp), buf);
    out.append(reinterpret_cast<const char*>(buf), static_cast<std::size_t>(n));
  }
  return out;
}

// ---- Character classes (tokenization_utils.py: _is_whitespace, _is_control, _is_punctuation) --

utf8proc_category_t category(char32_t cp) { return utf8proc_category(static_cast<utf8proc_int32_t>(cp)); }

// Space, \t, \n, \r and the "space separator" category Zs. BERT then splits words with Python's
// str.split(), which also breaks at line/paragraph separators (Zl, Zp), so those count as well.
bool is_whitespace(char32_t cp) {
  if (cp == U' ' || cp == U'\t' || cp == U'\n' || cp == U'\r') return true;
  auto cat = category(cp);
  return cat == UTF8PROC_CATEGORY_ZS || cat == UTF8PROC_CATEGORY_ZL || cat == UTF8PROC_CATEGORY_ZP;
}

// Any "other" category (C*: control, format, surrogate, private use, unassigned), except the
// three control characters that are whitespace.
bool is_control(char32_t cp) {
  if (cp == U'\t' || cp == U'\n' || cp == U'\r') return false;
  switch (category(cp)) {
    case UTF8PROC_CATEGORY_CC: case UTF8PROC_CATEGORY_CF: case UTF8PROC_CATEGORY_CS:
    case UTF8PROC_CATEGORY_CO: case UTF8PROC_CATEGORY_CN:
      return true;
    default:
      return false;
  }
}

// Every non-alphanumeric printable ASCII character (so "$", "+", "^", "`" split words although
// Unicode calls them symbols), plus any character whose category starts with P.
bool is_punctuation(char32_t cp) {
  if ((cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) ||
      (cp >= 123 && cp <= 126))
    return true;
  switch (category(cp)) {
    case UTF8PROC_CATEGORY_PC: case UTF8PROC_CATEGORY_PD: case UTF8PROC_CATEGORY_PS:
    case UTF8PROC_CATEGORY_PE: case UTF8PROC_CATEGORY_PI: case UTF8PROC_CATEGORY_PF:
    case UTF8PROC_CATEGORY_PO:
      return true;
    default:
      return false;
  }
}

// The CJK Unified Ideographs blocks, exactly as BERT's _is_chinese_char lists them. Hangul,
// Hiragana and Katakana are deliberately absent: those scripts put spaces between words.
bool is_cjk_ideograph(char32_t cp) {
  return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
         (cp >= 0x20000 && cp <= 0x2A6DF) || (cp >= 0x2A700 && cp <= 0x2B73F) ||
         (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B820 && cp <= 0x2CEAF) ||
         (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

// ---- The steps ---------------------------------------------------------------------------------

// _clean_text + _tokenize_chinese_chars: drop NUL, U+FFFD and control characters, turn every
// whitespace character into a plain space, and surround CJK ideographs with spaces so that each
// one becomes a word of its own.
std::u32string clean_text(std::u32string_view text) {
  std::u32string out;
  out.reserve(text.size());
  for (char32_t cp : text) {
    if (cp == 0 || cp == kReplacementChar || is_control(cp)) continue;
    if (is_whitespace(cp)) {
      out.push_back(U' ');
    } else if (is_cjk_ideograph(cp)) {
      out += U' ';
      out += cp;
      out += U' ';
    } else {
      out.push_back(cp);
    }
  }
  return out;
}

// token.lower() followed by _run_strip_accents: lower-case each code point, decompose to NFD
// (so "é" becomes "e" + U+0301 COMBINING ACUTE ACCENT) and drop the nonspacing marks (Mn).
std::u32string lower_and_strip_accents(std::u32string_view word) {
  std::u32string lowered(word);
  for (char32_t& cp : lowered) cp = static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(cp)));

  // utf8proc_decompose works on UTF-8 and also puts combining marks into canonical order (full
  // NFD). It reports the size it needs when the buffer is too small, so at most two calls.
  std::string utf8 = encode_utf8(lowered);
  const auto* bytes = reinterpret_cast<const utf8proc_uint8_t*>(utf8.data());
  const auto nbytes = static_cast<utf8proc_ssize_t>(utf8.size());
  const auto options = static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_DECOMPOSE);
  std::vector<utf8proc_int32_t> nfd(lowered.size() * 2 + 4);
  utf8proc_ssize_t n = utf8proc_decompose(bytes, nbytes, nfd.data(), static_cast<utf8proc_ssize_t>(nfd.size()), options);
  if (n > static_cast<utf8proc_ssize_t>(nfd.size())) {
    nfd.resize(static_cast<std::size_t>(n));
    n = utf8proc_decompose(bytes, nbytes, nfd.data(), n, options);
  }
  if (n < 0) return lowered;  // cannot happen for valid code points; keep the word rather than lose it

  std::u32string out;
  out.reserve(static_cast<std::size_t>(n));
  for (utf8proc_ssize_t i = 0; i < n; ++i) {
    auto cp = static_cast<char32_t>(nfd[static_cast<std::size_t>(i)]);
    if (category(cp) != UTF8PROC_CATEGORY_MN) out.push_back(cp);
  }
  return out;
}

// _run_split_on_punc: every punctuation character becomes a word of its own, so "hi!!" gives
// "hi", "!", "!". Empty pieces never appear.
void split_on_punctuation(std::u32string_view word, std::vector<std::string>& out) {
  std::size_t start = 0;  // first character of the current run of non-punctuation
  for (std::size_t i = 0; i < word.size(); ++i) {
    if (!is_punctuation(word[i])) continue;
    if (i > start) out.push_back(encode_utf8(word.substr(start, i - start)));
    out.push_back(encode_utf8(word.substr(i, 1)));
    start = i + 1;
  }
  if (word.size() > start) out.push_back(encode_utf8(word.substr(start)));
}

}  // namespace

std::vector<std::string> basic_tokenize(std::string_view text, bool lower_case,
                                        std::span<const std::string> never_split) {
  const std::u32string cleaned = clean_text(decode_utf8(text));

  std::vector<std::string> words;
  std::size_t pos = 0;
  while (pos < cleaned.size()) {
    // whitespace_tokenize: after cleaning, words are the runs between plain spaces.
    std::size_t end = cleaned.find(U' ', pos);
    if (end == std::u32string::npos) end = cleaned.size();
    std::u32string_view word = std::u32string_view(cleaned).substr(pos, end - pos);
    pos = end + 1;
    if (word.empty()) continue;

    std::string utf8 = encode_utf8(word);
    if (std::find(never_split.begin(), never_split.end(), utf8) != never_split.end()) {
      words.push_back(std::move(utf8));  // e.g. "[SEP]": neither lower-cased nor split at "[" "]"
    } else if (lower_case) {
      split_on_punctuation(lower_and_strip_accents(word), words);
    } else {
      split_on_punctuation(word, words);
    }
  }
  return words;
}

}  // namespace unipelt

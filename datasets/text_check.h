// The one rule for text that goes into the tokenizer from outside: a GLUE TSV field, a line of
// `unipelt predict` input, a line of `unipelt tokenize` input. Such a text must be
//   - valid UTF-8 (the tokenizer would silently drop the bytes it cannot decode),
//   - free of NUL bytes (a sign of a binary or UTF-16 file, not text), and
//   - not empty or only ASCII whitespace (it would become "[CLS] [SEP]": no input at all).
// Every reader refuses a bad text with the same message, naming the file and the line.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "datasets/glue.h"

namespace unipelt {

// The byte offset at which `s` stops being valid UTF-8 (a truncated or overlong sequence, a
// surrogate, a byte that cannot start a character), or std::string_view::npos when it is valid.
size_t invalid_utf8_offset(std::string_view s);

// Why `text` cannot be a model input ("is empty", "is not valid UTF-8 (byte 4 is 0xff)", "holds a
// NUL byte (byte 2)"), or "" when it can.
std::string text_problem(std::string_view text);

// Throws DataError("<where>: <what> <problem>") when text_problem(text) is not empty. `where` is
// "FILE:LINE" ("<stdin>:3" for standard input), `what` names the text ("text", "column 'sentence'").
void check_text(std::string_view text, const std::string& where, const std::string& what = "text");

}  // namespace unipelt

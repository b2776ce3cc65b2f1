// Validation of input texts; see text_check.h.
#include "datasets/text_check.h"

#include <cstdio>
#include <utf8proc.h>

namespace unipelt {

size_t invalid_utf8_offset(std::string_view s) {
  const auto* start = reinterpret_cast<const utf8proc_uint8_t*>(s.data());
  size_t offset = 0;
  while (offset < s.size()) {
    utf8proc_int32_t code_point = 0;
    const utf8proc_ssize_t n =
        utf8proc_iterate(start + offset, static_cast<utf8proc_ssize_t>(s.size() - offset), &code_point);
    if (n <= 0) return offset;
    offset += static_cast<size_t>(n);
  }
  return std::string_view::npos;
}

std::string text_problem(std::string_view text) {
  if (text.find_first_not_of(" \t\r\n\v\f") == std::string_view::npos)
    return text.empty() ? "is empty" : "is blank (only whitespace)";
  if (const size_t nul = text.find('\0'); nul != std::string_view::npos)
    return "holds a NUL byte (byte " + std::to_string(nul + 1) + "; is this a binary or UTF-16 file?)";
  if (const size_t bad = invalid_utf8_offset(text); bad != std::string_view::npos) {
    char hex[8];
    std::snprintf(hex, sizeof hex, "0x%02x", static_cast<unsigned>(static_cast<unsigned char>(text[bad])));
    return "is not valid UTF-8 (byte " + std::to_string(bad + 1) + " is " + hex + ")";
  }
  return "";
}

void check_text(std::string_view text, const std::string& where, const std::string& what) {
  const std::string problem = text_problem(text);
  if (!problem.empty()) throw DataError(where + ": " + what + " " + problem);
}

}  // namespace unipelt

// Small text helpers shared by the reports, the gate plots and the sweep's command lines.
#pragma once

#include <string>

namespace unipelt {

// "%.*f" of v: the gate table, the report and the SVG plots print fixed decimals.
std::string format_fixed(double v, int decimals);

// Quotes an argument for a POSIX shell when needed: abc -> abc, a b -> 'a b', it's -> 'it'\''s'.
std::string shell_quote(const std::string& arg);

// Escapes &, <, > and " for XML text and attribute values (the SVG plots).
std::string xml_escape(const std::string& s);

}  // namespace unipelt

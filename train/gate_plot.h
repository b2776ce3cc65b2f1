// Gate values of a run as a table and an SVG line plot: the pieces behind `unipelt gates`.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace unipelt {

// ---------------------------------------------------------------------------------------------
// Gates: mean gate value per layer and submodule ("adapter", "prefix", "lora_query", "lora_value").
// ---------------------------------------------------------------------------------------------
using GateTable = std::map<std::string, std::vector<double>>;

// The submodules present in `gates`, in the order adapter, prefix, lora_query, lora_value (others after).
std::vector<std::string> gate_submodules(const GateTable& gates);
// "Adapter", "Prefix-tuning", "LoRA (query)", "LoRA (value)".
std::string gate_display_name(const std::string& submodule);
// A text table: one row per layer (0-based, as in the parameter names), one column per submodule,
// and a last row with the mean over layers.
std::string format_gate_table(const GateTable& gates);
// A self-contained SVG line plot: layers on x, gate value on y (0..1), one polyline with markers per
// submodule, a legend, axis labels and `title`.
std::string render_gates_svg(const GateTable& gates, const std::string& title);

}  // namespace unipelt

// The per-layer gate values of a run (`unipelt gates`): a text table and an SVG line plot (layers on
// the x axis, one line per gated submodule) that opens in a browser.
#include "train/gate_plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <set>
#include <sstream>

#include "train/svg_plot.h"
#include "train/text.h"

namespace unipelt {

// ---------------------------------------------------------------------------------------------
// Gates
// ---------------------------------------------------------------------------------------------

std::vector<std::string> gate_submodules(const GateTable& gates) {
  static const std::vector<std::string> order = {"adapter", "prefix", "lora_query", "lora_value"};
  std::vector<std::string> out;
  for (const auto& name : order)
    if (gates.count(name)) out.push_back(name);
  for (const auto& [name, values] : gates)
    if (std::find(order.begin(), order.end(), name) == order.end()) out.push_back(name);
  return out;
}

std::string gate_display_name(const std::string& s) {
  if (s == "adapter") return "Adapter";
  if (s == "prefix") return "Prefix-tuning";
  if (s == "lora_query") return "LoRA (query)";
  if (s == "lora_value") return "LoRA (value)";
  return s;
}

std::string format_gate_table(const GateTable& gates) {
  const std::vector<std::string> subs = gate_submodules(gates);
  size_t layers = 0;
  for (const auto& s : subs) layers = std::max(layers, gates.at(s).size());
  std::vector<size_t> widths;
  std::ostringstream out;
  char buf[64];
  std::snprintf(buf, sizeof buf, "%-6s", "layer");
  out << buf;
  for (const auto& s : subs) {
    widths.push_back(std::max<size_t>(gate_display_name(s).size(), 6));
    std::snprintf(buf, sizeof buf, "  %*s", static_cast<int>(widths.back()), gate_display_name(s).c_str());
    out << buf;
  }
  out << "\n";
  for (size_t l = 0; l <= layers; ++l) {
    std::snprintf(buf, sizeof buf, "%-6s", l < layers ? std::to_string(l).c_str() : "mean");
    out << buf;
    for (size_t i = 0; i < subs.size(); ++i) {
      const std::vector<double>& v = gates.at(subs[i]);
      std::string cell = "-";
      if (l < layers && l < v.size()) cell = format_fixed(v[l], 4);
      if (l == layers && !v.empty())
        cell = format_fixed(std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size()), 4);
      std::snprintf(buf, sizeof buf, "  %*s", static_cast<int>(widths[i]), cell.c_str());
      out << buf;
    }
    out << "\n";
  }
  return out.str();
}

std::string render_gates_svg(const GateTable& gates, const std::string& title) {
  struct Style {
    const char* color;
    Marker marker;
  };
  static const std::map<std::string, Style> styles = {{"adapter", {"#1f77b4", Marker::Circle}},
                                                      {"prefix", {"#ff7f0e", Marker::Square}},
                                                      {"lora_query", {"#2ca02c", Marker::Triangle}},
                                                      {"lora_value", {"#d62728", Marker::Diamond}}};
  static const char* extra_colors[] = {"#9467bd", "#8c564b", "#e377c2", "#7f7f7f"};
  const std::vector<std::string> subs = gate_submodules(gates);
  size_t layers = 0;
  for (const auto& s : subs) layers = std::max(layers, gates.at(s).size());

  PlotAxes axes;
  axes.x_max = layers > 1 ? static_cast<double>(layers - 1) : 0.0;
  axes.x_label = "Layer (0 = closest to the embeddings)";
  axes.y_label = "Mean gate value";
  for (int i = 0; i <= 5; ++i) axes.y_ticks.emplace_back(i / 5.0, format_fixed(i / 5.0, 1));
  const size_t every = layers > 24 ? (layers + 23) / 24 : 1;  // label every k-th layer of deep models
  for (size_t l = 0; l < layers; ++l) axes.x_ticks.emplace_back(static_cast<double>(l), l % every ? "" : std::to_string(l));

  std::vector<PlotSeries> series;
  for (size_t i = 0; i < subs.size(); ++i) {
    auto it = styles.find(subs[i]);
    const Style st = it != styles.end() ? it->second : Style{extra_colors[i % 4], Marker::Circle};
    PlotSeries s{gate_display_name(subs[i]), subs[i], st.color, st.marker, {}, {}};
    const std::vector<double>& v = gates.at(subs[i]);
    for (size_t l = 0; l < v.size(); ++l) {
      s.points.emplace_back(static_cast<double>(l), v[l]);
      s.tips.push_back(s.name + ", layer " + std::to_string(l) + ": " + format_fixed(v[l], 4));
    }
    series.push_back(std::move(s));
  }
  return render_line_plot(title, axes, series);
}

}  // namespace unipelt

// The per-layer gate values of a run (`unipelt gates`): a text table and an SVG line plot (layers on
// the x axis, one line per gated submodule) that opens in a browser.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <set>
#include <sstream>

#include "train/gate_plot.h"
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
  const std::vector<std::string> subs = gate_submodules(gates);
  size_t layers = 0;
  for (const auto& s : subs) layers = std::max(layers, gates.at(s).size());
  const double width = 780, height = 440, left = 70, right = 560, top = 60, bottom = 370, pad = 16;
  auto x_of = [&](size_t layer) {  // first and last layer `pad` inside the axes
    if (layers <= 1) return (left + right) / 2;
    return left + pad + (right - left - 2 * pad) * static_cast<double>(layer) / static_cast<double>(layers - 1);
  };
  auto y_of = [&](double v) { return bottom - (bottom - top) * std::clamp(v, 0.0, 1.0); };
  auto num = [](double v) { return format_fixed(v, 1); };
  struct Style {
    const char* color;
    const char* marker;
  };
  static const std::map<std::string, Style> styles = {{"adapter", {"#1f77b4", "circle"}},
                                                      {"prefix", {"#ff7f0e", "square"}},
                                                      {"lora_query", {"#2ca02c", "triangle"}},
                                                      {"lora_value", {"#d62728", "diamond"}}};
  static const char* extra_colors[] = {"#9467bd", "#8c564b", "#e377c2", "#7f7f7f"};
  auto style_of = [&](const std::string& s, size_t i) {
    auto it = styles.find(s);
    return it != styles.end() ? it->second : Style{extra_colors[i % 4], "circle"};
  };
  auto marker = [&](const Style& st, double x, double y, const std::string& tip) {
    std::ostringstream m;
    const std::string fill = std::string("fill=\"") + st.color + "\" stroke=\"white\" stroke-width=\"1\"";
    const std::string t = tip.empty() ? "" : "<title>" + xml_escape(tip) + "</title>";
    const std::string marker_name = st.marker;
    if (marker_name == "square") {
      m << "<rect x=\"" << num(x - 4.5) << "\" y=\"" << num(y - 4.5) << "\" width=\"9\" height=\"9\" " << fill << ">"
        << t << "</rect>";
    } else if (marker_name == "triangle") {
      m << "<polygon points=\"" << num(x) << "," << num(y - 6) << " " << num(x - 5.5) << "," << num(y + 4) << " "
        << num(x + 5.5) << "," << num(y + 4) << "\" " << fill << ">" << t << "</polygon>";
    } else if (marker_name == "diamond") {
      m << "<polygon points=\"" << num(x) << "," << num(y - 6) << " " << num(x + 6) << "," << num(y) << " " << num(x)
        << "," << num(y + 6) << " " << num(x - 6) << "," << num(y) << "\" " << fill << ">" << t << "</polygon>";
    } else {
      m << "<circle cx=\"" << num(x) << "\" cy=\"" << num(y) << "\" r=\"5\" " << fill << ">" << t << "</circle>";
    }
    return m.str();
  };

  std::ostringstream svg;
  svg << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\"" << height
      << "\" viewBox=\"0 0 " << width << " " << height << "\" font-family=\"Helvetica, Arial, sans-serif\">\n"
      << "<rect x=\"0\" y=\"0\" width=\"" << width << "\" height=\"" << height << "\" fill=\"white\"/>\n"
      << "<text x=\"" << num((left + right) / 2) << "\" y=\"30\" text-anchor=\"middle\" font-size=\"16\" "
      << "font-weight=\"bold\">" << xml_escape(title) << "</text>\n";
  // Horizontal grid and y ticks.
  svg << "<g font-size=\"12\" fill=\"#333\">\n";
  for (int i = 0; i <= 5; ++i) {
    const double v = i / 5.0, y = y_of(v);
    svg << "<line x1=\"" << num(left) << "\" y1=\"" << num(y) << "\" x2=\"" << num(right) << "\" y2=\"" << num(y)
        << "\" stroke=\"#ddd\" stroke-width=\"1\"/>"
        << "<text x=\"" << num(left - 8) << "\" y=\"" << num(y + 4) << "\" text-anchor=\"end\">" << format_fixed(v, 1)
        << "</text>\n";
  }
  // x ticks: every layer, or every k-th for deep models.
  const size_t every = layers > 24 ? (layers + 23) / 24 : 1;
  for (size_t l = 0; l < layers; ++l) {
    const double x = x_of(l);
    svg << "<line x1=\"" << num(x) << "\" y1=\"" << num(bottom) << "\" x2=\"" << num(x) << "\" y2=\""
        << num(bottom + 5) << "\" stroke=\"#333\"/>";
    if (l % every == 0)
      svg << "<text x=\"" << num(x) << "\" y=\"" << num(bottom + 20) << "\" text-anchor=\"middle\">" << l << "</text>";
    svg << "\n";
  }
  svg << "</g>\n";
  // Axes and labels.
  svg << "<line x1=\"" << num(left) << "\" y1=\"" << num(bottom) << "\" x2=\"" << num(right) << "\" y2=\""
      << num(bottom) << "\" stroke=\"#333\" stroke-width=\"1.5\"/>\n"
      << "<line x1=\"" << num(left) << "\" y1=\"" << num(top) << "\" x2=\"" << num(left) << "\" y2=\"" << num(bottom)
      << "\" stroke=\"#333\" stroke-width=\"1.5\"/>\n"
      << "<text x=\"" << num((left + right) / 2) << "\" y=\"" << num(bottom + 45)
      << "\" text-anchor=\"middle\" font-size=\"14\">Layer (0 = closest to the embeddings)</text>\n"
      << "<text x=\"20\" y=\"" << num((top + bottom) / 2) << "\" text-anchor=\"middle\" font-size=\"14\" "
      << "transform=\"rotate(-90 20 " << num((top + bottom) / 2) << ")\">Mean gate value</text>\n";
  // One polyline with markers per submodule.
  for (size_t i = 0; i < subs.size(); ++i) {
    const std::vector<double>& v = gates.at(subs[i]);
    const Style st = style_of(subs[i], i);
    svg << "<g class=\"series\" data-submodule=\"" << xml_escape(subs[i]) << "\">\n<polyline fill=\"none\" stroke=\""
        << st.color << "\" stroke-width=\"2\" points=\"";
    for (size_t l = 0; l < v.size(); ++l) svg << (l ? " " : "") << num(x_of(l)) << "," << num(y_of(v[l]));
    svg << "\"/>\n";
    for (size_t l = 0; l < v.size(); ++l)
      svg << marker(st, x_of(l), y_of(v[l]), gate_display_name(subs[i]) + ", layer " + std::to_string(l) + ": " +
                                                 format_fixed(v[l], 4))
          << "\n";
    svg << "</g>\n";
  }
  // Legend, right of the plot.
  const double lx = right + 30;
  svg << "<g font-size=\"13\">\n<rect x=\"" << num(lx - 10) << "\" y=\"" << num(top - 10) << "\" width=\"170\" height=\""
      << num(22.0 * static_cast<double>(subs.size()) + 12) << "\" fill=\"white\" stroke=\"#bbb\"/>\n";
  for (size_t i = 0; i < subs.size(); ++i) {
    const Style st = style_of(subs[i], i);
    const double y = top + 6 + 22.0 * static_cast<double>(i);
    svg << "<line x1=\"" << num(lx) << "\" y1=\"" << num(y) << "\" x2=\"" << num(lx + 30) << "\" y2=\"" << num(y)
        << "\" stroke=\"" << st.color << "\" stroke-width=\"2\"/>" << marker(st, lx + 15, y, "")
        << "<text x=\"" << num(lx + 40) << "\" y=\"" << num(y + 4.5) << "\">" << xml_escape(gate_display_name(subs[i]))
        << "</text>\n";
  }
  svg << "</g>\n</svg>\n";
  return svg.str();
}

}  // namespace unipelt

#include "train/svg_plot.h"

#include <algorithm>
#include <sstream>

#include "train/svg.h"
#include "train/text.h"

namespace unipelt {

namespace {

// The canvas and the plot area inside it, in pixels.
constexpr double kWidth = 780, kHeight = 440, kLeft = 70, kRight = 560, kTop = 60, kBottom = 370;

std::string num(double v) { return format_fixed(v, 1); }

class Frame {
 public:
  explicit Frame(const PlotAxes& a) : a_(a) {}
  double x(double v) const {
    if (a_.x_max <= a_.x_min) return (kLeft + kRight) / 2;
    return kLeft + a_.x_pad + (kRight - kLeft - 2 * a_.x_pad) * (v - a_.x_min) / (a_.x_max - a_.x_min);
  }
  double y(double v) const {
    const double span = a_.y_max > a_.y_min ? a_.y_max - a_.y_min : 1.0;
    return kBottom - (kBottom - kTop) * (std::clamp(v, a_.y_min, a_.y_max) - a_.y_min) / span;
  }

 private:
  const PlotAxes& a_;
};

std::string marker_svg(const PlotSeries& s, double x, double y, const std::string& tip) {
  std::ostringstream m;
  const std::string fill = "fill=\"" + s.color + "\" stroke=\"white\" stroke-width=\"1\"";
  const std::string t = tip.empty() ? "" : "<title>" + xml_escape(tip) + "</title>";
  switch (s.marker) {
    case Marker::Square:
      m << "<rect x=\"" << num(x - 4.5) << "\" y=\"" << num(y - 4.5) << "\" width=\"9\" height=\"9\" " << fill << ">"
        << t << "</rect>";
      break;
    case Marker::Triangle:
      m << "<polygon points=\"" << num(x) << "," << num(y - 6) << " " << num(x - 5.5) << "," << num(y + 4) << " "
        << num(x + 5.5) << "," << num(y + 4) << "\" " << fill << ">" << t << "</polygon>";
      break;
    case Marker::Diamond:
      m << "<polygon points=\"" << num(x) << "," << num(y - 6) << " " << num(x + 6) << "," << num(y) << " " << num(x)
        << "," << num(y + 6) << " " << num(x - 6) << "," << num(y) << "\" " << fill << ">" << t << "</polygon>";
      break;
    case Marker::Circle:
      m << "<circle cx=\"" << num(x) << "\" cy=\"" << num(y) << "\" r=\"5\" " << fill << ">" << t << "</circle>";
      break;
  }
  return m.str();
}

// Grid lines, ticks, the two axes and their labels.
void write_axes(SvgDocument& doc, const PlotAxes& a, const Frame& f) {
  for (const auto& [v, label] : a.y_ticks) {
    doc.line(kLeft, f.y(v), kRight, f.y(v), "#ddd");
    doc.text(kLeft - 8, f.y(v) + 4, label, "end", 12, "fill=\"#333\"");
  }
  for (const auto& [v, label] : a.x_ticks) {
    doc.line(f.x(v), kBottom, f.x(v), kBottom + 5, "#333");
    if (!label.empty()) doc.text(f.x(v), kBottom + 20, label, "middle", 12, "fill=\"#333\"");
  }
  doc.line(kLeft, kBottom, kRight, kBottom, "#333", 1.5);
  doc.line(kLeft, kTop, kLeft, kBottom, "#333", 1.5);
  doc.text((kLeft + kRight) / 2, kBottom + 45, a.x_label, "middle", 14);
  const double mid = (kTop + kBottom) / 2;
  doc.text(20, mid, a.y_label, "middle", 14, "transform=\"rotate(-90 20 " + num(mid) + ")\"");
}

void write_series(SvgDocument& doc, const PlotSeries& s, const Frame& f) {
  doc.raw("<g class=\"series\" data-series=\"" + xml_escape(s.key) + "\">\n");
  std::vector<std::pair<double, double>> pixels;
  for (const auto& [x, y] : s.points) pixels.emplace_back(f.x(x), f.y(y));
  doc.polyline(pixels, s.color);
  for (size_t i = 0; i < pixels.size(); ++i)
    doc.raw(marker_svg(s, pixels[i].first, pixels[i].second, i < s.tips.size() ? s.tips[i] : "") + "\n");
  doc.raw("</g>\n");
}

void write_legend(SvgDocument& doc, const std::vector<PlotSeries>& series) {
  const double lx = kRight + 30;
  doc.rect(lx - 10, kTop - 10, 170, 22.0 * static_cast<double>(series.size()) + 12, "white", "", "#bbb");
  for (size_t i = 0; i < series.size(); ++i) {
    const double y = kTop + 6 + 22.0 * static_cast<double>(i);
    doc.line(lx, y, lx + 30, y, series[i].color, 2);
    doc.raw(marker_svg(series[i], lx + 15, y, "") + "\n");
    doc.text(lx + 40, y + 4.5, series[i].name, "start", 13);
  }
}

}  // namespace

std::string render_line_plot(const std::string& title, const PlotAxes& axes, const std::vector<PlotSeries>& series) {
  const Frame frame(axes);
  SvgDocument doc(kWidth, kHeight, title);
  write_axes(doc, axes, frame);
  for (const PlotSeries& s : series) write_series(doc, s, frame);
  write_legend(doc, series);
  return doc.finish();
}

}  // namespace unipelt

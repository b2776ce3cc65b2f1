#include "train/svg_plot.h"

#include <algorithm>
#include <sstream>

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
void write_axes(std::ostringstream& svg, const PlotAxes& a, const Frame& f) {
  svg << "<g font-size=\"12\" fill=\"#333\">\n";
  for (const auto& [v, label] : a.y_ticks)
    svg << "<line x1=\"" << num(kLeft) << "\" y1=\"" << num(f.y(v)) << "\" x2=\"" << num(kRight) << "\" y2=\""
        << num(f.y(v)) << "\" stroke=\"#ddd\" stroke-width=\"1\"/>"
        << "<text x=\"" << num(kLeft - 8) << "\" y=\"" << num(f.y(v) + 4) << "\" text-anchor=\"end\">"
        << xml_escape(label) << "</text>\n";
  for (const auto& [v, label] : a.x_ticks) {
    svg << "<line x1=\"" << num(f.x(v)) << "\" y1=\"" << num(kBottom) << "\" x2=\"" << num(f.x(v)) << "\" y2=\""
        << num(kBottom + 5) << "\" stroke=\"#333\"/>";
    if (!label.empty())
      svg << "<text x=\"" << num(f.x(v)) << "\" y=\"" << num(kBottom + 20) << "\" text-anchor=\"middle\">"
          << xml_escape(label) << "</text>";
    svg << "\n";
  }
  svg << "</g>\n";
  svg << "<line x1=\"" << num(kLeft) << "\" y1=\"" << num(kBottom) << "\" x2=\"" << num(kRight) << "\" y2=\""
      << num(kBottom) << "\" stroke=\"#333\" stroke-width=\"1.5\"/>\n"
      << "<line x1=\"" << num(kLeft) << "\" y1=\"" << num(kTop) << "\" x2=\"" << num(kLeft) << "\" y2=\""
      << num(kBottom) << "\" stroke=\"#333\" stroke-width=\"1.5\"/>\n"
      << "<text x=\"" << num((kLeft + kRight) / 2) << "\" y=\"" << num(kBottom + 45)
      << "\" text-anchor=\"middle\" font-size=\"14\">" << xml_escape(a.x_label) << "</text>\n"
      << "<text x=\"20\" y=\"" << num((kTop + kBottom) / 2) << "\" text-anchor=\"middle\" font-size=\"14\" "
      << "transform=\"rotate(-90 20 " << num((kTop + kBottom) / 2) << ")\">" << xml_escape(a.y_label) << "</text>\n";
}

void write_series(std::ostringstream& svg, const PlotSeries& s, const Frame& f) {
  svg << "<g class=\"series\" data-series=\"" << xml_escape(s.key) << "\">\n<polyline fill=\"none\" stroke=\"" << s.color
      << "\" stroke-width=\"2\" points=\"";
  for (size_t i = 0; i < s.points.size(); ++i)
    svg << (i ? " " : "") << num(f.x(s.points[i].first)) << "," << num(f.y(s.points[i].second));
  svg << "\"/>\n";
  for (size_t i = 0; i < s.points.size(); ++i)
    svg << marker_svg(s, f.x(s.points[i].first), f.y(s.points[i].second), i < s.tips.size() ? s.tips[i] : "") << "\n";
  svg << "</g>\n";
}

void write_legend(std::ostringstream& svg, const std::vector<PlotSeries>& series) {
  const double lx = kRight + 30;
  svg << "<g font-size=\"13\">\n<rect x=\"" << num(lx - 10) << "\" y=\"" << num(kTop - 10)
      << "\" width=\"170\" height=\"" << num(22.0 * static_cast<double>(series.size()) + 12)
      << "\" fill=\"white\" stroke=\"#bbb\"/>\n";
  for (size_t i = 0; i < series.size(); ++i) {
    const double y = kTop + 6 + 22.0 * static_cast<double>(i);
    svg << "<line x1=\"" << num(lx) << "\" y1=\"" << num(y) << "\" x2=\"" << num(lx + 30) << "\" y2=\"" << num(y)
        << "\" stroke=\"" << series[i].color << "\" stroke-width=\"2\"/>" << marker_svg(series[i], lx + 15, y, "")
        << "<text x=\"" << num(lx + 40) << "\" y=\"" << num(y + 4.5) << "\">" << xml_escape(series[i].name)
        << "</text>\n";
  }
  svg << "</g>\n";
}

}  // namespace

std::string render_line_plot(const std::string& title, const PlotAxes& axes, const std::vector<PlotSeries>& series) {
  const Frame frame(axes);
  std::ostringstream svg;
  svg << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << kWidth << "\" height=\"" << kHeight
      << "\" viewBox=\"0 0 " << kWidth << " " << kHeight << "\" font-family=\"Helvetica, Arial, sans-serif\">\n"
      << "<rect x=\"0\" y=\"0\" width=\"" << kWidth << "\" height=\"" << kHeight << "\" fill=\"white\"/>\n"
      << "<text x=\"" << num((kLeft + kRight) / 2) << "\" y=\"30\" text-anchor=\"middle\" font-size=\"16\" "
      << "font-weight=\"bold\">" << xml_escape(title) << "</text>\n";
  write_axes(svg, axes, frame);
  for (const PlotSeries& s : series) write_series(svg, s, frame);
  write_legend(svg, series);
  svg << "</svg>\n";
  return svg.str();
}

}  // namespace unipelt

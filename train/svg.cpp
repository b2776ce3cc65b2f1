#include "train/svg.h"

#include <algorithm>
#include <cmath>

#include "train/text.h"

namespace unipelt {

namespace {
std::string num(double v) { return format_fixed(v, 1); }
}  // namespace

std::vector<double> nice_ticks(double& lo, double& hi, int count) {
  if (!(hi > lo)) {  // a flat series: open a small window around it
    const double pad = std::max(std::fabs(lo) * 0.05, 1e-3);
    lo -= pad;
    hi += pad;
  }
  const double raw = (hi - lo) / std::max(count, 1);
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  double step = magnitude;
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (m * magnitude >= raw) {
      step = m * magnitude;
      break;
    }
  lo = std::floor(lo / step + 1e-9) * step;
  hi = std::ceil(hi / step - 1e-9) * step;
  std::vector<double> ticks;
  for (double t = lo; t <= hi + step * 1e-6; t += step) ticks.push_back(std::fabs(t) < step * 1e-9 ? 0.0 : t);
  return ticks;
}

SvgDocument::SvgDocument(double width, double height, const std::string& title) {
  out_ << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
       << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\"" << height
       << "\" viewBox=\"0 0 " << width << " " << height << "\" font-family=\"Helvetica, Arial, sans-serif\">\n"
       << "<rect x=\"0\" y=\"0\" width=\"" << width << "\" height=\"" << height << "\" fill=\"white\"/>\n";
  text(width / 2, 28, title, "middle", 16, "font-weight=\"bold\"");
}

void SvgDocument::line(double x1, double y1, double x2, double y2, const std::string& stroke, double width,
                       const std::string& extra) {
  out_ << "<line x1=\"" << num(x1) << "\" y1=\"" << num(y1) << "\" x2=\"" << num(x2) << "\" y2=\"" << num(y2)
       << "\" stroke=\"" << stroke << "\" stroke-width=\"" << width << "\"" << (extra.empty() ? "" : " " + extra)
       << "/>\n";
}

void SvgDocument::polyline(const std::vector<std::pair<double, double>>& points, const std::string& stroke,
                           double width) {
  out_ << "<polyline fill=\"none\" stroke=\"" << stroke << "\" stroke-width=\"" << width
       << "\" stroke-linejoin=\"round\" points=\"";
  for (size_t i = 0; i < points.size(); ++i) out_ << (i ? " " : "") << num(points[i].first) << "," << num(points[i].second);
  out_ << "\"/>\n";
}

void SvgDocument::rect(double x, double y, double w, double h, const std::string& fill, const std::string& tooltip,
                       const std::string& stroke) {
  out_ << "<rect x=\"" << num(x) << "\" y=\"" << num(y) << "\" width=\"" << num(std::max(w, 0.0)) << "\" height=\""
       << num(std::max(h, 0.0)) << "\" fill=\"" << fill << "\"" << (stroke.empty() ? "" : " stroke=\"" + stroke + "\"")
       << ">";
  if (!tooltip.empty()) out_ << "<title>" << xml_escape(tooltip) << "</title>";
  out_ << "</rect>\n";
}

void SvgDocument::circle(double x, double y, double r, const std::string& fill, const std::string& tooltip) {
  out_ << "<circle cx=\"" << num(x) << "\" cy=\"" << num(y) << "\" r=\"" << num(r) << "\" fill=\"" << fill
       << "\" stroke=\"white\" stroke-width=\"1\">";
  if (!tooltip.empty()) out_ << "<title>" << xml_escape(tooltip) << "</title>";
  out_ << "</circle>\n";
}

void SvgDocument::text(double x, double y, const std::string& s, const std::string& anchor, int size,
                       const std::string& extra) {
  out_ << "<text x=\"" << num(x) << "\" y=\"" << num(y) << "\" text-anchor=\"" << anchor << "\" font-size=\"" << size
       << "\"" << (extra.empty() ? "" : " " + extra) << ">" << xml_escape(s) << "</text>\n";
}

void SvgDocument::axes(const SvgScale& x, const SvgScale& y, const std::vector<double>& y_ticks,
                       const std::vector<std::pair<double, std::string>>& x_ticks, const std::string& x_title,
                       const std::string& y_title, int y_decimals) {
  const double left = x.from, right = x.to, bottom = y.from, top = y.to;
  for (double t : y_ticks) {
    line(left, y(t), right, y(t), "#e3e3e3");
    text(left - 6, y(t) + 4, format_fixed(t, y_decimals), "end", 11, "fill=\"#333\"");
  }
  for (const auto& [v, label] : x_ticks) {
    line(x(v), bottom, x(v), bottom + 4, "#333");
    text(x(v), bottom + 17, label, "middle", 11, "fill=\"#333\"");
  }
  line(left, bottom, right, bottom, "#333", 1.5);
  line(left, top, left, bottom, "#333", 1.5);
  text((left + right) / 2, bottom + 36, x_title, "middle", 13);
  const double mid = (top + bottom) / 2;
  text(left - 48, mid, y_title, "middle", 13, "transform=\"rotate(-90 " + num(left - 48) + " " + num(mid) + ")\"");
}

std::string SvgDocument::finish() {
  out_ << "</svg>\n";
  return out_.str();
}

}  // namespace unipelt

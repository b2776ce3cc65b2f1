// A few SVG drawing pieces shared by the training-curve and sweep figures (train/plot.cpp): a document
// with a white background and a title, linear axes with round tick values, and the primitives the
// figures use. Coordinates are pixels from the top left; every number is printed with one decimal.
#pragma once

#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace unipelt {

// A linear map from data values [lo, hi] to pixels [from, to] (to < from for a y axis pointing up).
struct SvgScale {
  double lo = 0, hi = 1, from = 0, to = 1;
  double operator()(double v) const { return from + (to - from) * (hi > lo ? (v - lo) / (hi - lo) : 0.5); }
};

// About `count` round tick values (1, 2 or 5 × a power of ten apart) covering [lo, hi]; lo and hi are
// widened to the outer ticks.
std::vector<double> nice_ticks(double& lo, double& hi, int count = 5);

class SvgDocument {
 public:
  SvgDocument(double width, double height, const std::string& title);

  void line(double x1, double y1, double x2, double y2, const std::string& stroke, double width = 1,
            const std::string& extra = "");
  void polyline(const std::vector<std::pair<double, double>>& points, const std::string& stroke, double width = 2);
  void rect(double x, double y, double w, double h, const std::string& fill, const std::string& tooltip = "",
            const std::string& stroke = "");
  void circle(double x, double y, double r, const std::string& fill, const std::string& tooltip = "");
  void text(double x, double y, const std::string& s, const std::string& anchor = "middle", int size = 12,
            const std::string& extra = "");
  // A frame of axes at x = left.x(lo) and y = bottom, horizontal grid lines and labelled ticks on y,
  // labelled ticks on x at `x_ticks` (value, label), axis titles.
  void axes(const SvgScale& x, const SvgScale& y, const std::vector<double>& y_ticks,
            const std::vector<std::pair<double, std::string>>& x_ticks, const std::string& x_title,
            const std::string& y_title, int y_decimals);
  void raw(const std::string& svg) { out_ << svg; }
  std::string finish();  // closes the document and returns it

 private:
  std::ostringstream out_;
};

}  // namespace unipelt

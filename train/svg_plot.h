// A small SVG line-plot writer: a titled frame with axes, grid lines and ticks, one polyline with
// markers per series, and a legend on the right. Used by the gate plot (gate_plot.cpp); values are in
// data units and the plot maps them onto its fixed 780 x 440 canvas. The output is self-contained
// (opens in a browser, rasterises with rsvg-convert) and every marker carries a <title> tooltip.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace unipelt {

enum class Marker { Circle, Square, Triangle, Diamond };

struct PlotSeries {
  std::string name;     // the legend text
  std::string key;      // written as data-series="key" on the series' <g>, for tools and tests
  std::string color;    // "#1f77b4"
  Marker marker = Marker::Circle;
  std::vector<std::pair<double, double>> points;  // (x, y) in data units
  std::vector<std::string> tips;                  // one tooltip per point (may be empty)
};

struct PlotAxes {
  double x_min = 0, x_max = 1, y_min = 0, y_max = 1;  // y values are clamped to [y_min, y_max]
  std::string x_label, y_label;
  std::vector<std::pair<double, std::string>> x_ticks, y_ticks;  // position (data units), label
  double x_pad = 16;  // pixels between the axis ends and the first and last x position
};

std::string render_line_plot(const std::string& title, const PlotAxes& axes, const std::vector<PlotSeries>& series);

}  // namespace unipelt

// Training curves of runs and the sweep figure (plot.h), drawn with train/svg.h.
#include "train/plot.h"

#include <algorithm>
#include <cmath>
#include <fstream>

#include "datasets/glue.h"
#include "nn/file_io.h"
#include "train/svg.h"
#include "train/text.h"

namespace unipelt {

namespace fs = std::filesystem;

namespace {

// The tab10 palette (matplotlib's default), one colour per method.
const char* kColors[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                         "#bcbd22", "#17becf"};
constexpr const char* kBest = "#2ca02c";
constexpr const char* kStop = "#d62728";

std::vector<nlohmann::json> read_jsonl(const fs::path& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(path.string() + ": cannot open (the run has not finished an epoch yet?)");
  std::vector<nlohmann::json> lines;
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    if (line.empty()) continue;
    try {
      lines.push_back(nlohmann::json::parse(line));
    } catch (const nlohmann::json::exception& e) {
      throw std::runtime_error(path.string() + ":" + std::to_string(n) + ": not valid JSON (" + e.what() + ")");
    }
  }
  return lines;
}

// Whole-number x ticks in [first, last]: every one up to 12 of them, else round values (nice_ticks).
std::vector<std::pair<double, std::string>> integer_ticks(int64_t first, int64_t last) {
  std::vector<std::pair<double, std::string>> ticks;
  if (last - first < 12) {
    for (int64_t v = first; v <= last; ++v) ticks.emplace_back(static_cast<double>(v), std::to_string(v));
    return ticks;
  }
  double lo = static_cast<double>(first), hi = static_cast<double>(last);
  for (double t : nice_ticks(lo, hi, 8))
    if (t >= static_cast<double>(first) && t <= static_cast<double>(last) && t == std::floor(t))
      ticks.emplace_back(t, std::to_string(static_cast<int64_t>(t)));
  return ticks;
}

}  // namespace

TrainingCurve read_training_curve(const fs::path& run_dir) {
  const nlohmann::json config = read_json_file(run_dir / "config.json", "(not a run directory?)");
  TrainingCurve c;
  try {
    const TaskInfo& task = task_info(config.at("task").get<std::string>());
    const size_t k = config.at("k").get<size_t>();
    c.metric = task.metric;
    c.patience = config.value("patience", 0);
    c.title = task.name + "  " + method_display_name(config.at("pelt").at("method").get<std::string>()) + "  K=" +
              (k ? std::to_string(k) : std::string("all")) + "  data seed " +
              std::to_string(config.at("data_seed").get<uint64_t>());
    for (const nlohmann::json& line : read_jsonl(run_dir / "metrics.jsonl")) {
      c.epoch_steps.push_back(line.at("step").get<int64_t>());
      c.epoch_losses.push_back(line.at("train_loss").get<double>());
      c.dev.push_back(line.at("dev").at("main").get<double>());
      if (line.contains("step_losses"))
        for (const auto& v : line.at("step_losses")) c.step_losses.push_back(v.get<double>());
    }
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(run_dir.string() + ": unexpected run file contents (" + e.what() + ")");
  }
  if (c.step_losses.size() != static_cast<size_t>(c.epoch_steps.empty() ? 0 : c.epoch_steps.back()))
    c.step_losses.clear();  // a run resumed from before step losses were recorded: per-epoch means only
  // The trainer keeps the first epoch with the highest dev metric (strictly better replaces it).
  for (size_t i = 0; i < c.dev.size(); ++i)
    if (c.best_epoch == 0 || c.dev[i] > c.dev[static_cast<size_t>(c.best_epoch - 1)]) c.best_epoch = static_cast<int>(i + 1);
  if (fs::exists(run_dir / "results.json")) {
    const nlohmann::json results = read_json_file(run_dir / "results.json");
    c.finished = true;
    c.best_epoch = results.value("best_epoch", c.best_epoch);
    c.early_stopped = results.value("early_stopped", false);
    c.test = results.at("test").value("main", 0.0);
  }
  return c;
}

std::string render_training_svg(const TrainingCurve& c) {
  const double width = 820, left = 90, right = 720;
  const double loss_top = 70, loss_bottom = 300, dev_top = 380, dev_bottom = 610;
  SvgDocument svg(width, 690, c.title);
  const int64_t steps = c.epoch_steps.empty() ? 1 : std::max<int64_t>(c.epoch_steps.back(), 1);
  const int epochs = static_cast<int>(c.dev.size());

  // Top: the loss of every step, the epoch means as dots at each epoch's last step.
  std::vector<double> losses = c.step_losses.empty() ? c.epoch_losses : c.step_losses;
  double lo = losses.empty() ? 0 : *std::min_element(losses.begin(), losses.end());
  double hi = losses.empty() ? 1 : *std::max_element(losses.begin(), losses.end());
  lo = std::min(lo, 0.0);
  const std::vector<double> loss_ticks = nice_ticks(lo, hi);
  const SvgScale sx{0, static_cast<double>(steps), left, right}, ly{lo, hi, loss_bottom, loss_top};
  svg.axes(sx, ly, loss_ticks, integer_ticks(0, steps), "Training step", "Training loss", 2);
  std::vector<std::pair<double, double>> points;
  for (size_t i = 0; i < c.step_losses.size(); ++i) points.emplace_back(sx(static_cast<double>(i + 1)), ly(c.step_losses[i]));
  if (!points.empty()) svg.polyline(points, "#9ecae1", 1.2);
  points.clear();
  for (int e = 0; e < epochs; ++e) points.emplace_back(sx(static_cast<double>(c.epoch_steps[e])), ly(c.epoch_losses[e]));
  svg.polyline(points, kColors[0], 2);
  for (int e = 0; e < epochs; ++e)
    svg.circle(points[e].first, points[e].second, 3.5, kColors[0],
               "epoch " + std::to_string(e + 1) + ": mean loss " + format_fixed(c.epoch_losses[e], 4));
  svg.text(right, loss_top - 8,
           c.step_losses.empty() ? "dots: mean loss of each epoch (no per-step losses recorded)"
                                 : "light: every step; dark: mean of each epoch",
           "end", 11, "fill=\"#555\"");

  // Bottom: the dev metric of every epoch.
  double dlo = c.dev.empty() ? 0 : *std::min_element(c.dev.begin(), c.dev.end());
  double dhi = c.dev.empty() ? 1 : *std::max_element(c.dev.begin(), c.dev.end());
  const std::vector<double> dev_ticks = nice_ticks(dlo, dhi);
  const SvgScale ex{0.5, epochs + 0.5, left, right}, dy{dlo, dhi, dev_bottom, dev_top};
  svg.axes(ex, dy, dev_ticks, integer_ticks(1, std::max(epochs, 1)), "Epoch", "Dev " + c.metric, 3);
  points.clear();
  for (int e = 0; e < epochs; ++e) points.emplace_back(ex(e + 1), dy(c.dev[e]));
  svg.polyline(points, kColors[1], 2);
  for (int e = 0; e < epochs; ++e)
    svg.circle(points[e].first, points[e].second, 3.5, kColors[1],
               "epoch " + std::to_string(e + 1) + ": dev " + c.metric + " " + format_fixed(c.dev[e], 4));

  // The best epoch in both panels; the early-stopping point.
  if (c.best_epoch >= 1 && c.best_epoch <= epochs) {
    const int b = c.best_epoch - 1;
    svg.line(sx(static_cast<double>(c.epoch_steps[b])), loss_top, sx(static_cast<double>(c.epoch_steps[b])), loss_bottom,
             kBest, 1.5, "stroke-dasharray=\"5,4\"");
    svg.line(ex(c.best_epoch), dev_top, ex(c.best_epoch), dev_bottom, kBest, 1.5, "stroke-dasharray=\"5,4\"");
    svg.circle(ex(c.best_epoch), dy(c.dev[b]), 7, kBest, "best dev epoch");
    const bool right_half = ex(c.best_epoch) > (left + right) / 2;  // keep the label inside the figure
    svg.text(ex(c.best_epoch) + (right_half ? -10 : 10), dy(c.dev[b]) - 10,
             "best: epoch " + std::to_string(c.best_epoch) + ", dev " + format_fixed(c.dev[b], 4),
             right_half ? "end" : "start", 12, "fill=\"" + std::string(kBest) + "\"");
  }
  if (c.early_stopped && epochs > 0) {
    svg.line(ex(epochs), dev_top, ex(epochs), dev_bottom, kStop, 1.5, "stroke-dasharray=\"2,3\"");
    svg.text(right, dev_bottom + 56,  // below the axis title, clear of the curves and the best-epoch line
             "dotted: early stop after epoch " + std::to_string(epochs) + " (" + std::to_string(c.patience) +
                 (c.patience == 1 ? " epoch" : " epochs") + " without improvement)",
             "end", 11, "fill=\"" + std::string(kStop) + "\"");
  }
  if (c.finished)
    svg.text(right, dev_top - 8, "test " + c.metric + " of the best epoch: " + format_fixed(c.test, 4), "end", 12);
  return svg.finish();
}

std::string render_sweep_figure(const std::string& task, const std::vector<ReportTable>& tables) {
  std::vector<const ReportTable*> groups;  // the K values with at least one finished cell of this task
  std::vector<std::string> methods;
  double lo = 0, hi = 0;
  for (const ReportTable& t : tables) {
    bool any = false;
    for (const std::string& m : t.methods)
      if (auto it = t.cells.find({m, task}); it != t.cells.end() && it->second.n > 0) {
        any = true;
        if (std::find(methods.begin(), methods.end(), m) == methods.end()) methods.push_back(m);
        lo = std::min(lo, it->second.mean - it->second.std);
        hi = std::max(hi, it->second.mean + it->second.std);
      }
    if (any) groups.push_back(&t);
  }
  if (groups.empty()) return "";
  std::sort(methods.begin(), methods.end(), [](const std::string& a, const std::string& b) {
    const auto& order = paper_method_order();
    auto rank = [&](const std::string& m) { return std::find(order.begin(), order.end(), m) - order.begin(); };
    return rank(a) != rank(b) ? rank(a) < rank(b) : a < b;
  });
  const double left = 80, right = 620, top = 60, bottom = 380;
  SvgDocument svg(860, 450, task + ": test " + task_info(task).metric + " ×100 by method and K (mean ± std over data seeds)");
  const std::vector<double> ticks = nice_ticks(lo, hi);
  const SvgScale gx{0, static_cast<double>(groups.size()), left, right}, y{lo, hi, bottom, top};
  std::vector<std::pair<double, std::string>> labels;
  for (size_t g = 0; g < groups.size(); ++g)
    labels.emplace_back(g + 0.5, "K = " + (groups[g]->k ? std::to_string(groups[g]->k) : std::string("all")));
  svg.axes(gx, y, ticks, labels, "Training examples per task (K)", "Test " + task_info(task).metric + " ×100", 0);
  const double band = (right - left) / static_cast<double>(groups.size()), bar = band * 0.8 / static_cast<double>(methods.size());
  for (size_t g = 0; g < groups.size(); ++g)
    for (size_t m = 0; m < methods.size(); ++m) {
      auto it = groups[g]->cells.find({methods[m], task});
      if (it == groups[g]->cells.end() || it->second.n == 0) continue;
      const CellStats& s = it->second;
      const double x = left + band * (static_cast<double>(g) + 0.1) + bar * static_cast<double>(m);
      const double y0 = y(std::max(lo, 0.0)), ym = y(s.mean);
      svg.rect(x, std::min(y0, ym), bar * 0.9, std::fabs(y0 - ym), kColors[m % 10],
               method_display_name(methods[m]) + ": " + format_fixed(s.mean, 2) + " ± " + format_fixed(s.std, 2) +
                   " (n=" + std::to_string(s.n) + ")");
      const double cx = x + bar * 0.45;  // error bar: ± one std, with caps
      svg.line(cx, y(s.mean - s.std), cx, y(s.mean + s.std), "#222", 1.2);
      for (double v : {s.mean - s.std, s.mean + s.std}) svg.line(cx - 3, y(v), cx + 3, y(v), "#222", 1.2);
    }
  for (size_t m = 0; m < methods.size(); ++m) {  // legend
    const double ly = top + 8 + 22.0 * static_cast<double>(m);
    svg.rect(right + 30, ly - 10, 14, 14, kColors[m % 10]);
    svg.text(right + 52, ly + 2, method_display_name(methods[m]), "start", 13);
  }
  return svg.finish();
}

std::string write_sweep_report(const fs::path& report_path, const std::vector<RunRecord>& runs, ReportOptions options,
                               std::vector<fs::path>* figures) {
  const std::vector<ReportTable> tables = build_report_tables(runs, options.std_kind);
  std::vector<std::string> tasks;
  for (const ReportTable& t : tables)
    for (const std::string& task : t.tasks)
      if (std::find(tasks.begin(), tasks.end(), task) == tasks.end()) tasks.push_back(task);
  const fs::path dir = report_path.has_parent_path() ? report_path.parent_path() : fs::path(".");
  for (const std::string& task : tasks) {
    const std::string svg = render_sweep_figure(task, tables);
    if (svg.empty()) continue;
    const std::string name = report_path.stem().string() + "-" + task + ".svg";
    write_file_atomically(dir / name, svg);
    options.figures.emplace_back(task, name);
    if (figures) figures->push_back(dir / name);
  }
  const std::string markdown = render_report_markdown(runs, options);
  write_file_atomically(report_path, markdown);
  return markdown;
}

}  // namespace unipelt

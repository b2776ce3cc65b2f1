// The sweep report: finished runs collected from a directory tree, grouped into tables laid out like the
// paper's Table 1 (tasks as columns, methods as rows, mean (std) over data seeds, an Avg column).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <set>
#include <sstream>

#include "datasets/glue.h"
#include "nn/file_io.h"
#include "train/report.h"
#include "train/text.h"

namespace unipelt {

namespace fs = std::filesystem;

// ---------------------------------------------------------------------------------------------
// The report
// ---------------------------------------------------------------------------------------------

std::optional<RunRecord> read_run_record(const fs::path& dir) {
  const bool has_results = fs::exists(dir / "results.json"), has_config = fs::exists(dir / "config.json");
  if (!has_results && !has_config) return std::nullopt;
  RunRecord r;
  r.dir = dir;
  // Integers go through json_integer: a float or an out-of-range value in a hand-edited file is an
  // error naming the file, not a cast (undefined behaviour for "k": 1e300) or a wrapped number.
  const fs::path file = dir / (has_results ? "results.json" : "config.json");
  const nlohmann::json j = read_json_file(file);
  try {
    r.task = task_info(j.at("task").get<std::string>()).name;
    r.method = has_results ? j.at("method") : j.at("pelt").at("method");
    r.k = json_integer<size_t>(j, "k");
    r.data_seed = json_integer<uint64_t>(j, "data_seed");
    r.seed = json_integer<uint64_t>(j, "seed", 0);
    if (has_results) {
      r.test = j.at("test").get<std::map<std::string, double>>();
      r.best_dev = j.value("best_dev", std::map<std::string, double>{});
      r.wall_seconds = j.value("wall_seconds", 0.0);
      r.epochs_run = json_integer<int>(j, "epochs_run", 0);
      r.best_epoch = json_integer<int>(j, "best_epoch", 0);
      r.finished = true;
    }
  } catch (const std::exception& e) {
    throw std::runtime_error(file.string() + ": " + e.what());
  }
  return r;
}

std::vector<RunRecord> collect_runs(const fs::path& root) {
  std::vector<fs::path> dirs;
  if (!fs::is_directory(root)) throw std::runtime_error(root.string() + ": no such directory");
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator(); ++it) {
    if (!it->is_directory()) continue;
    const fs::path d = it->path();
    if (fs::exists(d / "results.json") || fs::exists(d / "config.json")) {
      dirs.push_back(d);
      it.disable_recursion_pending();  // best/ and state/ belong to the run
    }
  }
  std::sort(dirs.begin(), dirs.end());
  std::vector<RunRecord> out;
  for (const auto& d : dirs)
    if (auto r = read_run_record(d)) out.push_back(std::move(*r));
  return out;
}

const std::vector<std::string>& paper_task_order() {
  static const std::vector<std::string> order = {"SST-2", "MRPC", "CoLA", "RTE", "QNLI", "STS-B", "MNLI", "QQP"};
  return order;
}

const std::vector<std::string>& paper_method_order() {
  static const std::vector<std::string> order = {"finetune", "bitfit",     "adapter",     "prefix",
                                                 "lora",     "unipelt-ap", "unipelt-apl", "unipelt-nogate"};
  return order;
}

std::string method_display_name(const std::string& method) {
  static const std::map<std::string, std::string> names = {
      {"finetune", "Fine-tuning"},       {"bitfit", "BitFit"},           {"adapter", "Adapter"},
      {"prefix", "Prefix-tuning"},       {"lora", "LoRA"},               {"unipelt-ap", "UniPELT (AP)"},
      {"unipelt-apl", "UniPELT (APL)"},  {"unipelt-nogate", "UniPELT-NoGate"}};
  auto it = names.find(method);
  return it == names.end() ? method : it->second;
}

CellStats cell_stats(const std::vector<double>& values, StdKind kind) {
  CellStats s;
  s.n = values.size();
  if (values.empty()) return s;
  s.mean = std::accumulate(values.begin(), values.end(), 0.0) / static_cast<double>(s.n);
  if (s.n < 2) return s;
  double ss = 0.0;
  for (double v : values) ss += (v - s.mean) * (v - s.mean);
  s.std = std::sqrt(ss / static_cast<double>(kind == StdKind::Sample ? s.n - 1 : s.n));
  return s;
}

std::optional<double> ReportTable::average(const std::string& method) const {
  if (tasks.empty()) return std::nullopt;
  double sum = 0.0;
  for (const auto& t : tasks) {
    auto it = cells.find({method, t});
    if (it == cells.end() || it->second.n == 0) return std::nullopt;
    sum += it->second.mean;
  }
  return sum / static_cast<double>(tasks.size());
}

namespace {

// Position of `name` in `order`, names outside it after (by `fallback` rank, then by name).
template <class Rank>
void sort_by_order(std::vector<std::string>& names, const std::vector<std::string>& order, Rank fallback) {
  auto key = [&](const std::string& n) {
    auto it = std::find(order.begin(), order.end(), n);
    return std::make_tuple(it == order.end() ? order.size() : static_cast<size_t>(it - order.begin()), fallback(n), n);
  };
  std::sort(names.begin(), names.end(), [&](const std::string& a, const std::string& b) { return key(a) < key(b); });
}

}  // namespace

std::vector<ReportTable> build_report_tables(const std::vector<RunRecord>& runs, StdKind kind) {
  std::vector<size_t> ks;
  for (const auto& r : runs)
    if (std::find(ks.begin(), ks.end(), r.k) == ks.end()) ks.push_back(r.k);
  std::sort(ks.begin(), ks.end(), [](size_t a, size_t b) {  // 0 ("all") last
    return (a == 0 ? SIZE_MAX : a) < (b == 0 ? SIZE_MAX : b);
  });
  auto glue_rank = [](const std::string& t) {
    const auto& all = glue_task_names();
    return static_cast<size_t>(std::find(all.begin(), all.end(), t) - all.begin());
  };
  std::vector<ReportTable> tables;
  for (size_t k : ks) {
    ReportTable t;
    t.k = k;
    std::map<std::pair<std::string, std::string>, std::vector<double>> values;
    for (const auto& r : runs) {
      if (r.k != k) continue;
      if (std::find(t.tasks.begin(), t.tasks.end(), r.task) == t.tasks.end()) t.tasks.push_back(r.task);
      if (std::find(t.methods.begin(), t.methods.end(), r.method) == t.methods.end()) t.methods.push_back(r.method);
      if (!r.finished || !r.test.count("main")) {
        t.unfinished.push_back(r.dir.string());
        continue;
      }
      values[{r.method, r.task}].push_back(100.0 * r.test.at("main"));
    }
    sort_by_order(t.tasks, paper_task_order(), glue_rank);
    sort_by_order(t.methods, paper_method_order(), [](const std::string&) { return 0; });
    for (const auto& [key, v] : values) {
      t.cells[key] = cell_stats(v, kind);
      t.max_seeds = std::max(t.max_seeds, v.size());
    }
    tables.push_back(std::move(t));
  }
  return tables;
}

std::string render_report_markdown(const std::vector<RunRecord>& runs, const ReportOptions& options) {
  const std::vector<ReportTable> tables = build_report_tables(runs, options.std_kind);
  std::ostringstream md;
  md << "# " << options.title << "\n\n";
  md << "Each cell: the task's main test metric ×100 (the protocol's test set is the GLUE dev set), mean (std) over "
        "data seeds; std is the "
     << (options.std_kind == StdKind::Sample ? "sample standard deviation (divides by n − 1)"
                                             : "population standard deviation (divides by n, as numpy.std)")
     << ", 0.00 with one seed. Avg: the mean of the row's task means (– when a task is missing). Layout as "
        "Table 1 of Mao et al. (2022).\n\n";
  if (!options.commands.empty()) {
    md << "Command" << (options.commands.size() > 1 ? "s" : "") << ":\n\n```sh\n";
    for (const auto& c : options.commands) md << c << "\n";
    md << "```\n\n";
  }
  if (tables.empty()) md << "No runs found.\n";
  std::set<std::string> all_tasks;
  for (const ReportTable& t : tables) {
    md << "## K = " << (t.k ? std::to_string(t.k) : std::string("all")) << "\n\n| Method |";
    for (const auto& task : t.tasks) {
      md << " " << task << " |";
      all_tasks.insert(task);
    }
    md << " Avg |\n|---|";
    for (size_t i = 0; i <= t.tasks.size(); ++i) md << "---:|";
    md << "\n";
    bool partial = false;
    for (const auto& method : t.methods) {
      md << "| " << method_display_name(method) << " |";
      for (const auto& task : t.tasks) {
        auto it = t.cells.find({method, task});
        if (it == t.cells.end()) {
          md << " – |";
          continue;
        }
        md << " " << format_fixed(it->second.mean, 2) << " (" << format_fixed(it->second.std, 2) << ")";
        if (it->second.n < t.max_seeds) {
          md << " [n=" << it->second.n << "]";
          partial = true;
        }
        md << " |";
      }
      const auto avg = t.average(method);
      md << " " << (avg ? format_fixed(*avg, 2) : std::string("–")) << " |\n";
    }
    md << "\n";
    size_t finished = 0;
    for (const auto& [key, c] : t.cells) finished += c.n;
    md << "Finished runs: " << finished << "; data seeds per cell: " << t.max_seeds;
    if (partial) md << " ([n=…]: a cell with fewer finished seeds)";
    md << ".\n";
    if (!t.unfinished.empty()) {
      md << "\nUnfinished runs (no results.json yet; `unipelt sweep` resumes them):\n\n";
      for (const auto& d : t.unfinished) md << "- `" << d << "`\n";
    }
    md << "\n";
  }
  if (!all_tasks.empty()) {
    md << "Metrics: ";
    bool first = true;
    for (const auto& task : paper_task_order())
      if (all_tasks.count(task)) {
        md << (first ? "" : ", ") << task << " " << task_info(task).metric;
        first = false;
      }
    for (const auto& task : all_tasks)
      if (std::find(paper_task_order().begin(), paper_task_order().end(), task) == paper_task_order().end()) {
        md << (first ? "" : ", ") << task << " " << task_info(task).metric;
        first = false;
      }
    md << (all_tasks.count("MNLI") ? " (MNLI: matched).\n" : ".\n");
  }
  if (!options.figures.empty()) {
    md << "\n## Figures\n\nTest metric ×100 of each method at each K; bars are the mean over data seeds, error bars "
          "± one standard deviation (the std of the tables).\n\n";
    for (const auto& [task, file] : options.figures) md << "![" << task << ": method × K](" << file << ")\n\n";
  }
  return md.str();
}

}  // namespace unipelt

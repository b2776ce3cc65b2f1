// Reading runs back: evaluation and prediction from RUN/best, the gate plot, and the Table-1 report.
#include "pelt/report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <numeric>
#include <set>
#include <sstream>

#include "autograd/tape.h"
#include "nn/bert_loader.h"
#include "pelt/checkpoint.h"

namespace unipelt {

namespace fs = std::filesystem;

namespace {

nlohmann::json read_json_file(const fs::path& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(path.string() + ": cannot open");
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(path.string() + ": not valid JSON (" + e.what() + ")");
  }
}

std::string fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::vector<std::string> split_tabs(const std::string& line) {
  std::vector<std::string> fields;
  size_t start = 0;
  while (true) {
    const size_t tab = line.find('\t', start);
    fields.push_back(line.substr(start, tab == std::string::npos ? std::string::npos : tab - start));
    if (tab == std::string::npos) break;
    start = tab + 1;
  }
  return fields;
}

std::string trim(const std::string& s) {
  const size_t a = s.find_first_not_of(" \t");
  if (a == std::string::npos) return "";
  return s.substr(a, s.find_last_not_of(" \t") - a + 1);
}

std::string xml_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Saved runs
// ---------------------------------------------------------------------------------------------

LoadedRun load_run(const fs::path& run_dir, const RunOverrides& overrides) {
  LoadedRun run;
  run.dir = run_dir;
  const fs::path config_path = run_dir / "config.json";
  if (!fs::exists(config_path))
    throw std::runtime_error(run_dir.string() + ": no config.json (not a run directory written by `unipelt train`)");
  run.config = TrainConfig::from_json(read_json_file(config_path));
  if (!overrides.data_dir.empty()) run.config.data_dir = overrides.data_dir;
  if (!overrides.model_dir.empty()) run.config.model_dir = overrides.model_dir;
  if (!overrides.device.empty()) run.config.device = overrides.device;
  const fs::path best = run_dir / "best";
  if (!fs::exists(best / "pelt_config.json"))
    throw std::runtime_error(run_dir.string() + ": no best/ checkpoint yet (the run stopped before finishing its "
                                                "first epoch); resume it with `unipelt train ... --resume`");
  const TaskInfo& task = task_info(run.config.task);
  BertLoadOptions load{task.num_labels, run.config.dtype == "f64" ? DType::F64 : DType::F32,
                       run.config.device == "cuda" ? Device::CUDA : Device::CPU, run.config.seed};
  run.base = load_bert(run.config.model_dir, load);
  run.model = load_pelt_checkpoint(best, *run.base);
  run.tokenizer = std::make_unique<WordPieceTokenizer>(
      WordPieceTokenizer::from_vocab_file((fs::path(run.config.model_dir) / "vocab.txt").string()));
  // As the trainer: gated `all` pooling sees the official code's padding to max_len.
  run.pad_to = run.config.pelt.gate_pool == GatePool::All && run.config.pelt.gated ? run.config.max_len : 0;
  return run;
}

std::vector<EncodedExample> run_examples(const LoadedRun& run, const std::string& split) {
  const TaskInfo& task = task_info(run.config.task);
  if (split != "train" && split != "dev" && split != "test")
    throw std::invalid_argument("split must be train, dev or test, got '" + split + "'");
  Splits splits = make_protocol_splits(task.name, task_directory(run.config.data_dir, task.name), run.config.k,
                                       run.config.data_seed);
  const std::vector<Example>& examples = split == "train" ? splits.train : split == "dev" ? splits.dev : splits.test;
  return encode_examples(examples, *run.tokenizer, run.config.max_len, task.is_pair);
}

EvalResult evaluate_run(LoadedRun& run, const std::vector<EncodedExample>& data) {
  return evaluate(*run.model, task_info(run.config.task).name, data, run.config.eval_batch_size, run.pad_to);
}

// ---------------------------------------------------------------------------------------------
// Prediction
// ---------------------------------------------------------------------------------------------

std::vector<Example> read_predict_inputs(const fs::path& path, bool pair) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw DataError(path.string() + ": cannot open");
  static const std::set<std::string> single_names = {"sentence", "text", "text_a"};
  static const std::vector<std::pair<std::string, std::string>> pair_names = {
      {"sentence1", "sentence2"}, {"text_a", "text_b"}, {"question", "sentence"},
      {"question1", "question2"}, {"#1 string", "#2 string"}};
  const size_t plain_columns = pair ? 2 : 1;
  std::vector<Example> out;
  std::string line;
  int line_no = 0;
  size_t columns = plain_columns;
  int col_a = 0, col_b = pair ? 1 : -1;
  bool header = false;
  auto where = [&](int n) { return path.string() + ":" + std::to_string(n) + ": "; };
  while (std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line_no == 1 && line.size() >= 3 && line.compare(0, 3, "\xEF\xBB\xBF") == 0) line.erase(0, 3);  // BOM
    if (trim(line).empty())
      throw DataError(where(line_no) + "blank line (every line must hold " +
                      (pair ? std::string("two tab-separated texts") : std::string("one text")) + ")");
    std::vector<std::string> fields = split_tabs(line);
    if (line_no == 1) {
      std::vector<std::string> names;
      for (const auto& f : fields) names.push_back(lower(trim(f)));
      auto find = [&](const std::string& n) {
        auto it = std::find(names.begin(), names.end(), n);
        return it == names.end() ? -1 : static_cast<int>(it - names.begin());
      };
      if (!pair) {
        for (const auto& n : {"sentence", "text", "text_a"})
          if (find(n) >= 0) {
            header = true;
            col_a = find(n);
            break;
          }
      } else {
        for (const auto& [a, b] : pair_names)
          if (find(a) >= 0 && find(b) >= 0) {
            header = true;
            col_a = find(a);
            col_b = find(b);
            break;
          }
        if (!header) {
          for (const auto& n : names)
            if (single_names.count(n) || n == "sentence1" || n == "question1" || n == "question")
              throw DataError(where(line_no) + "this looks like a header but names no text pair; a pair task needs "
                                               "two text columns, e.g. \"sentence1\\tsentence2\"");
        }
      }
      if (header) {
        columns = fields.size();
        continue;
      }
    }
    if (fields.size() != columns) {
      std::string expected = header ? std::to_string(columns) + " columns (as the header)"
                             : pair ? std::string("2 tab-separated columns (text_a, text_b)")
                                    : std::string("1 column (the text; this task takes single sentences, so a "
                                                  "line must not contain a tab)");
      throw DataError(where(line_no) + "expected " + expected + ", found " + std::to_string(fields.size()));
    }
    Example e;
    e.text_a = fields[static_cast<size_t>(col_a)];
    if (col_b >= 0) e.text_b = fields[static_cast<size_t>(col_b)];
    if (trim(e.text_a).empty() || (pair && trim(e.text_b).empty()))
      throw DataError(where(line_no) + "empty text");
    e.line = line_no;
    out.push_back(std::move(e));
  }
  if (out.empty()) throw DataError(path.string() + ": no inputs");
  return out;
}

std::vector<Prediction> predict_outputs(LoadedRun& run, const std::vector<EncodedExample>& data) {
  NoGradGuard no_grad;
  const TaskInfo& task = task_info(run.config.task);
  const bool regression = task.kind == TaskKind::Regression;
  const DType dtype = run.base->dtype();
  const Device device = run.base->device();
  std::vector<Prediction> out(data.size());
  const size_t batch = static_cast<size_t>(std::max(1, run.config.eval_batch_size));
  for (size_t start = 0; start < data.size(); start += batch) {
    std::vector<size_t> idx(std::min(batch, data.size() - start));
    std::iota(idx.begin(), idx.end(), start);
    Batch b = make_batch(data, idx, regression, false, run.pad_to, dtype, device);
    ForwardContext ctx;
    const std::vector<double> logits = run.model->forward(b, ctx).logits.to_vector();
    const size_t c = logits.size() / idx.size();
    for (size_t i = 0; i < idx.size(); ++i) {
      Prediction& p = out[idx[i]];
      if (regression) {
        p.score = logits[i];
        continue;
      }
      const double* row = logits.data() + i * c;
      const double m = *std::max_element(row, row + c);
      double sum = 0.0;
      p.probabilities.resize(c);
      for (size_t j = 0; j < c; ++j) sum += p.probabilities[j] = std::exp(row[j] - m);
      for (double& v : p.probabilities) v /= sum;
      p.label_id = static_cast<int>(std::max_element(row, row + c) - row);
      p.label = static_cast<size_t>(p.label_id) < task.label_names.size() ? task.label_names[p.label_id]
                                                                             : "LABEL_" + std::to_string(p.label_id);
    }
  }
  return out;
}

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
      if (l < layers && l < v.size()) cell = fixed(v[l], 4);
      if (l == layers && !v.empty()) cell = fixed(std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size()), 4);
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
  auto num = [](double v) { return fixed(v, 1); };
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
        << "<text x=\"" << num(left - 8) << "\" y=\"" << num(y + 4) << "\" text-anchor=\"end\">" << fixed(v, 1)
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
                                                 fixed(v[l], 4))
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

// ---------------------------------------------------------------------------------------------
// The report
// ---------------------------------------------------------------------------------------------

std::optional<RunRecord> read_run_record(const fs::path& dir) {
  const bool has_results = fs::exists(dir / "results.json"), has_config = fs::exists(dir / "config.json");
  if (!has_results && !has_config) return std::nullopt;
  RunRecord r;
  r.dir = dir;
  if (has_results) {
    const nlohmann::json j = read_json_file(dir / "results.json");
    try {
      r.task = task_info(j.at("task").get<std::string>()).name;
      r.method = j.at("method");
      r.k = j.at("k");
      r.data_seed = j.at("data_seed");
      r.seed = j.value("seed", uint64_t{0});
      r.test = j.at("test").get<std::map<std::string, double>>();
      r.best_dev = j.value("best_dev", std::map<std::string, double>{});
      r.wall_seconds = j.value("wall_seconds", 0.0);
      r.epochs_run = j.value("epochs_run", 0);
      r.best_epoch = j.value("best_epoch", 0);
    } catch (const nlohmann::json::exception& e) {
      throw std::runtime_error((dir / "results.json").string() + ": " + e.what());
    }
    r.finished = true;
    return r;
  }
  const nlohmann::json j = read_json_file(dir / "config.json");
  try {
    r.task = task_info(j.at("task").get<std::string>()).name;
    r.method = j.at("pelt").at("method");
    r.k = j.at("k");
    r.data_seed = j.at("data_seed");
    r.seed = j.value("seed", uint64_t{0});
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error((dir / "config.json").string() + ": " + e.what());
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

std::string shell_quote(const std::string& arg) {
  if (!arg.empty() && arg.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-+=./:,@%") ==
                          std::string::npos)
    return arg;
  std::string out = "'";
  for (char c : arg) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
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
        md << " " << fixed(it->second.mean, 2) << " (" << fixed(it->second.std, 2) << ")";
        if (it->second.n < t.max_seeds) {
          md << " [n=" << it->second.n << "]";
          partial = true;
        }
        md << " |";
      }
      const auto avg = t.average(method);
      md << " " << (avg ? fixed(*avg, 2) : std::string("–")) << " |\n";
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
  return md.str();
}

}  // namespace unipelt

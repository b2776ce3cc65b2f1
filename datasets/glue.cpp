// GLUE readers and the paper's data protocol. See glue.h for the contract and docs/data.md for the
// per-task table and the quirks of the real files.
#include "datasets/glue.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <fstream>
#include <iostream>
#include <numeric>
#include <random>
#include <sstream>

#include "datasets/text_check.h"

namespace unipelt {

namespace {

// Where a task's fields live in its TSV files. Columns are found by header name, so the reader does
// not care that e.g. MNLI train has 12 columns and MNLI dev 16. CoLA's train/dev files are the one
// exception: they have no header, so for them we fall back to fixed positions.
struct Layout {
  std::string text_a, text_b, label;  // header names (text_b empty for single-sentence tasks)
  int headerless_columns = 0;         // > 0: the file may come without a header, with this many
  int headerless_a = -1, headerless_label = -1;  // ... columns, text_a and label at these positions
  bool tolerate_bad_rows = false;     // skip malformed rows (column count, bad text) instead of failing
};

struct TaskEntry {
  TaskInfo info;
  Layout layout;
};

const std::vector<TaskEntry>& task_table() {
  using K = TaskKind;
  static const std::vector<TaskEntry> table = {
      // CoLA train/dev: source, label, original-label-mark ('*' etc.), sentence; no header row.
      {{"CoLA", "cola", 2, K::Classification, "mcc", {"unacceptable", "acceptable"}, {"0", "1"}, "dev",
        false},
       {"sentence", "", "label", 4, 3, 1, false}},
      {{"SST-2", "sst2", 2, K::Classification, "accuracy", {"negative", "positive"}, {"0", "1"}, "dev",
        false},
       {"sentence", "", "label"}},
      {{"MRPC", "mrpc", 2, K::Classification, "f1", {"not_equivalent", "equivalent"}, {"0", "1"}, "dev",
        true},
       {"#1 String", "#2 String", "Quality"}},
      // QQP's original GLUE release has a handful of rows with missing fields; the HF transformers
      // QqpProcessor skips them (IndexError), and so do we, loudly.
      {{"QQP", "qqp", 2, K::Classification, "f1", {"not_duplicate", "duplicate"}, {"0", "1"}, "dev", true},
       {"question1", "question2", "is_duplicate", 0, -1, -1, true}},
      {{"STS-B", "stsb", 1, K::Regression, "spearman", {}, {}, "dev", true},
       {"sentence1", "sentence2", "score"}},
      {{"MNLI", "mnli", 3, K::Classification, "accuracy", {"entailment", "neutral", "contradiction"},
        {"entailment", "neutral", "contradiction"}, "dev_matched", true},
       {"sentence1", "sentence2", "gold_label"}},
      {{"QNLI", "qnli", 2, K::Classification, "accuracy", {"entailment", "not_entailment"},
        {"entailment", "not_entailment"}, "dev", true},
       {"question", "sentence", "label"}},
      {{"RTE", "rte", 2, K::Classification, "accuracy", {"entailment", "not_entailment"},
        {"entailment", "not_entailment"}, "dev", true},
       {"sentence1", "sentence2", "label"}},
      // WNLI writes 1 for entailment, so the HF order is not_entailment=0, entailment=1.
      {{"WNLI", "wnli", 2, K::Classification, "accuracy", {"not_entailment", "entailment"}, {"0", "1"},
        "dev", true},
       {"sentence1", "sentence2", "label"}},
  };
  return table;
}

// "SST-2" -> "sst2", "sts_b" -> "stsb": lower case without '-' and '_'.
std::string normalise(const std::string& name) {
  std::string out;
  for (char c : name)
    if (c != '-' && c != '_') out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

const TaskEntry& task_entry(const std::string& task) {
  const std::string key = normalise(task);
  for (const auto& entry : task_table())
    if (normalise(entry.info.name) == key || entry.info.hf_name == key) return entry;
  std::string valid;
  for (const auto& entry : task_table()) valid += (valid.empty() ? "" : ", ") + entry.info.name;
  throw DataError("unknown GLUE task '" + task + "'; valid tasks: " + valid +
                  " (case, '-' and '_' do not matter)");
}

[[noreturn]] void fail(const std::filesystem::path& file, int line, const std::string& why) {
  throw DataError(file.string() + ":" + std::to_string(line) + ": " + why);
}


// Lines of a text file without their '\n' / "\r\n" ends, a leading UTF-8 BOM removed, and any blank
// lines at the very end dropped. A blank line in the middle is an error: it means a damaged file.
std::vector<std::string> read_lines(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw DataError(file.string() + ": cannot open file");
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (lines.empty() && line.rfind("\xEF\xBB\xBF", 0) == 0) line.erase(0, 3);  // MRPC has a BOM
    lines.push_back(std::move(line));
  }
  while (!lines.empty() && lines.back().empty()) lines.pop_back();
  if (lines.empty()) throw DataError(file.string() + ": file is empty (expected a GLUE TSV file)");
  for (size_t i = 0; i < lines.size(); ++i)
    if (lines[i].empty()) fail(file, static_cast<int>(i + 1), "blank line in the middle of the file");
  return lines;
}

std::string quoted_list(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "'" : ", '") + item + "'";
  return out;
}

// Position of `name` among the header fields, or -1.
int column_of(const std::vector<std::string>& header, const std::string& name) {
  if (name.empty()) return -1;
  auto it = std::find(header.begin(), header.end(), name);
  return it == header.end() ? -1 : static_cast<int>(it - header.begin());
}

// STS-B similarity: the whole field must be a finite number in [0, 5].
bool parse_score(const std::string& text, float& score) {
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, score);
  return ec == std::errc() && ptr == end && std::isfinite(score) && score >= 0.0f && score <= 5.0f;
}

std::string resolve_split(const TaskInfo& info, const std::string& split) {
  if (info.name == "MNLI" && (split == "dev" || split == "test")) return split + "_matched";
  return split;
}

std::string list_tsv_files(const std::filesystem::path& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec))
    if (entry.path().extension() == ".tsv") names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  return names.empty() ? "no .tsv files" : quoted_list(names);
}

// Where a split's columns are: by header name when the first line is a header, else by the task's
// fixed positions. Checks what the header must name (the second text of a pair task; a label, except
// in test splits) and that there are examples below it.
struct Columns {
  int a = -1, b = -1, label = -1;
  size_t count = 0, first_row = 0;
};

Columns find_columns(const std::filesystem::path& file, const std::vector<std::string>& lines,
                     const TaskEntry& entry, const std::string& stem) {
  const TaskInfo& info = entry.info;
  const Layout& layout = entry.layout;
  const std::vector<std::string> first = split_tabs(lines[0]);
  Columns col;
  if (column_of(first, layout.text_a) >= 0) {
    col.a = column_of(first, layout.text_a);
    col.b = column_of(first, layout.text_b);
    col.label = column_of(first, layout.label);
    col.count = first.size();
    col.first_row = 1;
    if (info.is_pair && col.b < 0)
      fail(file, 1, "header has no '" + layout.text_b + "' column; header is " + quoted_list(first));
  } else if (layout.headerless_columns > 0) {
    col.a = layout.headerless_a;
    col.label = layout.headerless_label;
    col.count = static_cast<size_t>(layout.headerless_columns);
  } else {
    std::vector<std::string> wanted = {layout.text_a};
    if (info.is_pair) wanted.push_back(layout.text_b);
    wanted.push_back(layout.label);
    fail(file, 1, "expected a " + info.name + " header naming the columns " + quoted_list(wanted) +
                      "; got " + quoted_list(first));
  }
  // Test splits come without labels; every other split must have them.
  const bool is_test = stem.rfind("test", 0) == 0;
  if (col.label < 0 && !is_test)
    fail(file, 1, "header has no label column '" + layout.label + "' (only test splits may lack it)");
  if (lines.size() <= col.first_row) fail(file, 1, "header row but no examples");
  return col;
}

}  // namespace

std::vector<std::string> split_tabs(const std::string& line) {
  std::vector<std::string> fields;
  size_t start = 0;
  while (true) {
    size_t tab = line.find('\t', start);
    fields.push_back(line.substr(start, tab == std::string::npos ? std::string::npos : tab - start));
    if (tab == std::string::npos) return fields;
    start = tab + 1;
  }
}

const TaskInfo& task_info(const std::string& task) { return task_entry(task).info; }

const std::vector<std::string>& glue_task_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out;
    for (const auto& entry : task_table()) out.push_back(entry.info.name);
    return out;
  }();
  return names;
}

std::vector<Example> read_glue_split(const std::string& task, const std::filesystem::path& task_dir,
                                     const std::string& split, ReadReport* report) {
  const TaskEntry& entry = task_entry(task);
  const TaskInfo& info = entry.info;
  const Layout& layout = entry.layout;

  const std::string stem = resolve_split(info, split);
  const std::filesystem::path file = task_dir / (stem + ".tsv");
  if (!std::filesystem::is_regular_file(file)) {
    std::string where = std::filesystem::is_directory(task_dir)
                            ? task_dir.string() + " has " + list_tsv_files(task_dir)
                            : task_dir.string() + " is not a directory";
    throw DataError(file.string() + ": no such file for " + info.name + " split '" + split + "' (" +
                    where + ")");
  }
  const std::vector<std::string> lines = read_lines(file);

  const Columns col = find_columns(file, lines, entry, stem);
  std::vector<Example> examples;
  ReadReport local;
  ReadReport& rep = report ? *report : local;
  rep = ReadReport{};
  for (size_t i = col.first_row; i < lines.size(); ++i) {
    const int line_no = static_cast<int>(i + 1);
    const std::string where = file.string() + ":" + std::to_string(line_no);
    // A bad row is an error, except in QQP, whose GLUE release has a few (missing columns, empty
    // questions): there it is skipped and listed.
    auto skip_or_fail = [&](const std::string& message) {
      if (!layout.tolerate_bad_rows) throw DataError(message);
      rep.rows_skipped++;
      rep.skipped.push_back(message);
    };
    const std::vector<std::string> fields = split_tabs(lines[i]);
    if (fields.size() != col.count) {
      skip_or_fail(where + ": expected " + std::to_string(col.count) + " tab-separated columns, found " +
                   std::to_string(fields.size()));
      continue;
    }
    Example ex;
    ex.line = line_no;
    ex.text_a = fields[col.a];
    if (col.b >= 0) ex.text_b = fields[col.b];
    try {  // the texts must be usable model inputs (text_check.h)
      check_text(ex.text_a, where, "column '" + layout.text_a + "'");
      if (col.b >= 0) check_text(ex.text_b, where, "column '" + layout.text_b + "'");
    } catch (const DataError& e) {
      skip_or_fail(e.what());
      continue;
    }
    if (col.label >= 0) {
      const std::string& value = fields[col.label];
      if (info.kind == TaskKind::Regression) {
        if (!parse_score(value, ex.score))
          fail(file, line_no, "score '" + value + "' is not a number in [0, 5]");
      } else {
        auto it = std::find(info.file_labels.begin(), info.file_labels.end(), value);
        if (it == info.file_labels.end())
          fail(file, line_no, "label '" + value + "' is not one of " + quoted_list(info.file_labels));
        ex.label = static_cast<int>(it - info.file_labels.begin());
      }
    }
    examples.push_back(std::move(ex));
  }
  rep.rows_read = examples.size();
  if (examples.empty()) fail(file, 1, "no usable rows");
  if (rep.rows_skipped > 0) std::cerr << "warning: " << format_report(rep, 3) << "\n";
  return examples;
}

std::string format_report(const ReadReport& report, size_t max_listed) {
  std::ostringstream out;
  out << report.rows_read << " rows read, " << report.rows_skipped << " malformed rows skipped";
  for (size_t i = 0; i < report.skipped.size() && i < max_listed; ++i) out << "; " << report.skipped[i];
  if (report.skipped.size() > max_listed) out << "; ... (" << report.skipped.size() - max_listed << " more)";
  return out.str();
}

// ---------------------------------------------------------------------------------------------
// The protocol
// ---------------------------------------------------------------------------------------------

namespace {

// A uniform integer in [0, bound) from a 64-bit generator, without modulo bias: reject the lowest
// 2^64 mod bound raw values, so the remaining range is an exact multiple of bound.
uint64_t uniform_below(std::mt19937_64& rng, uint64_t bound) {
  const uint64_t threshold = (0 - bound) % bound;  // == 2^64 mod bound, in unsigned arithmetic
  while (true) {
    const uint64_t r = rng();
    if (r >= threshold) return r % bound;
  }
}

}  // namespace

std::vector<size_t> shuffled_order(size_t n, uint64_t seed) {
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), size_t{0});
  // mt19937_64's output sequence is fixed by the C++ standard, so this is the same on every platform.
  std::mt19937_64 rng(seed);
  // Fisher-Yates: walk from the back, swapping each slot with a uniformly chosen slot at or before it.
  for (size_t i = n; i > 1; --i) {
    const size_t j = static_cast<size_t>(uniform_below(rng, i));
    std::swap(order[i - 1], order[j]);
  }
  return order;
}

Splits make_protocol_splits(const std::string& task, const std::filesystem::path& task_dir, size_t k,
                            uint64_t data_seed) {
  constexpr size_t kDevSize = 1000;  // the paper's development set carved out of train
  const TaskInfo& info = task_info(task);
  Splits splits;
  splits.k = k;
  splits.data_seed = data_seed;

  std::vector<Example> train = read_glue_split(task, task_dir, "train");
  std::vector<Example> glue_dev = read_glue_split(task, task_dir, info.dev_split);

  if (k == 0) {  // full data: the GLUE dev set is both the model-selection and the reported set
    splits.train = std::move(train);
    splits.dev = glue_dev;
    splits.test = std::move(glue_dev);
    return splits;
  }
  if (k > train.size() || train.size() - k < kDevSize)  // (not k + kDevSize, which can wrap around)
    throw DataError(info.name + ": the protocol needs K + " + std::to_string(kDevSize) + " training rows (K = " +
                    std::to_string(k) + " for training, " +
                    std::to_string(kDevSize) + " for the development set), but " +
                    (task_dir / "train.tsv").string() + " has only " + std::to_string(train.size()) +
                    "; use a smaller K or k = 0 (all data)");

  const std::vector<size_t> order = shuffled_order(train.size(), data_seed);
  splits.train.reserve(k);
  splits.dev.reserve(kDevSize);
  for (size_t i = 0; i < k; ++i) splits.train.push_back(train[order[i]]);
  for (size_t i = k; i < k + kDevSize; ++i) splits.dev.push_back(train[order[i]]);
  splits.test = std::move(glue_dev);
  return splits;
}

std::filesystem::path task_directory(const std::filesystem::path& data_dir, const std::string& task) {
  const std::string name = task_info(task).name;
  for (const auto& candidate : {data_dir / "glue" / name, data_dir / name})
    if (std::filesystem::is_directory(candidate)) return candidate;
  throw DataError(data_dir.string() + ": no " + name + " data (looked for glue/" + name + "/ and " + name +
                  "/); run scripts/fetch-data.sh or pass --data pointing at a mirror");
}

}  // namespace unipelt

// Reading a saved run back for `unipelt eval` and `unipelt predict`: rebuild its model (base + RUN/best)
// and its protocol splits, read the prediction TSV format, and turn outputs into labels or scores.
#include "train/saved_run.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <set>

#include "datasets/glue.h"
#include "nn/bert_loader.h"
#include "nn/file_io.h"
#include "pelt/checkpoint.h"
#include "train/run_dir.h"

namespace unipelt {

namespace fs = std::filesystem;

namespace {

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string trim(const std::string& s) {
  const size_t a = s.find_first_not_of(" \t");
  if (a == std::string::npos) return "";
  return s.substr(a, s.find_last_not_of(" \t") - a + 1);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Saved runs
// ---------------------------------------------------------------------------------------------

LoadedRun load_run(const fs::path& run_dir, const RunOverrides& overrides) {
  LoadedRun run;
  run.dir = run_dir;
  run.config = read_run_config(run_dir);
  if (!overrides.data_dir.empty()) run.config.data_dir = overrides.data_dir;
  if (!overrides.model_dir.empty()) run.config.model_dir = overrides.model_dir;
  if (overrides.device) run.config.device = *overrides.device;
  const fs::path best = run_dir / "best";
  if (!fs::exists(best / "pelt_config.json"))
    throw std::runtime_error(run_dir.string() + ": no best/ checkpoint yet (the run stopped before finishing its "
                                                "first epoch); resume it with `unipelt train ... --resume`");
  const TaskInfo& task = task_info(run.config.task);
  BertLoadOptions load{task.num_labels, run.config.dtype, run.config.device, run.config.seed};
  run.base = load_bert(run.config.model_dir, load);
  run.model = load_pelt_checkpoint(best, *run.base);
  run.tokenizer = std::make_unique<WordPieceTokenizer>(
      WordPieceTokenizer::from_vocab_file((fs::path(run.config.model_dir) / "vocab.txt").string()));
  run.pad_to = padded_length(run.config);
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
  const TaskInfo& task = task_info(run.config.task);
  const bool regression = task.kind == TaskKind::Regression;
  std::vector<Prediction> out(data.size());
  run_inference(*run.model, data, run.config.eval_batch_size, run.pad_to, false,
                [&](const std::vector<size_t>& idx, const BertForSequenceClassification::Output& output) {
                  const std::vector<double> logits = output.logits.to_vector();
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
                    p.label = static_cast<size_t>(p.label_id) < task.label_names.size()
                                  ? task.label_names[p.label_id]
                                  : "LABEL_" + std::to_string(p.label_id);
                  }
                });
  return out;
}

}  // namespace unipelt

// Reading a saved run back for `unipelt eval` and `unipelt predict`: rebuild its model (base + RUN/best)
// and its protocol splits, read the prediction TSV format, and turn outputs into labels or scores.
#include "train/saved_run.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <set>

#include "datasets/glue.h"
#include "datasets/text_check.h"
#include "nn/bert_loader.h"
#include "nn/file_io.h"
#include "pelt/checkpoint.h"
#include "pelt/peft_format.h"
#include "train/export.h"
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

namespace {

// A peft adapter directory as a run: settings from unipelt_run.json or the overrides, model from the adapter.
LoadedRun load_peft_run(const fs::path& dir, const RunOverrides& overrides) {
  LoadedRun run;
  run.dir = dir;
  const PeftLoraConfig adapter = read_peft_config(dir);
  std::string hash;
  if (fs::exists(dir / kPeftRunFile)) {
    const nlohmann::json info = read_json_file(dir / kPeftRunFile);
    run.config = TrainConfig::from_json(info.at("run"));
    hash = info.value("base_weights_hash", std::string());
  } else {
    if (overrides.task.empty() || overrides.data_dir.empty())
      throw std::invalid_argument(dir.string() + ": a peft adapter without " + kPeftRunFile +
                                  " (trained elsewhere): pass --task and --data (and --model unless its "
                                  "base_model_name_or_path is a local directory)");
    run.config.model_dir = adapter.base_model_name_or_path;
  }
  if (!overrides.task.empty()) run.config.task = task_info(overrides.task).name;
  if (!overrides.data_dir.empty()) run.config.data_dir = overrides.data_dir;
  if (!overrides.model_dir.empty()) run.config.model_dir = overrides.model_dir;
  if (overrides.device) run.config.device = *overrides.device;
  if (run.config.model_dir.empty())
    throw std::invalid_argument(dir.string() + ": the adapter names no base model (base_model_name_or_path); pass --model");
  run.config.pelt = preset("lora");
  run.config.pelt.lora_r = adapter.r;
  run.config.pelt.lora_alpha = adapter.lora_alpha;
  const TaskInfo& task = task_info(run.config.task);
  BertLoadOptions load{task.num_labels, run.config.dtype, run.config.device, run.config.seed,
                       run.config.allow_unused};
  run.base = load_bert(run.config.model_dir, load);
  if (!hash.empty() && hash != base_weights_hash(*run.base))
    throw std::runtime_error(dir.string() + ": the adapter was exported from a run on another base model (weights "
                             "hash " + hash + ", " + run.config.model_dir + " has " + base_weights_hash(*run.base) + ")");
  run.model = load_peft_adapter(dir, *run.base);
  run.tokenizer = std::make_unique<WordPieceTokenizer>(
      WordPieceTokenizer::from_vocab_file((fs::path(run.config.model_dir) / "vocab.txt").string()));
  run.pad_to = padded_length(run.config);
  return run;
}

}  // namespace

LoadedRun load_run(const fs::path& run_dir, const RunOverrides& overrides) {
  if (is_peft_adapter_dir(run_dir)) return load_peft_run(run_dir, overrides);
  if (!overrides.task.empty())
    throw std::invalid_argument("--task is for peft adapter directories only; " + (run_dir / "config.json").string() +
                                " names the run's task");
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
  BertLoadOptions load{task.num_labels, run.config.dtype, run.config.device, run.config.seed,
                       run.config.allow_unused};
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
  std::vector<std::string> header_names;
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
        header_names = fields;
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
    const std::string at = path.string() + ":" + std::to_string(line_no);
    check_text(e.text_a, at, header ? "column '" + header_names[col_a] + "'" : pair ? "text_a" : "text");
    if (pair) check_text(e.text_b, at, header ? "column '" + header_names[col_b] + "'" : "text_b");
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

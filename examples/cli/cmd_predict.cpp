// `unipelt predict RUN --input FILE.tsv`: label (or STS-B score) and class probabilities for new texts.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include "autograd/parallel.h"
#include "examples/cli/cli.h"
#include "examples/cli/run_options.h"
#include "examples/cli/settings_flags.h"
#include "nn/file_io.h"
#include "train/saved_run.h"

namespace {

struct PredictOptions {
  std::string run, input, out;
  unipelt::RunOverrides overrides;  // --model, --device (no --data: the input is a TSV of its own)
  bool no_header = false;
  int threads = 0;
};

void run_predict(const PredictOptions& o) {
  using namespace unipelt;
  set_cpu_threads(o.threads);
  LoadedRun run = load_run(o.run, o.overrides);
  const TaskInfo& task = task_info(run.config.task);
  const std::vector<Example> inputs = read_predict_inputs(o.input, task.is_pair);
  const auto encoded = encode_examples(inputs, *run.tokenizer, run.config.max_len, task.is_pair);
  const std::vector<Prediction> predictions = predict_outputs(run, encoded);

  std::ostringstream out;
  if (!o.no_header) {
    if (task.kind == TaskKind::Regression) {
      out << "score\n";
    } else {
      out << "label";
      for (const auto& name : task.label_names) out << "\tp_" << name;
      out << "\n";
    }
  }
  char buf[64];
  for (const Prediction& p : predictions) {
    if (task.kind == TaskKind::Regression) {
      std::snprintf(buf, sizeof buf, "%.4f", p.score);
      out << buf << "\n";
      continue;
    }
    out << p.label;
    for (double v : p.probabilities) {
      std::snprintf(buf, sizeof buf, "\t%.4f", v);
      out << buf;
    }
    out << "\n";
  }
  if (o.out.empty()) {
    std::cout << out.str() << std::flush;
  } else {
    write_file_atomically(o.out, out.str());
    std::fprintf(stderr, "wrote %zu predictions to %s\n", predictions.size(), o.out.c_str());
  }
}

}  // namespace

namespace unipelt::cli {

void add_predict_command(CLI::App& app) {
  auto o = std::make_shared<PredictOptions>();
  auto* cmd = app.add_subcommand(
      "predict", "Predict new texts with a training run's best checkpoint: one output line per input line, the "
                 "label name (or the STS-B score) and the class probabilities");
  cmd->add_option("run", o->run, "Run directory written by `unipelt train` (config.json, best/)")
      ->required()->check(CLI::ExistingDirectory);
  cmd->add_option("--input", o->input,
                  "UTF-8 TSV, one example per line: the text (single-sentence tasks) or two tab-separated texts "
                  "(pair tasks). An optional header line names the text columns (sentence | text | text_a; "
                  "sentence1+sentence2 | text_a+text_b | question+sentence | question1+question2); with it, other "
                  "columns such as GLUE's index are ignored. Blank lines are errors")
      ->required()->check(CLI::ExistingFile);
  cmd->add_option("--out", o->out, "Write the predictions to this file instead of stdout (TSV: label, then "
                                   "one probability column per class; STS-B: score)")
      ->check(writable_file_path());
  cmd->add_flag("--no-header", o->no_header, "Omit the output's header line");
  unipelt::cli::add_run_override_options(cmd, o->overrides, false);
  unipelt::cli::add_threads_flag(cmd, o->threads);
  cmd->callback([o] { run_predict(*o); });
}

}  // namespace unipelt::cli


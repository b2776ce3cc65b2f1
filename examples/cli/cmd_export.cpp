// `unipelt export RUN --format peft|transformers --out DIR`: a trained run for other tools (train/export.h).
#include <cstdio>

#include "examples/cli/cli.h"
#include "examples/cli/run_options.h"
#include "train/export.h"

namespace {

struct ExportOptions {
  std::string run, format, out;
  unipelt::RunOverrides overrides;
};

void run_export(const ExportOptions& o) {
  using namespace unipelt;
  const std::vector<std::string> files = export_run(o.run, parse_export_format(o.format), o.out, o.overrides);
  std::printf("exported %s as a %s directory: %s\n", o.run.c_str(), o.format.c_str(), o.out.c_str());
  for (const std::string& f : files) std::printf("  %s\n", f.c_str());
  if (o.format == "peft")
    std::printf("load it with: PeftModel.from_pretrained(AutoModelForSequenceClassification.from_pretrained(BASE, "
                "num_labels=N), \"%s\")\n", o.out.c_str());
  else
    std::printf("load it with: AutoModelForSequenceClassification.from_pretrained(\"%s\")\n", o.out.c_str());
}

}  // namespace

namespace unipelt::cli {

void add_export_command(CLI::App& app) {
  auto o = std::make_shared<ExportOptions>();
  auto* cmd = app.add_subcommand(
      "export", "Export a run's best checkpoint for other tools: a peft LoRA adapter (ungated LoRA runs) or a "
                "transformers BertForSequenceClassification directory (fine-tuning, BitFit, LoRA merged)");
  cmd->add_option("run", o->run, "Run directory written by `unipelt train`")->required()->check(CLI::ExistingDirectory);
  cmd->add_option("--format", o->format,
                  "peft: adapter_config.json + adapter_model.safetensors, for PeftModel.from_pretrained; "
                  "transformers: config.json + model.safetensors + vocab.txt + tokenizer_config.json, for "
                  "AutoModelForSequenceClassification.from_pretrained")
      ->required()->check(CLI::IsMember({"peft", "transformers"}));
  cmd->add_option("--out", o->out, "Output directory (created; files in it are overwritten)")->required();
  unipelt::cli::add_run_override_options(cmd, o->overrides, false);
  cmd->callback([o] { run_export(*o); });
}

}  // namespace unipelt::cli

// `unipelt grads`: one forward + backward of a PELT model on a fixed batch (dropout off), written to a
// safetensors file: logits, loss, gate values and the gradient of every trainable parameter. The tool
// for gradient-checking a method against another framework (tests/reference/ does exactly that).
#include <cstdio>

#include "autograd/backend.h"
#include "autograd/parallel.h"
#include "examples/cli/settings_flags.h"
#include "nn/batch_io.h"
#include "nn/bert_loader.h"
#include "nn/safetensors.h"
#include "pelt/grads.h"

namespace {

struct GradsOptions {
  std::string model, batch, out, init;
  int num_labels = 0;
  // --seed, --dtype, --device, --allow-unused and the method's flags
  std::shared_ptr<unipelt::cli::SettingValues> settings = std::make_shared<unipelt::cli::SettingValues>();
};

void run_grads(const GradsOptions& o) {
  using namespace unipelt;
  TrainConfig settings;
  apply_settings(settings, *o.settings);
  settings.pelt.validate();
  set_cpu_threads(settings.threads);
  validate_method_against_model(settings.pelt, load_bert_config(std::filesystem::path(o.model) / "config.json"));
  BertLoadOptions load;
  load.num_labels = o.num_labels;
  load.dtype = settings.dtype;
  load.device = settings.device;
  load.seed = settings.seed;
  load.allow_unused = settings.allow_unused;
  BertLoadReport report;
  auto bert = load_bert(o.model, load, &report);
  PeltModel model(*bert, settings.pelt, settings.seed);
  if (!o.init.empty()) load_named_tensors(model, o.init);
  Batch batch = read_batch(o.batch, load.dtype, load.device, bert->is_regression());
  auto outputs = forward_backward_outputs(model, batch);
  write_safetensors(o.out, outputs, {{"method", model.config().method}, {"dtype", dtype_name(settings.dtype)}});
  std::printf("%s\nwrote %zu tensors to %s (loss %.10g)\n", report.summary().c_str(), outputs.size(), o.out.c_str(),
              outputs[1].second.item());
}

}  // namespace

namespace unipelt::cli {

void add_grads_command(CLI::App& app) {
  auto o = std::make_shared<GradsOptions>();
  auto* cmd = app.add_subcommand("grads", "Forward + backward of a PELT model on one batch; writes logits, loss, "
                                          "gates and gradients to a safetensors file");
  cmd->add_option("--model", o->model, "Hugging Face model directory (config.json + model.safetensors or pytorch_model.bin)")
      ->required()->check(CLI::ExistingDirectory);
  cmd->add_option("--batch", o->batch,
                  "safetensors with input_ids, token_type_ids, attention_mask [B,T] (I64/I32) and labels [B] "
                  "(I64 classification, F32 regression)")
      ->required()->check(CLI::ExistingFile);
  cmd->add_option("--out", o->out, "Output safetensors file")->required()->check(writable_file_path());
  cmd->add_option("--init", o->init, "safetensors of PELT/classifier tensors by name (others initialised from --seed), "
                                     "or a peft LoRA adapter directory (with --method lora and its --lora-r/--lora-alpha)")
      ->check(CLI::ExistingPath);
  cmd->add_option("--num-labels", o->num_labels, "Number of labels (1 = regression; 0 = from config.json)")
      ->check(CLI::Range(0, 100000))
      ->capture_default_str();
  std::vector<std::string> flags = {"--seed", "--dtype", "--device", "--allow-unused", "--threads"};
  for (const std::string& f : method_setting_flags()) flags.push_back(f);
  add_setting_flags(cmd, o->settings, flags);
  cmd->callback([o] { run_grads(*o); });
}

}  // namespace unipelt::cli


// `unipelt grads`: one forward + backward of a PELT model on a fixed batch (dropout off), written to a
// safetensors file: logits, loss, gate values and the gradient of every trainable parameter. The tool
// for gradient-checking a method against another framework (tests/reference/ does exactly that).
#include <cstdio>

#include "autograd/backend.h"
#include "examples/cli/pelt_options.h"
#include "nn/batch_io.h"
#include "nn/bert_loader.h"
#include "nn/safetensors.h"
#include "pelt/grads.h"

namespace {

struct GradsOptions {
  std::string model, batch, out, init, dtype = "f32", device = "cpu";
  int num_labels = 0;
  uint64_t seed = 42;
  bool allow_unused = false;
  unipelt::cli::PeltOptions pelt;
};

void run_grads(const GradsOptions& o) {
  using namespace unipelt;
  BertLoadOptions load;
  load.num_labels = o.num_labels;
  load.dtype = o.dtype == "f64" ? DType::F64 : DType::F32;
  load.device = o.device == "cuda" ? Device::CUDA : Device::CPU;
  load.seed = o.seed;
  load.allow_unused = o.allow_unused;
  BertLoadReport report;
  auto bert = load_bert(o.model, load, &report);
  PeltModel model(*bert, o.pelt.resolve(), o.seed);
  if (!o.init.empty()) load_named_tensors(model, o.init);
  Batch batch = read_batch(o.batch, load.dtype, load.device, bert->is_regression());
  auto outputs = forward_backward_outputs(model, batch);
  write_safetensors(o.out, outputs, {{"method", model.config().method}, {"dtype", o.dtype}});
  std::printf("%s\nwrote %zu tensors to %s (loss %.10g)\n", report.summary().c_str(), outputs.size(), o.out.c_str(),
              outputs[1].second.item());
}

}  // namespace

namespace unipelt::cli {

void add_grads_command(CLI::App& app) {
  auto o = std::make_shared<GradsOptions>();
  auto* cmd = app.add_subcommand("grads", "Forward + backward of a PELT model on one batch; writes logits, loss, "
                                          "gates and gradients to a safetensors file");
  cmd->add_option("--model", o->model, "Hugging Face model directory (config.json + model.safetensors)")
      ->required()->check(CLI::ExistingDirectory);
  cmd->add_option("--batch", o->batch,
                  "safetensors with input_ids, token_type_ids, attention_mask [B,T] (I64/I32) and labels [B] "
                  "(I64 classification, F32 regression)")
      ->required()->check(CLI::ExistingFile);
  cmd->add_option("--out", o->out, "Output safetensors file")->required();
  cmd->add_option("--init", o->init, "safetensors of PELT/classifier tensors by name (others initialised from --seed)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--num-labels", o->num_labels, "Number of labels (1 = regression); default from config.json");
  cmd->add_option("--dtype", o->dtype, "Computation dtype")->check(CLI::IsMember({"f32", "f64"}))->capture_default_str();
  cmd->add_option("--seed", o->seed, "Seed for tensors not given by --init")->capture_default_str();
  cmd->add_flag("--allow-unused", o->allow_unused,
                "Load a checkpoint that has tensors the model does not use (e.g. more encoder layers than "
                "config.json's num_hidden_layers); by default that is an error listing them");
  cmd->add_option("--device", o->device, "cpu or cuda")->check(CLI::IsMember({"cpu", "cuda"}))->capture_default_str();
  unipelt::cli::add_pelt_options(cmd, o->pelt);
  cmd->callback([o] { run_grads(*o); });
}

}  // namespace unipelt::cli


// `unipelt train`: fine-tune a PELT method on a GLUE task with the paper's protocol.
#include <iostream>

#include "examples/cli/pelt_options.h"
#include "train/sweep.h"
#include "train/trainer.h"

namespace {

struct TrainOptions {
  unipelt::TrainConfig config;
  unipelt::cli::PeltOptions pelt;
  std::string k = "100";
  bool resume = false;
};

}  // namespace

namespace unipelt::cli {

void add_train_command(CLI::App& app) {
  auto o = std::make_shared<TrainOptions>();
  unipelt::TrainConfig& c = o->config;
  auto* cmd = app.add_subcommand("train", "Train a method on a GLUE task (paper protocol: K train examples, the next "
                                          "1,000 as dev, GLUE dev as test) and report the test metric");
  cmd->add_option("--task", c.task, "GLUE task: SST-2, CoLA, MRPC, RTE, STS-B, QNLI, QQP, MNLI, WNLI")
      ->capture_default_str();
  cmd->add_option("--model", c.model_dir, "Hugging Face BERT directory (config.json, model.safetensors, vocab.txt)")
      ->required()->check(CLI::ExistingDirectory);
  cmd->add_option("--data", c.data_dir, "Data root holding glue/<TASK>/*.tsv (scripts/fetch-data.sh fills one)")
      ->required()->check(CLI::ExistingDirectory);
  cmd->add_option("--out", c.out_dir, "Run directory to create (config, metrics.jsonl, results.json, best/)")
      ->required();
  cmd->add_option("--k", o->k, "Training examples: 100, 500, 1000, any number, or 'all' (then dev = test = GLUE dev)")
      ->capture_default_str();
  cmd->add_option("--data-seed", c.data_seed, "Seed of the training-set shuffle (paper: 111 222 333 444 555)")
      ->capture_default_str();
  cmd->add_option("--seed", c.seed, "Model seed: PELT init, classifier init, batch order, dropout")->capture_default_str();
  cmd->add_option("--lr", c.lr, "Learning rate (default: the paper's for the method: finetune 2e-5, adapter 1e-4, "
                                "prefix 2e-4, lora 5e-4, bitfit 1e-4, unipelt 5e-4)");
  cmd->add_option("--epochs", c.epochs, "Maximum epochs")->capture_default_str();
  cmd->add_option("--patience", c.patience, "Early stopping: epochs without dev improvement")->capture_default_str();
  cmd->add_option("--batch-size", c.batch_size, "Training batch size")->capture_default_str();
  cmd->add_option("--eval-batch-size", c.eval_batch_size, "Evaluation batch size")->capture_default_str();
  cmd->add_option("--max-len", c.max_len, "Maximum sequence length in tokens")->capture_default_str();
  cmd->add_option("--weight-decay", c.weight_decay, "AdamW decoupled weight decay")->capture_default_str();
  cmd->add_option("--beta1", c.beta1, "AdamW beta1")->capture_default_str();
  cmd->add_option("--beta2", c.beta2, "AdamW beta2")->capture_default_str();
  cmd->add_option("--adam-eps", c.adam_eps, "AdamW epsilon")->capture_default_str();
  cmd->add_option("--max-grad-norm", c.max_grad_norm, "Gradient clipping (global L2 norm)")->capture_default_str();
  cmd->add_option("--warmup-steps", c.warmup_steps, "Linear warm-up steps before the linear decay")->capture_default_str();
  cmd->add_option("--dtype", c.dtype, "f32 or f64")->check(CLI::IsMember({"f32", "f64"}))->capture_default_str();
  cmd->add_option("--device", c.device, "cpu or cuda")->check(CLI::IsMember({"cpu", "cuda"}))->capture_default_str();
  cmd->add_flag("--resume", o->resume, "Continue an interrupted run in --out (same flags required)");
  cmd->add_option("--stop-after", c.stop_after_epochs,
                  "Stop after this many epochs of this invocation, as if interrupted (for testing --resume)");
  unipelt::cli::add_pelt_options(cmd, o->pelt);
  cmd->callback([o] {
    o->config.pelt = o->pelt.resolve();
    o->config.k = unipelt::parse_k(o->k);  // a positive number or "all" (0 internally)
    auto result = unipelt::train_glue(o->config, o->resume, std::cerr);
    if (!result.finished) throw unipelt::cli::Exit{130};
    if (!result.test.empty()) {
      std::cout << "test " << unipelt::task_info(o->config.task).metric << " " << result.test.at("main") << "\n";
    }
  });
}

}  // namespace unipelt::cli


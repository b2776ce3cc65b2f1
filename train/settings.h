// Every setting of a training run, in one table: its `unipelt train` flag, its key in the run's
// config.json, its default, the values it accepts and its help text. The table (train_settings())
// drives
//   - TrainConfig's JSON (config.json) and its validation (to_json, from_json, validate below),
//   - the flags of `unipelt train`, and the flags `unipelt sweep` passes through to every run
//     (examples/cli/settings_flags.cpp), so both accept and reject exactly the same values,
//   - the flag table of docs/training.md (`unipelt train --settings-table` prints it; a test compares).
// Adding a setting means adding a field to TrainConfig and one row to the table in settings.cpp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "autograd/tensor.h"
#include "nn/bert_config.h"
#include "pelt/config.h"

namespace unipelt {

struct TrainConfig {
  std::string task = "SST-2";
  PeltConfig pelt = preset("unipelt-apl");
  std::string model_dir, data_dir, out_dir;
  size_t k = 100;  // 0 = all
  uint64_t data_seed = 111, seed = 42;
  double lr = 0.0;  // 0: not given, the paper's rate for the method (default_learning_rate)
  int epochs = 50, patience = 10, batch_size = 16, max_len = 128, eval_batch_size = 64;
  double weight_decay = 0.0, beta1 = 0.9, beta2 = 0.999, adam_eps = 1e-8, max_grad_norm = 1.0;
  int warmup_steps = 0;
  DType dtype = DType::F32;
  Device device = Device::CPU;
  bool allow_unused = false;  // load a checkpoint holding tensors the model does not use (BertLoadOptions)
  int stop_after_epochs = 0;  // > 0: stop after this many epochs *of this invocation*, as if interrupted
  int threads = 0;            // CPU threads (autograd/parallel.h); 0 = every CPU. Never changes a result.

  // The learning rate this run uses: lr, or the paper's rate for the method when lr is 0.
  double resolved_lr() const;

  // config.json: every stored setting by its key ("pelt" holds PeltConfig::to_json()).
  nlohmann::json to_json() const;
  // Throws std::invalid_argument naming the missing or bad key, and validates the result.
  static TrainConfig from_json(const nlohmann::json& j);
  // Checks every setting against its rule; throws std::invalid_argument "FLAG: must be RULE, got 'X'".
  void validate() const;
};

// Who sets a setting.
enum class SettingScope {
  Run,         // any run; `unipelt sweep` passes it through to every run unchanged
  Grid,        // the sweep varies it (task, method, K, data seed), one value per run
  MethodEdit,  // a change to the method preset (--adapter on|off, ...): `unipelt train` only
  Location,    // where the model, the data and the run directory are: the sweep sets them itself
  Invocation,  // this command only, not stored in config.json (--stop-after)
  Machine,     // how the process uses the machine (--threads): not stored, never changes a result; a sweep
               // passes it to every run, or gives each run cores / jobs when it is not given
};

struct Setting {
  std::string flag;      // "--batch-size"
  std::string key;       // its path in config.json ("batch_size", "pelt.lora_r"); empty: not stored
  std::string type;      // the placeholder --help shows: INT, FLOAT, SEED, K, NAME, DIR, on|off
  std::string accepts;   // the rule in words: "a whole number from 1 to 4096"
  std::string help;
  std::string shown_default;  // what --help and the docs show as the default ("16", "required", "the preset's")
  SettingScope scope = SettingScope::Run;
  bool required = false;  // `unipelt train` refuses to run without it
  // config.json files written before the setting existed lack its key: they mean the default. (Every
  // other key is required, so that a damaged file is refused rather than half read.)
  bool absent_means_default = false;
  // Parses `text` into `config`. Throws std::invalid_argument "must be RULE, got 'TEXT'" (no flag:
  // the callers name it) when the text is not a value the rule accepts.
  std::function<void(TrainConfig& config, const std::string& text)> set;
  // The value as the flag spells it ("16", "2e-05", "all", "masked").
  std::function<std::string(const TrainConfig& config)> text;
  // Throws std::invalid_argument "must be RULE, got 'VALUE'" when config's value breaks the rule.
  std::function<void(const TrainConfig& config)> check;
  // config.json (only for keys outside "pelt.", which PeltConfig::to_json stores).
  std::function<nlohmann::json(const TrainConfig& config)> to_json;
  std::function<void(TrainConfig& config, const nlohmann::json& value)> from_json;
};

// The table, in the order flags are applied (--method before the changes to it) and documented.
const std::vector<Setting>& train_settings();
// Throws std::invalid_argument for a flag that is not in the table.
const Setting& find_setting(const std::string& flag);

// Parses `text` for `flag` into `config`; errors read "FLAG: must be RULE, got 'TEXT'".
void apply_setting(TrainConfig& config, const std::string& flag, const std::string& text);
// Applies `values` (flag -> text) to `config` in table order (--method before the changes to it).
void apply_settings(TrainConfig& config, const std::map<std::string, std::string>& values);
// The defaults with `values` applied, then validated: the configuration `unipelt train` runs.
TrainConfig train_config_from_flags(const std::map<std::string, std::string>& values);

// Rules that need the model's configuration, checked before any weight is loaded: --max-len at most
// max_position_embeddings, --adapter-size and --lora-r at most the hidden size. Throws
// std::invalid_argument naming the flag and the model's limit.
void validate_against_model(const TrainConfig& config, const BertConfig& model);
// The method's part of it alone (`unipelt grads` and `params`, which take no --max-len).
void validate_method_against_model(const PeltConfig& pelt, const BertConfig& model);

// What the run pads its batches to (0: each batch to its longest sequence). The official code pads
// every batch to max_len; with gated `all` pooling that padding changes the gates, so we pad the same
// way. With `masked` pooling padding has no effect, and we pad per batch.
int padded_length(const TrainConfig& config);

// The Markdown flag table of docs/training.md (one row per setting).
std::string settings_markdown_table();

// The paper's learning rates: fine-tuning 2e-5, adapter 1e-4, prefix 2e-4, LoRA 5e-4, BitFit 1e-4,
// UniPELT (any combination of several methods) 5e-4.
double default_learning_rate(const PeltConfig& pelt);

// K as the flags spell it: "100" -> 100, "all" -> 0; throws std::invalid_argument otherwise.
size_t parse_k(const std::string& text);
std::string k_label(size_t k);  // 100 -> "100", 0 -> "all"
// A seed: a whole number from 0 to 2^64 - 1 (no sign, no trailing text); throws std::invalid_argument.
uint64_t parse_seed(const std::string& text);

}  // namespace unipelt

// `unipelt params`: how many parameters a method trains and stores (paper Table 4).
#include <cstdio>

#include "examples/cli/settings_flags.h"
#include "pelt/unipelt.h"

namespace {

struct ParamsOptions {
  std::string config;
  bool json = false;
  int num_labels = 2;
  // the method's flags
  std::shared_ptr<unipelt::cli::SettingValues> settings = std::make_shared<unipelt::cli::SettingValues>();
};

void run_params(const ParamsOptions& o) {
  using namespace unipelt;
  BertConfig config = load_bert_config(o.config);
  config.num_labels = o.num_labels;
  config.id2label.assign(static_cast<size_t>(o.num_labels), "LABEL");
  TrainConfig settings;
  apply_settings(settings, *o.settings);  // bad flags fail before the model is allocated
  const PeltConfig& pelt = settings.pelt;
  pelt.validate();
  validate_method_against_model(settings.pelt, config);
  BertForSequenceClassification bert(config, DType::F32);  // zeros: counting needs no weights
  PeltModel model(bert, pelt, 0);
  const ParameterCounts c = count_parameters(model);
  const double trained_pct = 100.0 * static_cast<double>(c.trained) / static_cast<double>(c.base);
  const double stored_pct = 100.0 * static_cast<double>(c.stored) / static_cast<double>(c.base);
  if (o.json) {
    nlohmann::json j = {{"method", model.config().method}, {"pelt", model.config().to_json()},
                        {"trained", c.trained},            {"stored", c.stored},
                        {"base", c.base},                  {"head", c.head},
                        {"trained_percent", trained_pct},  {"stored_percent", stored_pct}};
    std::printf("%s\n", j.dump(2).c_str());
    return;
  }
  std::printf("method            %s\n", model.config().method.c_str());
  std::printf("base model        %lld parameters (without the %lld of the classification head)\n",
              static_cast<long long>(c.base), static_cast<long long>(c.head));
  std::printf("trained           %lld (%.2f%% of the base model), head excluded\n", static_cast<long long>(c.trained),
              trained_pct);
  std::printf("stored            %lld (%.2f%%), head excluded%s\n", static_cast<long long>(c.stored), stored_pct,
              model.config().prefix ? "; prefix ejected (the MLP is dropped after training)" : "");
}

}  // namespace

namespace unipelt::cli {

void add_params_command(CLI::App& app) {
  auto o = std::make_shared<ParamsOptions>();
  auto* cmd = app.add_subcommand("params", "Count trained and stored parameters of a method (paper Table 4)");
  cmd->add_option("--config", o->config, "A BERT config.json (Hugging Face or Google format)")
      ->required()->check(CLI::ExistingFile);
  cmd->add_option("--num-labels", o->num_labels, "Size of the classification head (1 = regression)")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  cmd->add_flag("--json", o->json, "Print JSON instead of text");
  add_setting_flags(cmd, o->settings, method_setting_flags());
  cmd->callback([o] { run_params(*o); });
}

}  // namespace unipelt::cli


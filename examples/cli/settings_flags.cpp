#include "examples/cli/settings_flags.h"

#include <algorithm>
#include <stdexcept>

namespace unipelt::cli {

std::vector<std::string> setting_flags(std::initializer_list<SettingScope> scopes) {
  std::vector<std::string> flags;
  for (const Setting& s : train_settings())
    if (std::find(scopes.begin(), scopes.end(), s.scope) != scopes.end()) flags.push_back(s.flag);
  return flags;
}

std::vector<std::string> method_setting_flags() {
  std::vector<std::string> flags;
  for (const Setting& s : train_settings())
    if (s.key.rfind("pelt.", 0) == 0) flags.push_back(s.flag);
  return flags;
}

// The setting's own parser on a scratch configuration: CLI11 reports "FLAG: <its message>".
CLI::Validator setting_rule(const std::string& flag) {
  return CLI::Validator(
      [flag](std::string& text) {
        TrainConfig scratch;
        try {
          find_setting(flag).set(scratch, text);
        } catch (const std::invalid_argument& e) {
          return std::string(e.what());
        }
        return std::string();
      },
      "");
}

void add_setting_flags(CLI::App* cmd, const std::shared_ptr<SettingValues>& values, const std::vector<std::string>& flags,
                       bool required_too) {
  for (const std::string& flag : flags) {
    const Setting& s = find_setting(flag);
    const bool required = required_too && s.required;
    const std::string description =
        s.help + " (" + s.accepts + (required ? "; required" : "; default: " + s.shown_default) + ")";
    CLI::Option* option = cmd->add_option_function<std::string>(
        flag, [values, flag](const std::string& text) { (*values)[flag] = text; }, description);
    option->type_name(s.type);
    option->check(setting_rule(flag));
    if (required) option->required();
  }
}

void add_threads_flag(CLI::App* cmd, int& threads) {
  const Setting& s = find_setting("--threads");
  cmd->add_option_function<std::string>(
         "--threads",
         [&threads](const std::string& text) {
           TrainConfig scratch;
           find_setting("--threads").set(scratch, text);
           threads = scratch.threads;
         },
         s.help + " (" + s.accepts + "; default: 0, all CPUs)")
      ->type_name(s.type)
      ->check(setting_rule("--threads"));
}

}  // namespace unipelt::cli

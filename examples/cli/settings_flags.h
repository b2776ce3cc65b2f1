// The settings table (train/settings.h) as CLI11 options. `unipelt train` adds every setting, `unipelt
// sweep` the ones it passes through to every run, `grads` and `params` the method's. Each option keeps
// its text in a SettingValues map and is checked at parse time by the setting's own parser, so every
// command accepts and rejects exactly the same values, with the same message.
#pragma once

#include <initializer_list>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "examples/cli/cli.h"
#include "train/settings.h"

namespace unipelt::cli {

using SettingValues = std::map<std::string, std::string>;  // flag -> text, for the flags given only

// The flags of the settings with one of these scopes, in table order.
std::vector<std::string> setting_flags(std::initializer_list<SettingScope> scopes);
// --method, --adapter/--prefix/--lora/--bitfit/--gates and the module sizes and gate pooling.
std::vector<std::string> method_setting_flags();

// The rule of setting `flag` as a CLI11 check, for an option of another name or meaning that takes the
// same values (the sweep's --out is a directory like train's).
CLI::Validator setting_rule(const std::string& flag);

// One option per flag. `required_too`: mark the settings the table calls required (train's --model,
// --data, --out) as required by CLI11.
// The options share ownership of `values`, so it outlives the parse whoever else holds it.
void add_setting_flags(CLI::App* cmd, const std::shared_ptr<SettingValues>& values,
                       const std::vector<std::string>& flags, bool required_too = false);

// The settings table's --threads (same rule, same help) for a command that takes no other training
// setting (eval, predict, gates); `threads` receives the value (0 = every CPU) when the flag is given.
// The command's callback passes it to set_cpu_threads (autograd/parallel.h).
void add_threads_flag(CLI::App* cmd, int& threads);

}  // namespace unipelt::cli

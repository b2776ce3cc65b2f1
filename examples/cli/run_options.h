// Command-line options shared by the subcommands that reopen a saved run (eval, gates, predict):
// --data, --model and --device replace what RUN/config.json says, e.g. after the data moved.
#pragma once

#include <string>

#include "examples/cli/cli.h"
#include "train/saved_run.h"

namespace unipelt::cli {

// Adds --model and --device, and --data unless `with_data` is false (predict reads its own TSV).
// `when` qualifies every help text, e.g. " (when recomputing)".
inline void add_run_override_options(CLI::App* cmd, RunOverrides& o, bool with_data, const std::string& when = "") {
  if (with_data)
    cmd->add_option("--data", o.data_dir, "Data root to use instead of the one in RUN/config.json" + when)
        ->check(CLI::ExistingDirectory);
  cmd->add_option("--model", o.model_dir,
                  "BERT directory to use instead of the one in RUN/config.json" + when +
                      " (it must hold the same weights: the checkpoint checks a hash)")
      ->check(CLI::ExistingDirectory);
  cmd->add_option_function<std::string>(
         "--device", [&o](const std::string& name) { o.device = parse_device(name); },
         "cpu or cuda instead of the run's device" + when)
      ->type_name("NAME")
      ->check(CLI::IsMember({"cpu", "cuda"}));
}

}  // namespace unipelt::cli

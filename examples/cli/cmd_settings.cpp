// `unipelt settings`: the settings table of `unipelt train` (train/settings.h) as Markdown, the table
// docs/training.md shows (a test checks that the two agree).
#include <iostream>

#include "examples/cli/cli.h"
#include "train/settings.h"

namespace unipelt::cli {

void add_settings_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("settings", "Print every `unipelt train` setting as a Markdown table: flag, "
                                             "config.json key, default, accepted values, what the sweep does with it");
  cmd->callback([] { std::cout << settings_markdown_table(); });
}

}  // namespace unipelt::cli

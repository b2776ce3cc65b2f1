// The `unipelt` program is one CLI11 app; each subcommand lives in its own examples/cmd_*.cpp and
// registers itself at start-up:
//
//   static const bool registered = unipelt::cli::register_command(20, [](CLI::App& app) {
//     auto* sub = app.add_subcommand("tokenize", "...");
//     ...
//     sub->callback([=] { ... throw unipelt::cli::Exit(code) on failure ... });
//   });
//
// `order` fixes the order subcommands appear in --help.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <stdexcept>

namespace unipelt::cli {

using Setup = std::function<void(CLI::App& app)>;
bool register_command(int order, Setup setup);

// Throw from a subcommand callback to end the program with this exit status.
struct Exit {
  int code;
};

}  // namespace unipelt::cli

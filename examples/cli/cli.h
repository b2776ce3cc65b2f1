// The `unipelt` program is one CLI11 app. Each subcommand lives in its own examples/cli/cmd_*.cpp and
// is added by one function declared here; unipelt_main.cpp lists them, in the order `--help` shows.
//
//   void add_tokenize_command(CLI::App& app) {
//     auto* sub = app.add_subcommand("tokenize", "...");
//     ...
//     sub->callback([=] { ... });   // throw unipelt::cli::Exit{code} to end with another status
//   }
//
// Exit statuses (the same for every subcommand; `unipelt --help` repeats them): 0 success, 1 a runtime
// error (a file that cannot be read, a run that failed), 2 a usage error (a bad flag or value), 130
// interrupted (Ctrl-C).
#pragma once

#include <CLI/CLI.hpp>
#include <stdexcept>

namespace unipelt::cli {

constexpr int kExitRuntimeError = 1;
constexpr int kExitUsage = 2;
constexpr int kExitInterrupted = 130;

// Throw from a subcommand callback to end the program with this exit status.
struct Exit {
  int code;
};

void add_gradcheck_ops_command(CLI::App& app);
void add_gradcheck_methods_command(CLI::App& app);  // a second subcommand of `gradcheck`
void add_tokenize_command(CLI::App& app);
void add_grads_command(CLI::App& app);
void add_params_command(CLI::App& app);
void add_train_command(CLI::App& app);
void add_eval_command(CLI::App& app);
void add_predict_command(CLI::App& app);
void add_gates_command(CLI::App& app);
void add_sweep_command(CLI::App& app);
void add_plot_command(CLI::App& app);
void add_export_command(CLI::App& app);
void add_convert_command(CLI::App& app);
void add_settings_command(CLI::App& app);

// For output-file flags: refuses, naming the flag, an empty path, a directory, and a path whose directory
// does not exist or cannot be written.
CLI::Validator writable_file_path();

// The whole program: every subcommand added to `app`, the exit statuses in the help's footer.
void add_all_commands(CLI::App& app);

// Runs the app on argv and returns the exit status: CLI11's usage errors and std::invalid_argument
// (bad settings found after parsing) give 2, Exit its code, other exceptions 1; each error is one
// line on stderr.
int run_app(CLI::App& app, int argc, const char* const* argv);

}  // namespace unipelt::cli

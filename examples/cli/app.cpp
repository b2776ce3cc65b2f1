// The whole `unipelt` app: the command list (in the order `unipelt --help` shows it) and the mapping
// from errors to exit statuses. unipelt_main.cpp is only main(); the tests build the same app.
#include <cstdio>
#include <exception>
#include <filesystem>

#include <unistd.h>

#include "examples/cli/cli.h"

namespace unipelt::cli {

void add_all_commands(CLI::App& app) {
  app.set_version_flag("--version", "unipelt " UNIPELT_VERSION, "Print the version and exit");
  app.require_subcommand(1);
  app.footer(
      "Run `unipelt COMMAND --help` for the flags of a command.\n"
      "Exit status: 0 success, 1 runtime error (unreadable file, failed run), 2 usage error (bad flag or value), "
      "130 interrupted (Ctrl-C).");
  add_gradcheck_ops_command(app);
  add_gradcheck_methods_command(app);
  add_tokenize_command(app);
  add_grads_command(app);
  add_params_command(app);
  add_train_command(app);
  add_eval_command(app);
  add_predict_command(app);
  add_gates_command(app);
  add_sweep_command(app);
  add_plot_command(app);
  add_export_command(app);
  add_convert_command(app);
  add_settings_command(app);
}

CLI::Validator writable_file_path() {
  return CLI::Validator(
      [](std::string& path) -> std::string {
        namespace fs = std::filesystem;
        std::error_code ec;
        if (path.empty()) return "must be a file path, got ''";
        if (fs::is_directory(path, ec)) return "must be a file path, got the directory '" + path + "'";
        const fs::path dir = fs::absolute(path, ec).parent_path();
        if (!fs::is_directory(dir, ec)) return "the directory '" + dir.string() + "' does not exist";
        if (::access(dir.c_str(), W_OK) != 0) return "the directory '" + dir.string() + "' is not writable";
        return "";
      },
      "FILE");
}

int run_app(CLI::App& app, int argc, const char* const* argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {  // --help, --version
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);  // prints the message (and, for a missing subcommand, the usage)
    return kExitUsage;
  } catch (const Exit& e) {
    return e.code;
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return kExitUsage;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return kExitRuntimeError;
  }
  return 0;
}

}  // namespace unipelt::cli

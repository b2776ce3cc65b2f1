// unipelt: the command-line front end. Subcommands register themselves (see cli.h).
#include <algorithm>
#include <cstdio>
#include <exception>
#include <vector>

#include "examples/cli.h"

namespace unipelt::cli {

std::vector<std::pair<int, Setup>>& registry() {
  static std::vector<std::pair<int, Setup>> commands;
  return commands;
}

bool register_command(int order, Setup setup) {
  registry().emplace_back(order, std::move(setup));
  return true;
}

}  // namespace unipelt::cli

int main(int argc, char** argv) {
  CLI::App app{"unipelt: UniPELT (adapter, prefix-tuning, LoRA, gates) on BERT, from scratch in C++"};
  app.require_subcommand(1);
  auto& commands = unipelt::cli::registry();
  std::stable_sort(commands.begin(), commands.end(), [](auto& a, auto& b) { return a.first < b.first; });
  for (auto& [order, setup] : commands) setup(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const unipelt::cli::Exit& e) {
    return e.code;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}

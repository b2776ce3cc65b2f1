// unipelt: the command-line front end. The subcommands are listed in examples/cli/app.cpp; each lives in
// its own examples/cli/cmd_*.cpp.
#include "examples/cli/cli.h"

int main(int argc, char** argv) {
  CLI::App app{"unipelt: UniPELT (adapter, prefix-tuning, LoRA, gates) on BERT, from scratch in C++"};
  unipelt::cli::add_all_commands(app);
  return unipelt::cli::run_app(app, argc, argv);
}

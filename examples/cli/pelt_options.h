// Command-line options shared by every subcommand that builds a PELT model (grads, params, train).
#pragma once

#include <optional>
#include <string>

#include "examples/cli/cli.h"
#include "pelt/config.h"

namespace unipelt::cli {

struct PeltOptions {
  std::string method = "unipelt-apl";
  std::optional<bool> adapter, prefix, lora, bitfit, gates;  // overrides of the preset
  int adapter_size = 0, prefix_len = 10, prefix_mid = 512, lora_r = 8;
  double lora_alpha = 16.0;
  std::string gate_pool = "masked";

  // The preset with every override applied; throws std::invalid_argument on bad values.
  PeltConfig resolve() const;
};

void add_pelt_options(CLI::App* app, PeltOptions& options);

}  // namespace unipelt::cli

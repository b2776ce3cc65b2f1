// Which PELT submodules are on, their sizes, and the named presets of the paper.
//
//   preset          adapter prefix LoRA BitFit  gates  (Mao et al. 2022, §3 and Table 1)
//   finetune          -      -      -     -      -     every base parameter trainable
//   bitfit            -      -      -     yes    -     every *bias trainable
//   adapter          yes     -      -     -      -
//   prefix            -     yes     -     -      -
//   lora              -      -     yes    -      -
//   unipelt-ap       yes    yes     -     -     yes
//   unipelt-apl      yes    yes    yes    -     yes
//   unipelt-nogate   yes    yes    yes    -      -
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace unipelt {

enum class GatePool { Masked, All };

struct PeltConfig {
  std::string method = "unipelt-apl";  // the preset this config came from ("custom" when edited)
  bool finetune = false;
  bool bitfit = false;
  bool adapter = false;
  bool prefix = false;
  bool lora = false;
  bool gated = false;
  GatePool gate_pool = GatePool::Masked;
  int adapter_size = 0;  // bottleneck m; 0 = hidden / 16 (48 for BERT-base)
  int prefix_len = 10;   // L
  int prefix_mid = 512;  // width of the reparameterisation MLP
  int lora_r = 8;
  double lora_alpha = 16.0;  // ungated scaling s = alpha / r = 2, the paper's α

  int resolved_adapter_size(int hidden) const { return adapter_size > 0 ? adapter_size : std::max(1, hidden / 16); }
  double lora_scaling() const { return lora_alpha / lora_r; }
  bool any_pelt_module() const { return adapter || prefix || lora; }

  nlohmann::json to_json() const;
  static PeltConfig from_json(const nlohmann::json& j);
  void validate() const;  // throws std::invalid_argument naming the bad field
};

// The named presets. Throws std::invalid_argument listing the valid names for an unknown one.
PeltConfig preset(const std::string& name);
const std::vector<std::string>& preset_names();

const char* gate_pool_name(GatePool pool);
GatePool parse_gate_pool(const std::string& name);

}  // namespace unipelt

#include "pelt/config.h"

#include <stdexcept>

#include "nn/file_io.h"

namespace unipelt {

const std::vector<std::string>& preset_names() {
  static const std::vector<std::string> names = {"finetune", "bitfit",      "adapter",     "prefix",
                                                 "lora",     "unipelt-ap",  "unipelt-apl", "unipelt-nogate"};
  return names;
}

PeltConfig preset(const std::string& name) {
  PeltConfig c;
  c.method = name;
  if (name == "finetune") c.finetune = true;
  else if (name == "bitfit") c.bitfit = true;
  else if (name == "adapter") c.adapter = true;
  else if (name == "prefix") c.prefix = true;
  else if (name == "lora") c.lora = true;
  else if (name == "unipelt-ap") c.adapter = c.prefix = c.gated = true;
  else if (name == "unipelt-apl") c.adapter = c.prefix = c.lora = c.gated = true;
  else if (name == "unipelt-nogate") c.adapter = c.prefix = c.lora = true;
  else {
    std::string valid;
    for (const auto& n : preset_names()) valid += (valid.empty() ? "" : ", ") + n;
    throw std::invalid_argument("unknown method '" + name + "' (valid: " + valid + ")");
  }
  return c;
}

const char* gate_pool_name(GatePool pool) { return pool == GatePool::Masked ? "masked" : "all"; }

GatePool parse_gate_pool(const std::string& name) {
  if (name == "masked") return GatePool::Masked;
  if (name == "all") return GatePool::All;
  throw std::invalid_argument("gate pooling must be 'masked' or 'all', got '" + name + "'");
}

void PeltConfig::validate() const {
  auto need = [](bool ok, const std::string& what) {
    if (!ok) throw std::invalid_argument("PELT config: " + what);
  };
  need(adapter_size >= 0, "adapter_size must be >= 0 (0 = hidden/16)");
  need(prefix_len > 0, "prefix_len must be positive");
  need(prefix_mid > 0, "prefix_mid must be positive");
  need(lora_r > 0, "lora_r must be positive");
  need(!finetune || !(bitfit || any_pelt_module()), "finetune cannot be combined with other methods");
}

nlohmann::json PeltConfig::to_json() const {
  return {{"method", method},         {"finetune", finetune},     {"bitfit", bitfit},
          {"adapter", adapter},       {"prefix", prefix},         {"lora", lora},
          {"gated", gated},           {"gate_pool", gate_pool_name(gate_pool)},
          {"adapter_size", adapter_size}, {"prefix_len", prefix_len}, {"prefix_mid", prefix_mid},
          {"lora_r", lora_r},         {"lora_alpha", lora_alpha}};
}

PeltConfig PeltConfig::from_json(const nlohmann::json& j) {
  PeltConfig c;
  c.method = j.at("method").get<std::string>();
  c.finetune = j.at("finetune").get<bool>();
  c.bitfit = j.at("bitfit").get<bool>();
  c.adapter = j.at("adapter").get<bool>();
  c.prefix = j.at("prefix").get<bool>();
  c.lora = j.at("lora").get<bool>();
  c.gated = j.at("gated").get<bool>();
  c.gate_pool = parse_gate_pool(j.at("gate_pool").get<std::string>());
  c.adapter_size = json_integer<int>(j, "adapter_size");  // (get<int>() would cast 1e300: undefined)
  c.prefix_len = json_integer<int>(j, "prefix_len");
  c.prefix_mid = json_integer<int>(j, "prefix_mid");
  c.lora_r = json_integer<int>(j, "lora_r");
  c.lora_alpha = j.at("lora_alpha").get<double>();
  c.validate();
  return c;
}

}  // namespace unipelt

#include "examples/cli/pelt_options.h"

namespace unipelt::cli {

void add_pelt_options(CLI::App* app, PeltOptions& o) {
  std::string methods;
  for (const auto& n : preset_names()) methods += (methods.empty() ? "" : ", ") + n;
  app->add_option("--method", o.method, "Tuning method preset: " + methods)->capture_default_str();
  auto on_off = [](std::optional<bool>& target) {
    return [&target](const std::string& v) {
      if (v != "on" && v != "off") throw CLI::ValidationError("expected on or off, got " + v);
      target = v == "on";
    };
  };
  app->add_option_function<std::string>("--adapter", on_off(o.adapter), "Override the preset: adapter on|off");
  app->add_option_function<std::string>("--prefix", on_off(o.prefix), "Override the preset: prefix-tuning on|off");
  app->add_option_function<std::string>("--lora", on_off(o.lora), "Override the preset: LoRA on|off");
  app->add_option_function<std::string>("--bitfit", on_off(o.bitfit), "Override the preset: BitFit on|off");
  app->add_option_function<std::string>("--gates", on_off(o.gates), "Override the preset: UniPELT gates on|off");
  app->add_option("--adapter-size", o.adapter_size, "Adapter bottleneck m (0 = hidden/16, 48 for BERT-base)")
      ->capture_default_str();
  app->add_option("--prefix-len", o.prefix_len, "Prefix length L")->capture_default_str();
  app->add_option("--prefix-mid", o.prefix_mid, "Width of the prefix reparameterisation MLP")->capture_default_str();
  app->add_option("--lora-r", o.lora_r, "LoRA rank r")->capture_default_str();
  app->add_option("--lora-alpha", o.lora_alpha, "LoRA alpha; ungated scaling is alpha/r")->capture_default_str();
  app->add_option("--gate-pool", o.gate_pool,
                  "How gates pool token scores: masked (real tokens only) or all (padding included, as the "
                  "official code)")
      ->capture_default_str()
      ->check(CLI::IsMember({"masked", "all"}));
}

PeltConfig PeltOptions::resolve() const {
  PeltConfig c = preset(method);
  if (adapter) c.adapter = *adapter;
  if (prefix) c.prefix = *prefix;
  if (lora) c.lora = *lora;
  if (bitfit) c.bitfit = *bitfit;
  if (gates) c.gated = *gates;
  if (adapter || prefix || lora || bitfit || gates) c.method = method + " (modified)";
  c.adapter_size = adapter_size;
  c.prefix_len = prefix_len;
  c.prefix_mid = prefix_mid;
  c.lora_r = lora_r;
  c.lora_alpha = lora_alpha;
  c.gate_pool = parse_gate_pool(gate_pool);
  c.validate();
  return c;
}

}  // namespace unipelt::cli

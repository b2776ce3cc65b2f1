// Parity with the independent PyTorch reference (tests/reference/): every case of
// tests/fixtures/cases.json (8 presets × 2 gate poolings × 2 tasks), built exactly as `unipelt grads`
// builds it, in-process and through the real CLI (float64 and float32).
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "nn/batch_io.h"
#include "nn/bert_loader.h"
#include "nn/safetensors.h"
#include "pelt/grads.h"
#include "tests/test_util.h"

using namespace unipelt;
namespace fs = std::filesystem;

namespace {

nlohmann::json load_cases() {
  std::ifstream in(testing::source_dir() / "tests" / "fixtures" / "cases.json");
  REQUIRE(in.good());
  return nlohmann::json::parse(in);
}

// flag -> value from the case's "flags" list ("--method", "unipelt-apl", ...).
std::map<std::string, std::string> flag_map(const nlohmann::json& flags) {
  std::map<std::string, std::string> m;
  for (size_t i = 0; i + 1 < flags.size(); i += 2) m[flags[i].get<std::string>()] = flags[i + 1].get<std::string>();
  return m;
}

// |a - e| <= atol + rtol·|e| everywhere; the worst offender described, or "" when all fine.
std::string mismatch(const std::vector<double>& a, const std::vector<double>& e, double rtol, double atol) {
  if (a.size() != e.size()) return "size " + std::to_string(a.size()) + " vs " + std::to_string(e.size());
  double worst_excess = -1;
  std::string worst;
  for (size_t i = 0; i < a.size(); ++i) {
    const double err = std::abs(a[i] - e[i]), bound = atol + rtol * std::abs(e[i]);
    if (!(err <= bound) && err - bound > worst_excess) {
      worst_excess = err - bound;
      std::ostringstream s;
      s.precision(17);
      s << "element " << i << ": got " << a[i] << ", expected " << e[i] << " (|diff| " << err << ", bound " << bound
        << ")";
      worst = s.str();
    }
  }
  return worst;
}

// Compares named outputs with an expected fixture file: the same names, the same shapes, values within
// tolerance.
void compare_with_expected(const std::map<std::string, std::pair<Shape, std::vector<double>>>& outputs,
                           const fs::path& expected_path, double rtol, double atol) {
  SafetensorsFile expected(expected_path);
  std::set<std::string> out_names, expected_names;
  for (const auto& [name, v] : outputs) out_names.insert(name);
  for (const std::string& name : expected.names()) expected_names.insert(name);
  CHECK(out_names == expected_names);
  for (const std::string& name : expected.names()) {
    INFO("tensor " << name);
    auto it = outputs.find(name);
    if (it == outputs.end()) continue;  // reported by the name-set check
    const StTensorInfo& info = expected.info(name);
    CHECK(it->second.first == Shape(info.shape.begin(), info.shape.end()));
    CHECK(mismatch(it->second.second, expected.load(name, DType::F64).to_vector(), rtol, atol) == "");
  }
}

std::map<std::string, std::pair<Shape, std::vector<double>>> read_all(const fs::path& path) {
  SafetensorsFile f(path);
  std::map<std::string, std::pair<Shape, std::vector<double>>> out;
  for (const std::string& name : f.names()) {
    Tensor t = f.load(name, DType::F64);
    out[name] = {t.shape(), t.to_vector()};
  }
  return out;
}

const nlohmann::json& find_case(const nlohmann::json& cases, const std::string& name) {
  for (const auto& c : cases.at("cases"))
    if (c.at("name") == name) return c;
  FAIL("no case " << name << " in cases.json");
  return cases;
}

// Runs `unipelt grads` for a case with the given dtype; returns the output path.
fs::path run_cli_grads(const nlohmann::json& c, const std::string& dtype, const fs::path& dir) {
  const fs::path root = testing::source_dir();
  const fs::path out = dir / ("out-" + dtype + ".safetensors");
  std::string cmd = std::string(UNIPELT_CLI) + " grads --model " + (root / c.at("model").get<std::string>()).string() +
                    " --batch " + (root / c.at("batch").get<std::string>()).string() + " --init " +
                    (root / c.at("init").get<std::string>()).string() + " --out " + out.string();
  const nlohmann::json& flags = c.at("flags");
  for (size_t i = 0; i < flags.size(); ++i) {
    std::string v = flags[i].get<std::string>();
    if (i > 0 && flags[i - 1].get<std::string>() == "--dtype") v = dtype;
    cmd += " " + v;
  }
  cmd += " > " + (dir / ("log-" + dtype + ".txt")).string() + " 2>&1";
  INFO(cmd);
  REQUIRE(std::system(cmd.c_str()) == 0);
  REQUIRE(fs::exists(out));
  return out;
}

}  // namespace

TEST_CASE("every parity case matches the PyTorch reference in float64", "[parity]") {
  const nlohmann::json cases = load_cases();
  const fs::path root = testing::source_dir();
  REQUIRE(cases.at("cases").size() == 32);
  std::set<std::string> methods;
  for (const auto& c : cases.at("cases")) {
    const std::string name = c.at("name").get<std::string>();
    INFO("case " << name);
    const auto flags = flag_map(c.at("flags"));
    methods.insert(flags.at("--method"));

    BertLoadOptions load;
    load.num_labels = c.at("num_labels").get<int>();
    load.dtype = flags.at("--dtype") == "f64" ? DType::F64 : DType::F32;
    REQUIRE(load.dtype == DType::F64);
    load.seed = std::stoull(flags.at("--seed"));
    auto bert = load_bert(root / c.at("model").get<std::string>(), load);
    REQUIRE(bert->is_regression() == (c.at("task") == "regression"));

    PeltConfig config = preset(flags.at("--method"));
    config.adapter_size = std::stoi(flags.at("--adapter-size"));
    config.prefix_len = std::stoi(flags.at("--prefix-len"));
    config.prefix_mid = std::stoi(flags.at("--prefix-mid"));
    config.lora_r = std::stoi(flags.at("--lora-r"));
    config.lora_alpha = std::stod(flags.at("--lora-alpha"));
    config.gate_pool = parse_gate_pool(flags.at("--gate-pool"));
    PeltModel model(*bert, config, load.seed);
    load_named_tensors(model, root / c.at("init").get<std::string>());
    Batch batch = read_batch(root / c.at("batch").get<std::string>(), load.dtype, Device::CPU, bert->is_regression());
    auto outputs = forward_backward_outputs(model, batch);

    // The manifest's own lists agree with what we produced.
    std::set<std::string> gates, grads, expected_gates, expected_grads;
    for (const auto& [n, t] : outputs) {
      if (n.rfind("gate/", 0) == 0) gates.insert(n.substr(5));
      if (n.rfind("grad/", 0) == 0) grads.insert(n.substr(5));
    }
    for (const auto& g : c.at("gates")) expected_gates.insert(g.get<std::string>());
    for (const auto& g : c.at("trainable")) expected_grads.insert(g.get<std::string>());
    CHECK(gates == expected_gates);
    CHECK(grads == expected_grads);
    CHECK(outputs.size() == 2 + gates.size() + grads.size());
    CHECK(std::abs(outputs[1].second.item() - c.at("loss").get<double>()) <= 1e-12 + 1e-7 * std::abs(c.at("loss").get<double>()));

    std::map<std::string, std::pair<Shape, std::vector<double>>> by_name;
    for (const auto& [n, t] : outputs) {
      CHECK(t.dtype() == DType::F64);
      by_name[n] = {t.shape(), t.to_vector()};
    }
    compare_with_expected(by_name, root / c.at("expected").get<std::string>(), 1e-7, 1e-12);
  }
  CHECK(methods.size() == 8);
}

TEST_CASE("the unipelt grads CLI matches the reference for a gated case, in f64 and f32", "[parity]") {
  const nlohmann::json cases = load_cases();
  const nlohmann::json& c = find_case(cases, "unipelt-apl-all-reg");
  const fs::path expected = testing::source_dir() / c.at("expected").get<std::string>();
  const fs::path dir = testing::scratch_dir("parity_cli");

  const fs::path out64 = run_cli_grads(c, "f64", dir);
  {
    SafetensorsFile f(out64);
    CHECK(f.info("logits").dtype == StDType::F64);
    CHECK(f.contains("gate/layer.1.lora_value"));
  }
  {
    INFO("f64");
    compare_with_expected(read_all(out64), expected, 1e-7, 1e-12);
  }

  const fs::path out32 = run_cli_grads(c, "f32", dir);
  {
    SafetensorsFile f(out32);
    CHECK(f.info("logits").dtype == StDType::F32);
  }
  {
    INFO("f32");
    compare_with_expected(read_all(out32), expected, 1e-3, 1e-5);
  }
}

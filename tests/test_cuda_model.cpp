// Whole-model CPU-vs-GPU parity: `grads` outputs for every preset, and a short training run.
// Without a CUDA device (or without the CUDA backend) every case reports itself as skipped.
#include <catch2/catch.hpp>

#include <cmath>
#include <fstream>

#include <nlohmann/json.hpp>

#include "autograd/backend.h"
#include "autograd/tape.h"
#include "nn/batch_io.h"
#include "nn/bert_loader.h"
#include "nn/optim.h"
#include "pelt/grads.h"
#include "tests/test_util.h"

using namespace unipelt;

namespace {

void require_cuda() {
  if (!cuda_available()) testing::skip("no CUDA device (or the build has no CUDA backend): GPU parity not run");
}

struct Case {
  std::string method, pool, model, batch, init;
  int num_labels;
};

std::vector<Case> fixture_cases() {
  std::ifstream in(testing::source_dir() / "tests/fixtures/cases.json");
  nlohmann::json j = nlohmann::json::parse(in);
  std::vector<Case> out;
  for (const auto& c : j.at("cases"))
    out.push_back({c.at("method"), c.at("gate_pool"), c.at("model"), c.at("batch"), c.at("init"), c.at("num_labels")});
  return out;
}

// Runs one fixture case on a device in float32 and returns the `grads` outputs.
std::vector<std::pair<std::string, Tensor>> run_case(const Case& c, Device device) {
  const auto root = testing::source_dir();
  auto bert = load_bert(root / c.model, {c.num_labels, DType::F32, device, 0});
  PeltConfig config = testing::small_preset(c.method);
  config.gate_pool = parse_gate_pool(c.pool);
  PeltModel model(*bert, config, 0);
  load_named_tensors(model, root / c.init);
  Batch batch = read_batch(root / c.batch, DType::F32, device, c.num_labels == 1);
  return forward_backward_outputs(model, batch);
}

// Normalised mean squared error: Σ(a-b)² / Σ b², the parity measure of ggml's test-backend-ops.
double nmse(const std::vector<double>& a, const std::vector<double>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += b[i] * b[i];
  }
  return den > 0 ? num / den : num;
}

}  // namespace

TEST_CASE("cuda model parity: grads outputs of every preset match the CPU in float32", "[cuda]") {
  require_cuda();
  // float32 on both sides; the GPU sums in a different order (cuBLAS, parallel reductions), so we ask for
  // agreement to float32 rounding accumulated over a few layers: NMSE below 1e-9 (relative error ~3e-5).
  for (const Case& c : fixture_cases()) {
    INFO(c.method << " " << c.pool << " labels " << c.num_labels);
    auto cpu = run_case(c, Device::CPU);
    auto gpu = run_case(c, Device::CUDA);
    REQUIRE(cpu.size() == gpu.size());
    for (size_t i = 0; i < cpu.size(); ++i) {
      INFO(cpu[i].first);
      CHECK(cpu[i].first == gpu[i].first);
      CHECK(nmse(gpu[i].second.to_vector(), cpu[i].second.to_vector()) < 1e-9);
    }
  }
}

TEST_CASE("cuda model parity: a short training run has the same losses on CPU and GPU", "[cuda]") {
  require_cuda();
  const auto root = testing::source_dir();
  auto losses_on = [&](Device device) {
    auto bert = load_bert(root / "tests/fixtures/tiny-bert", {3, DType::F32, device, 0});
    PeltModel model(*bert, testing::small_preset("unipelt-apl"), 0);
    load_named_tensors(model, root / "tests/fixtures/pelt/unipelt-apl-cls.safetensors");
    Batch batch = read_batch(root / "tests/fixtures/batch-cls.safetensors", DType::F32, device, false);
    auto params = model.trainable_parameters();
    AdamW opt(params, {1e-2, 0.9, 0.999, 1e-8, 0.0});
    std::vector<double> losses;
    for (int step = 0; step < 10; ++step) {
      tape().clear();
      for (auto& p : params) p.tensor.zero_grad();
      ForwardContext ctx{true, 1000u + static_cast<uint64_t>(step), 0};  // dropout on: same masks on both devices
      auto out = model.forward(batch, ctx);
      losses.push_back(out.loss.item());
      backward(out.loss);
      clip_grad_norm(params, 1.0);
      opt.step(1e-2);
    }
    return losses;
  };
  const auto cpu = losses_on(Device::CPU);
  const auto gpu = losses_on(Device::CUDA);
  for (size_t i = 0; i < cpu.size(); ++i) {
    INFO("step " << i << ": cpu " << cpu[i] << " gpu " << gpu[i]);
    CHECK(std::abs(cpu[i] - gpu[i]) <= 1e-4 * (1.0 + std::abs(cpu[i])));  // stated tolerance: 1e-4 relative
  }
}

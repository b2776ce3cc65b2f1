// Learner program 3: the eight presets side by side on one BERT configuration — how many parameters
// each trains and stores, and the matrix-product FLOPs of one training step, forward and backward,
// measured by running the step under a FlopCounter (autograd/flop_counter.h).
//
//   build/example_method_costs [CONFIG.json] [--batch B] [--seq T]
//
// CONFIG defaults to BERT-base's bert/bert-base-uncased/bert_config.json in the data mirror
// ($UNIPELT_MIRROR, else ../shared/data) when it exists, else tests/fixtures/tiny-bert/config.json (run
// from the source tree). B defaults to 1, T to 128 (at most the
// config's max_position_embeddings). The weights are zeros: FLOPs do not depend on the values.
// Exit status 0 when the measured costs obey the rule docs/gradients.md derives — each forward product
// has at most two gradient products of its size (dx and dW), so a backward is at most twice its forward:
// exactly twice for fine-tuning, less for every method with a frozen weight — 1 otherwise, 2 on a
// usage error.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "autograd/flop_counter.h"
#include "autograd/tape.h"
#include "pelt/unipelt.h"

using namespace unipelt;

namespace {

struct Cost {
  ParameterCounts params;
  int64_t forward = 0, backward = 0;
  size_t tape_nodes = 0;
};

// One training step of `method` (dropout off) on a batch of B sequences of T real tokens.
Cost measure(const BertConfig& config, const std::string& method, int64_t B, int64_t T) {
  BertForSequenceClassification bert(config, DType::F32);
  PeltModel model(bert, preset(method), /*seed=*/0);
  const std::vector<int32_t> zeros(static_cast<size_t>(B * T), 0);
  Batch batch{Tensor::from_ints(zeros, {B, T}), Tensor::from_ints(zeros, {B, T}),
              Tensor::full({B, T}, 1.0, DType::F32), Tensor::from_ints(std::vector<int32_t>(B, 0), {B})};
  tape().clear();
  Cost cost{count_parameters(model)};
  FlopCounter flops;
  ForwardContext ctx;
  Tensor loss = model.forward(batch, ctx).loss;
  cost.forward = flops.flops();
  cost.tape_nodes = tape().size();
  backward(loss);
  cost.backward = flops.flops() - cost.forward;
  return cost;
}

// BERT-base's config from the data mirror ($UNIPELT_MIRROR, else ../shared/data), else the tiny fixture.
std::filesystem::path default_config() {
  const char* mirror = std::getenv("UNIPELT_MIRROR");
  const std::filesystem::path data = mirror && *mirror ? mirror : "../shared/data";
  const std::filesystem::path base = data / "bert/bert-base-uncased/bert_config.json";
  return std::filesystem::exists(base) ? base : std::filesystem::path("tests/fixtures/tiny-bert/config.json");
}

}  // namespace

int main(int argc, char** argv) {
  std::filesystem::path config_path = default_config();
  int64_t B = 1, T = 128;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if ((arg == "--batch" || arg == "--seq") && i + 1 < argc) {
      (arg == "--batch" ? B : T) = std::atoll(argv[++i]);
    } else if (arg.rfind("--", 0) != 0) {
      config_path = arg;
    } else {
      std::fprintf(stderr, "usage: %s [CONFIG.json] [--batch B] [--seq T]\n", argv[0]);
      return 2;
    }
  }
  if (B < 1 || T < 1 || !std::filesystem::exists(config_path)) {
    std::fprintf(stderr, "%s: need an existing config.json and B, T >= 1 (got %s, B %lld, T %lld)\n", argv[0],
                 config_path.c_str(), static_cast<long long>(B), static_cast<long long>(T));
    return 2;
  }
  const BertConfig config = load_bert_config(config_path);
  T = std::min<int64_t>(T, config.max_position_embeddings);
  std::printf("config %s: %d layers, hidden %d, %d heads, intermediate %d\n", config_path.c_str(),
              config.num_hidden_layers, config.hidden_size, config.num_attention_heads, config.intermediate_size);
  std::printf("one training step on B = %lld sequences of T = %lld tokens; matrix-product FLOPs (2·m·n·k per "
              "product)\n\n", static_cast<long long>(B), static_cast<long long>(T));
  std::printf("%-15s %12s %8s %12s %8s %11s %11s %8s %8s %6s\n", "method", "trained", "%", "stored", "%",
              "fwd FLOPs", "bwd FLOPs", "bwd/fwd", "step/FT", "nodes");

  Cost finetune;
  bool ok = true;
  for (const std::string& method : preset_names()) {
    const Cost c = measure(config, method, B, T);
    if (method == "finetune") finetune = c;
    const double base = static_cast<double>(c.params.base);
    const double step_vs_ft = static_cast<double>(c.forward + c.backward) /
                              static_cast<double>(finetune.forward + finetune.backward);
    std::printf("%-15s %12lld %7.2f%% %12lld %7.2f%% %11.4e %11.4e %8.3f %8.3f %6zu\n", method.c_str(),
                static_cast<long long>(c.params.trained), 100.0 * static_cast<double>(c.params.trained) / base,
                static_cast<long long>(c.params.stored), 100.0 * static_cast<double>(c.params.stored) / base,
                static_cast<double>(c.forward), static_cast<double>(c.backward),
                static_cast<double>(c.backward) / static_cast<double>(c.forward), step_vs_ft, c.tape_nodes);
    if (method == "finetune") ok = ok && c.backward == 2 * c.forward;  // every product: dx and dW
    else ok = ok && c.backward < 2 * c.forward;                       // frozen weights: no dW
  }
  std::printf("\ntrained and stored exclude the classification head; stored keeps the prefix as its ejected "
              "table P.\n");
  std::printf(ok ? "cost checks passed: fine-tuning's backward is 2x its forward, every other method's less than 2x\n"
                 : "cost checks FAILED\n");
  return ok ? 0 : 1;
}

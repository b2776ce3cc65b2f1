// The CPU backend's threads (autograd/parallel.h) never change a result: the same training steps at 1, 2
// and 3 threads give the same bits, for every kernel a step uses (GEMM blocks, element-wise kernels,
// softmax, layer norm and its dγ/dβ partial sums, embedding scatter, reductions, AdamW). The shapes are
// chosen so that every kernel cuts its work into several blocks (a tiny model would run each kernel as
// one block and prove nothing).
#include <catch2/catch.hpp>

#include <cstring>
#include <stdexcept>
#include <vector>

#include "autograd/ops.h"
#include "autograd/parallel.h"
#include "nn/optim.h"
#include "pelt/method_checks.h"
#include "pelt/unipelt.h"
#include "tests/test_util.h"
#include "train/trainer.h"

namespace {

using namespace unipelt;

// Restores the thread count a test found.
struct ThreadCountGuard {
  int saved = cpu_threads();
  ~ThreadCountGuard() { set_cpu_threads(saved); }
};

// Hidden 64 in 4 heads, intermediate 256, batch 8 × 64 tokens with padding: 512 rows of 64, so element-wise
// kernels (16,384-element blocks), layer norm (256-row blocks), the products (256-row GEMM blocks) and
// the embedding scatter (32-column blocks) all run as several blocks.
BertConfig medium_test_config() {
  BertConfig c = tiny_bert_config(2);  // 2 layers, 2 labels; wider and longer:
  c.vocab_size = 300;
  c.hidden_size = 64;
  c.num_attention_heads = 4;
  c.intermediate_size = 256;
  c.max_position_embeddings = 64;
  return c;
}

Batch padded_batch(int64_t B, int64_t T, int vocab) {
  std::vector<int32_t> ids(static_cast<size_t>(B * T)), labels(static_cast<size_t>(B));
  std::vector<float> mask(static_cast<size_t>(B * T));
  uint64_t state = 12345;
  for (int64_t b = 0; b < B; ++b) {
    const int64_t length = T - 5 * b;  // row b has 5·b padding tokens
    for (int64_t t = 0; t < T; ++t) {
      state = state * 6364136223846793005ull + 1442695040888963407ull;
      ids[static_cast<size_t>(b * T + t)] = t < length ? static_cast<int32_t>(5 + (state >> 33) % (vocab - 5)) : 0;
      mask[static_cast<size_t>(b * T + t)] = t < length ? 1.0f : 0.0f;
    }
    labels[static_cast<size_t>(b)] = static_cast<int32_t>(b % 2);
  }
  Batch batch;
  batch.input_ids = Tensor::from_ints(ids, {B, T}, Device::CPU);
  batch.token_type_ids = Tensor::zeros({B, T}, DType::I32, Device::CPU);
  batch.attention_mask = Tensor::from_vector(std::vector<double>(mask.begin(), mask.end()), {B, T}, DType::F32,
                                             Device::CPU);
  batch.labels = Tensor::from_ints(labels, {B}, Device::CPU);
  return batch;
}

// Every trainable tensor's bytes and the losses after `steps` training steps (dropout on) of `method`.
std::vector<std::vector<char>> train_bits(const std::string& method, int threads, int steps) {
  set_cpu_threads(threads);
  const BertConfig config = medium_test_config();
  BertForSequenceClassification bert(config, DType::F32, Device::CPU);
  bert.init_weights(7);
  PeltModel model(bert, testing::small_preset(method, 16), 11);
  const std::vector<NamedTensor> params = model.trainable_parameters();
  AdamW optimizer(params, AdamWOptions{1e-3});
  TrainConfig settings;
  settings.seed = 5;
  const Batch batch = padded_batch(8, 64, config.vocab_size);
  std::vector<std::vector<char>> bits;
  for (int step = 0; step < steps; ++step) {
    const double loss = training_step(model, params, optimizer, &batch, settings, step, 1e-3);
    bits.emplace_back(reinterpret_cast<const char*>(&loss), reinterpret_cast<const char*>(&loss) + sizeof loss);
  }
  for (const NamedTensor& p : params) {
    const char* data = static_cast<const char*>(p.tensor.data());
    bits.emplace_back(data, data + p.tensor.numel() * static_cast<int64_t>(dtype_size(p.tensor.dtype())));
  }
  return bits;
}

}  // namespace

TEST_CASE("training steps give the same bits at 1, 2 and 3 CPU threads", "[threads]") {
  ThreadCountGuard guard;
  for (const std::string method : {"finetune", "unipelt-apl"}) {
    INFO(method);
    const auto one = train_bits(method, 1, 2);
    CHECK(train_bits(method, 2, 2) == one);
    CHECK(train_bits(method, 3, 2) == one);
  }
}

TEST_CASE("parallel_for: fixed blocks, every element once, sums in block order", "[threads]") {
  ThreadCountGuard guard;
  // A sum long enough for many partial sums (8,192 elements each), of values whose float32 sum depends
  // on the order of the additions.
  std::vector<double> values(100003);
  for (size_t i = 0; i < values.size(); ++i) values[i] = 1.0 / static_cast<double>(1 + i % 977);
  const Tensor x = Tensor::from_vector(values, {static_cast<int64_t>(values.size())}, DType::F32);
  std::vector<std::vector<double>> sums;
  for (int threads : {1, 2, 3}) {
    set_cpu_threads(threads);
    CHECK(cpu_threads() == threads);
    std::vector<int> visits(1000, 0);
    parallel_for(1000, 7, [&](int64_t b, int64_t e) {
      CHECK((b % 7 == 0 && (e - b == 7 || e == 1000)));
      for (int64_t i = b; i < e; ++i) ++visits[static_cast<size_t>(i)];
    });
    CHECK(visits == std::vector<int>(1000, 1));
    sums.push_back(ops::sum(x).to_vector());
  }
  CHECK(sums[1] == sums[0]);
  CHECK(sums[2] == sums[0]);
  CHECK(block_count(0, 4) == 0);
  CHECK(block_count(9, 4) == 3);
}

TEST_CASE("parallel_for rethrows a block's exception, set_cpu_threads checks its argument", "[threads]") {
  ThreadCountGuard guard;
  set_cpu_threads(2);
  CHECK_THROWS_AS(parallel_for(100, 10,
                               [](int64_t b, int64_t) {
                                 if (b == 50) throw std::runtime_error("block 5");
                               }),
                  std::runtime_error);
  CHECK_THROWS_AS(set_cpu_threads(-1), std::invalid_argument);
  set_cpu_threads(0);
  CHECK(cpu_threads() == available_cpus());
}

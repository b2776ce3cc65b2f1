// The CPU backend's threads (autograd/parallel.h) never change a result: the same training steps at 1, 2
// and 3 threads give the same bits, for every kernel a step uses (GEMM blocks, element-wise kernels,
// softmax, layer norm and its dγ/dβ partial sums, embedding scatter, reductions, AdamW). The shapes are
// chosen so that every kernel cuts its work into several blocks (a tiny model would run each kernel as
// one block and prove nothing). Every path of the CPU GEMM (cut along M, N or K, matrix-vector, one
// block) is also checked on its own: exactly against float64, and for the same bits at 1, 2 and 3 threads.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "autograd/backend.h"
#include "autograd/cpu_backend.h"
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

namespace {

// C = alpha·op(A)·op(B) + beta·C through the CPU backend, float32, with every leading dimension padded
// by 3 (the padding of C must stay untouched). When `exact`, A and B hold small integers over 8, so
// every partial sum is exact in float32 and any order of the additions gives the same value: the
// result must equal the float64 product exactly. Otherwise they hold values whose float32 sum depends
// on the order of the additions (for the same-bits check).
std::vector<float> backend_gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float beta, int threads,
                                bool exact) {
  set_cpu_threads(threads);
  const int64_t a_rows = ta ? k : m, a_cols = ta ? m : k, b_rows = tb ? n : k, b_cols = tb ? k : n;
  const int64_t lda = a_cols + 3, ldb = b_cols + 3, ldc = n + 3;
  std::vector<float> a(static_cast<size_t>(a_rows * lda)), b(static_cast<size_t>(b_rows * ldb));
  for (size_t i = 0; i < a.size(); ++i) {
    const float x = static_cast<float>(i);
    a[i] = exact ? static_cast<float>(static_cast<int>(i * 7 % 17) - 8) / 8.0f : std::sin(0.37f * x);
  }
  for (size_t i = 0; i < b.size(); ++i) {
    const float x = static_cast<float>(i);
    b[i] = exact ? static_cast<float>(static_cast<int>(i * 5 % 13) - 6) / 8.0f : std::cos(0.91f * x);
  }
  std::vector<float> c(static_cast<size_t>(m * ldc));
  for (size_t i = 0; i < c.size(); ++i) c[i] = beta == 0.0f ? std::nanf("") : static_cast<float>(i % 5);
  backend(Device::CPU).gemm(DType::F32, ta, tb, m, n, k, 0.5, a.data(), lda, b.data(), ldb, beta, c.data(), ldc);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < ldc; ++j) {
      const size_t at = static_cast<size_t>(i * ldc + j);
      const double before = beta == 0.0f ? std::nan("") : static_cast<double>(at % 5);
      if (j >= n) {  // padding: untouched
        if (beta == 0.0f) CHECK(std::isnan(c[at]));
        else CHECK(c[at] == before);
        continue;
      }
      if (!exact) continue;
      double sum = 0;
      for (int64_t p = 0; p < k; ++p)
        sum += static_cast<double>(a[static_cast<size_t>(ta ? p * lda + i : i * lda + p)]) *
               static_cast<double>(b[static_cast<size_t>(tb ? j * ldb + p : p * ldb + j)]);
      const double expected = 0.5 * sum + (beta == 0.0f ? 0.0 : beta * before);
      if (static_cast<double>(c[at]) != expected) {
        FAIL_CHECK("C[" << i << "," << j << "] = " << c[at] << ", expected " << expected);
        return c;
      }
    }
  return c;
}

}  // namespace

TEST_CASE("cpu gemm: split along K, along M or N, and as matrix-vector products, exact and the same bits at any "
          "thread count",
          "[threads]") {
  ThreadCountGuard guard;
  struct Shape3 {
    int64_t m, n, k;
    CpuGemmPath expected;
    const char* path;
  };
  const Shape3 shapes[] = {{8, 256, 2048, CpuGemmPath::SplitK, "split along K (4 chunks)"},
                           {8, 256, 2050, CpuGemmPath::SplitK, "split along K (4 chunks, the last one shorter)"},
                           {128, 128, 2048, CpuGemmPath::SplitK, "split along K (8 chunks)"},
                           {2048, 1, 256, CpuGemmPath::Gemv, "one column of C: gemv"},
                           {1, 256, 2048, CpuGemmPath::Gemv, "one row of C: gemv"},
                           {1, 1, 300, CpuGemmPath::Gemv, "a dot product"},
                           {1024, 96, 64, CpuGemmPath::CutM, "cut along M"},
                           {40, 1024, 64, CpuGemmPath::CutN, "cut along N"},
                           {3, 5, 7, CpuGemmPath::OneBlock, "one small block"}};
  for (const Shape3& s : shapes) {
    INFO(s.path);
    CHECK(cpu_gemm_path(s.m, s.n, s.k, 1) == s.expected);
  }
  CHECK(cpu_gemm_path(128, 64, 138, 64) == CpuGemmPath::Batched);
  for (const Shape3& s : shapes)
    for (bool ta : {false, true})
      for (bool tb : {false, true})
        for (float beta : {0.0f, 1.0f}) {
          INFO(s.path << ": m " << s.m << " n " << s.n << " k " << s.k << (ta ? " Aᵀ" : " A") << (tb ? " Bᵀ" : " B")
                      << " beta " << beta);
          backend_gemm(ta, tb, s.m, s.n, s.k, beta, 2, true);
          const std::vector<float> one = backend_gemm(ta, tb, s.m, s.n, s.k, beta, 1, false);
          for (int threads : {2, 3}) {
            const std::vector<float> more = backend_gemm(ta, tb, s.m, s.n, s.k, beta, threads, false);
            CHECK(std::memcmp(one.data(), more.data(), one.size() * sizeof(float)) == 0);
          }
        }
}

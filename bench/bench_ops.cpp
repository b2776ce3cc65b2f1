// `bench ops`: forward and backward of single ops in float32 on the CPU, timed through the real op
// code (allocation, tape recording, the backward closure with its gradient accumulation), next to the
// raw cblas_sgemm of the same shape and the machine's measured large-sgemm peak.
//
// Work counts (stated in the output and in docs/benchmarks.md):
//   linear  x[M,K]·W[N,K]ᵀ + b: forward 1 GEMM = 2·M·N·K flop; backward 2 GEMMs (dx, dW) = 4·M·N·K;
//           frozen W: backward 1 GEMM (dx only) = 2·M·N·K. Bias add/reduction not counted.
//   softmax / layer norm / GELU are memory-bound: GB/s counts each array read or written once
//           (the minimum traffic), GFLOP/s uses per-element flop counts given below; exp/erf count 1.
#include <time.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <random>

#include "autograd/backend.h"
#include "autograd/parallel.h"
#include "autograd/ops.h"
#include "autograd/tape.h"
#include "bench/bench_common.h"

namespace unipelt::bench {

namespace {

// The clock every timing uses: wall time (default), or the process's CPU time (--clock cpu), which is
// far less disturbed by other jobs on a shared machine when one thread runs.
bool g_cpu_clock = false;

double now_seconds() {
  timespec ts{};
  clock_gettime(g_cpu_clock ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

void fill_random(const Tensor& t, uint64_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937 gen(static_cast<uint32_t>(seed));
  std::uniform_real_distribution<float> dist(lo, hi);
  float* p = t.data_as<float>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = dist(gen);
}

Tensor random_tensor(const Shape& shape, uint64_t seed, bool requires_grad) {
  Tensor t = Tensor::empty(shape, DType::F32, Device::CPU);
  fill_random(t, seed);
  t.set_requires_grad(requires_grad);
  return t;
}

struct OpCase {
  std::string name, shape;
  double fwd_flops = 0, bwd_flops = 0;  // per call
  double fwd_bytes = 0, bwd_bytes = 0;  // minimum memory traffic per call
  Stats fwd, bwd;
  Stats raw_gemm;  // linear only: cblas_sgemm of the forward shape alone
  bool frozen = false;
};

// Times `reps` forward calls (recording on the tape, as in training) and the backward closure of the
// node each one recorded, fed a fixed random upstream gradient. `inputs` get their gradients released
// between repetitions, as zero_grad does between training steps.
void time_op(OpCase& c, const std::function<Tensor()>& forward, const std::vector<Tensor>& inputs, int warmup,
             int reps) {
  std::vector<double> fwd, bwd;
  Tensor dy;
  for (int r = 0; r < warmup + reps; ++r) {
    tape().clear();
    for (const Tensor& t : inputs) t.zero_grad();
    const double t0 = now_seconds();
    Tensor y = forward();
    const double t1 = now_seconds();
    if (tape().size() != 1) throw std::logic_error("bench ops: expected the op to record exactly one tape node");
    if (!dy.defined()) dy = random_tensor(y.shape(), 99, false);
    const Node& node = tape().nodes().back();
    const double t2 = now_seconds();
    node.backward(std::span<const Tensor>(&dy, 1));
    const double t3 = now_seconds();
    if (r >= warmup) {
      fwd.push_back(t1 - t0);
      bwd.push_back(t3 - t2);
    }
  }
  tape().clear();
  for (const Tensor& t : inputs) t.zero_grad();
  c.fwd = summarize(fwd);
  c.bwd = summarize(bwd);
}

// Best-of-reps time of one row-major C[m,n] = A[m,k]·op(B) sgemm (B transposed when trans_b, as in linear),
// through the CPU backend: OpenBLAS's kernels on the backend's threads, cut into blocks as every product
// of a training step is (cpu_backend.cpp).
Stats time_sgemm(int64_t m, int64_t n, int64_t k, bool trans_b, int warmup, int reps) {
  std::vector<float> a(static_cast<size_t>(m * k)), b(static_cast<size_t>(k * n)), c(static_cast<size_t>(m * n));
  std::mt19937 gen(7);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  for (float& x : a) x = dist(gen);
  for (float& x : b) x = dist(gen);
  std::vector<double> times;
  for (int r = 0; r < warmup + reps; ++r) {
    const double t0 = now_seconds();
    backend(Device::CPU).gemm(DType::F32, false, trans_b, m, n, k, 1.0, a.data(), k, b.data(), trans_b ? k : n, 0.0,
                              c.data(), n);
    const double t1 = now_seconds();
    if (r >= warmup) times.push_back(t1 - t0);
  }
  return summarize(times);
}

OpCase linear_case(int64_t rows, int64_t in, int64_t out, bool frozen_weight, int warmup, int reps) {
  OpCase c;
  c.frozen = frozen_weight;
  c.name = strprintf("linear %lld->%lld%s", static_cast<long long>(in), static_cast<long long>(out),
                     frozen_weight ? " (frozen W,b)" : "");
  c.shape = strprintf("x[%lld,%lld] W[%lld,%lld]", static_cast<long long>(rows), static_cast<long long>(in),
                      static_cast<long long>(out), static_cast<long long>(in));
  const double gemm = 2.0 * static_cast<double>(rows) * static_cast<double>(out) * static_cast<double>(in);
  c.fwd_flops = gemm;
  c.bwd_flops = frozen_weight ? gemm : 2 * gemm;
  const double x_bytes = 4.0 * static_cast<double>(rows * in), y_bytes = 4.0 * static_cast<double>(rows * out),
               w_bytes = 4.0 * static_cast<double>(in * out);
  c.fwd_bytes = x_bytes + w_bytes + y_bytes;
  c.bwd_bytes = frozen_weight ? y_bytes + w_bytes + x_bytes : 2 * y_bytes + 2 * x_bytes + 2 * w_bytes;
  Tensor x = random_tensor({rows, in}, 1, true);
  Tensor w = random_tensor({out, in}, 2, !frozen_weight);
  Tensor b = random_tensor({out}, 3, !frozen_weight);
  time_op(c, [&] { return ops::linear(x, w, b); }, {x, w, b}, warmup, reps);
  c.raw_gemm = time_sgemm(rows, out, in, true, warmup, reps);
  return c;
}

OpCase softmax_case(int warmup, int reps) {
  const int64_t B = 16, heads = 12, T = 128;
  OpCase c;
  c.name = "softmax + mask";
  c.shape = "x[16,12,128,128] mask[16,128]";
  const double n = static_cast<double>(B * heads * T * T);
  c.fwd_flops = 5 * n;  // + mask, max, - max, Σ, × 1/Σ (and one exp)
  c.bwd_flops = 4 * n;  // y·dy, Σ, dy - s, × y
  c.fwd_bytes = 8 * n + 4.0 * B * T;
  c.bwd_bytes = 12 * n;
  Tensor x = random_tensor({B, heads, T, T}, 4, true);
  Tensor mask = Tensor::zeros({B, T}, DType::F32, Device::CPU);
  float* m = mask.data_as<float>();
  for (int64_t b = 0; b < B; ++b)  // example b has its last b·4 key positions padded
    for (int64_t t = T - b * 4; t < T; ++t) m[b * T + t] = -10000.0f;
  time_op(c, [&] { return ops::softmax(x, mask); }, {x}, warmup, reps);
  return c;
}

OpCase layernorm_case(bool trainable_affine, int warmup, int reps) {
  const int64_t rows = 16 * 128, cols = 768;
  OpCase c;
  c.name = trainable_affine ? "layer_norm" : "layer_norm (frozen g,b)";
  c.shape = "x[16,128,768]";
  const double n = static_cast<double>(rows * cols);
  c.fwd_flops = 8 * n;  // mean 1, variance 3, normalise + affine 4
  c.bwd_flops = trainable_affine ? 16 * n : 13 * n;
  c.fwd_bytes = 8 * n;
  c.bwd_bytes = 12 * n;
  Tensor x = random_tensor({16, 128, cols}, 5, true);
  Tensor g = random_tensor({cols}, 6, trainable_affine), beta = random_tensor({cols}, 7, trainable_affine);
  time_op(c, [&] { return ops::layer_norm(x, g, beta, 1e-12); }, {x, g, beta}, warmup, reps);
  return c;
}

OpCase gelu_case(int warmup, int reps) {
  OpCase c;
  c.name = "gelu (erf)";
  c.shape = "x[16,128,3072]";
  const double n = 16.0 * 128 * 3072;
  c.fwd_flops = 4 * n;  // x/√2, erf, 1 +, × x/2
  c.bwd_flops = 9 * n;  // cdf 3, pdf 3 (exp), x·pdf + cdf 2, × dy 1
  c.fwd_bytes = 8 * n;
  c.bwd_bytes = 12 * n;
  Tensor x = random_tensor({16, 128, 3072}, 8, true);
  time_op(c, [&] { return ops::gelu(x); }, {x}, warmup, reps);
  return c;
}

void run_ops(int threads, int reps, int warmup, int peak_size, const std::string& clock, const std::string& json_path) {
  set_threads(threads);
  g_cpu_clock = clock == "cpu";
  std::printf("bench ops: float32, CPU\n");
  std::printf("  cpu:      %s\n", cpu_description().c_str());
  std::printf("  blas:     %s\n", blas_description().c_str());
  if (const std::string hint = unipelt::cpu_blas_fallback_hint(); !hint.empty()) std::printf("  WARNING:  %s\n", hint.c_str());
  std::printf("  timing:   %d repetitions after %d warm-up; times are median / best, rates use the best; clock: %s\n",
              reps, warmup, g_cpu_clock ? "process CPU time" : "wall");

  const Stats peak = time_sgemm(peak_size, peak_size, peak_size, false, 1, std::max(reps, 3));
  const double peak_gflops = 2.0 * std::pow(static_cast<double>(peak_size), 3) / peak.best / 1e9;
  std::printf("  peak:     cblas_sgemm %d^3: %.1f GFLOP/s (best of %d; median %.1f)\n\n", peak_size, peak_gflops,
              peak.n, 2.0 * std::pow(static_cast<double>(peak_size), 3) / peak.median / 1e9);

  std::vector<OpCase> cases;
  const int64_t rows = 16 * 128;
  cases.push_back(linear_case(rows, 768, 768, false, warmup, reps));
  cases.push_back(linear_case(rows, 768, 768, true, warmup, reps));
  cases.push_back(linear_case(rows, 768, 3072, false, warmup, reps));
  cases.push_back(linear_case(rows, 768, 3072, true, warmup, reps));
  cases.push_back(softmax_case(warmup, reps));
  cases.push_back(layernorm_case(true, warmup, reps));
  cases.push_back(layernorm_case(false, warmup, reps));
  cases.push_back(gelu_case(warmup, reps));

  std::printf("%-29s %-30s %17s %8s %7s %6s %17s %8s %7s %6s\n", "op", "shape", "fwd ms (med/best)", "GFLOP/s",
              "GB/s", "%peak", "bwd ms (med/best)", "GFLOP/s", "GB/s", "%peak");
  for (const OpCase& c : cases) {
    const double fg = c.fwd_flops / c.fwd.best / 1e9, bg = c.bwd_flops / c.bwd.best / 1e9;
    // % of the sgemm peak only means something for the GEMM-bound linear; the rest are memory-bound.
    auto pct = [&](double g) { return c.raw_gemm.n ? strprintf("%5.0f%%", 100 * g / peak_gflops) : std::string("     -"); };
    std::printf("%-29s %-30s %8.3f/%8.3f %8.1f %7.1f %s %8.3f/%8.3f %8.1f %7.1f %s\n", c.name.c_str(),
                c.shape.c_str(), c.fwd.median * 1e3, c.fwd.best * 1e3, fg, c.fwd_bytes / c.fwd.best / 1e9,
                pct(fg).c_str(), c.bwd.median * 1e3, c.bwd.best * 1e3, bg, c.bwd_bytes / c.bwd.best / 1e9,
                pct(bg).c_str());
  }
  std::printf("\nraw sgemm (the backend's blocked cblas_sgemm) of each linear's forward shape (x·Wᵀ, no op overhead):\n");
  for (const OpCase& c : cases)
    if (c.raw_gemm.n)
      std::printf("  %-29s %8.3f ms  %7.1f GFLOP/s (%.0f%% of peak); op forward overhead %+.3f ms\n", c.name.c_str(),
                  c.raw_gemm.best * 1e3, c.fwd_flops / c.raw_gemm.best / 1e9,
                  100 * c.fwd_flops / c.raw_gemm.best / 1e9 / peak_gflops, (c.fwd.best - c.raw_gemm.best) * 1e3);
  for (size_t i = 0; i + 1 < cases.size(); ++i)
    if (cases[i].raw_gemm.n && cases[i + 1].raw_gemm.n && !cases[i].frozen && cases[i + 1].frozen)
      std::printf("  frozen-weight saving, %s: backward %.3f -> %.3f ms (%.0f%% less)\n", cases[i].name.c_str(),
                  cases[i].bwd.best * 1e3, cases[i + 1].bwd.best * 1e3,
                  100 * (1 - cases[i + 1].bwd.best / cases[i].bwd.best));
  std::printf("\nwork counts: linear fwd 2MNK flop, bwd 4MNK (2MNK with frozen W); softmax 5 flop/elem fwd, 4 bwd;\n"
              "layer_norm 8 fwd, 16 bwd (13 frozen g,b); gelu 4 fwd, 9 bwd (exp/erf count 1). GB/s counts each\n"
              "array read or written once.\n");

  if (!json_path.empty()) {
    nlohmann::json j;
    j["implementation"] = "unipelt";
    j["threads"] = cpu_threads();
    j["clock"] = clock;
    j["blas"] = blas_description();
    j["cpu"] = cpu_description();
    j["sgemm_peak_gflops"] = peak_gflops;
    j["sgemm_peak_size"] = peak_size;
    for (const OpCase& c : cases) {
      nlohmann::json o = {{"op", c.name},
                          {"shape", c.shape},
                          {"fwd_ms_median", c.fwd.median * 1e3},
                          {"fwd_ms_best", c.fwd.best * 1e3},
                          {"bwd_ms_median", c.bwd.median * 1e3},
                          {"bwd_ms_best", c.bwd.best * 1e3},
                          {"fwd_gflops", c.fwd_flops / c.fwd.best / 1e9},
                          {"bwd_gflops", c.bwd_flops / c.bwd.best / 1e9},
                          {"fwd_gbs", c.fwd_bytes / c.fwd.best / 1e9},
                          {"bwd_gbs", c.bwd_bytes / c.bwd.best / 1e9}};
      if (c.raw_gemm.n) o["raw_sgemm_ms_best"] = c.raw_gemm.best * 1e3;
      j["ops"].push_back(o);
    }
    std::ofstream(json_path) << j.dump(2) << "\n";
    std::printf("wrote %s\n", json_path.c_str());
  }
}

}  // namespace

void setup_ops_command(CLI::App& app) {
  auto* sub = app.add_subcommand(
      "ops",
      "Time forward+backward of single ops in float32 on the CPU: linear 768->768 and 768->3072 on x[16*128,768] "
      "(trainable and frozen weight), softmax with a mask over [16,12,128,128], layer norm over [16,128,768] and "
      "GELU over [16,128,3072]. Prints ms per call, GFLOP/s (linear: 2MNK per GEMM, 1 GEMM forward, 2 backward) "
      "and GB/s, next to the measured cblas_sgemm peak.");
  struct Options {
    int threads = 0, reps = 20, warmup = 3, peak_size = 2048;
    std::string json, clock = "wall";
  };
  auto opt = std::make_shared<Options>();
  sub->add_option("--threads", opt->threads, "CPU threads for every kernel and product (default 0: all CPUs)");
  sub->add_option("--reps", opt->reps, "timed repetitions per op (median and best are reported)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  sub->add_option("--warmup", opt->warmup, "untimed repetitions first")->check(CLI::NonNegativeNumber)->capture_default_str();
  sub->add_option("--peak-size", opt->peak_size, "n of the n x n x n sgemm that measures the peak")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  sub->add_option("--clock", opt->clock,
                  "wall, or cpu: process CPU time (all threads), steadier on a busy machine with --threads 1")
      ->check(CLI::IsMember({"wall", "cpu"}))
      ->capture_default_str();
  sub->add_option("--json", opt->json, "also write the results to this JSON file");
  sub->callback([opt] { run_ops(opt->threads, opt->reps, opt->warmup, opt->peak_size, opt->clock, opt->json); });
}

}  // namespace unipelt::bench

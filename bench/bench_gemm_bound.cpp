// The GEMM bound shared by `bench train`, `bench epoch` and `bench eval` (see bench_common.h).
#include <algorithm>
#include <cstdio>
#include <map>
#include <random>

#include "autograd/backend.h"
#include "bench/bench_common.h"

namespace unipelt::bench {

// Every logged product is replayed on scratch buffers of the same shapes, transposes, leading
// dimensions and beta through the same backend call; each distinct product is timed (best of `reps`,
// after one warm-up run) and the bound is Σ count × best time.
GemmBound gemm_bound(const std::vector<GemmCall>& calls, int reps) {
  std::map<GemmCall, int> counts;
  for (const GemmCall& c : calls) ++counts[c];
  GemmBound bound;
  std::mt19937 gen(3);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  for (const auto& entry : counts) {
    const GemmCall& c = entry.first;  // a plain reference: clang 14 cannot capture a structured binding
    const int count = entry.second;
    auto extent = [&](int64_t rows, int64_t ld, int64_t stride) { return (c.batch - 1) * stride + rows * ld; };
    std::vector<float> a(static_cast<size_t>(extent(c.trans_a ? c.k : c.m, c.lda, c.stride_a)));
    std::vector<float> b(static_cast<size_t>(extent(c.trans_b ? c.n : c.k, c.ldb, c.stride_b)));
    std::vector<float> out(static_cast<size_t>(extent(c.m, c.ldc, c.stride_c)));
    for (float& x : a) x = dist(gen);
    for (float& x : b) x = dist(gen);
    double best = 1e30;
    for (int r = 0; r <= reps; ++r) {  // the first run is a warm-up
      const auto t0 = Clock::now();
      backend(Device::CPU).gemm_batched(c.dtype, c.trans_a, c.trans_b, c.m, c.n, c.k, 1.0, a.data(), c.lda,
                                        c.stride_a, b.data(), c.ldb, c.stride_b, c.beta, out.data(), c.ldc,
                                        c.stride_c, c.batch);
      if (r > 0) best = std::min(best, seconds_between(t0, Clock::now()));
    }
    bound.seconds += best * count;
    bound.products.push_back({c, count, best});
    bound.flops += 2.0 * static_cast<double>(c.m) * static_cast<double>(c.n) * static_cast<double>(c.k) *
                   static_cast<double>(c.batch) * count;
  }
  return bound;
}

void print_gemm_detail(const GemmBound& bound, int top) {
  std::vector<GemmBound::Product> rows = bound.products;
  std::sort(rows.begin(), rows.end(),
            [](const auto& x, const auto& y) { return x.count * x.seconds > y.count * y.seconds; });
  std::printf("  %-5s %6s %6s %6s %5s %5s %6s %9s %9s %7s %6s\n", "op", "m", "n", "k", "batch", "beta", "count",
              "us each", "ms total", "GFLOP/s", "share");
  for (size_t i = 0; i < rows.size() && static_cast<int>(i) < top; ++i) {
    const GemmCall& c = rows[i].call;
    const double flops = 2.0 * static_cast<double>(c.m) * static_cast<double>(c.n) * static_cast<double>(c.k) *
                         static_cast<double>(c.batch);
    std::printf("  %c%c    %6lld %6lld %6lld %5lld %5.0f %6d %9.1f %9.2f %7.1f %5.1f%%\n", c.trans_a ? 'T' : 'N',
                c.trans_b ? 'T' : 'N', static_cast<long long>(c.m), static_cast<long long>(c.n),
                static_cast<long long>(c.k), static_cast<long long>(c.batch), c.beta, rows[i].count,
                rows[i].seconds * 1e6, rows[i].count * rows[i].seconds * 1e3, flops / rows[i].seconds / 1e9,
                100.0 * rows[i].count * rows[i].seconds / bound.seconds);
  }
  if (rows.size() > static_cast<size_t>(top))
    std::printf("  ... %zu more distinct products\n", rows.size() - static_cast<size_t>(top));
}

}  // namespace unipelt::bench

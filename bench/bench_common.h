// Shared helpers of the `bench` program: timing statistics, OpenBLAS thread control, table printing.
//
// The program has four subcommands:
//   bench_ops.cpp    ops: kernel-level forward+backward timings (linear, softmax, layer norm, GELU)
//                    against the machine's measured cblas_sgemm peak
//   bench_train.cpp  train: full training steps (forward, backward, clip, AdamW) per PELT preset, and the
//                    time their matrix products alone take (the GEMM bound)
//   bench_epoch.cpp  epoch: a whole training epoch of a GLUE task as the trainer runs it;
//                    eval: evaluate() on a GLUE dev set; both with their GEMM bound
//   bench_gemm_bound.cpp  the GEMM bound: a run's logged matrix products replayed and timed
// bench/pytorch_bench.py measures the same two things in PyTorch; docs/benchmarks.md holds the results.
#pragma once

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "autograd/cpu_backend.h"

namespace unipelt::bench {

using Clock = std::chrono::steady_clock;

inline double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// Summary of repeated timings (seconds). Machines shared with other jobs make single timings noisy, so
// every table reports the median and the best of several repetitions.
struct Stats {
  double best = 0, median = 0, mean = 0;
  int n = 0;
};

inline Stats summarize(std::vector<double> samples) {
  Stats s;
  s.n = static_cast<int>(samples.size());
  if (samples.empty()) return s;
  std::sort(samples.begin(), samples.end());
  s.best = samples.front();
  const size_t m = samples.size() / 2;
  s.median = samples.size() % 2 ? samples[m] : 0.5 * (samples[m - 1] + samples[m]);
  double total = 0;
  for (double x : samples) total += x;
  s.mean = total / static_cast<double>(samples.size());
  return s;
}

// The CPU backend's threads (autograd/parallel.h: kernels and matrix products; OpenBLAS at one thread
// per call): threads <= 0 means every CPU the process may use.
void set_threads(int threads);
// "OpenBLAS 0.3.21 ... (core Haswell; N threads ...)" for the report header.
std::string blas_description();
// Non-empty when OpenBLAS picked kernels far below what the CPU supports (its CPU detection fell back to
// a generic core, as OpenBLAS 0.3.21 does on CPUs newer than it knows); says how to override.
// CPU model name from /proc/cpuinfo and the number of online CPUs.
std::string cpu_description();

// printf into a std::string.
std::string strprintf(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

// The GEMM bound of some work: the time its matrix products alone take at this thread count. `calls` are
// the products the work ran (CpuBackend::log_gemms); each distinct one is replayed `reps` times on
// scratch buffers and timed (bench_gemm_bound.cpp). flops = Σ 2·m·n·k·batch over every call.
struct GemmBound {
  struct Product {  // one distinct product: how often it ran and its best time per run
    GemmCall call;
    int count = 0;
    double seconds = 0;
  };
  double seconds = 0, flops = 0;
  std::vector<Product> products;
};
// The products that take the most time (count x seconds), `top` of them, as a table (--gemm-detail).
void print_gemm_detail(const GemmBound& bound, int top);
GemmBound gemm_bound(const std::vector<GemmCall>& calls, int reps);

// Subcommand set-up, one per file.
void setup_ops_command(CLI::App& app);
void setup_train_command(CLI::App& app);
void setup_workload_commands(CLI::App& app);  // epoch and eval

// Thrown by a subcommand to end the program with this exit status (0 = skipped on purpose).
struct Exit {
  int code;
};

}  // namespace unipelt::bench

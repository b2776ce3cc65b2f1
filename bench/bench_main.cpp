// bench: speed measurements of the unipelt CPU (and CUDA) backend. See docs/benchmarks.md.
//
//   bench ops   [--threads N] [--reps R]           kernel timings vs. the measured sgemm peak
//   bench train [--model DIR] [--threads N] ...    training steps per PELT preset, and their GEMM bound
//   bench epoch [--task T] [--k K] [--threads N]   one training epoch of a GLUE task, as the trainer runs it
//   bench eval  [--task T] [--threads N]           evaluate() on a GLUE dev set
#include <cblas.h>

#include <cstdarg>
#include <cstdio>
#include <exception>
#include <fstream>
#include <thread>

#include "autograd/backend.h"
#include "autograd/parallel.h"
#include "bench/bench_common.h"

namespace unipelt::bench {

void set_threads(int threads) { set_cpu_threads(std::max(0, threads)); }

std::string blas_description() { return cpu_blas_info(); }

namespace {
// The first /proc/cpuinfo value of `key` ("" when absent).
std::string cpuinfo_field(const std::string& key) {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) != 0) continue;
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string name = line.substr(0, colon);
    while (!name.empty() && (name.back() == ' ' || name.back() == '\t')) name.pop_back();
    if (name == key) return colon + 2 <= line.size() ? line.substr(colon + 2) : "";
  }
  return "";
}
bool cpu_has_flag(const std::string& flag) {
  return (" " + cpuinfo_field("flags") + " ").find(" " + flag + " ") != std::string::npos;
}
}  // namespace

std::string cpu_description() {
  std::string model = cpuinfo_field("model name");
  if (model.empty()) model = "unknown CPU";
  const std::string isa = cpu_has_flag("avx512f") ? "AVX-512" : cpu_has_flag("avx2") ? "AVX2" : "no AVX2";
  return model + " (family " + cpuinfo_field("cpu family") + " model " + cpuinfo_field("model") + ", " + isa +
         "), " + std::to_string(std::thread::hardware_concurrency()) + " online CPUs";
}

std::string strprintf(const char* fmt, ...) {
  va_list args;
  va_start(args, fmt);
  char buffer[1024];
  std::vsnprintf(buffer, sizeof buffer, fmt, args);
  va_end(args);
  return buffer;
}

}  // namespace unipelt::bench

int main(int argc, char** argv) {
  CLI::App app{
      "bench: speed of the unipelt backends.\n"
      "  ops    forward+backward timings of linear / softmax / layer norm / GELU in float32, with GFLOP/s\n"
      "         and GB/s next to this machine's measured cblas_sgemm peak\n"
      "  train  full training steps (forward, backward, clip, AdamW) per PELT preset: ms/step, examples/s,\n"
      "         peak tensor memory, trainable parameters, optimizer state, and the step's GEMM-bound time\n"
      "  epoch  one whole training epoch of a GLUE task (paper protocol, the trainer's batches and steps)\n"
      "  eval   evaluate() on a GLUE dev set: examples per second\n"
      "bench/pytorch_bench.py measures the same in PyTorch; results and commands are in docs/benchmarks.md."};
  app.require_subcommand(1);
  unipelt::bench::setup_ops_command(app);
  unipelt::bench::setup_train_command(app);
  unipelt::bench::setup_workload_commands(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const unipelt::bench::Exit& e) {
    return e.code;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}

// Small helpers shared by the tests.
#pragma once

#include <catch2/catch.hpp>
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>

#include "autograd/tensor.h"
#include "nn/fnv1a.h"
#include "pelt/config.h"

namespace unipelt::testing {

// ctest reports a test that exits with 77 as skipped (SKIP_RETURN_CODE in CMakeLists.txt).
[[noreturn]] inline void skip(const std::string& reason) {
  std::printf("SKIPPED: %s\n", reason.c_str());
  std::fflush(stdout);
  std::_Exit(77);
}

// The local data mirror: $UNIPELT_MIRROR (the variable scripts/fetch-data.sh reads; $UNIPELT_DATA is
// accepted too), else ../shared/data beside the source tree. Empty if absent.
inline std::filesystem::path data_dir() {
  for (const char* name : {"UNIPELT_MIRROR", "UNIPELT_DATA"})
    if (const char* env = std::getenv(name); env && *env) return env;
  std::filesystem::path p = std::filesystem::path(UNIPELT_SOURCE_DIR) / ".." / "shared" / "data";
  return std::filesystem::exists(p) ? std::filesystem::canonical(p) : std::filesystem::path();
}

// The data mirror's path to `relative`, or skip the test with a clear message when it is absent.
inline std::filesystem::path require_data(const std::string& relative) {
  auto root = data_dir();
  if (root.empty() || !std::filesystem::exists(root / relative))
    skip("needs " + relative + " from the data mirror (set UNIPELT_MIRROR or provide ../shared/data)");
  return root / relative;
}

inline std::filesystem::path source_dir() { return UNIPELT_SOURCE_DIR; }

// Largest |a - b| over two tensors of the same shape (throws when the shapes differ).
inline double max_abs_diff(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape())
    throw std::runtime_error("max_abs_diff: shapes " + shape_str(a.shape()) + " and " + shape_str(b.shape()));
  const std::vector<double> x = a.to_vector(), y = b.to_vector();
  double m = 0;
  for (size_t i = 0; i < x.size(); ++i) m = std::max(m, x[i] > y[i] ? x[i] - y[i] : y[i] - x[i]);
  return m;
}

// Same dtype, shape and bytes (NaN payloads and the sign of zero included).
inline bool same_bits(const Tensor& a, const Tensor& b) {
  // (memcmp of an empty tensor's null data is undefined even for 0 bytes: UBSan stops on it)
  return a.dtype() == b.dtype() && a.shape() == b.shape() &&
         (a.nbytes() == 0 || std::memcmp(a.data(), b.data(), a.nbytes()) == 0);
}

// A preset with submodules small enough for the tiny test models: bottleneck 4, 3 prefix tokens through
// an MLP of width `prefix_mid`, LoRA rank 2 with alpha 4 (the sizes of tests/fixtures/cases.json with
// the default prefix_mid 8).
inline PeltConfig small_preset(const std::string& method, int prefix_mid = 8) {
  PeltConfig config = preset(method);
  config.adapter_size = 4;
  config.prefix_len = 3;
  config.prefix_mid = prefix_mid;
  config.lora_r = 2;
  config.lora_alpha = 4;
  return config;
}

// A fresh scratch directory under the build tree, private to the running test case: ctest runs test
// cases in parallel, and two cases sharing a helper that asks for the same `name` must not delete each
// other's files (test_settings' two CLI tests once did, failing only under ctest -j). The case's name
// is hashed (nn/fnv1a.h) into the path, which stays short and free of the spaces and quotes names contain.
inline std::filesystem::path scratch_dir_of_case(const std::string& test_case, const std::string& name) {
  Fnv1a64 hash;
  hash.mix(test_case);
  const std::string case_dir = hash.hex().substr(std::string("fnv1a64:").size());
  auto p = std::filesystem::path(UNIPELT_BINARY_DIR) / "test_scratch" / case_dir / name;
  std::filesystem::remove_all(p);
  std::filesystem::create_directories(p);
  return p;
}

inline std::filesystem::path scratch_dir(const std::string& name) {
  return scratch_dir_of_case(Catch::getResultCapture().getCurrentTestName(), name);
}

// The message of the E (default: any std::exception) that `f` throws, or "no exception" when it
// throws none (so that a CHECK on the message fails).
template <typename E = std::exception, typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  return "no exception";
}

// Runs `command` through the shell with stderr joined to stdout; returns the exit status (-1 when the
// command was killed by a signal) and puts everything it printed into *output.
inline int run_command(const std::string& command, std::string* output) {
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (!pipe) throw std::runtime_error("popen failed for: " + command);
  char buf[4096];
  output->clear();
  while (size_t n = std::fread(buf, 1, sizeof buf, pipe)) output->append(buf, n);
  const int status = pclose(pipe);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// Sets an environment variable for as long as the object lives, then puts back what was there. A test
// must not leave one behind: OPENBLAS_NUM_THREADS=1, say, changes the rounding of the child processes of
// every later test (the in-process and CLI runs of test_train.cpp would no longer agree bit for bit).
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    ::setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() {
    if (old_) ::setenv(name_.c_str(), old_->c_str(), 1);
    else ::unsetenv(name_.c_str());
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  std::string name_;
  std::optional<std::string> old_;
};

}  // namespace unipelt::testing

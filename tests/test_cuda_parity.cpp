// CUDA backend parity: every Backend kernel runs on the CPU backend and on the CUDA backend with the
// same random inputs, and the outputs are compared by normalised mean squared error,
//     nmse = Σ (gpu - cpu)² / Σ cpu²        (Σ (gpu - cpu)² when cpu is all zeros),
// against a per-kernel tolerance from the table below. A tolerance of 0 means bit-identical.
//
// Without a GPU (or in a build without CUDA) every parity test skips (exit 77, ctest "skipped").
// Run on a GPU machine:  ctest --test-dir build -R cuda --output-on-failure   (see docs/cuda.md)
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "autograd/backend.h"
#include "tests/test_util.h"

#ifdef UNIPELT_WITH_CUDA
#include "cuda/cuda_backend.h"
#endif

using namespace unipelt;

namespace {

// ---------------------------------------------------------------------------------------------
// Tolerances (nmse), and why. fp32 unit roundoff is 6e-8 (squared: 4e-15), fp64 1.1e-16 (1.2e-32).
// ---------------------------------------------------------------------------------------------
struct Tolerance {
  const char* kernel;
  double f32, f64;
  const char* why;
};

constexpr Tolerance kTolerances[] = {
    {"fill", 0, 0, "the same cast of the same value"},
    {"convert", 0, 0, "static_cast on both sides"},
    {"copy", 0, 0, "bytes moved, nothing computed (copy, upload, download)"},
    {"gemm", 1e-10, 1e-26, "cuBLAS and OpenBLAS add the k products in different orders (and fuse differently): "
                           "relative error ~ sqrt(k)·u per element"},
    {"binary", 0, 0, "one correctly rounded IEEE operation per element on both sides"},
    {"expand", 0, 0, "a gather: nothing computed"},
    {"reduce_broadcast", 1e-12, 1e-28, "chunked (GPU) vs sequential (CPU) summation order"},
    {"axpy", 1e-14, 1e-30, "y + a·x may be fused into one FMA on one side and not on the other: 1 ulp"},
    {"scale", 0, 0, "one multiplication per element"},
    {"dot", 1e-24, 1e-24, "both accumulate in double, in different orders; fp32 products are exact in double"},
    {"relu", 0, 0, "a comparison: nothing rounded"},
    {"unary", 1e-12, 1e-28,
     "float GELU: the CPU's vectorised normal CDF is within 3e-7 of exact (cpu_vector_math.h), CUDA's erff within "
     "2 ulp; tanh/exp within 2 ulp; FMA contraction in the derivatives"},
    {"softmax", 1e-12, 1e-28, "float exp within 1 ulp (CPU, cpu_vector_math.h) and 2 ulp (CUDA), different row-sum orders"},
    {"normalize_rows", 1e-12, 1e-28, "block-tree vs sequential row sums"},
    {"layernorm", 1e-11, 1e-27, "row statistics summed in a different order; dγ, dβ summed over rows in chunks"},
    {"embedding_forward", 0, 0, "a gather: nothing computed"},
    {"embedding_backward", 1e-12, 1e-28, "atomicAdd order of repeated ids differs from the CPU's loop order"},
    {"dropout", 0, 0, "the same counter-based hash: the masks must be bit-identical"},
    {"permute", 0, 0, "data movement"},
    {"copy_2d", 0, 0, "data movement"},
    {"cross_entropy", 1e-10, 1e-26, "the CPU adds row losses sequentially in the dtype, the GPU in double by tree"},
    {"mse", 1e-10, 1e-26, "the CPU adds squares sequentially in the dtype, the GPU in double by tree"},
    {"adamw", 1e-12, 1e-28, "FMA contraction in the moment updates; a few steps compound it slightly"},
};

double tolerance(const std::string& kernel, DType dtype) {
  for (const Tolerance& t : kTolerances)
    if (kernel == t.kernel) return dtype == DType::F64 ? t.f64 : t.f32;
  FAIL("no tolerance for kernel " << kernel);
  return 0;
}

// The CUDA backend, or skip this test (exit 77) when there is none.
Backend& gpu_or_skip() {
#ifdef UNIPELT_WITH_CUDA
  if (!cuda_available()) testing::skip("no CUDA device: the CUDA backend is built but the runtime finds no GPU");
  return backend(Device::CUDA);
#else
  testing::skip("no CUDA device: this build has no CUDA backend (nvcc was not found at configure time)");
#endif
}

Backend& cpu() { return backend(Device::CPU); }

// ---------------------------------------------------------------------------------------------
// Twin: one array allocated on both backends, holding the same values.
// ---------------------------------------------------------------------------------------------
std::vector<unsigned char> encode(DType dtype, const std::vector<double>& values) {
  std::vector<unsigned char> bytes(values.size() * dtype_size(dtype));
  for (size_t i = 0; i < values.size(); ++i) {
    if (dtype == DType::F32) {
      const float v = static_cast<float>(values[i]);
      std::memcpy(bytes.data() + i * 4, &v, 4);
    } else if (dtype == DType::F64) {
      std::memcpy(bytes.data() + i * 8, &values[i], 8);
    } else {
      const int32_t v = static_cast<int32_t>(values[i]);
      std::memcpy(bytes.data() + i * 4, &v, 4);
    }
  }
  return bytes;
}

std::vector<double> decode(DType dtype, const std::vector<unsigned char>& bytes) {
  std::vector<double> values(bytes.size() / dtype_size(dtype));
  for (size_t i = 0; i < values.size(); ++i) {
    if (dtype == DType::F32) {
      float v;
      std::memcpy(&v, bytes.data() + i * 4, 4);
      values[i] = v;
    } else if (dtype == DType::F64) {
      std::memcpy(&values[i], bytes.data() + i * 8, 8);
    } else {
      int32_t v;
      std::memcpy(&v, bytes.data() + i * 4, 4);
      values[i] = v;
    }
  }
  return values;
}

class Twin {
 public:
  Twin(Backend& gpu, DType dtype, const std::vector<double>& values)
      : gpu_(gpu), dtype_(dtype), n_(values.size()), bytes_(std::max<size_t>(n_ * dtype_size(dtype), 1)) {
    c_ = cpu().allocate(bytes_);
    g_ = gpu_.allocate(bytes_);
    set(values);
  }
  ~Twin() {
    cpu().deallocate(c_, bytes_);
    gpu_.deallocate(g_, bytes_);
  }
  Twin(const Twin&) = delete;
  Twin& operator=(const Twin&) = delete;

  void set(const std::vector<double>& values) {
    REQUIRE(values.size() == n_);
    const auto bytes = encode(dtype_, values);
    if (bytes.empty()) return;
    cpu().upload(c_, bytes.data(), bytes.size());
    gpu_.upload(g_, bytes.data(), bytes.size());
  }
  void* c() const { return c_; }
  void* g() const { return g_; }
  const int32_t* ci() const { return static_cast<const int32_t*>(c_); }
  const int32_t* gi() const { return static_cast<const int32_t*>(g_); }
  std::vector<double> cpu_values() const { return values(cpu(), c_); }
  std::vector<double> gpu_values() const { return values(gpu_, g_); }
  DType dtype() const { return dtype_; }

 private:
  std::vector<double> values(Backend& b, void* p) const {
    std::vector<unsigned char> bytes(n_ * dtype_size(dtype_));
    if (!bytes.empty()) b.download(bytes.data(), p, bytes.size());
    return decode(dtype_, bytes);
  }
  Backend& gpu_;
  DType dtype_;
  size_t n_, bytes_;
  void* c_ = nullptr;
  void* g_ = nullptr;
};

double nmse(const std::vector<double>& ref, const std::vector<double>& got) {
  double err = 0, norm = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    if (ref[i] == got[i]) continue;  // also equal infinities
    err += (got[i] - ref[i]) * (got[i] - ref[i]);
  }
  for (double r : ref) norm += r * r;
  return norm > 0 ? err / norm : err;
}

// Compares the twin's CPU and GPU contents under the kernel's tolerance.
void expect_parity(const std::string& kernel, const Twin& t, const std::string& what = "") {
  const auto ref = t.cpu_values();
  const auto got = t.gpu_values();
  const double e = nmse(ref, got);
  const double tol = tolerance(kernel, t.dtype());
  INFO(kernel << " " << dtype_name(t.dtype()) << " " << what << ": nmse " << e << ", tolerance " << tol << ", "
              << ref.size() << " values");
  CHECK(std::isfinite(e));
  CHECK(e <= tol);
}

// Random values: uniform in [lo, hi), fixed seed per call site.
std::vector<double> uniform(size_t n, uint64_t seed, double lo = -1, double hi = 1) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> dist(lo, hi);
  std::vector<double> v(n);
  for (double& x : v) x = dist(rng);
  return v;
}

std::vector<double> random_ints(size_t n, uint64_t seed, int lo, int hi) {  // in [lo, hi]
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> dist(lo, hi);
  std::vector<double> v(n);
  for (double& x : v) x = dist(rng);
  return v;
}

constexpr DType kFloatTypes[] = {DType::F32, DType::F64};

}  // namespace

// ---------------------------------------------------------------------------------------------
// The tests. Each one skips without a GPU.
// ---------------------------------------------------------------------------------------------

TEST_CASE("cuda parity: copies fill and convert", "[cuda]") {
  Backend& gpu = gpu_or_skip();
  for (DType dtype : {DType::F32, DType::F64, DType::I32}) {
    const auto values = dtype == DType::I32 ? random_ints(1000, 1, -500, 500) : uniform(1000, 1, -100, 100);
    Twin a(gpu, dtype, values), b(gpu, dtype, std::vector<double>(1000, 7.0));
    expect_parity("copy", a, "upload/download round trip");
    cpu().copy(b.c(), a.c(), 1000 * dtype_size(dtype));
    gpu.copy(b.g(), a.g(), 1000 * dtype_size(dtype));
    expect_parity("copy", b, "device to device");
    CHECK(b.gpu_values() == a.gpu_values());

    for (double value : {0.0, 2.5, -3.75, 1e6}) {
      cpu().fill(dtype, a.c(), 999, value);  // 999: the last element must stay untouched
      gpu.fill(dtype, a.g(), 999, value);
      expect_parity("fill", a, std::to_string(value));
    }
  }
  for (DType src : {DType::F32, DType::F64, DType::I32})
    for (DType dst : {DType::F32, DType::F64, DType::I32}) {
      const auto values = src == DType::I32 ? random_ints(777, 2, -1000, 1000) : uniform(777, 2, -1000, 1000);
      Twin in(gpu, src, values), out(gpu, dst, std::vector<double>(777, 0.0));
      cpu().convert(src, in.c(), dst, out.c(), 777);
      gpu.convert(src, in.g(), dst, out.g(), 777);
      expect_parity("convert", out, std::string(dtype_name(src)) + " -> " + dtype_name(dst));
    }
}

#ifdef UNIPELT_WITH_CUDA
TEST_CASE("cuda allocator: freed blocks are reused by size bucket and release_cached frees them", "[cuda]") {
  Backend& gpu = gpu_or_skip();
  gpu.release_cached();
  const auto before = gpu.memory_stats();
  void* p = gpu.allocate(100000);
  gpu.deallocate(p, 100000);
  void* q = gpu.allocate(99000);  // same bucket (rounded to a quarter of the leading power of two)
  CHECK(q == p);
  const auto mid = gpu.memory_stats();
  CHECK(mid.cache_hits == before.cache_hits + 1);
  CHECK(mid.raw_allocations == before.raw_allocations + 1);
  CHECK(mid.bytes_in_use == before.bytes_in_use + 99000);
  gpu.deallocate(q, 99000);
  CHECK(gpu.memory_stats().bytes_cached > 0);
  gpu.release_cached();
  CHECK(gpu.memory_stats().bytes_cached == 0);
  CHECK(gpu.memory_stats().bytes_in_use == before.bytes_in_use);
}
#endif

TEST_CASE("cuda parity: gemm and batched gemm", "[cuda]") {
  Backend& gpu = gpu_or_skip();
  struct Case {
    int64_t m, n, k;
    bool ta, tb;
    int64_t pad;  // extra leading-dimension padding on every operand
    double alpha, beta;
  };
  const Case cases[] = {
      {1, 1, 1, false, false, 0, 1.0, 0.0},    {17, 33, 65, false, false, 0, 1.0, 0.0},
      {64, 48, 96, true, false, 0, 1.0, 0.0},  {64, 48, 96, false, true, 0, 0.5, 1.0},
      {31, 29, 27, true, true, 3, -2.0, 0.25}, {128, 768, 256, false, true, 0, 1.0, 0.0},
      {5, 7, 0, false, false, 1, 1.0, 0.5},  // k = 0: C = beta·C (pad keeps lda >= 1, as BLAS requires)
  };
  for (DType dtype : kFloatTypes)
    for (const Case& cs : cases) {
      // Row-major storage: op(A) is m×k, so A is m×k (or k×m when transposed), lda = its column count + pad.
      const int64_t a_rows = cs.ta ? cs.k : cs.m, a_cols = cs.ta ? cs.m : cs.k;
      const int64_t b_rows = cs.tb ? cs.n : cs.k, b_cols = cs.tb ? cs.k : cs.n;
      const int64_t lda = a_cols + cs.pad, ldb = b_cols + cs.pad, ldc = cs.n + cs.pad;
      const int64_t batch = 3;
      const int64_t sa = a_rows * lda + 5, sb = b_rows * ldb + 2, sc = cs.m * ldc + 1;  // odd batch strides
      Twin a(gpu, dtype, uniform(std::max<int64_t>(sa * batch, 1), 10));
      Twin b(gpu, dtype, uniform(std::max<int64_t>(sb * batch, 1), 11));
      Twin c(gpu, dtype, uniform(sc * batch, 12));
      const std::string what = std::to_string(cs.m) + "x" + std::to_string(cs.n) + "x" + std::to_string(cs.k) +
                               (cs.ta ? " Aᵀ" : "") + (cs.tb ? " Bᵀ" : "");
      cpu().gemm(dtype, cs.ta, cs.tb, cs.m, cs.n, cs.k, cs.alpha, a.c(), lda, b.c(), ldb, cs.beta, c.c(), ldc);
      gpu.gemm(dtype, cs.ta, cs.tb, cs.m, cs.n, cs.k, cs.alpha, a.g(), lda, b.g(), ldb, cs.beta, c.g(), ldc);
      expect_parity("gemm", c, what);
      cpu().gemm_batched(dtype, cs.ta, cs.tb, cs.m, cs.n, cs.k, cs.alpha, a.c(), lda, sa, b.c(), ldb, sb, cs.beta,
                         c.c(), ldc, sc, batch);
      gpu.gemm_batched(dtype, cs.ta, cs.tb, cs.m, cs.n, cs.k, cs.alpha, a.g(), lda, sa, b.g(), ldb, sb, cs.beta,
                       c.g(), ldc, sc, batch);
      expect_parity("gemm", c, what + " batched");
      // A shared operand (stride 0), as in a weight applied to every batch entry.
      cpu().gemm_batched(dtype, cs.ta, cs.tb, cs.m, cs.n, cs.k, cs.alpha, a.c(), lda, sa, b.c(), ldb, 0, cs.beta,
                         c.c(), ldc, sc, batch);
      gpu.gemm_batched(dtype, cs.ta, cs.tb, cs.m, cs.n, cs.k, cs.alpha, a.g(), lda, sa, b.g(), ldb, 0, cs.beta,
                       c.g(), ldc, sc, batch);
      expect_parity("gemm", c, what + " batched, B shared");
    }
}

TEST_CASE("cuda parity: broadcasting axpy scale and dot", "[cuda]") {
  Backend& gpu = gpu_or_skip();
  struct BCase {
    int64_t shape[4];
    int64_t a_shape[4];  // each dim either equal to shape[d] or 1 (broadcast)
    int64_t b_shape[4];
  };
  const BCase cases[] = {
      {{1, 4, 33, 70}, {1, 4, 33, 70}, {1, 4, 33, 70}},  // same shape
      {{1, 4, 33, 70}, {1, 4, 33, 70}, {1, 1, 1, 70}},   // + bias
      {{1, 4, 33, 70}, {1, 4, 33, 70}, {1, 4, 1, 1}},    // · gate [B,1,1]
      {{2, 3, 5, 7}, {2, 1, 5, 1}, {1, 3, 1, 7}},        // both broadcast
      {{1, 1, 1, 1}, {1, 1, 1, 1}, {1, 1, 1, 1}},
  };
  auto contiguous_strides = [](const int64_t s[4], const int64_t full[4], int64_t out[4]) {
    int64_t acc = 1;
    for (int d = 3; d >= 0; --d) {
      out[d] = s[d] == 1 && full[d] != 1 ? 0 : acc;
      acc *= s[d];
    }
  };
  auto numel = [](const int64_t s[4]) { return s[0] * s[1] * s[2] * s[3]; };
  for (DType dtype : kFloatTypes) {
    uint64_t seed = 100;
    for (const BCase& cs : cases) {
      Broadcast4 bc;
      for (int d = 0; d < 4; ++d) bc.shape[d] = cs.shape[d];
      contiguous_strides(cs.a_shape, cs.shape, bc.a_stride);
      contiguous_strides(cs.b_shape, cs.shape, bc.b_stride);
      Twin a(gpu, dtype, uniform(numel(cs.a_shape), ++seed));
      Twin b(gpu, dtype, uniform(numel(cs.b_shape), ++seed));
      Twin out(gpu, dtype, uniform(bc.numel(), ++seed));
      for (Binary op : {Binary::Add, Binary::Sub, Binary::Mul}) {
        cpu().binary(op, dtype, bc, a.c(), b.c(), out.c());
        gpu.binary(op, dtype, bc, a.g(), b.g(), out.g());
        expect_parity("binary", out, "op " + std::to_string(static_cast<int>(op)));
      }
      // expand b to the full shape, then reduce the full shape back onto b's shape (its adjoint).
      cpu().expand(dtype, bc.shape, bc.b_stride, b.c(), out.c());
      gpu.expand(dtype, bc.shape, bc.b_stride, b.g(), out.g());
      expect_parity("expand", out);
      Twin red(gpu, dtype, uniform(numel(cs.b_shape), ++seed));
      cpu().reduce_broadcast(dtype, bc.shape, bc.b_stride, out.c(), red.c(), numel(cs.b_shape));
      gpu.reduce_broadcast(dtype, bc.shape, bc.b_stride, out.g(), red.g(), numel(cs.b_shape));
      expect_parity("reduce_broadcast", red);
    }
    // Reductions big enough for the GPU's chunked two-pass path: [4096, 96] -> [96] and -> [4096, 1]
    // and everything -> [1].
    const int64_t shape[4] = {1, 1, 4096, 96};
    Twin in(gpu, dtype, uniform(4096 * 96, 200));
    const int64_t to_cols[4] = {0, 0, 0, 1}, to_rows[4] = {0, 0, 1, 0}, to_one[4] = {0, 0, 0, 0};
    for (auto [stride, count] : {std::pair{to_cols, int64_t(96)}, std::pair{to_rows, int64_t(4096)},
                                 std::pair{to_one, int64_t(1)}}) {
      Twin red(gpu, dtype, uniform(count, 201));
      cpu().reduce_broadcast(dtype, shape, stride, in.c(), red.c(), count);
      gpu.reduce_broadcast(dtype, shape, stride, in.g(), red.g(), count);
      expect_parity("reduce_broadcast", red, "to " + std::to_string(count));
    }

    const int64_t n = 100003;
    Twin x(gpu, dtype, uniform(n, 300)), y(gpu, dtype, uniform(n, 301));
    cpu().axpy(dtype, n, -0.37, x.c(), y.c());
    gpu.axpy(dtype, n, -0.37, x.g(), y.g());
    expect_parity("axpy", y);
    cpu().scale(dtype, n, 1.7, x.c(), y.c());
    gpu.scale(dtype, n, 1.7, x.g(), y.g());
    expect_parity("scale", y);
    y.set(uniform(n, 302));
    const double dc = cpu().dot(dtype, n, x.c(), y.c()), dg = gpu.dot(dtype, n, x.g(), y.g());
    INFO("dot " << dtype_name(dtype) << ": cpu " << dc << ", gpu " << dg);
    CHECK(nmse({dc}, {dg}) <= tolerance("dot", dtype));
  }
}

TEST_CASE("cuda parity: activations forward and backward", "[cuda]") {
  Backend& gpu = gpu_or_skip();
  const int64_t n = 50001;
  for (DType dtype : kFloatTypes)
    for (Unary op : {Unary::Gelu, Unary::Relu, Unary::Tanh, Unary::Sigmoid}) {
      const std::string kernel = op == Unary::Relu ? "relu" : "unary";
      const std::string name = op == Unary::Gelu ? "gelu" : op == Unary::Relu ? "relu" : op == Unary::Tanh ? "tanh"
                                                                                                           : "sigmoid";
      Twin x(gpu, dtype, uniform(n, 400, -6, 6)), y(gpu, dtype, uniform(n, 401));
      Twin dy(gpu, dtype, uniform(n, 402)), dx(gpu, dtype, uniform(n, 403));
      cpu().unary_forward(op, dtype, n, x.c(), y.c());
      gpu.unary_forward(op, dtype, n, x.g(), y.g());
      expect_parity(kernel, y, name + " forward");
      // Backward from the CPU's forward result, so only the backward kernel is compared.
      const bool saves_output = op == Unary::Tanh || op == Unary::Sigmoid;
      if (saves_output) y.set(y.cpu_values());
      const Twin& saved = saves_output ? y : x;
      cpu().unary_backward(op, dtype, n, saved.c(), dy.c(), dx.c());
      gpu.unary_backward(op, dtype, n, saved.g(), dy.g(), dx.g());
      expect_parity(kernel, dx, name + " backward");
    }
}

TEST_CASE("cuda parity: masked softmax and normalize_rows", "[cuda]") {
  Backend& gpu = gpu_or_skip();
  struct Case {
    int64_t rows, cols, rows_per_mask;  // rows_per_mask 0: no mask
  };
  const Case cases[] = {{1, 1, 0}, {7, 5, 0}, {64, 128, 0}, {3 * 4 * 16, 16, 4 * 16}, {10, 300, 2}, {2, 1000, 1}};
  for (DType dtype : kFloatTypes)
    for (const Case& cs : cases) {
      const int64_t n = cs.rows * cs.cols;
      const std::string what = std::to_string(cs.rows) + "x" + std::to_string(cs.cols) +
                               (cs.rows_per_mask ? " masked" : "");
      Twin x(gpu, dtype, uniform(n, 500, -8, 8)), y(gpu, dtype, uniform(n, 501));
      // BERT's additive mask: 0 for real tokens, -10000 for padding (about a third here).
      std::vector<double> mask_values = random_ints(cs.rows_per_mask ? cs.rows / cs.rows_per_mask * cs.cols : 1, 502, 0, 2);
      for (double& m : mask_values) m = m == 0 ? -10000.0 : 0.0;
      Twin mask(gpu, dtype, mask_values);
      const bool masked = cs.rows_per_mask != 0;
      cpu().softmax_forward(dtype, cs.rows, cs.cols, x.c(), masked ? mask.c() : nullptr, cs.rows_per_mask, y.c());
      gpu.softmax_forward(dtype, cs.rows, cs.cols, x.g(), masked ? mask.g() : nullptr, cs.rows_per_mask, y.g());
      expect_parity("softmax", y, what + " forward");

      y.set(y.cpu_values());
      Twin dy(gpu, dtype, uniform(n, 503)), dx(gpu, dtype, uniform(n, 504));
      cpu().softmax_backward(dtype, cs.rows, cs.cols, y.c(), dy.c(), dx.c());
      gpu.softmax_backward(dtype, cs.rows, cs.cols, y.g(), dy.g(), dx.g());
      expect_parity("softmax", dx, what + " backward");

      // normalize_rows, with every third row all zero (a fully padded sequence).
      std::vector<double> in_values = uniform(n, 505, 0, 1);
      for (int64_t r = 0; r < cs.rows; r += 3) std::fill_n(in_values.begin() + r * cs.cols, cs.cols, 0.0);
      Twin in(gpu, dtype, in_values), out(gpu, dtype, uniform(n, 506));
      cpu().normalize_rows(dtype, cs.rows, cs.cols, in.c(), out.c());
      gpu.normalize_rows(dtype, cs.rows, cs.cols, in.g(), out.g());
      expect_parity("normalize_rows", out, what);
    }
}

TEST_CASE("cuda parity: layer norm forward and backward with optional gradients", "[cuda]") {
  Backend& gpu = gpu_or_skip();
  const std::pair<int64_t, int64_t> shapes[] = {{1, 8}, {5, 33}, {100, 768}, {513, 64}};
  for (DType dtype : kFloatTypes)
    for (auto [rows, cols] : shapes) {
      const std::string what = std::to_string(rows) + "x" + std::to_string(cols);
      const int64_t n = rows * cols;
      Twin x(gpu, dtype, uniform(n, 600, -3, 5)), gamma(gpu, dtype, uniform(cols, 601, 0.5, 1.5));
      Twin beta(gpu, dtype, uniform(cols, 602)), y(gpu, dtype, uniform(n, 603));
      Twin mean(gpu, dtype, uniform(rows, 604)), rstd(gpu, dtype, uniform(rows, 605));
      cpu().layernorm_forward(dtype, rows, cols, 1e-12, x.c(), gamma.c(), beta.c(), y.c(), mean.c(), rstd.c());
      gpu.layernorm_forward(dtype, rows, cols, 1e-12, x.g(), gamma.g(), beta.g(), y.g(), mean.g(), rstd.g());
      expect_parity("layernorm", y, what + " y");
      expect_parity("layernorm", mean, what + " mean");
      expect_parity("layernorm", rstd, what + " rstd");

      mean.set(mean.cpu_values());
      rstd.set(rstd.cpu_values());
      Twin dy(gpu, dtype, uniform(n, 606));
      for (int mask = 0; mask < 8; ++mask) {  // which of dx, dγ, dβ are wanted
        const bool want_dx = mask & 1, want_dg = mask & 2, want_db = mask & 4;
        Twin dx(gpu, dtype, uniform(n, 607)), dg(gpu, dtype, uniform(cols, 608)), db(gpu, dtype, uniform(cols, 609));
        cpu().layernorm_backward(dtype, rows, cols, x.c(), gamma.c(), mean.c(), rstd.c(), dy.c(),
                                 want_dx ? dx.c() : nullptr, want_dg ? dg.c() : nullptr, want_db ? db.c() : nullptr);
        gpu.layernorm_backward(dtype, rows, cols, x.g(), gamma.g(), mean.g(), rstd.g(), dy.g(),
                               want_dx ? dx.g() : nullptr, want_dg ? dg.g() : nullptr, want_db ? db.g() : nullptr);
        const std::string wanted = " wanted " + std::to_string(mask);
        expect_parity("layernorm", dx, what + " dx" + wanted);  // untouched on both sides when not wanted
        expect_parity("layernorm", dg, what + " dgamma" + wanted);
        expect_parity("layernorm", db, what + " dbeta" + wanted);
      }
    }
}

TEST_CASE("cuda parity: embedding gather and scatter-add and bad ids throw", "[cuda]") {
  Backend& gpu = gpu_or_skip();
  const int64_t vocab = 300, dim = 48, n = 1000;  // n > vocab: many repeated ids
  for (DType dtype : kFloatTypes) {
    Twin ids(gpu, DType::I32, random_ints(n, 700, 0, vocab - 1));
    Twin table(gpu, dtype, uniform(vocab * dim, 701)), out(gpu, dtype, uniform(n * dim, 702));
    cpu().embedding_forward(dtype, n, dim, ids.ci(), table.c(), vocab, out.c());
    gpu.embedding_forward(dtype, n, dim, ids.gi(), table.g(), vocab, out.g());
    expect_parity("embedding_forward", out);

    Twin dout(gpu, dtype, uniform(n * dim, 703)), dtable(gpu, dtype, uniform(vocab * dim, 704));
    cpu().embedding_backward(dtype, n, dim, ids.ci(), dout.c(), vocab, dtable.c());
    gpu.embedding_backward(dtype, n, dim, ids.gi(), dout.g(), vocab, dtable.g());
    expect_parity("embedding_backward", dtable);

    for (int bad : {-1, static_cast<int>(vocab)}) {
      auto bad_ids = random_ints(n, 705, 0, vocab - 1);
      bad_ids[417] = bad;
      ids.set(bad_ids);
      CHECK_THROWS_AS(cpu().embedding_forward(dtype, n, dim, ids.ci(), table.c(), vocab, out.c()), std::out_of_range);
      CHECK_THROWS_WITH(gpu.embedding_forward(dtype, n, dim, ids.gi(), table.g(), vocab, out.g()),
                        Catch::Contains("position 417") && Catch::Contains(std::to_string(bad)));
      CHECK_THROWS_AS(gpu.embedding_backward(dtype, n, dim, ids.gi(), dout.g(), vocab, dtable.g()),
                      std::out_of_range);
    }
    // The device is still usable after the error.
    ids.set(random_ints(n, 700, 0, vocab - 1));
    gpu.embedding_forward(dtype, n, dim, ids.gi(), table.g(), vocab, out.g());
    cpu().embedding_forward(dtype, n, dim, ids.ci(), table.c(), vocab, out.c());
    expect_parity("embedding_forward", out, "after an error");
  }
}

TEST_CASE("cuda parity: dropout is bit-identical to the CPU's (same mask, same scaling)", "[cuda]") {
  Backend& gpu = gpu_or_skip();
  const int64_t n = 200001;
  for (DType dtype : kFloatTypes)
    for (double p : {0.0, 0.1, 0.5, 0.9})
      for (uint64_t seed : {uint64_t(0), uint64_t(42), uint64_t(0xDEADBEEFCAFEF00Dull)}) {
        Twin x(gpu, dtype, uniform(n, 900 + seed % 7, -3, 3)), y(gpu, dtype, std::vector<double>(n, -1.0));
        cpu().dropout(dtype, n, p, seed, x.c(), y.c());
        gpu.dropout(dtype, n, p, seed, x.g(), y.g());
        const auto ref = y.cpu_values(), got = y.gpu_values();
        INFO("dropout " << dtype_name(dtype) << " p=" << p << " seed=" << seed);
        CHECK(ref == got);
        const double kept = std::count_if(got.begin(), got.end(), [](double v) { return v != 0; });
        CHECK(std::abs(kept / n - (1 - p)) < 0.01);
      }
}

TEST_CASE("cuda parity: permute and copy_2d for every dtype", "[cuda]") {
  Backend& gpu = gpu_or_skip();
  const int64_t in_shape[4] = {2, 5, 7, 3};
  const int64_t n = 2 * 5 * 7 * 3;
  for (DType dtype : {DType::F32, DType::F64, DType::I32}) {
    Twin in(gpu, dtype, random_ints(n, 800, -1000, 1000)), out(gpu, dtype, std::vector<double>(n, 0.0));
    int perm[4] = {0, 1, 2, 3};
    do {  // all 24 permutations
      cpu().permute(dtype, in_shape, perm, in.c(), out.c());
      gpu.permute(dtype, in_shape, perm, in.g(), out.g());
      expect_parity("permute", out,
                    std::to_string(perm[0]) + std::to_string(perm[1]) + std::to_string(perm[2]) + std::to_string(perm[3]));
    } while (std::next_permutation(perm, perm + 4));

    // A slice (columns 3..13 of a 40x20 matrix) into the middle of a 40x30 one, and contiguous copies.
    Twin src(gpu, dtype, random_ints(40 * 20, 801, -1000, 1000)), dst(gpu, dtype, random_ints(40 * 30, 802, 0, 9));
    cpu().copy_2d(dtype, 40, 10, static_cast<char*>(src.c()) + 3 * dtype_size(dtype), 20,
                  static_cast<char*>(dst.c()) + 5 * dtype_size(dtype), 30);
    gpu.copy_2d(dtype, 40, 10, static_cast<char*>(src.g()) + 3 * dtype_size(dtype), 20,
                static_cast<char*>(dst.g()) + 5 * dtype_size(dtype), 30);
    expect_parity("copy_2d", dst, "strided");
    cpu().copy_2d(dtype, 20, 20, src.c(), 20, dst.c(), 20);
    gpu.copy_2d(dtype, 20, 20, src.g(), 20, dst.g(), 20);
    expect_parity("copy_2d", dst, "contiguous");
    cpu().copy_2d(dtype, 1, 17, src.c(), 20, dst.c(), 30);
    gpu.copy_2d(dtype, 1, 17, src.g(), 20, dst.g(), 30);
    expect_parity("copy_2d", dst, "one row");
  }
}

TEST_CASE("cuda parity: cross-entropy and MSE forward and backward and bad labels throw", "[cuda]") {
  Backend& gpu = gpu_or_skip();
  for (DType dtype : kFloatTypes)
    for (auto [n, c] : {std::pair<int64_t, int64_t>{1, 2}, {32, 3}, {257, 1000}}) {
      const std::string what = std::to_string(n) + "x" + std::to_string(c);
      Twin logits(gpu, dtype, uniform(n * c, 900, -10, 10)), probs(gpu, dtype, uniform(n * c, 901));
      Twin labels(gpu, DType::I32, random_ints(n, 902, 0, static_cast<int>(c) - 1));
      Twin loss(gpu, dtype, {0.0}), dloss(gpu, dtype, {0.7});
      cpu().cross_entropy_forward(dtype, n, c, logits.c(), labels.ci(), probs.c(), loss.c());
      gpu.cross_entropy_forward(dtype, n, c, logits.g(), labels.gi(), probs.g(), loss.g());
      expect_parity("cross_entropy", probs, what + " probs");
      expect_parity("cross_entropy", loss, what + " loss");

      probs.set(probs.cpu_values());
      Twin dlogits(gpu, dtype, uniform(n * c, 903));
      cpu().cross_entropy_backward(dtype, n, c, probs.c(), labels.ci(), dloss.c(), dlogits.c());
      gpu.cross_entropy_backward(dtype, n, c, probs.g(), labels.gi(), dloss.g(), dlogits.g());
      expect_parity("cross_entropy", dlogits, what + " dlogits");

      auto bad = random_ints(n, 902, 0, static_cast<int>(c) - 1);
      bad[n - 1] = static_cast<int>(c);
      labels.set(bad);
      CHECK_THROWS_AS(gpu.cross_entropy_forward(dtype, n, c, logits.g(), labels.gi(), probs.g(), loss.g()),
                      std::out_of_range);

      Twin pred(gpu, dtype, uniform(n * 3, 904)), target(gpu, dtype, uniform(n * 3, 905));
      Twin dpred(gpu, dtype, uniform(n * 3, 906));
      cpu().mse_forward(dtype, n * 3, pred.c(), target.c(), loss.c());
      gpu.mse_forward(dtype, n * 3, pred.g(), target.g(), loss.g());
      expect_parity("mse", loss, what + " loss");
      cpu().mse_backward(dtype, n * 3, pred.c(), target.c(), dloss.c(), dpred.c());
      gpu.mse_backward(dtype, n * 3, pred.g(), target.g(), dloss.g(), dpred.g());
      expect_parity("mse", dpred, what + " dpred");
    }
}

TEST_CASE("cuda parity: AdamW over several steps", "[cuda]") {
  Backend& gpu = gpu_or_skip();
  const int64_t n = 10007;
  for (DType dtype : kFloatTypes) {
    Twin param(gpu, dtype, uniform(n, 1000)), m(gpu, dtype, std::vector<double>(n, 0.0));
    Twin v(gpu, dtype, std::vector<double>(n, 0.0)), grad(gpu, dtype, uniform(n, 1001));
    for (int t = 1; t <= 5; ++t) {
      grad.set(uniform(n, 1001 + t));
      AdamWStep step{1e-3, 0.9, 0.999, 1e-8, 0.01, 1 - std::pow(0.9, t), 1 - std::pow(0.999, t)};
      cpu().adamw_update(dtype, n, param.c(), grad.c(), m.c(), v.c(), step);
      gpu.adamw_update(dtype, n, param.g(), grad.g(), m.g(), v.g(), step);
    }
    expect_parity("adamw", param, "param");
    expect_parity("adamw", m, "m");
    expect_parity("adamw", v, "v");
  }
}

// Runs everywhere (no skip): asking for CUDA must never crash a machine without one.
TEST_CASE("cuda backend: asking for CUDA never crashes a machine without a GPU", "[cuda]") {
  bool present = false;
  REQUIRE_NOTHROW(present = cuda_available());
  if (!present) CHECK_THROWS_AS(backend(Device::CUDA), std::runtime_error);
}

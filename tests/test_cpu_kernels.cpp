// The CPU backend's fast paths against plain reference loops written here:
// - cpu_vector_math.h: the float exp and normal CDF/PDF against the double-precision C library, at the
//   error bounds that header documents;
// - GELU and softmax in float against the same computation in double;
// - broadcasting (`binary`, `reduce_broadcast`, `expand`): every stride pattern the collapsed loop nest
//   distinguishes, against a naive 4-D loop in float64 (bit-exact; reduce_broadcast to 1e-14, since its
//   vectorised row sums add in another order), and zero-size tensors;
// - dropout against the documented rule "kept when hash(seed, i) / 2^53 >= p", computed in double;
// - the caching allocator (autograd/caching_allocator.h) under the CPU backend.
#include <catch2/catch.hpp>
#include <sys/mman.h>
#include <sys/resource.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "autograd/backend.h"
#include "autograd/caching_allocator.h"
#include "autograd/ops.h"
#include "autograd/cpu_vector_math.h"
#include "autograd/dropout_hash.h"
#include "tests/test_util.h"

using namespace unipelt;

namespace {

Backend& cpu() { return backend(Device::CPU); }

std::vector<double> uniform(size_t n, uint64_t seed, double lo, double hi) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> dist(lo, hi);
  std::vector<double> v(n);
  for (double& x : v) x = dist(rng);
  return v;
}

std::vector<float> to_float(const std::vector<double>& v) { return std::vector<float>(v.begin(), v.end()); }

// Whether AddressSanitizer replaced malloc (GCC defines the macro; clang answers __has_feature).
constexpr bool address_sanitizer() {
#if defined(__SANITIZE_ADDRESS__)
  return true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
  return true;
#endif
#endif
  return false;
}

// Page faults while writing every byte of [p, p + bytes).
long faults_writing(void* p, size_t bytes) {
  rusage before{}, after{};
  getrusage(RUSAGE_SELF, &before);
  std::memset(p, 1, bytes);
  getrusage(RUSAGE_SELF, &after);
  return after.ru_minflt - before.ru_minflt;
}

}  // namespace

TEST_CASE("cpu vector math: exp_approx's relative error is below float epsilon over the whole range", "[cpu_kernels]") {
  double worst = 0;
  for (float x = -110.0f; x < 90.0f; x += 0.000731f) {
    const double ref = std::exp(static_cast<double>(x));
    const float got = vmath::exp_approx(x);
    if (ref > std::numeric_limits<float>::max()) {
      CHECK(std::isinf(got));
      continue;
    }
    // Relative error for normal results; below FLT_MIN (denormals, flushed tails) absolute in FLT_MIN units.
    const double err = std::abs(got - ref) / std::max(ref, static_cast<double>(std::numeric_limits<float>::min()));
    worst = std::max(worst, err);
  }
  INFO("worst relative error " << worst);
  CHECK(worst < 1.2e-7);  // float's epsilon is 1.19e-7; measured 9.3e-8
  CHECK(vmath::exp_approx(0.0f) == 1.0f);
  CHECK(vmath::exp_approx(-INFINITY) == 0.0f);
  CHECK(vmath::exp_approx(-200.0f) == 0.0f);
  CHECK(std::isinf(vmath::exp_approx(INFINITY)));
  CHECK(std::isinf(vmath::exp_approx(89.0f)));
  CHECK(std::isnan(vmath::exp_approx(NAN)));
}

TEST_CASE("cpu vector math: the float normal CDF and PDF match the C library's", "[cpu_kernels]") {
  double worst_cdf = 0, worst_pdf = 0;
  for (float x = -12.0f; x < 12.0f; x += 0.0001f) {
    float cdf_f, pdf_f;
    double cdf_d, pdf_d;
    vmath::normal_cdf_pdf(x, cdf_f, pdf_f);
    vmath::normal_cdf_pdf(static_cast<double>(x), cdf_d, pdf_d);
    worst_cdf = std::max(worst_cdf, std::abs(cdf_f - cdf_d));
    worst_pdf = std::max(worst_pdf, std::abs(pdf_f - pdf_d));
  }
  INFO("worst |ΔΦ| " << worst_cdf << ", worst |Δφ| " << worst_pdf);
  // A&S 7.1.26 alone is within 7e-8 of Φ; evaluating its polynomial in float adds up to ~2e-7 near 0.
  CHECK(worst_cdf < 3e-7);   // measured 2.8e-7 (at x ≈ -0.07)
  CHECK(worst_pdf < 1e-7);   // φ ≤ 0.4: a few float roundings
}

TEST_CASE("cpu kernels: float GELU forward and backward agree with float64", "[cpu_kernels]") {
  const int64_t n = 100003;  // odd: exercises the vector loop's remainder
  const std::vector<double> x = uniform(n, 1, -8, 8), dy = uniform(n, 2, -1, 1);
  const std::vector<float> xf = to_float(x), dyf = to_float(dy);
  std::vector<double> y(n), dx(n);
  std::vector<float> yf(n), dxf(n);
  cpu().unary_forward(Unary::Gelu, DType::F64, n, x.data(), y.data());
  cpu().unary_forward(Unary::Gelu, DType::F32, n, xf.data(), yf.data());
  cpu().unary_backward(Unary::Gelu, DType::F64, n, x.data(), dy.data(), dx.data());
  cpu().unary_backward(Unary::Gelu, DType::F32, n, xf.data(), dyf.data(), dxf.data());
  double worst_y = 0, worst_dx = 0;
  for (int64_t i = 0; i < n; ++i) {
    // Reference: the double formula evaluated at the float inputs' exact values.
    double cdf, pdf;
    vmath::normal_cdf_pdf(static_cast<double>(xf[i]), cdf, pdf);
    const double yr = xf[i] * cdf, dxr = dyf[i] * (cdf + xf[i] * pdf);
    worst_y = std::max(worst_y, std::abs(yf[i] - yr) / std::max(1.0, std::abs(yr)));
    worst_dx = std::max(worst_dx, std::abs(dxf[i] - dxr) / std::max(1.0, std::abs(dxr)));
    // The f64 kernel is the reference formula itself.
    vmath::normal_cdf_pdf(x[i], cdf, pdf);
    REQUIRE(y[i] == x[i] * cdf);
  }
  INFO("worst scaled error: gelu " << worst_y << ", gelu' " << worst_dx);
  CHECK(worst_y < 1e-6);
  CHECK(worst_dx < 1e-6);
}

TEST_CASE("cpu kernels: float softmax with a mask agrees with float64", "[cpu_kernels]") {
  const int64_t rows = 37, cols = 131, rows_per_mask = 37;
  std::vector<double> x = uniform(rows * cols, 3, -20, 20), mask(cols, 0.0);
  for (int64_t c = 100; c < cols; ++c) mask[c] = -1e9;  // padded positions: probability exactly 0
  std::vector<double> y(rows * cols);
  std::vector<float> yf(rows * cols);
  cpu().softmax_forward(DType::F64, rows, cols, x.data(), mask.data(), rows_per_mask, y.data());
  const std::vector<float> xf = to_float(x), maskf = to_float(mask);
  cpu().softmax_forward(DType::F32, rows, cols, xf.data(), maskf.data(), rows_per_mask, yf.data());
  double worst = 0;
  for (int64_t i = 0; i < rows * cols; ++i) {
    worst = std::max(worst, std::abs(yf[i] - y[i]));
    if (i % cols >= 100) REQUIRE(yf[i] == 0.0f);
  }
  INFO("worst |Δp| " << worst);
  CHECK(worst < 1e-6);

  // Edge rows: every position masked (BERT's mask is a finite -10000, so the row stays uniform), a -inf
  // score (probability exactly 0), and a NaN (propagates).
  const std::vector<float> edge = {-10000.0f, -10000.0f, -10000.0f, -10000.0f,  // all masked
                                   1.0f, -INFINITY, 1.0f, 2.0f,                   // one -inf
                                   0.0f, NAN, 0.0f, 0.0f};
  std::vector<float> p(12);
  cpu().softmax_forward(DType::F32, 3, 4, edge.data(), nullptr, 1, p.data());
  for (int c = 0; c < 4; ++c) CHECK(p[c] == Approx(0.25f).epsilon(1e-6));
  CHECK(p[5] == 0.0f);
  CHECK(p[4] + p[6] + p[7] == Approx(1.0f).epsilon(1e-6));
  for (int c = 8; c < 12; ++c) CHECK(std::isnan(p[c]));
}

// Naive broadcasting in float64: out[i] = op(a[Σ i_d·sa_d], b[Σ i_d·sb_d]) over a 4-D nest.
TEST_CASE("cpu kernels: binary, reduce_broadcast and expand match naive loops for every stride pattern",
          "[cpu_kernels]") {
  struct Case {
    const char* name;
    int64_t shape[4];
    int64_t a_stride[4], b_stride[4];
  };
  const Case cases[] = {
      {"same shape", {2, 3, 4, 5}, {60, 20, 5, 1}, {60, 20, 5, 1}},
      {"row bias [B,T,H] + [H]", {1, 3, 4, 5}, {0, 20, 5, 1}, {0, 0, 0, 1}},
      {"per-example scalar [B,T,H] * [B,1,1]", {1, 3, 4, 5}, {0, 20, 5, 1}, {0, 1, 0, 0}},
      {"scalar on the left [B,1] * [B,H]", {1, 1, 6, 7}, {0, 0, 1, 0}, {0, 0, 7, 1}},
      {"outer product [4,1] * [1,3]", {1, 1, 4, 3}, {0, 0, 1, 0}, {0, 0, 0, 1}},
      {"middle broadcast [B,1,H] + [B,T,H]", {1, 3, 4, 5}, {0, 5, 0, 1}, {0, 20, 5, 1}},
      {"strided read (transposed operand)", {1, 1, 4, 6}, {0, 0, 1, 4}, {0, 0, 6, 1}},
      {"all ones", {1, 1, 1, 1}, {0, 0, 0, 0}, {0, 0, 0, 0}},
  };
  for (const Case& c : cases) {
    INFO(c.name);
    Broadcast4 bc;
    int64_t a_size = 1, b_size = 1;
    for (int d = 0; d < 4; ++d) {
      bc.shape[d] = c.shape[d];
      bc.a_stride[d] = c.a_stride[d];
      bc.b_stride[d] = c.b_stride[d];
      a_size += (c.shape[d] - 1) * c.a_stride[d];
      b_size += (c.shape[d] - 1) * c.b_stride[d];
    }
    const int64_t n = bc.numel();
    const std::vector<double> a = uniform(a_size, 4, -2, 2), b = uniform(b_size, 5, -2, 2), g = uniform(n, 6, -1, 1);
    for (Binary op : {Binary::Add, Binary::Sub, Binary::Mul}) {
      std::vector<double> out(n, NAN), ref(n);
      cpu().binary(op, DType::F64, bc, a.data(), b.data(), out.data());
      std::vector<double> reduced_a(a_size, 0.0), expanded_a(n);
      int64_t o = 0;
      for (int64_t i0 = 0; i0 < c.shape[0]; ++i0)
        for (int64_t i1 = 0; i1 < c.shape[1]; ++i1)
          for (int64_t i2 = 0; i2 < c.shape[2]; ++i2)
            for (int64_t i3 = 0; i3 < c.shape[3]; ++i3, ++o) {
              const int64_t ia = i0 * c.a_stride[0] + i1 * c.a_stride[1] + i2 * c.a_stride[2] + i3 * c.a_stride[3];
              const int64_t ib = i0 * c.b_stride[0] + i1 * c.b_stride[1] + i2 * c.b_stride[2] + i3 * c.b_stride[3];
              ref[o] = op == Binary::Add ? a[ia] + b[ib] : op == Binary::Sub ? a[ia] - b[ib] : a[ia] * b[ib];
              reduced_a[ia] += g[o];
              expanded_a[o] = a[ia];
            }
      CHECK(out == ref);
    }
    // The adjoint pair for each operand: sum the gradient back to the operand's layout (reduce_broadcast)
    // and read the operand out to the full shape (expand), against the same naive nest.
    for (int operand = 0; operand < 2; ++operand) {
      const int64_t* stride = operand == 0 ? c.a_stride : c.b_stride;
      const std::vector<double>& values = operand == 0 ? a : b;
      const int64_t size = operand == 0 ? a_size : b_size;
      std::vector<double> reduced_ref(size, 0.0), expanded_ref(n);
      int64_t o = 0;
      for (int64_t i0 = 0; i0 < c.shape[0]; ++i0)
        for (int64_t i1 = 0; i1 < c.shape[1]; ++i1)
          for (int64_t i2 = 0; i2 < c.shape[2]; ++i2)
            for (int64_t i3 = 0; i3 < c.shape[3]; ++i3, ++o) {
              const int64_t i = i0 * stride[0] + i1 * stride[1] + i2 * stride[2] + i3 * stride[3];
              reduced_ref[i] += g[o];
              expanded_ref[o] = values[i];
            }
      std::vector<double> reduced(size, NAN), expanded(n, NAN);
      cpu().reduce_broadcast(DType::F64, c.shape, stride, g.data(), reduced.data(), size);
      cpu().expand(DType::F64, c.shape, stride, values.data(), expanded.data());
      INFO("operand " << (operand == 0 ? "a" : "b"));
      for (int64_t i = 0; i < size; ++i) CHECK(reduced[i] == Approx(reduced_ref[i]).epsilon(1e-14).margin(1e-15));
      CHECK(expanded == expanded_ref);
    }
  }
}

TEST_CASE("broadcasting with a zero-size dimension gives an empty result (numpy rules)", "[cpu_kernels]") {
  // 1 broadcasts to 0: [1] + [0] -> [0]; [2,1] * [1,0] -> [2,0]. This used to take max(1, 0) = 1 and
  // read the empty operand.
  Tensor one = Tensor::full({1}, 2.0, DType::F64), empty = Tensor::zeros({0}, DType::F64);
  CHECK(ops::add(one, empty).shape() == Shape{0});
  CHECK(ops::add(empty, one).shape() == Shape{0});
  CHECK(ops::mul(Tensor::full({2, 1}, 1.0, DType::F64), Tensor::zeros({1, 0}, DType::F64)).shape() == Shape{2, 0});
  // The kernels themselves accept empty nests.
  const int64_t shape[4] = {1, 3, 0, 5}, stride[4] = {0, 0, 0, 1};
  std::vector<double> row(5, 7.0);
  cpu().reduce_broadcast(DType::F64, shape, stride, nullptr, row.data(), 5);
  CHECK(row == std::vector<double>(5, 0.0));
  cpu().expand(DType::F64, shape, stride, row.data(), nullptr);
}

TEST_CASE("cpu kernels: dropout keeps exactly the elements whose hash is >= p, scaled by 1/(1-p)", "[cpu_kernels]") {
  const int64_t n = 50001;
  const std::vector<double> x = uniform(n, 7, -3, 3);
  const std::vector<float> xf = to_float(x);
  for (double p : {0.1, 0.25, 1.0 / 3.0, 0.5, 0.9}) {
    for (uint64_t seed : {uint64_t(0), uint64_t(12345), uint64_t(0xFFFFFFFFFFFFFFFFull)}) {
      std::vector<double> y(n);
      std::vector<float> yf(n);
      cpu().dropout(DType::F64, n, p, seed, x.data(), y.data());
      cpu().dropout(DType::F32, n, p, seed, xf.data(), yf.data());
      int64_t kept = 0;
      for (int64_t i = 0; i < n; ++i) {
        const double u = static_cast<double>(dropout_bits(seed, i)) * 0x1.0p-53;  // the documented rule
        const bool keep = u >= p;
        kept += keep;
        REQUIRE(y[i] == (keep ? x[i] * (1.0 / (1.0 - p)) : 0.0));
        REQUIRE(yf[i] == (keep ? xf[i] * static_cast<float>(1.0 / (1.0 - p)) : 0.0f));
      }
      CHECK(std::abs(static_cast<double>(kept) / n - (1 - p)) < 0.01);
    }
  }
  // Dropped elements are multiplied by 0, not overwritten: a NaN input still yields NaN (so a diverging
  // run is caught by the trainer's NaN check).
  std::vector<float> nan_in(64, NAN), nan_out(64);
  cpu().dropout(DType::F32, 64, 0.5, 1, nan_in.data(), nan_out.data());
  for (float v : nan_out) CHECK(std::isnan(v));
}

TEST_CASE("cpu kernels: the dropout threshold is exact at the edges", "[cpu_kernels]") {
  CHECK(dropout_keep_threshold(0.0) == 0);  // p = 0 keeps every element
  CHECK(dropout_keep_threshold(0.5) == (int64_t(1) << 52));
  // 0.1 is not representable: the threshold is the smallest integer k with k / 2^53 >= 0.1 (as doubles).
  const int64_t t = dropout_keep_threshold(0.1);
  CHECK(static_cast<double>(t) * 0x1.0p-53 >= 0.1);
  CHECK(static_cast<double>(t - 1) * 0x1.0p-53 < 0.1);
}

TEST_CASE("cpu allocator: freed blocks are reused by size bucket, counted, and released on request",
          "[cpu_kernels]") {
  Backend& host = cpu();
  host.release_cached();
  const AllocatorStats before = host.memory_stats();
  void* p = host.allocate(100000);
  CHECK(reinterpret_cast<uintptr_t>(p) % 64 == 0);
  host.deallocate(p, 100000);
  void* q = host.allocate(99000);  // the same bucket: the same block comes back, no new allocation
  CHECK(q == p);
  const AllocatorStats mid = host.memory_stats();
  CHECK(mid.cache_hits == before.cache_hits + 1);
  CHECK(mid.raw_allocations == before.raw_allocations + 1);
  CHECK(mid.bytes_in_use == before.bytes_in_use + 99000);
  host.deallocate(q, 99000);
  CHECK(host.memory_stats().bytes_cached >= 99000);
  host.release_cached();
  CHECK(host.memory_stats().bytes_cached == 0);
  CHECK(host.memory_stats().bytes_in_use == before.bytes_in_use);
  CHECK(host.memory_stats().bytes_reserved == before.bytes_reserved);

  // Ever-new sizes (evaluation batches padded to growing lengths) must not pile up in the cache: a miss
  // while the cache holds more than is in use empties it. Without that rule this loop would leave
  // 1 + 2 + ... + 20 MiB = 210 MiB cached.
  for (size_t mib = 1; mib <= 20; ++mib) {
    void* block = host.allocate(mib << 20);
    host.deallocate(block, mib << 20);
  }
  const AllocatorStats after = host.memory_stats();
  INFO("cached " << after.bytes_cached << " bytes, in use " << after.bytes_in_use);
  CHECK(after.bytes_cached <= std::max(after.bytes_in_use, size_t(25) << 20) + (size_t(25) << 20));
  host.release_cached();
}

// When the cache hands a block back (a miss while it holds more than is in use: evaluation's next batch
// size), glibc keeps the pages, so the next size runs in memory that is already mapped. With glibc's
// defaults the 48 MiB block was an mmap of its own, unmapped on free, and the 40 MiB after it faulted
// in every page again, as a fresh mapping does.
TEST_CASE("cpu allocator: memory the cache hands back stays mapped for the next size", "[cpu_kernels]") {
  if (address_sanitizer()) testing::skip("AddressSanitizer's own allocator serves malloc, not glibc's");
  Backend& host = cpu();
  host.release_cached();
  const size_t mib = size_t(1) << 20;
  void* fresh = mmap(nullptr, 40 * mib, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  REQUIRE(fresh != MAP_FAILED);
  const long fresh_faults = faults_writing(fresh, 40 * mib);
  munmap(fresh, 40 * mib);

  void* first = host.allocate(48 * mib);
  faults_writing(first, 48 * mib);
  host.deallocate(first, 48 * mib);
  REQUIRE(host.memory_stats().bytes_in_use < 48 * mib);  // so the next miss hands the 48 MiB back
  const size_t raw_before = host.memory_stats().raw_allocations;
  void* next = host.allocate(40 * mib);  // another bucket: a miss
  CHECK(host.memory_stats().bytes_cached == 0);
  CHECK(host.memory_stats().raw_allocations == raw_before + 1);
  const long next_faults = faults_writing(next, 40 * mib);
  INFO("a fresh 40 MiB mapping faulted " << fresh_faults << " times, the next block " << next_faults);
  CHECK(next_faults * 4 < fresh_faults);
  host.deallocate(next, 40 * mib);
  host.release_cached();
}

TEST_CASE("caching allocator buckets: at most 25 % waste, at least 512 bytes", "[cpu_kernels]") {
  using Cache = CachingAllocator<struct NoMemory>;
  CHECK(Cache::bucket(0) == 512);
  CHECK(Cache::bucket(1) == 512);
  CHECK(Cache::bucket(512) == 512);
  CHECK(Cache::bucket(513) == 1024);
  CHECK(Cache::bucket(100000) == Cache::bucket(99000));
  for (size_t bytes : {size_t(777), size_t(4096), size_t(4097), size_t(100000), size_t(8u << 20), size_t(12345678)}) {
    const size_t b = Cache::bucket(bytes);
    INFO(bytes << " -> " << b);
    CHECK(b >= bytes);
    CHECK(b % 512 == 0);
    CHECK(static_cast<double>(b) <= 1.25 * static_cast<double>(std::max<size_t>(bytes, 512)) + 512);
  }
}

TEST_CASE("cpu blas hint: names the OPENBLAS_CORETYPE whose kernels the CPU can run, and only then", "[cpu_kernels]") {
  // Generic SSE kernels on an AVX2 or AVX-512 CPU (Debian's 0.3.21 on recent Xeons).
  CHECK_THAT(blas_core_hint("Prescott", true, false), Catch::Contains("OPENBLAS_CORETYPE=Haswell"));
  CHECK_THAT(blas_core_hint("Prescott", true, true), Catch::Contains("OPENBLAS_CORETYPE=SkylakeX"));
  // AVX2 kernels on an AVX-512 CPU (0.3.21 on AMD Zen 4 and 5).
  CHECK_THAT(blas_core_hint("Haswell", true, true), Catch::Contains("OPENBLAS_CORETYPE=SkylakeX"));
  CHECK_THAT(blas_core_hint("Zen", true, true), Catch::Contains("Zen (AVX2) kernels"));
  // The right kernels already, or a CPU that could not run better ones: no hint.
  CHECK(blas_core_hint("SkylakeX", true, true).empty());
  CHECK(blas_core_hint("Haswell", true, false).empty());
  CHECK(blas_core_hint("Zen", true, false).empty());
  CHECK(blas_core_hint("Prescott", false, false).empty());
}

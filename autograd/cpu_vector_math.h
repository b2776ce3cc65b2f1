// Vectorisable float math for the CPU kernels: exp, and the normal CDF/PDF that GELU needs.
//
// Why not std::exp / std::erf? They are correct to the last bit but scalar: glibc's expf and erff are
// function calls the compiler cannot turn into SIMD code, and GELU's erf alone was ~10 % of a training
// step (docs/benchmarks.md). The functions below are straight-line arithmetic (no branches, no calls,
// no tables), so a loop over them compiles to AVX2 / AVX-512 instructions.
//
// Precision. Only float gets the approximations; the double overloads call the C library, so float64
// gradient checks compare against exact math.
//   exp_approx(x):    max relative error 9.3e-8 (< 1 float epsilon) measured over [-104, 88.7]; exact 0 below
//                     -103.97, inf above 88.72, NaN in → NaN out.
//   normal_cdf_pdf:   Φ(x) to ≤ 3e-7 absolute: Abramowitz & Stegun 7.1.26 (|erf error| ≤ 1.5e-7, so
//                     ≤ 7e-8 in Φ) plus float rounding in its polynomial (up to ~2e-7 near x = 0);
//                     φ(x) to ≤ 1e-7 absolute. PyTorch's vectorised CPU erf uses the same formula.
// tests/test_cpu_kernels.cpp checks these bounds against the double-precision library functions.
//
// UNIPELT_CPU_KERNEL marks a kernel loop for GCC's function multi-versioning: it is compiled three
// times (baseline x86-64, x86-64-v3 = AVX2+FMA, x86-64-v4 = AVX-512) and the loader picks the best the
// CPU supports. The baseline build stays portable; other compilers and architectures get one version.
// Consequence: results can differ in the last bits between CPUs (FMA contraction, the order of
// vectorised sums depends on the vector width), in float and in double. On one machine they are
// deterministic. Gradient checks use tolerances, never bit equality, so they hold on every CPU.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
#define UNIPELT_CPU_KERNEL __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define UNIPELT_CPU_KERNEL
#endif

namespace unipelt::vmath {

// 2^n for an integer n in [-126, 127], built directly from its IEEE-754 exponent bits.
inline float pow2_int(int32_t n) {
  const int32_t bits = (n + 127) << 23;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

// e^x = 2^n · e^r with n = round(x / ln 2) and r = x - n·ln 2, |r| ≤ ln2 / 2 ≈ 0.347.
// e^r: Taylor series to r^7 (truncation error 0.347^8 / 8! ≈ 5e-9, below float rounding), Horner form.
// ln 2 is split in two (Cody–Waite) so that n·ln2_hi is exact and r keeps its low bits.
inline float exp_approx(float x) {
  constexpr float kMax = 88.72283935546875f;   // e^x overflows float above this
  constexpr float kMin = -103.972084045410f;   // e^x rounds to 0 below this (denormals included)
  float xc = x > kMax ? kMax : x;
  xc = xc < kMin ? kMin : xc;
  xc = x != x ? 0.0f : xc;  // NaN: compute anything finite (the result is replaced below), never convert NaN
  constexpr float kRound = 12582912.0f;  // 1.5·2^23: adding and subtracting it rounds to an integer
  const float n = (xc * 1.44269504088896341f + kRound) - kRound;
  float r = xc - n * 0.693145751953125f;  // ln2_hi: 12 significant bits, so n·ln2_hi is exact
  r = r - n * 1.428606765330187045e-06f;  // ln2_lo = ln 2 - ln2_hi
  float p = 1.0f / 5040;
  p = p * r + 1.0f / 720;
  p = p * r + 1.0f / 120;
  p = p * r + 1.0f / 24;
  p = p * r + 1.0f / 6;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  // n ∈ [-150, 128] does not fit one float exponent: scale by 2^(n/2) twice.
  const int32_t ni = static_cast<int32_t>(n);
  const int32_t n1 = ni >> 1;
  const float y = p * pow2_int(n1) * pow2_int(ni - n1);
  const float saturated = x > kMax ? INFINITY : y;
  return x != x ? x : saturated;  // NaN stays NaN
}

// Φ(x) and φ(x) of the standard normal, sharing one exponential e = exp(-x²/2):
//   φ(x) = e / √(2π)
//   Φ(x) = 1 - q/2 for x ≥ 0 and q/2 for x < 0, with q = erfc(|x|/√2) ≈ poly(t)·e, t = 1/(1 + p·|x|/√2)
// (A&S 7.1.26). Computing Φ(x < 0) as q/2 instead of (1 + erf)/2 avoids the cancellation of 1 - 0.99…
inline void normal_cdf_pdf(float x, float& cdf, float& pdf) {
  const float e = exp_approx(-0.5f * x * x);
  const float t = 1.0f / (1.0f + 0.3275911f * 0.70710678118654752f * std::fabs(x));
  const float poly = t * (0.254829592f + t * (-0.284496736f + t * (1.421413741f + t * (-1.453152027f + t * 1.061405429f))));
  const float half_q = 0.5f * poly * e;
  cdf = x >= 0.0f ? 1.0f - half_q : half_q;
  pdf = 0.3989422804014327f * e;
}

// The same in double, from the C library (exact to the last bit or so; float64 gradient checks use it).
inline void normal_cdf_pdf(double x, double& cdf, double& pdf) {
  cdf = 0.5 * (1.0 + std::erf(x * M_SQRT1_2));
  pdf = 0.3989422804014327 * std::exp(-0.5 * x * x);
}

inline float exp(float x) { return exp_approx(x); }
inline double exp(double x) { return std::exp(x); }

}  // namespace unipelt::vmath

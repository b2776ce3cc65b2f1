// The dropout mask as a pure function of (seed, element index), shared by every backend.
//
// Element i of a dropout with probability p and seed s is kept (and scaled by 1/(1-p)) when
//   u_i = bits(s, i) / 2^53 >= p,   bits = the top 53 bits of the SplitMix64 finaliser of s + φ·(i + 1)
// (φ = 2^64 / golden ratio). No RNG state: any thread computes any element, the CPU and CUDA backends
// draw the same mask bit for bit, and the backward pass regenerates the mask from the seed instead of
// keeping it in memory.
//
// Comparing integers instead of doubles keeps the CPU loop vectorisable: u_i >= p ⟺ bits >= p·2^53 ⟺
// bits >= ceil(p·2^53), exact because p·2^53 only changes p's exponent.
#pragma once

#include <cmath>
#include <cstdint>

#ifdef __CUDACC__
#define UNIPELT_HOST_DEVICE __host__ __device__
#else
#define UNIPELT_HOST_DEVICE
#endif

namespace unipelt {

// 53 uniformly distributed random bits for element i (as an int64 in [0, 2^53)).
UNIPELT_HOST_DEVICE inline int64_t dropout_bits(uint64_t seed, int64_t i) {
  uint64_t z = seed + 0x9E3779B97F4A7C15ull * static_cast<uint64_t>(i + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return static_cast<int64_t>(z >> 11);
}

// The seed whose element i draws what element `offset` + i draws under `seed`:
//   dropout_bits(dropout_seed_at(s, o), i) == dropout_bits(s, o + i)
// because the hash starts from s + φ·(i + 1), and s + φ·o + φ·(i + 1) = s + φ·(o + i + 1) (mod 2^64). A
// shard of a batch (data-parallel training, train/distributed.h) draws its slice of the whole batch's
// mask this way, without a new kernel argument; offset 0 is the seed itself.
UNIPELT_HOST_DEVICE inline uint64_t dropout_seed_at(uint64_t seed, int64_t offset) {
  return seed + 0x9E3779B97F4A7C15ull * static_cast<uint64_t>(offset);
}

// Element i is kept when dropout_bits(seed, i) >= dropout_keep_threshold(p); p in [0, 1).
inline int64_t dropout_keep_threshold(double p) { return static_cast<int64_t>(std::ceil(p * 0x1.0p53)); }

}  // namespace unipelt

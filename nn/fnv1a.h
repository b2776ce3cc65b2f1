// FNV-1a, 64-bit: a tiny, well-known non-cryptographic hash for fingerprints (the base weights a
// checkpoint was trained on, the settings a training state belongs to). It catches accidents (the
// wrong model, another run's file), not attacks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

namespace unipelt {

class Fnv1a64 {
 public:
  void mix(const void* data, size_t n) {
    const unsigned char* p = static_cast<const unsigned char*>(data);
    for (size_t i = 0; i < n; ++i) h_ = (h_ ^ p[i]) * 0x100000001b3ull;
  }
  void mix(const std::string& text) { mix(text.data(), text.size()); }
  // "fnv1a64:" and 16 hex digits.
  std::string hex() const {
    char text[32];
    std::snprintf(text, sizeof text, "fnv1a64:%016llx", static_cast<unsigned long long>(h_));
    return text;
  }

 private:
  uint64_t h_ = 0xcbf29ce484222325ull;
};

}  // namespace unipelt

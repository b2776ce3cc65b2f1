// Shared by the libFuzzer harnesses (tests/fuzz/fuzz_<target>.cpp, docs/testing.md "Fuzzing"): the
// fuzzer's bytes written to a file in a private scratch folder, for readers that take a path, and the
// check that a refused input is refused with a message naming its file.
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

namespace unipelt::fuzz {

// A folder of this process's own, in memory when /dev/shm exists (file writes are most of the cost
// of an input), else in the system's temp directory; removed at exit.
inline std::filesystem::path scratch_path() {
  const std::filesystem::path base =
      std::filesystem::is_directory("/dev/shm") ? std::filesystem::path("/dev/shm") : std::filesystem::temp_directory_path();
  return base / ("unipelt-fuzz." + std::to_string(::getpid()));
}

inline const std::filesystem::path& scratch() {
  static const std::filesystem::path dir = [] {
    std::filesystem::create_directories(scratch_path());
    std::atexit([] {
      std::error_code ignored;
      std::filesystem::remove_all(scratch_path(), ignored);
    });
    return scratch_path();
  }();
  return dir;
}

// Writes `bytes` to scratch()/relative (creating folders) and returns the path.
inline std::filesystem::path write_input(const std::string& relative, std::string_view bytes) {
  const std::filesystem::path path = scratch() / relative;
  std::filesystem::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return path;
}

inline std::string_view as_chars(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// A reader's error must say which file it is about; one that does not is a finding, reported as a
// crash (abort) so that libFuzzer keeps the input.
inline void require_names_file(const std::exception& e, const std::filesystem::path& path) {
  if (std::string_view(e.what()).find(path.filename().string()) == std::string_view::npos) {
    std::fprintf(stderr, "error message does not name the file %s: %s\n", path.c_str(), e.what());
    std::abort();
  }
}

}  // namespace unipelt::fuzz

// Files written so that a crash never leaves a torn one, and JSON files read with errors that name them.
// Used by every layer that writes results: safetensors, checkpoints, run directories, reports.
#pragma once

#include <cstddef>
#include <filesystem>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace unipelt {

// Writes a file so that `path` holds either its old content or the complete new one, never a torn mix:
// data goes to `path.tmp.<pid>` in the same directory (rename is atomic only within a filesystem),
// commit() fsyncs and renames it over `path`. Destroying the writer without commit() removes the temp
// file. Errors raise std::runtime_error naming the path and the system's reason.
class AtomicFileWriter {
 public:
  explicit AtomicFileWriter(const std::filesystem::path& path);
  ~AtomicFileWriter();
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

  void write(const void* data, size_t bytes);
  void commit();

 private:
  std::filesystem::path path_, temp_path_;
  int fd_ = -1;
  bool committed_ = false;
};

// Removes the `NAME.tmp.<pid>` files an AtomicFileWriter leaves behind when its process is killed
// mid-write, in `dir` and its subdirectories, when process <pid> no longer exists (a live writer's
// file is left alone). Returns the paths removed.
std::vector<std::filesystem::path> remove_stale_temporaries(const std::filesystem::path& dir);

// The whole of `text` into `path` through an AtomicFileWriter (JSON files, reports, predictions).
void write_file_atomically(const std::filesystem::path& path, const std::string& text);

// A JSON file (config.json, results.json, trainer_state.json, sweep.json, ...). Throws
// std::runtime_error naming the file when it cannot be opened ("PATH: cannot open WHAT") or is not
// valid JSON ("PATH: not valid JSON (...)"). `what` describes the file for the first message.
nlohmann::json read_json_file(const std::filesystem::path& path, const std::string& what = "");

// j[key] as an integer of type T (int, size_t, uint64_t, ...), for JSON read from a file: the value
// must be a JSON integer that fits T. nlohmann's own get<T>() would cast a float (undefined
// behaviour when it does not fit: "k": 1e300) and wrap an integer that does not ("k": -1 as a
// size_t). A missing or null key gives `fallback` when there is one. Throws std::runtime_error
// ("\"k\" must be an integer in [0, 18446744073709551615], found 1e+300"; "missing \"k\"").
template <class T>
T json_integer(const nlohmann::json& j, const std::string& key, std::optional<T> fallback = std::nullopt) {
  static_assert(std::numeric_limits<T>::is_integer);
  if (!j.is_object() || !j.contains(key) || j.at(key).is_null()) {
    if (fallback) return *fallback;
    throw std::runtime_error("missing \"" + key + "\"");
  }
  const nlohmann::json& v = j.at(key);
  using Limits = std::numeric_limits<T>;
  bool fits = false;  // (the parser stores non-negative integers unsigned; JSON built in code may not)
  if (v.is_number_unsigned()) {
    fits = v.get<uint64_t>() <= static_cast<uint64_t>(Limits::max());
  } else if (v.is_number_integer()) {
    const int64_t x = v.get<int64_t>();
    fits = x < 0 ? x >= static_cast<int64_t>(Limits::min()) : static_cast<uint64_t>(x) <= static_cast<uint64_t>(Limits::max());
  }
  if (!fits)
    throw std::runtime_error("\"" + key + "\" must be an integer in [" + std::to_string(Limits::min()) + ", " +
                             std::to_string(Limits::max()) + "], found " + v.dump());
  return v.is_number_unsigned() ? static_cast<T>(v.get<uint64_t>()) : static_cast<T>(v.get<int64_t>());
}

// `content` cut into lines the way Python's text mode does ("universal newlines"): "\n", "\r\n" and a
// lone "\r" all end a line, and a final line needs no terminator. The rule by which a vocab.txt is
// read, both by the tokenizer and by the loader's vocab-size check.
std::vector<std::string> split_lines(const std::string& content);

}  // namespace unipelt

// Files written so that a crash never leaves a torn one, and JSON files read with errors that name them.
// Used by every layer that writes results: safetensors, checkpoints, run directories, reports.
#pragma once

#include <cstddef>
#include <filesystem>
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

// The whole of `text` into `path` through an AtomicFileWriter (JSON files, reports, predictions).
void write_file_atomically(const std::filesystem::path& path, const std::string& text);

// A JSON file (config.json, results.json, trainer_state.json, sweep.json, ...). Throws
// std::runtime_error naming the file when it cannot be opened ("PATH: cannot open WHAT") or is not
// valid JSON ("PATH: not valid JSON (...)"). `what` describes the file for the first message.
nlohmann::json read_json_file(const std::filesystem::path& path, const std::string& what = "");

// `content` cut into lines the way Python's text mode does ("universal newlines"): "\n", "\r\n" and a
// lone "\r" all end a line, and a final line needs no terminator. The rule by which a vocab.txt is
// read, both by the tokenizer and by the loader's vocab-size check.
std::vector<std::string> split_lines(const std::string& content);

}  // namespace unipelt

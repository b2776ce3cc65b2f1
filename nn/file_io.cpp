#include "nn/file_io.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <utility>

namespace unipelt {

namespace {

std::string system_error_text() { return std::strerror(errno); }

// Fault injection for the crash tests (tests/test_crash_resume.cpp): with UNIPELT_FAULT_AFTER_COMMITS=N
// in the environment, the process kills itself with SIGKILL right after its Nth committed file, exactly
// as `kill -9` at that moment would. Unset (always, outside those tests) it costs one comparison.
void count_commit_for_fault_injection() {
  static const long kill_after = [] {
    const char* v = std::getenv("UNIPELT_FAULT_AFTER_COMMITS");
    return v ? std::strtol(v, nullptr, 10) : 0L;
  }();
  static long commits = 0;
  if (kill_after > 0 && ++commits == kill_after) ::raise(SIGKILL);
}

}  // namespace

AtomicFileWriter::AtomicFileWriter(const std::filesystem::path& path) : path_(path) {
  temp_path_ = path;
  temp_path_ += ".tmp." + std::to_string(::getpid());
  fd_ = ::open(temp_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0)
    throw std::runtime_error("cannot write '" + path.string() + "': creating temporary file '" + temp_path_.string() +
                             "' failed: " + system_error_text());
}

AtomicFileWriter::~AtomicFileWriter() {
  if (committed_) return;
  if (fd_ >= 0) ::close(fd_);
  ::unlink(temp_path_.c_str());  // never leave a partial file behind
}

void AtomicFileWriter::write(const void* data, size_t bytes) {
  const char* p = static_cast<const char*>(data);
  while (bytes > 0) {
    ssize_t n = ::write(fd_, p, bytes);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0)
      throw std::runtime_error("cannot write '" + path_.string() + "': writing '" + temp_path_.string() +
                               "' failed: " + (n < 0 ? system_error_text() : std::string("no progress")));
    p += n;
    bytes -= static_cast<size_t>(n);
  }
}

void AtomicFileWriter::commit() {
  auto fail_commit = [&](const std::string& step) {
    std::string reason = system_error_text();
    throw std::runtime_error("cannot write '" + path_.string() + "': " + step + " failed: " + reason);
  };
  // fsync before rename: otherwise a crash could leave the new name pointing at not-yet-written blocks.
  if (::fsync(fd_) != 0) fail_commit("fsync of '" + temp_path_.string() + "'");
  int fd = std::exchange(fd_, -1);
  if (::close(fd) != 0) fail_commit("close of '" + temp_path_.string() + "'");
  if (::rename(temp_path_.c_str(), path_.c_str()) != 0) fail_commit("rename of '" + temp_path_.string() + "'");
  committed_ = true;
  // Make the rename itself durable. Best effort: some filesystems refuse fsync on directories.
  std::filesystem::path dir = path_.has_parent_path() ? path_.parent_path() : std::filesystem::path(".");
  int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    ::fsync(dir_fd);
    ::close(dir_fd);
  }
  count_commit_for_fault_injection();
}

void write_file_atomically(const std::filesystem::path& path, const std::string& text) {
  AtomicFileWriter w(path);
  w.write(text.data(), text.size());
  w.commit();
}

std::vector<std::filesystem::path> remove_stale_temporaries(const std::filesystem::path& dir) {
  std::vector<std::filesystem::path> removed;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec); !ec && it != std::filesystem::end(it);
       it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    const std::string name = it->path().filename().string();
    const size_t tmp = name.rfind(".tmp.");
    if (tmp == std::string::npos || tmp + 5 >= name.size()) continue;
    const std::string pid_text = name.substr(tmp + 5);
    if (pid_text.find_first_not_of("0123456789") != std::string::npos || pid_text.size() > 9) continue;
    const pid_t pid = static_cast<pid_t>(std::stol(pid_text));
    if (pid == ::getpid() || ::kill(pid, 0) == 0 || errno != ESRCH) continue;  // a live (or unknown) writer
    if (std::filesystem::remove(it->path(), ec)) removed.push_back(it->path());
  }
  return removed;
}

nlohmann::json read_json_file(const std::filesystem::path& path, const std::string& what) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(path.string() + ": cannot open" + (what.empty() ? "" : " " + what));
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(path.string() + ": not valid JSON (" + e.what() + ")");
  }
}

std::vector<std::string> split_lines(const std::string& content) {
  std::vector<std::string> lines;
  std::size_t start = 0;
  for (std::size_t i = 0; i < content.size(); ++i) {
    if (content[i] != '\n' && content[i] != '\r') continue;
    lines.push_back(content.substr(start, i - start));
    if (content[i] == '\r' && i + 1 < content.size() && content[i + 1] == '\n') ++i;
    start = i + 1;
  }
  if (start < content.size()) lines.push_back(content.substr(start));
  return lines;
}

}  // namespace unipelt

// The sweep runner: child `unipelt train` processes via posix_spawn, at most `jobs` at a time.
#include "train/sweep.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cerrno>
#include <cstring>
#include <optional>
#include <fstream>
#include <ostream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "datasets/glue.h"
#include "nn/file_io.h"
#include "pelt/config.h"
#include "train/report.h"

extern char** environ;

namespace unipelt {

namespace fs = std::filesystem;

std::vector<std::string> split_list(const std::string& csv) {
  std::vector<std::string> out;
  std::string item;
  std::istringstream in(csv);
  while (std::getline(in, item, ',')) {
    const size_t a = item.find_first_not_of(" \t");
    if (a == std::string::npos) continue;
    out.push_back(item.substr(a, item.find_last_not_of(" \t") - a + 1));
  }
  return out;
}

namespace {

// Digits only (no sign, no spaces, no trailing text) and within 64 bits; empty when not.
std::optional<unsigned long long> whole_number(const std::string& text) {
  if (text.empty() || text.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
  try {
    return std::stoull(text);
  } catch (const std::out_of_range&) {
    return std::nullopt;
  }
}

}  // namespace

size_t parse_k(const std::string& text) {
  if (text == "all") return 0;
  const auto v = whole_number(text);
  if (!v || *v == 0) throw std::invalid_argument("K must be a positive number or 'all', got '" + text + "'");
  return static_cast<size_t>(*v);
}

uint64_t parse_seed(const std::string& text) {
  const auto v = whole_number(text);
  if (!v) throw std::invalid_argument("a data seed must be a whole number >= 0, got '" + text + "'");
  return static_cast<uint64_t>(*v);
}

std::string k_label(size_t k) { return k ? std::to_string(k) : std::string("all"); }

std::vector<SweepPoint> expand_grid(const SweepGrid& grid) {
  if (grid.tasks.empty() || grid.methods.empty() || grid.ks.empty() || grid.data_seeds.empty())
    throw std::invalid_argument("a sweep needs at least one task, method, K and data seed");
  std::vector<std::string> tasks;
  for (const auto& t : grid.tasks) tasks.push_back(task_info(t).name);  // DataError on unknown names
  for (const auto& m : grid.methods) preset(m);                          // invalid_argument on unknown names
  std::vector<SweepPoint> points;
  for (const auto& task : tasks)
    for (const auto& method : grid.methods)
      for (size_t k : grid.ks)
        for (uint64_t seed : grid.data_seeds) {
          SweepPoint p{task, method, k, seed};
          const bool seen = std::any_of(points.begin(), points.end(), [&](const SweepPoint& q) {
            return q.task == p.task && q.method == p.method && q.k == p.k && q.data_seed == p.data_seed;
          });
          if (!seen) points.push_back(p);
        }
  return points;
}

fs::path sweep_run_dir(const fs::path& root, const SweepPoint& p) {
  std::string k = "k", seed = "seed";  // (not "k" + string: GCC 12 warns falsely about that, -Wrestrict)
  k += k_label(p.k);
  seed += std::to_string(p.data_seed);
  return root / p.task / p.method / k / seed;
}

RunState run_state(const fs::path& run_dir) {
  if (fs::exists(run_dir / "results.json")) return RunState::Finished;
  if (fs::exists(run_dir / "config.json")) return RunState::Partial;
  return RunState::New;
}

std::vector<std::string> sweep_child_argv(const SweepOptions& o, const SweepPoint& p) {
  std::vector<std::string> argv = {o.binary.string(), "train",
                                   "--task",          p.task,
                                   "--method",        p.method,
                                   "--k",             k_label(p.k),
                                   "--data-seed",     std::to_string(p.data_seed),
                                   "--model",         o.model_dir,
                                   "--data",          o.data_dir,
                                   "--out",           sweep_run_dir(o.root, p).string(),
                                   "--resume"};
  argv.insert(argv.end(), o.train_flags.begin(), o.train_flags.end());
  return argv;
}

namespace {

std::atomic<int> g_sigint_count{0};
void on_sweep_sigint(int) { g_sigint_count.fetch_add(1); }

using Clock = std::chrono::steady_clock;

struct Child {
  pid_t pid = -1;
  size_t index = 0;
  SweepPoint point;
  fs::path dir;
  Clock::time_point started;
  int signals_sent = 0;
};

std::string describe(const SweepPoint& p) {
  return p.task + "/" + p.method + "/k" + k_label(p.k) + "/seed" + std::to_string(p.data_seed);
}

// The last `n` non-empty lines of a file (a failed child's error message).
std::string tail_lines(const fs::path& path, size_t n) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const size_t cr = line.rfind('\r');  // progress lines rewritten in place on a terminal
    if (cr != std::string::npos) line = line.substr(cr + 1);
    if (!line.empty()) lines.push_back(line);
  }
  std::string out;
  for (size_t i = lines.size() > n ? lines.size() - n : 0; i < lines.size(); ++i) out += "    " + lines[i] + "\n";
  return out;
}

pid_t spawn_child(const std::vector<std::string>& args, const fs::path& log_path,
                  const std::vector<std::string>& extra_env) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  // Own process group: a terminal's Ctrl-C reaches only the sweep, which passes SIGINT on exactly once.
  // Default SIGINT disposition in the child whatever the sweep's handler is.
  sigset_t defaults;
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGINT);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);

  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<std::string> env_storage;
  for (char** e = environ; *e; ++e) {
    const std::string entry = *e;
    const std::string key = entry.substr(0, entry.find('='));
    const bool replaced = std::any_of(extra_env.begin(), extra_env.end(), [&](const std::string& x) {
      return x.substr(0, x.find('=')) == key;
    });
    if (!replaced) env_storage.push_back(entry);
  }
  env_storage.insert(env_storage.end(), extra_env.begin(), extra_env.end());
  std::vector<char*> envp;
  for (auto& e : env_storage) envp.push_back(e.data());
  envp.push_back(nullptr);

  pid_t pid = -1;
  const int rc = posix_spawn(&pid, args[0].c_str(), &actions, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) throw std::runtime_error("cannot start " + args[0] + ": " + std::strerror(rc));
  return pid;
}

std::string format_seconds(double s) {
  std::ostringstream out;
  out.precision(1);
  out << std::fixed << s << " s";
  return out.str();
}

}  // namespace

SweepSummary run_sweep(const SweepOptions& o, std::ostream& log) {
  if (o.jobs < 1) throw std::invalid_argument("--jobs must be at least 1");
  if (!fs::exists(o.binary)) throw std::runtime_error(o.binary.string() + ": no such program");
  const std::vector<SweepPoint> points = expand_grid(o.grid);
  SweepSummary summary;
  summary.total = points.size();
  fs::create_directories(o.root);

  std::vector<std::string> extra_env;
  if (o.jobs > 1 && o.limit_blas_threads && !std::getenv("OPENBLAS_NUM_THREADS")) {
    const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
    extra_env.push_back("OPENBLAS_NUM_THREADS=" + std::to_string(std::max(1u, cores / static_cast<unsigned>(o.jobs))));
  }

  std::vector<size_t> todo;
  for (size_t i = 0; i < points.size(); ++i) {
    if (run_state(sweep_run_dir(o.root, points[i])) == RunState::Finished) ++summary.skipped;
    else todo.push_back(i);
  }
  const size_t width = std::to_string(points.size()).size();
  auto tag = [&](size_t index) {
    std::string n = std::to_string(index + 1), out = "[";
    out.append(width - n.size(), ' ');
    out += n;
    out += '/';
    out += std::to_string(points.size());
    out += ']';
    return out;
  };
  log << "sweep: " << points.size() << " runs, " << summary.skipped << " already finished, " << todo.size()
      << " to run, " << o.jobs << " at a time; logs in <run>/train.log\n"
      << std::flush;

  g_sigint_count = 0;
  struct sigaction action {}, previous {};
  action.sa_handler = on_sweep_sigint;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, &previous);

  std::vector<Child> running;
  size_t next = 0;
  int signals_seen = 0;
  try {
    while ((!summary.stopped && next < todo.size()) || !running.empty()) {
      const int sigints = g_sigint_count.load();
      if (sigints > signals_seen) {
        if (signals_seen == 0)
          log << "sweep: interrupted; passing Ctrl-C on to " << running.size()
              << " running run(s), which keep their last finished epoch (rerun the same command to resume)\n"
              << std::flush;
        signals_seen = sigints;
        summary.stopped = true;
        for (Child& c : running) {
          kill(c.pid, SIGINT);
          ++c.signals_sent;
        }
      }
      // Start runs while there is room.
      while (!summary.stopped && next < todo.size() && running.size() < static_cast<size_t>(o.jobs)) {
        Child c;
        c.index = todo[next++];
        c.point = points[c.index];
        c.dir = sweep_run_dir(o.root, c.point);
        fs::create_directories(c.dir);
        const RunState state = run_state(c.dir);
        c.pid = spawn_child(sweep_child_argv(o, c.point), c.dir / "train.log", extra_env);
        c.started = Clock::now();
        log << tag(c.index) << " " << (state == RunState::Partial ? "resume " : "start  ") << describe(c.point)
            << " (pid " << c.pid << ")\n"
            << std::flush;
        running.push_back(std::move(c));
      }
      // Reap finished children.
      bool reaped = false;
      for (size_t i = 0; i < running.size();) {
        int status = 0;
        const pid_t r = waitpid(running[i].pid, &status, WNOHANG);
        if (r == 0 || (r < 0 && errno == EINTR)) {
          ++i;
          continue;
        }
        reaped = true;
        Child c = running[i];
        running.erase(running.begin() + static_cast<long>(i));
        const double secs = std::chrono::duration<double>(Clock::now() - c.started).count();
        const int code = r < 0 ? -1 : WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        if (code == 0 && run_state(c.dir) == RunState::Finished) {
          ++summary.finished;
          std::string metric;
          if (auto rec = read_run_record(c.dir); rec && rec->test.count("main")) {
            char buf[64];
            std::snprintf(buf, sizeof buf, "%.2f", 100.0 * rec->test.at("main"));
            metric = ": test " + task_info(c.point.task).metric + " " + buf;
          }
          log << tag(c.index) << " done   " << describe(c.point) << metric << " (" << format_seconds(secs) << ")\n";
        } else if (code == 130 || (c.signals_sent > 0 && code == 128 + SIGINT)) {
          ++summary.interrupted;
          log << tag(c.index) << " paused " << describe(c.point) << " (interrupted; resumes on the next sweep)\n";
        } else {
          ++summary.failed;
          const std::string why = c.dir.string() + ": exit status " + std::to_string(code) + " (see " +
                                  (c.dir / "train.log").string() + ")";
          summary.failures.push_back(why);
          log << tag(c.index) << " FAILED " << describe(c.point) << ": " << why << "\n"
              << tail_lines(c.dir / "train.log", 3);
        }
        log << std::flush;
      }
      if (!reaped) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  } catch (...) {
    for (Child& c : running) {
      kill(c.pid, SIGINT);
      waitpid(c.pid, nullptr, 0);
    }
    sigaction(SIGINT, &previous, nullptr);
    throw;
  }
  sigaction(SIGINT, &previous, nullptr);
  log << "sweep: " << summary.finished << " finished now, " << summary.skipped << " finished before, "
      << summary.failed << " failed, " << summary.interrupted << " interrupted, "
      << (summary.total - summary.finished - summary.skipped - summary.failed - summary.interrupted)
      << " not started\n"
      << std::flush;
  return summary;
}

nlohmann::json sweep_manifest(const SweepOptions& o, const std::vector<std::string>& command) {
  std::vector<std::string> ks;
  for (size_t k : o.grid.ks) ks.push_back(k_label(k));
  return {{"model", o.model_dir},
          {"data", o.data_dir},
          {"train_flags", o.train_flags},
          {"grid", {{"tasks", o.grid.tasks}, {"methods", o.grid.methods}, {"k", ks}, {"data_seeds", o.grid.data_seeds}}},
          {"command", command}};
}

nlohmann::json read_sweep_manifest(const fs::path& root) {
  const fs::path path = root / "sweep.json";
  if (!fs::exists(path)) return nlohmann::json();
  nlohmann::json saved = read_json_file(path);
  if (!saved.is_object()) throw std::runtime_error(path.string() + ": expected a JSON object (a sweep manifest)");
  return saved;
}

void check_sweep_manifest(const fs::path& root, const nlohmann::json& manifest) {
  const nlohmann::json saved = read_sweep_manifest(root);
  if (saved.is_null()) return;
  for (const char* key : {"model", "data", "train_flags"}) {
    if (saved.value(key, nlohmann::json()) != manifest.at(key))
      throw std::runtime_error(root.string() + " holds a sweep with another " +
                               (std::string(key) == "train_flags" ? std::string("set of training flags")
                                                                  : std::string("--") + key) +
                               " (saved: " + saved.value(key, nlohmann::json()).dump() + ", now: " +
                               manifest.at(key).dump() + "); use the same ones to resume or extend it, or another --out");
  }
}

void write_sweep_manifest(const fs::path& root, const nlohmann::json& manifest) {
  fs::create_directories(root);
  nlohmann::json out = manifest;
  nlohmann::json history = nlohmann::json::array();
  const fs::path path = root / "sweep.json";
  const nlohmann::json saved = read_sweep_manifest(root);
  if (saved.contains("commands") && saved["commands"].is_array()) history = saved["commands"];
  if (std::find(history.begin(), history.end(), manifest.at("command")) == history.end())
    history.push_back(manifest.at("command"));
  out["commands"] = history;
  write_file_atomically(path, out.dump(2) + "\n");
}

}  // namespace unipelt

// The local scheduler of `unipelt sweep`: child `unipelt train` processes via posix_spawn, at most
// `jobs` at a time, Ctrl-C passed on to them, one progress line per start and end.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <ostream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "datasets/glue.h"
#include "train/report.h"
#include "train/sweep.h"

extern char** environ;

namespace unipelt {

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// Set in each child's environment: the sweep's pid, so that the child dies with the sweep.
constexpr const char* kParentVariable = "UNIPELT_SWEEP_PID";

std::atomic<int> g_sigint_count{0};
void on_sweep_sigint(int) { g_sigint_count.fetch_add(1); }

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

// The environment with `extra` ("KEY=value") replacing or adding entries.
std::vector<std::string> child_environment(const std::vector<std::string>& extra) {
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) {
    const std::string entry = *e;
    const std::string key = entry.substr(0, entry.find('='));
    const bool replaced =
        std::any_of(extra.begin(), extra.end(), [&](const std::string& x) { return x.substr(0, x.find('=')) == key; });
    if (!replaced) env.push_back(entry);
  }
  env.insert(env.end(), extra.begin(), extra.end());
  return env;
}

pid_t spawn_child(const std::vector<std::string>& args, const fs::path& log_path, const std::vector<std::string>& extra_env) {
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
  std::vector<std::string> env_storage = child_environment(extra_env);
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

// One sweep: the runs still to do, the children running, the counts.
class LocalSweep {
 public:
  LocalSweep(const SweepOptions& o, std::ostream& log) : o_(o), log_(log), points_(expand_grid(o.grid)) {
    summary_.total = points_.size();
    for (size_t i = 0; i < points_.size(); ++i) {
      if (run_state(sweep_run_dir(o.root, points_[i])) == RunState::Finished) ++summary_.skipped;
      else todo_.push_back(i);
    }
    extra_env_.push_back(std::string(kParentVariable) + "=" + std::to_string(::getpid()));
  }

  SweepSummary run() {
    log_ << "sweep: " << points_.size() << " runs, " << summary_.skipped << " already finished, " << todo_.size()
         << " to run, " << o_.jobs << " at a time, " << sweep_threads_per_run(o_)
         << " CPU threads each; logs in <run>/train.log\n"
         << std::flush;
    while ((!summary_.stopped && next_ < todo_.size()) || !running_.empty()) {
      forward_sigint();
      start_runs();
      if (!reap_runs()) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    log_ << "sweep: " << summary_.finished << " finished now, " << summary_.skipped << " finished before, "
         << summary_.failed << " failed, " << summary_.interrupted << " interrupted, "
         << (summary_.total - summary_.finished - summary_.skipped - summary_.failed - summary_.interrupted)
         << " not started\n"
         << std::flush;
    return summary_;
  }

  // On an exception: stop the children (each keeps its last finished epoch) and wait for them.
  void stop_all() {
    for (Child& c : running_) {
      kill(c.pid, SIGINT);
      waitpid(c.pid, nullptr, 0);
    }
    running_.clear();
  }

 private:
  std::string tag(size_t index) const {  // "[ 3/12]"
    const std::string n = std::to_string(index + 1), total = std::to_string(points_.size());
    return "[" + std::string(total.size() - n.size(), ' ') + n + "/" + total + "]";
  }

  // Each Ctrl-C since the last look is passed on to every running child.
  void forward_sigint() {
    const int sigints = g_sigint_count.load();
    if (sigints <= signals_seen_) return;
    if (signals_seen_ == 0)
      log_ << "sweep: interrupted; passing Ctrl-C on to " << running_.size()
           << " running run(s), which keep their last finished epoch (rerun the same command to resume)\n"
           << std::flush;
    signals_seen_ = sigints;
    summary_.stopped = true;
    for (Child& c : running_) {
      kill(c.pid, SIGINT);
      ++c.signals_sent;
    }
  }

  void start_runs() {
    while (!summary_.stopped && next_ < todo_.size() && running_.size() < static_cast<size_t>(o_.jobs)) {
      Child c;
      c.index = todo_[next_++];
      c.point = points_[c.index];
      c.dir = sweep_run_dir(o_.root, c.point);
      fs::create_directories(c.dir);
      const RunState state = run_state(c.dir);
      c.pid = spawn_child(sweep_child_argv(o_, c.point), c.dir / "train.log", extra_env_);
      c.started = Clock::now();
      log_ << tag(c.index) << " " << (state == RunState::Partial ? "resume " : "start  ") << describe(c.point)
           << " (pid " << c.pid << ")\n"
           << std::flush;
      running_.push_back(std::move(c));
    }
  }

  // Returns whether any child ended.
  bool reap_runs() {
    bool reaped = false;
    for (size_t i = 0; i < running_.size();) {
      int status = 0;
      const pid_t r = waitpid(running_[i].pid, &status, WNOHANG);
      if (r == 0 || (r < 0 && errno == EINTR)) {
        ++i;
        continue;
      }
      reaped = true;
      const Child c = running_[i];
      running_.erase(running_.begin() + static_cast<long>(i));
      const int code = r < 0 ? -1 : WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      report_end(c, code, std::chrono::duration<double>(Clock::now() - c.started).count());
    }
    return reaped;
  }

  void report_end(const Child& c, int code, double secs) {
    if (code == 0 && run_state(c.dir) == RunState::Finished) {
      ++summary_.finished;
      std::string metric;
      if (auto rec = read_run_record(c.dir); rec && rec->test.count("main")) {
        char buf[64];
        std::snprintf(buf, sizeof buf, "%.2f", 100.0 * rec->test.at("main"));
        metric = ": test " + task_info(c.point.task).metric + " " + buf;
      }
      log_ << tag(c.index) << " done   " << describe(c.point) << metric << " (" << format_seconds(secs) << ")\n";
    } else if (code == 130 || (c.signals_sent > 0 && code == 128 + SIGINT)) {
      ++summary_.interrupted;
      log_ << tag(c.index) << " paused " << describe(c.point) << " (interrupted; resumes on the next sweep)\n";
    } else {
      ++summary_.failed;
      const std::string why = c.dir.string() + ": exit status " + std::to_string(code) + " (see " +
                              (c.dir / "train.log").string() + ")";
      summary_.failures.push_back(why);
      log_ << tag(c.index) << " FAILED " << describe(c.point) << ": " << why << "\n" << tail_lines(c.dir / "train.log", 3);
    }
    log_ << std::flush;
  }

  const SweepOptions& o_;
  std::ostream& log_;
  const std::vector<SweepPoint> points_;
  std::vector<size_t> todo_;  // indices into points_ of the runs without results.json
  size_t next_ = 0;           // the next of todo_ to start
  std::vector<Child> running_;
  std::vector<std::string> extra_env_;
  int signals_seen_ = 0;
  SweepSummary summary_;
};

}  // namespace

SweepSummary run_sweep(const SweepOptions& o, std::ostream& log) {
  if (o.jobs < 1) throw std::invalid_argument("--jobs must be at least 1");
  if (!fs::exists(o.binary)) throw std::runtime_error(o.binary.string() + ": no such program");
  fs::create_directories(o.root);
  LocalSweep sweep(o, log);
  g_sigint_count = 0;
  struct sigaction action {}, previous {};
  action.sa_handler = on_sweep_sigint;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, &previous);
  try {
    const SweepSummary summary = sweep.run();
    sigaction(SIGINT, &previous, nullptr);
    return summary;
  } catch (...) {
    sweep.stop_all();
    sigaction(SIGINT, &previous, nullptr);
    throw;
  }
}

void die_with_sweep_parent() {
  const char* parent = std::getenv(kParentVariable);
  if (!parent) return;
  // The kernel sends SIGKILL to this process when the thread that spawned it exits: a sweep killed with
  // `kill -9` takes its runs with it instead of leaving orphans that keep writing into the sweep.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (std::to_string(::getppid()) != parent) ::raise(SIGKILL);  // the sweep died before prctl took effect
}

}  // namespace unipelt

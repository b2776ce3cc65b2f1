// What Slurm's queue and accounting say about a sweep's jobs, which local runs hold their lock, and
// `unipelt sweep --status` (sweep_slurm.h).
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "datasets/glue.h"
#include "train/process.h"
#include "train/report.h"
#include "train/sweep_slurm.h"

namespace unipelt {

namespace fs = std::filesystem;

namespace {

// "12|3|RUNNING" lines (squeue -o "%F|%K|%T", sacct -P -o JobID,State as "12_3|CANCELLED by 0") into
// "12_3" -> "RUNNING". Pending ranges that squeue -r does not expand never reach us: -r lists each task.
void parse_states(const std::string& text, bool squeue_format, std::map<std::string, std::string>& out) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    std::vector<std::string> f;
    std::istringstream fields(line);
    for (std::string x; std::getline(fields, x, '|');) f.push_back(x);
    if (squeue_format && f.size() >= 3 && f[1] != "N/A") out[f[0] + "_" + f[1]] = f[2];
    if (!squeue_format && f.size() >= 2) out[f[0]] = f[1].substr(0, f[1].find(' '));  // "CANCELLED by 0"
  }
}

std::string join_ids(const std::vector<std::string>& ids) {
  std::string out;
  for (const auto& id : ids) out += (out.empty() ? "" : ",") + id;
  return out;
}

// The tail of a file's last non-empty line (an array task's last word, usually its error).
std::string last_line(const fs::path& path) {
  std::ifstream in(path);
  std::string line, last;
  while (std::getline(in, line))
    if (line.find_first_not_of(" \t\r") != std::string::npos) last = line;
  return last.size() > 160 ? last.substr(last.size() - 160) : last;
}

std::string test_metric_detail(const fs::path& dir, const SweepPoint& p) {
  const auto rec = read_run_record(dir);
  if (!rec || !rec->test.count("main")) return "";
  char buf[96];
  std::snprintf(buf, sizeof buf, "test %s %.2f", task_info(p.task).metric.c_str(), 100.0 * rec->test.at("main"));
  return buf;
}

}  // namespace

bool SlurmJobStates::in_queue(size_t cell, const std::string& job) const {
  return queued.count(job + "_" + std::to_string(cell)) > 0;
}

SlurmJobStates query_slurm(const std::vector<std::string>& job_ids) {
  SlurmJobStates s;
  // squeue -j fails as a whole when one id has left the controller's memory: ask for all our jobs.
  const CommandResult q = run_command({"squeue", "--noheader", "--array", "--me", "--format=%F|%K|%T"});
  if (q.exit_code == 0) {
    s.squeue_ran = true;
    parse_states(q.output, true, s.queued);
    for (auto it = s.queued.begin(); it != s.queued.end();) {  // keep the sweep's own jobs only
      const std::string job = it->first.substr(0, it->first.find('_'));
      it = std::count(job_ids.begin(), job_ids.end(), job) ? std::next(it) : s.queued.erase(it);
    }
  }
  const CommandResult a =
      run_command({"sacct", "--noheader", "--parsable2", "--allocations", "--jobs=" + join_ids(job_ids),
                   "--format=JobID,State"});
  if (a.exit_code == 0) {  // "Slurm accounting storage is disabled": exit 1, nothing to add
    s.sacct_ran = true;
    parse_states(a.output, false, s.accounted);
  }
  return s;
}

bool run_directory_busy(const fs::path& run) {
  struct stat st {};
  if (::stat((run / ".lock").c_str(), &st) != 0) return false;
  char id[64];  // /proc/locks names a file MAJOR:MINOR:INODE, the device numbers in hex
  std::snprintf(id, sizeof id, "%02x:%02x:%llu", major(st.st_dev), minor(st.st_dev),
                static_cast<unsigned long long>(st.st_ino));
  std::ifstream locks("/proc/locks");
  for (std::string line; std::getline(locks, line);)
    if (line.find("FLOCK") != std::string::npos && line.find("->") == std::string::npos) {
      std::istringstream f(line);
      std::string word;
      while (f >> word)
        if (word == id) return true;
    }
  return false;
}

const char* cell_state_name(CellState s) {
  switch (s) {
    case CellState::Finished: return "finished";
    case CellState::Running: return "running";
    case CellState::Pending: return "pending";
    case CellState::Failed: return "failed";
    case CellState::NotStarted: return "not started";
  }
  return "?";
}

std::vector<CellStatus> sweep_status(const fs::path& root) {
  const nlohmann::json manifest = read_sweep_manifest(root);
  if (manifest.is_null())
    throw std::runtime_error(root.string() + " holds no sweep (no sweep.json); start one with `unipelt sweep`");
  const std::vector<SweepPoint> points = expand_grid(sweep_manifest_grid(manifest));
  const std::vector<SlurmSubmission> submissions = read_slurm_submissions(root);
  std::vector<std::string> jobs;
  for (const SlurmSubmission& s : submissions) jobs.push_back(s.job);
  const SlurmJobStates slurm = jobs.empty() ? SlurmJobStates{} : query_slurm(jobs);

  std::vector<CellStatus> cells;
  for (size_t c = 0; c < points.size(); ++c) {
    CellStatus cell{c, points[c], sweep_run_dir(root, points[c]), CellState::NotStarted, ""};
    std::string job;  // the last submission that included the cell
    for (const SlurmSubmission& s : submissions)
      if (std::count(s.cells.begin(), s.cells.end(), c)) job = s.job;
    const std::string task = job + "_" + std::to_string(c);
    if (run_state(cell.dir) == RunState::Finished) {
      cell.state = CellState::Finished;
      cell.detail = test_metric_detail(cell.dir, cell.point);
    } else if (!job.empty() && slurm.queued.count(task)) {
      const std::string& st = slurm.queued.at(task);
      cell.state = st == "PENDING" ? CellState::Pending : CellState::Running;
      cell.detail = "job " + task + " " + st;
    } else if (run_directory_busy(cell.dir)) {
      cell.state = CellState::Running;
      cell.detail = "a process on this machine trains in it";
    } else if (!job.empty() || run_state(cell.dir) == RunState::Partial) {
      cell.state = CellState::Failed;  // started, not finished, not running: failed, cancelled or timed out
      if (!job.empty() && slurm.accounted.count(task)) cell.detail = slurm.accounted.at(task) + " (job " + task + ")";
      else if (!job.empty()) cell.detail = "job " + task + " left the queue without results.json";
      else cell.detail = "stopped before results.json";
      const fs::path log = !job.empty() ? root / "slurm" / "logs" / (task + ".out") : cell.dir / "train.log";
      if (const std::string last = last_line(log); !last.empty()) cell.detail += "; last line: " + last;
    }
    cells.push_back(std::move(cell));
  }
  return cells;
}

std::string render_sweep_status(const std::vector<CellStatus>& cells) {
  std::vector<std::string> names;
  size_t width = 0;
  for (const CellStatus& c : cells) {
    names.push_back(c.point.task + "/" + c.point.method + "/k" + k_label(c.point.k) + "/seed" +
                    std::to_string(c.point.data_seed));
    width = std::max(width, names.back().size());
  }
  std::ostringstream out;
  std::map<CellState, size_t> counts;
  for (size_t i = 0; i < cells.size(); ++i) {
    ++counts[cells[i].state];
    char head[32];
    std::snprintf(head, sizeof head, "%4zu  %-11s  ", cells[i].index, cell_state_name(cells[i].state));
    out << head << names[i] << std::string(width - names[i].size() + 2, ' ') << cells[i].detail << "\n";
  }
  out << cells.size() << " cells:";
  const char* sep = " ";
  for (CellState s : {CellState::Finished, CellState::Running, CellState::Pending, CellState::Failed,
                      CellState::NotStarted}) {
    out << sep << counts[s] << " " << cell_state_name(s);
    sep = ", ";
  }
  out << "\n";
  return out.str();
}

}  // namespace unipelt

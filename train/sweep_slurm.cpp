// The Slurm scheduler of `unipelt sweep` (sweep_slurm.h): the rules of its flags, the job-array script,
// the submission and its record. What the queue says and `--status` are in sweep_status.cpp.
#include "train/sweep_slurm.h"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <ostream>
#include <regex>
#include <sstream>
#include <stdexcept>

#include "nn/file_io.h"
#include "train/process.h"
#include "train/text.h"

namespace unipelt {

namespace fs = std::filesystem;

namespace {

[[noreturn]] void refuse(const std::string& rule, const std::string& got) {
  throw std::invalid_argument("must be " + rule + ", got '" + got + "'");
}

std::string now_iso8601() {
  const std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

std::string join(const std::vector<std::string>& items, const std::string& sep) {
  std::string out;
  for (const auto& s : items) out += (out.empty() ? "" : sep) + s;
  return out;
}

std::string describe(const SweepPoint& p) {
  return p.task + "/" + p.method + "/k" + k_label(p.k) + "/seed" + std::to_string(p.data_seed);
}

std::string cell_list(const std::vector<size_t>& cells) {
  std::vector<std::string> names;
  for (size_t c : cells) names.push_back(std::to_string(c));
  return join(names, ", ");
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// The flags' rules
// ---------------------------------------------------------------------------------------------

void check_slurm_time(const std::string& text) {
  // sbatch --time: "minutes", "minutes:seconds", "hours:minutes:seconds", "days-hours",
  // "days-hours:minutes", "days-hours:minutes:seconds".
  static const std::regex formats(R"(\d+|\d+:\d{1,2}|\d+:\d{1,2}:\d{1,2}|\d+-\d{1,2}(:\d{1,2}(:\d{1,2})?)?)");
  if (!std::regex_match(text, formats))
    refuse("a Slurm time limit: MINUTES, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS", text);
}

void check_slurm_memory(const std::string& text) {
  static const std::regex memory(R"([1-9]\d*[KMGT]?)");
  if (!std::regex_match(text, memory)) refuse("a memory size: megabytes, or a number with K, M, G or T (16G)", text);
}

void check_slurm_partition(const std::string& text) {
  static const std::regex names(R"([A-Za-z0-9_.\-]+(,[A-Za-z0-9_.\-]+)*)");
  if (!std::regex_match(text, names)) refuse("a partition name (letters, digits, '_', '-', '.'; a list with ',')", text);
}

void check_sbatch_arg(const std::string& text) {
  if (text.size() < 2 || text[0] != '-' || text.find_first_of("\n\r") != std::string::npos)
    refuse("an sbatch option such as --qos=high or --account=proj (write it as --sbatch-arg=--qos=high)", text);
}

// ---------------------------------------------------------------------------------------------
// The script
// ---------------------------------------------------------------------------------------------

std::string slurm_array_spec(const std::vector<size_t>& cells, int parallel) {
  std::vector<size_t> sorted = cells;
  std::sort(sorted.begin(), sorted.end());
  sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
  std::vector<std::string> ranges;
  for (size_t i = 0; i < sorted.size();) {
    size_t j = i;
    while (j + 1 < sorted.size() && sorted[j + 1] == sorted[j] + 1) ++j;
    std::string range = std::to_string(sorted[i]);  // (appends, not "-" + string: GCC 12's false -Wrestrict)
    if (j > i) range.append("-").append(std::to_string(sorted[j]));
    ranges.push_back(range);
    i = j + 1;
  }
  std::string spec = join(ranges, ",");
  if (parallel > 0) spec.append("%").append(std::to_string(parallel));
  return spec;
}

std::vector<std::string> sweep_cell_flags(const SweepOptions& o) {
  std::vector<std::string> ks, seeds;
  for (size_t k : o.grid.ks) ks.push_back(k_label(k));
  for (uint64_t s : o.grid.data_seeds) seeds.push_back(std::to_string(s));
  std::vector<std::string> flags = {"--tasks",      join(o.grid.tasks, ","), "--methods", join(o.grid.methods, ","),
                                    "--k",          join(ks, ","),           "--data-seeds", join(seeds, ","),
                                    "--model",      o.model_dir,             "--data",      o.data_dir,
                                    "--out",        fs::absolute(o.root).lexically_normal().string()};
  flags.insert(flags.end(), o.train_flags.begin(), o.train_flags.end());
  return flags;
}

std::string sbatch_script(const SweepOptions& o, const SlurmOptions& s, const std::vector<size_t>& cells,
                          const std::vector<std::string>& sweep_flags) {
  const fs::path root = fs::absolute(o.root).lexically_normal();
  const std::vector<SweepPoint> points = expand_grid(o.grid);
  std::ostringstream out;
  out << "#!/bin/bash\n"
      << "# Written by `unipelt sweep --scheduler slurm`: " << cells.size() << " of the " << points.size()
      << " grid cells of " << root.string() << ",\n"
      << "# one array task each. Array task N trains cell N, one `unipelt train --resume` run directory:\n";
  for (size_t c : cells) out << "#   cell " << c << ": " << describe(points.at(c)) << "\n";
  out << "#SBATCH --job-name=unipelt-sweep-" << root.filename().string() << "\n"
      << "#SBATCH --array=" << slurm_array_spec(cells, s.array_parallel) << "\n"
      << "#SBATCH --output=" << (root / "slurm" / "logs" / "%A_%a.out").string() << "\n";
  if (!s.partition.empty()) out << "#SBATCH --partition=" << s.partition << "\n";
  if (!s.time.empty()) out << "#SBATCH --time=" << s.time << "\n";
  if (s.cpus_per_task > 0) out << "#SBATCH --cpus-per-task=" << s.cpus_per_task << "\n";
  if (s.gpus_per_task > 0) out << "#SBATCH --gpus-per-task=" << s.gpus_per_task << "\n";
  if (!s.mem.empty()) out << "#SBATCH --mem=" << s.mem << "\n";
  for (const std::string& arg : s.sbatch_args) out << "#SBATCH " << arg << "\n";
  out << "\n"
      << "# One BLAS thread per allocated core (unless the environment says otherwise).\n"
      << "export OPENBLAS_NUM_THREADS=\"${OPENBLAS_NUM_THREADS:-${SLURM_CPUS_PER_TASK:-1}}\"\n"
      << "exec " << shell_quote(o.binary.string()) << " sweep --run-cell \"$SLURM_ARRAY_TASK_ID\"";
  for (const std::string& f : sweep_flags) out << " " << shell_quote(f);
  out << "\n";
  return out.str();
}

// ---------------------------------------------------------------------------------------------
// Submissions
// ---------------------------------------------------------------------------------------------

std::vector<SlurmSubmission> read_slurm_submissions(const fs::path& root) {
  const fs::path path = root / "slurm" / "submissions.json";
  std::vector<SlurmSubmission> out;
  if (!fs::exists(path)) return out;
  const nlohmann::json j = read_json_file(path);
  if (!j.is_array()) throw std::runtime_error(path.string() + ": expected a JSON array of submissions");
  for (const auto& e : j) {
    try {
      out.push_back({e.at("job").get<std::string>(), e.at("cells").get<std::vector<size_t>>(),
                     e.at("script").get<std::string>(), e.at("submitted").get<std::string>()});
    } catch (const nlohmann::json::exception& err) {
      throw std::runtime_error(path.string() + ": a submission is not valid: " + err.what());
    }
  }
  return out;
}

namespace {

void record_submission(const fs::path& root, const SlurmSubmission& s) {
  nlohmann::json all = nlohmann::json::array();
  for (const SlurmSubmission& e : read_slurm_submissions(root))
    all.push_back({{"job", e.job}, {"cells", e.cells}, {"script", e.script}, {"submitted", e.submitted}});
  all.push_back({{"job", s.job}, {"cells", s.cells}, {"script", s.script}, {"submitted", s.submitted}});
  write_file_atomically(root / "slurm" / "submissions.json", all.dump(2) + "\n");
}

// The cells to submit now: no results.json and not pending or running under an earlier submission.
SlurmSubmitResult plan(const SweepOptions& o, std::ostream& log) {
  const std::vector<SweepPoint> points = expand_grid(o.grid);
  const std::vector<SlurmSubmission> earlier = read_slurm_submissions(o.root);
  std::vector<std::string> jobs;
  for (const SlurmSubmission& s : earlier) jobs.push_back(s.job);
  const SlurmJobStates states = jobs.empty() ? SlurmJobStates{} : query_slurm(jobs);
  SlurmSubmitResult r;
  for (size_t c = 0; c < points.size(); ++c) {
    if (run_state(sweep_run_dir(o.root, points[c])) == RunState::Finished) {
      r.finished.push_back(c);
      continue;
    }
    const bool queued = std::any_of(earlier.begin(), earlier.end(), [&](const SlurmSubmission& s) {
      return std::count(s.cells.begin(), s.cells.end(), c) && states.in_queue(c, s.job);
    });
    (queued ? r.queued : r.submitted).push_back(c);
  }
  log << "slurm: " << points.size() << " cells: " << r.finished.size() << " finished, " << r.queued.size()
      << " pending or running in the queue" << (r.queued.empty() ? "" : " (" + cell_list(r.queued) + ")") << ", "
      << r.submitted.size() << " to submit" << (r.submitted.empty() ? "" : ": " + cell_list(r.submitted)) << "\n";
  if (!jobs.empty() && !states.squeue_ran)
    log << "slurm: note: squeue did not answer, so cells of earlier jobs still in the queue may be submitted again\n";
  return r;
}

}  // namespace

std::string dry_run_sweep_script(const SweepOptions& o, const SlurmOptions& s, std::ostream& log) {
  const SlurmSubmitResult r = plan(o, log);
  if (r.submitted.empty()) return "";
  return sbatch_script(o, s, r.submitted, sweep_cell_flags(o));
}

SlurmSubmitResult submit_sweep_to_slurm(const SweepOptions& o, const SlurmOptions& s, std::ostream& log) {
  SlurmSubmitResult r = plan(o, log);
  if (r.submitted.empty()) return r;
  const fs::path dir = o.root / "slurm";
  fs::create_directories(dir / "logs");
  r.script = dir / ("submit-" + std::to_string(read_slurm_submissions(o.root).size() + 1) + ".sbatch");
  write_file_atomically(r.script, sbatch_script(o, s, r.submitted, sweep_cell_flags(o)));
  const CommandResult sbatch = run_command({"sbatch", "--parsable", r.script.string()});
  if (sbatch.exit_code == kCommandNotFound)
    throw std::runtime_error("sbatch not found on PATH: submit from a Slurm login node, or see the script with "
                             "--dry-run (written to " + r.script.string() + ")");
  if (sbatch.exit_code != 0)
    throw std::runtime_error("sbatch refused " + r.script.string() + " (exit status " +
                             std::to_string(sbatch.exit_code) + "): " + sbatch.output);
  r.job = sbatch.output.substr(0, sbatch.output.find_first_of(";\n"));  // "12" or "12;cluster"
  record_submission(o.root, {r.job, r.submitted, fs::relative(r.script, o.root).string(), now_iso8601()});
  log << "slurm: submitted job " << r.job << " (" << r.submitted.size() << " array task"
      << (r.submitted.size() == 1 ? "" : "s") << ", script " << r.script.string() << ")\n";
  return r;
}

}  // namespace unipelt

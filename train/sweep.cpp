// The sweep's grid: expanding it, where each run lives, what state it is in, what the children are
// told, and the manifest SWEEP/sweep.json. The process supervisor is in sweep_local.cpp.
#include "train/sweep.h"

#include <algorithm>
#include <sstream>
#include <stdexcept>

#include "autograd/parallel.h"
#include "datasets/glue.h"
#include "nn/file_io.h"
#include "pelt/config.h"

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
  argv.insert(argv.end(), {"--threads", std::to_string(sweep_threads_per_run(o))});
  return argv;
}

int sweep_threads_per_run(const SweepOptions& o) {
  if (o.threads_per_run >= 0) return o.threads_per_run;
  return std::max(1, available_cpus() / std::max(1, o.jobs));
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

SweepGrid sweep_manifest_grid(const nlohmann::json& manifest) {
  try {
    const nlohmann::json& g = manifest.at("grid");
    SweepGrid grid{g.at("tasks").get<std::vector<std::string>>(), g.at("methods").get<std::vector<std::string>>(), {},
                   g.at("data_seeds").get<std::vector<uint64_t>>()};
    for (const std::string& k : g.at("k").get<std::vector<std::string>>()) grid.ks.push_back(parse_k(k));
    return grid;
  } catch (const std::exception& e) {
    throw std::runtime_error(std::string("sweep.json: \"grid\" is not a sweep grid: ") + e.what());
  }
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

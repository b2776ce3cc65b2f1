// The resumable state as one safetensors file, its checks on --resume, the derived files, the lock.
#include "train/run_dir.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <set>
#include <stdexcept>

#include "nn/file_io.h"
#include "nn/fnv1a.h"
#include "nn/safetensors.h"
#include "pelt/checkpoint.h"

namespace unipelt {

namespace fs = std::filesystem;

namespace {

constexpr const char* kStateFormat = "unipelt-train-state-2";

fs::path state_path(const fs::path& run) { return run / "state" / "state.safetensors"; }

std::string jsonl(const nlohmann::json& lines) {
  std::string text;
  for (const auto& line : lines) text += line.dump() + "\n";
  return text;
}

[[noreturn]] void refuse_state(const fs::path& run, const std::string& why) {
  throw std::runtime_error(state_path(run).string() + ": " + why + "; refusing to resume from it (start the run "
                           "again in a new --out, or remove " + (run / "state").string() + " to restart this one)");
}

// The counters must describe `epoch` finished epochs of this run's settings.
void check_counters(const fs::path& run, const TrainingState& s, const TrainConfig& config, int64_t steps_per_epoch) {
  auto need = [&](bool ok, const std::string& what) {
    if (!ok) refuse_state(run, what);
  };
  need(s.epoch >= 1 && s.epoch <= config.epochs,
       "epoch " + std::to_string(s.epoch) + " is outside 1.." + std::to_string(config.epochs) + " (--epochs)");
  need(s.history.is_array() && s.history.size() == static_cast<size_t>(s.epoch),
       "the metrics history has " + std::to_string(s.history.size()) + " epochs, the counters say " +
           std::to_string(s.epoch));
  need(s.step == s.epoch * steps_per_epoch, "step " + std::to_string(s.step) + " is not " + std::to_string(s.epoch) +
                                                " epochs of " + std::to_string(steps_per_epoch) + " steps");
  need(s.best_epoch >= 1 && s.best_epoch <= s.epoch, "best epoch " + std::to_string(s.best_epoch) +
                                                         " is outside 1.." + std::to_string(s.epoch));
  need(s.bad_epochs >= 0 && s.bad_epochs <= s.epoch - s.best_epoch && s.bad_epochs <= config.patience,
       "the patience counter " + std::to_string(s.bad_epochs) + " does not fit the best epoch and --patience");
  need(std::isfinite(s.best), "the best dev metric is not a finite number");
}

}  // namespace

TrainConfig read_run_config(const fs::path& run) {
  const fs::path path = run / "config.json";
  if (!fs::exists(path))
    throw std::runtime_error(run.string() + ": no config.json (not a run directory written by `unipelt train`)");
  try {
    return TrainConfig::from_json(read_json_file(path));
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(path.string() + ": " + e.what());
  }
}

RunFingerprint run_fingerprint(const TrainConfig& config, const std::string& base_weights_hash) {
  Fnv1a64 hash;
  hash.mix(config.to_json().dump());
  return {hash.hex(), base_weights_hash};
}

void save_training_state(const fs::path& run, const TrainingState& s, const PeltModel& model, const AdamW& optimizer,
                         const RunFingerprint& fingerprint) {
  fs::create_directories(run / "state");
  std::vector<std::pair<std::string, Tensor>> tensors = optimizer.state();
  for (const NamedTensor& p : model.trainable_parameters())
    tensors.emplace_back("param/" + p.name, p.tensor.to(Device::CPU));
  for (const auto& [name, t] : s.best_tensors) tensors.emplace_back("best/" + name, t);
  const nlohmann::json trainer_state = {
      {"epoch", s.epoch},           {"step", s.step},
      {"best", s.best},             {"best_epoch", s.best_epoch},
      {"bad_epochs", s.bad_epochs}, {"history", s.history},
      {"wall_seconds", s.wall_seconds},
      {"settings_hash", fingerprint.settings_hash},
      {"base_weights_hash", fingerprint.base_weights_hash}};
  write_safetensors(state_path(run), tensors, {{"format", kStateFormat}, {"trainer_state", trainer_state.dump()}});
}

std::optional<TrainingState> load_training_state(const fs::path& run, const PeltModel& model, AdamW& optimizer,
                                                 const RunFingerprint& fingerprint, const TrainConfig& config,
                                                 int64_t steps_per_epoch) {
  if (!fs::exists(state_path(run))) {
    if (fs::exists(run / "state" / "trainer_state.json"))
      refuse_state(run, "this run was saved by an older unipelt (state/trainer_state.json)");
    return std::nullopt;
  }
  SafetensorsFile file(state_path(run));
  const auto& meta = file.metadata();
  if (!meta.count("format") || meta.at("format") != kStateFormat || !meta.count("trainer_state"))
    refuse_state(run, "not a unipelt training state (metadata format is not " + std::string(kStateFormat) + ")");
  TrainingState s;
  std::string settings_hash, base_weights_hash;
  try {
    const nlohmann::json j = nlohmann::json::parse(meta.at("trainer_state"));
    settings_hash = j.at("settings_hash").get<std::string>();
    base_weights_hash = j.at("base_weights_hash").get<std::string>();
    s.epoch = json_integer<int>(j, "epoch");  // checked: a float or a huge number is damage, not a cast
    s.step = json_integer<int64_t>(j, "step");
    s.best = j.at("best").is_null() ? -INFINITY : j.at("best").get<double>();
    s.best_epoch = json_integer<int>(j, "best_epoch");
    s.bad_epochs = json_integer<int>(j, "bad_epochs");
    s.history = j.at("history");
    s.wall_seconds = j.at("wall_seconds").get<double>();
  } catch (const std::exception& e) {  // nlohmann's, and json_integer's runtime_error
    refuse_state(run, std::string("its trainer_state is damaged (") + e.what() + ")");
  }
  if (settings_hash != fingerprint.settings_hash)
    refuse_state(run, "it belongs to a run with other settings than " + (run / "config.json").string());
  if (base_weights_hash != fingerprint.base_weights_hash)
    refuse_state(run, "it was trained on other base weights (" + base_weights_hash + ", --model has " +
                          fingerprint.base_weights_hash + ")");
  check_counters(run, s, config, steps_per_epoch);

  // Tensors: exactly param/, m/, v/ and best/ of every trainable parameter, with its shape.
  std::map<std::string, Tensor> optimizer_state;
  std::set<std::string> expected;
  for (const NamedTensor& p : model.trainable_parameters()) {
    for (const char* group : {"param/", "m/", "v/", "best/"}) expected.insert(group + p.name);
    const Tensor saved = file.load("param/" + p.name, p.tensor.dtype(), p.tensor.device());
    if (saved.shape() != p.tensor.shape())
      refuse_state(run, "param/" + p.name + " has shape " + shape_str(saved.shape()) + ", the model's parameter has " +
                            shape_str(p.tensor.shape()));
    p.tensor.copy_from(saved);
    s.best_tensors.emplace_back(p.name, file.load("best/" + p.name, p.tensor.dtype(), Device::CPU));
    if (s.best_tensors.back().second.shape() != p.tensor.shape()) refuse_state(run, "best/" + p.name + " has another shape");
  }
  for (const StTensorInfo& info : file.tensors()) {
    if (!expected.count(info.name)) refuse_state(run, "it holds " + info.name + ", which is not a tensor of this method");
    if (info.name.rfind("m/", 0) == 0 || info.name.rfind("v/", 0) == 0)
      optimizer_state[info.name] = file.load(info.name, DType::F64);
  }
  optimizer.load_state(optimizer_state, s.step);
  return s;
}

void write_derived_files(const fs::path& run, const TrainingState& s, const nlohmann::json& checkpoint_config,
                         bool with_best) {
  if (with_best && !s.best_tensors.empty()) write_pelt_checkpoint(run / "best", s.best_tensors, checkpoint_config);
  write_file_atomically(run / "metrics.jsonl", jsonl(s.history));
}

RunDirectoryLock::RunDirectoryLock(const fs::path& run) {
  fs::create_directories(run);
  const fs::path path = run / ".lock";
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) throw std::runtime_error(path.string() + ": cannot open: " + std::strerror(errno));
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd_);
    fd_ = -1;
    throw std::runtime_error(run.string() + ": another process is training in this run directory (it holds " +
                             path.string() + "); wait for it or stop it first");
  }
}

RunDirectoryLock::~RunDirectoryLock() {
  if (fd_ >= 0) ::close(fd_);  // closing releases the flock
}

}  // namespace unipelt

// The training loop: epochs of shuffled mini-batches, dev evaluation after each epoch, early stopping,
// resumable state, and a progress line.
#include "train/trainer.h"

#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <ostream>
#include <sstream>

#include "autograd/backend.h"
#include "autograd/tape.h"
#include "nn/bert_loader.h"
#include "nn/file_io.h"
#include "nn/optim.h"
#include "nn/safetensors.h"
#include "pelt/checkpoint.h"

namespace unipelt {

namespace {

std::atomic<bool> g_interrupted{false};
void on_sigint(int) { g_interrupted = true; }

// Ctrl-C only sets g_interrupted while the training loop runs (the loop stops at the next step and keeps
// the last finished epoch). restore() puts the previous handler back when the loop ends; the destructor
// does it if an exception leaves the loop. After that, Ctrl-C ends the program as usual.
class SigintGuard {
 public:
  SigintGuard() : previous_(std::signal(SIGINT, on_sigint)) { g_interrupted = false; }
  ~SigintGuard() { restore(); }
  SigintGuard(const SigintGuard&) = delete;
  SigintGuard& operator=(const SigintGuard&) = delete;
  void restore() {
    if (active_) std::signal(SIGINT, previous_);
    active_ = false;
  }

 private:
  void (*previous_)(int);
  bool active_ = true;
};

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Everything needed to continue after the last finished epoch.
struct LoopState {
  int epoch = 0;  // epochs finished
  int64_t step = 0;
  double best = -INFINITY;
  int best_epoch = 0, bad_epochs = 0;
  nlohmann::json history = nlohmann::json::array();  // the metrics.jsonl lines so far
  double wall_seconds = 0.0;
};

void save_state(const std::filesystem::path& dir, const LoopState& s, const PeltModel& model, const AdamW& opt) {
  std::filesystem::create_directories(dir);
  auto tensors = opt.state();
  for (const NamedTensor& p : model.trainable_parameters()) tensors.emplace_back("param/" + p.name, p.tensor.to(Device::CPU));
  write_safetensors(dir / "state.safetensors", tensors);
  nlohmann::json j = {{"epoch", s.epoch},     {"step", s.step},           {"best", s.best},
                      {"best_epoch", s.best_epoch}, {"bad_epochs", s.bad_epochs}, {"history", s.history},
                      {"wall_seconds", s.wall_seconds}};
  write_file_atomically(dir / "trainer_state.json", j.dump(1));  // written last: marks the state complete
}

LoopState load_state(const std::filesystem::path& dir, const PeltModel& model, AdamW& opt) {
  nlohmann::json j = read_json_file(dir / "trainer_state.json");
  LoopState s;
  s.epoch = j.at("epoch");
  s.step = j.at("step");
  s.best = j.at("best").is_null() ? -INFINITY : j.at("best").get<double>();
  s.best_epoch = j.at("best_epoch");
  s.bad_epochs = j.at("bad_epochs");
  s.history = j.at("history");
  s.wall_seconds = j.at("wall_seconds");
  SafetensorsFile file(dir / "state.safetensors");
  std::map<std::string, Tensor> optimizer_state;
  for (const StTensorInfo& info : file.tensors())
    if (info.name.rfind("param/", 0) != 0) optimizer_state[info.name] = file.load(info.name, DType::F64);
  for (const NamedTensor& p : model.trainable_parameters()) {
    Tensor saved = file.load("param/" + p.name, p.tensor.dtype(), p.tensor.device());
    if (saved.shape() != p.tensor.shape())
      throw std::runtime_error((dir / "state.safetensors").string() + ": param/" + p.name + " has shape " +
                               shape_str(saved.shape()) + ", the model's parameter has " + shape_str(p.tensor.shape()));
    p.tensor.copy_from(saved);
  }
  opt.load_state(optimizer_state, s.step);
  return s;
}

std::string jsonl(const nlohmann::json& lines) {
  std::string text;
  for (const auto& line : lines) text += line.dump() + "\n";
  return text;
}

// One progress line: rewritten in place on a terminal, printed every `every` steps otherwise.
class Progress {
 public:
  explicit Progress(std::ostream& out) : out_(out), tty_(isatty(STDERR_FILENO) != 0) {}
  void update(int epoch, int epochs, int64_t step, int64_t steps_in_epoch, int64_t step_in_epoch, double loss,
              double examples_per_s, double eta_s) {
    std::ostringstream line;
    line << "epoch " << epoch << "/" << epochs << "  step " << step_in_epoch << "/" << steps_in_epoch << " (" << step
         << ")  loss " << std::fixed;
    line.precision(4);
    line << loss << "  " << static_cast<int>(examples_per_s) << " ex/s  ETA " << static_cast<int>(eta_s) << "s";
    if (tty_) out_ << "\r" << line.str() << "   " << std::flush;
    else if (step_in_epoch == steps_in_epoch) out_ << line.str() << "\n" << std::flush;
  }
  void message(const std::string& text) { out_ << (tty_ ? "\r" : "") << text << "\n" << std::flush; }

 private:
  std::ostream& out_;
  bool tty_;
};

std::string format_metrics(const std::map<std::string, double>& m) {
  std::ostringstream out;
  out.precision(4);
  out << std::fixed;
  bool first = true;
  for (const auto& [k, v] : m) {
    out << (first ? "" : " ") << k << " " << v;
    first = false;
  }
  return out.str();
}

}  // namespace

TrainResult train_glue(const TrainConfig& config, bool resume, std::ostream& log) {
  config.validate();
  const auto started = Clock::now();
  const std::filesystem::path out(config.out_dir);
  const TaskInfo& task = task_info(config.task);
  const bool regression = task.kind == TaskKind::Regression;
  const DType dtype = config.dtype == "f64" ? DType::F64 : DType::F32;
  const Device device = config.device == "cuda" ? Device::CUDA : Device::CPU;
  const double lr = config.lr > 0 ? config.lr : default_learning_rate(config.pelt);
  Progress progress(log);

  if (!resume && std::filesystem::exists(out / "config.json"))
    throw std::runtime_error(out.string() + " already holds a run; use --resume to continue it or another --out");
  if (resume && std::filesystem::exists(out / "config.json")) {
    nlohmann::json saved = read_json_file(out / "config.json");
    if (saved != config.to_json())
      throw std::runtime_error(out.string() + "/config.json differs from this command's settings; resume with the "
                                              "same flags (saved: " + saved.dump() + ")");
  }
  if (resume && std::filesystem::exists(out / "results.json")) {
    progress.message("run already finished: " + (out / "results.json").string());
    const nlohmann::json results = read_json_file(out / "results.json");
    TrainResult done;
    done.finished = true;
    done.best_epoch = results.at("best_epoch");
    done.epochs_run = results.at("epochs_run");
    done.best_dev = results.at("best_dev").get<std::map<std::string, double>>();
    done.test = results.at("test").get<std::map<std::string, double>>();
    done.wall_seconds = results.at("wall_seconds");
    return done;
  }
  std::filesystem::create_directories(out);
  write_file_atomically(out / "config.json", config.to_json().dump(2) + "\n");

  // Data: the paper's splits, tokenized once.
  Splits splits = make_protocol_splits(task.name, task_directory(config.data_dir, task.name), config.k, config.data_seed);
  WordPieceTokenizer tokenizer = WordPieceTokenizer::from_vocab_file(
      (std::filesystem::path(config.model_dir) / "vocab.txt").string());
  const auto train = encode_examples(splits.train, tokenizer, config.max_len, task.is_pair);
  const auto dev = encode_examples(splits.dev, tokenizer, config.max_len, task.is_pair);
  const auto test = encode_examples(splits.test, tokenizer, config.max_len, task.is_pair);
  // The official code pads every batch to max_len; with `all` gate pooling that padding changes the
  // gates, so we pad the same way. With `masked` pooling, padding has no effect and we pad per batch.
  const int pad_to = config.pelt.gate_pool == GatePool::All && config.pelt.gated ? config.max_len : 0;

  BertLoadOptions load{task.num_labels, dtype, device, config.seed};
  BertLoadReport report;
  auto bert = load_bert(config.model_dir, load, &report);
  const SavedBaseIdentity identity = base_identity(*bert);
  PeltModel model(*bert, config.pelt, config.seed);
  const std::vector<NamedTensor> params = model.trainable_parameters();
  AdamW optimizer(params, {lr, config.beta1, config.beta2, config.adam_eps, config.weight_decay});
  const int64_t steps_per_epoch = (static_cast<int64_t>(train.size()) + config.batch_size - 1) / config.batch_size;
  const int64_t total_steps = steps_per_epoch * config.epochs;

  LoopState state;
  if (resume && std::filesystem::exists(out / "state" / "trainer_state.json")) {
    state = load_state(out / "state", model, optimizer);
    progress.message("resuming after epoch " + std::to_string(state.epoch));
  }
  const double prior_seconds = state.wall_seconds;  // spent by earlier, interrupted invocations
  progress.message(report.summary());
  if (device == Device::CPU) {
    progress.message("BLAS: " + cpu_blas_info());
    if (const std::string hint = cpu_blas_fallback_hint(); !hint.empty()) progress.message("note: " + hint);
  }
  const ParameterCounts counts = count_parameters(model);
  {
    std::ostringstream head;
    head << task.name << " K=" << (config.k ? std::to_string(config.k) : "all") << " (train " << train.size()
         << ", dev " << dev.size() << ", test " << test.size() << ")  method " << config.pelt.method << "  lr " << lr
         << "  trainable parameters " << counts.trained << " (+ head " << counts.head
         << ")";
    progress.message(head.str());
  }

  SigintGuard sigint;
  backend(device).reset_peak();
  TrainResult result;
  int epochs_this_run = 0;
  while (state.epoch < config.epochs && state.bad_epochs < config.patience) {
    const int epoch = state.epoch + 1;
    const auto epoch_start = Clock::now();
    const std::vector<size_t> order = shuffled_order(train.size(), config.seed * 1000003ull + static_cast<uint64_t>(epoch));
    double loss_sum = 0.0;
    nlohmann::json step_losses = nlohmann::json::array();  // every step's loss, for `unipelt plot`
    for (int64_t s = 0; s < steps_per_epoch; ++s) {
      std::vector<size_t> idx(order.begin() + s * config.batch_size,
                              order.begin() + std::min<int64_t>(static_cast<int64_t>(order.size()), (s + 1) * config.batch_size));
      Batch batch = make_batch(train, idx, regression, true, pad_to, dtype, device);
      ForwardContext ctx{true, config.seed * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(state.step), 0};
      tape().clear();
      for (const NamedTensor& p : params) p.tensor.zero_grad();
      auto outputs = model.forward(batch, ctx);
      const double loss = outputs.loss.item();
      if (!std::isfinite(loss)) {
        tape().clear();
        throw std::runtime_error("loss became " + std::to_string(loss) + " at epoch " + std::to_string(epoch) +
                                 " step " + std::to_string(s + 1) + "; stopping. The last good state (epoch " +
                                 std::to_string(state.epoch) + ") and best checkpoint are kept in " + out.string() +
                                 "; try a lower --lr");
      }
      backward(outputs.loss);
      clip_grad_norm(params, config.max_grad_norm);
      optimizer.step(linear_schedule(lr, state.step, total_steps, config.warmup_steps));
      ++state.step;
      loss_sum += loss;
      step_losses.push_back(loss);
      const double elapsed = seconds_since(epoch_start);
      const double ex_per_s = static_cast<double>((s + 1) * config.batch_size) / std::max(elapsed, 1e-9);
      progress.update(epoch, config.epochs, state.step, steps_per_epoch, s + 1, loss_sum / static_cast<double>(s + 1),
                      ex_per_s, elapsed / static_cast<double>(s + 1) * static_cast<double>(steps_per_epoch - s - 1));
      if (g_interrupted) break;
    }
    if (g_interrupted) {
      progress.message("interrupted during epoch " + std::to_string(epoch) + ": the state after epoch " +
                       std::to_string(state.epoch) + " is kept; rerun with --resume to continue");
      break;
    }
    EvalResult dev_eval = evaluate(model, task.name, dev, config.eval_batch_size, pad_to);
    const double metric = dev_eval.metrics.at("main");
    state.epoch = epoch;
    const bool improved = metric > state.best;
    if (improved) {
      state.best = metric;
      state.best_epoch = epoch;
      state.bad_epochs = 0;
      save_pelt_checkpoint(out / "best", model, identity, false);
    } else {
      ++state.bad_epochs;
    }
    nlohmann::json line = {{"epoch", epoch}, {"step", state.step}, {"train_loss", loss_sum / static_cast<double>(steps_per_epoch)},
                           {"dev", dev_eval.metrics}, {"dev_loss", dev_eval.loss}, {"gates", dev_eval.gates},
                           {"lr", linear_schedule(lr, state.step, total_steps, config.warmup_steps)},
                           {"seconds", seconds_since(epoch_start)}, {"step_losses", step_losses}};
    state.history.push_back(line);
    state.wall_seconds = prior_seconds + seconds_since(started);
    write_file_atomically(out / "metrics.jsonl", jsonl(state.history));
    save_state(out / "state", state, model, optimizer);
    progress.message("epoch " + std::to_string(epoch) + "  train loss " +
                     std::to_string(loss_sum / static_cast<double>(steps_per_epoch)) + "  dev " +
                     format_metrics(dev_eval.metrics) + (improved ? "  (best)" : ""));
    if (g_interrupted) {  // Ctrl-C during the evaluation or the saves: the state just saved is complete
      progress.message("interrupted after epoch " + std::to_string(epoch) + ": state saved; rerun with --resume");
      break;
    }
    if (config.stop_after_epochs > 0 && ++epochs_this_run >= config.stop_after_epochs) break;
  }
  result.epochs_run = state.epoch;
  result.best_epoch = state.best_epoch;
  const bool done = !g_interrupted && (state.epoch >= config.epochs || state.bad_epochs >= config.patience);
  sigint.restore();  // the final evaluation is short; Ctrl-C there ends the program
  // Memory of the training itself (read before the base model is loaded a second time below).
  const size_t peak_tensor_bytes = backend(device).memory_stats().peak_bytes;
  struct rusage usage {};
  getrusage(RUSAGE_SELF, &usage);
  if (!done) {
    result.wall_seconds = prior_seconds + seconds_since(started);
    return result;
  }

  // Restore the best dev checkpoint, then evaluate on the test set (the GLUE dev set). The base is
  // reloaded from disk on purpose: BitFit and fine-tuning changed it, and the checkpoint's base hash
  // refers to the pretrained weights.
  auto fresh_base = load_bert(config.model_dir, load);
  auto best = load_pelt_checkpoint(out / "best", *fresh_base);
  EvalResult dev_eval = evaluate(*best, task.name, dev, config.eval_batch_size, pad_to);
  EvalResult test_eval = evaluate(*best, task.name, test, config.eval_batch_size, pad_to);
  result.finished = true;
  result.best_dev = dev_eval.metrics;
  result.test = test_eval.metrics;
  result.wall_seconds = prior_seconds + seconds_since(started);
  nlohmann::json results = {{"task", task.name},
                            {"method", config.pelt.method},
                            {"k", config.k},
                            {"data_seed", config.data_seed},
                            {"seed", config.seed},
                            {"best_epoch", state.best_epoch},
                            {"epochs_run", state.epoch},
                            {"early_stopped", state.epoch < config.epochs},
                            {"best_dev", dev_eval.metrics},
                            {"test", test_eval.metrics},
                            {"test_gates", test_eval.gates},
                            {"wall_seconds", result.wall_seconds},
                            {"peak_tensor_bytes", peak_tensor_bytes},
                            {"peak_rss_bytes", static_cast<int64_t>(usage.ru_maxrss) * 1024},
                            {"trainable_parameters", counts.trained},
                            {"optimizer_state_floats", optimizer.state_numel()}};
  write_file_atomically(out / "results.json", results.dump(2) + "\n");
  progress.message("best dev epoch " + std::to_string(state.best_epoch) + ": " + format_metrics(dev_eval.metrics));
  progress.message("test (GLUE dev set): " + format_metrics(test_eval.metrics));
  return result;
}

}  // namespace unipelt

// The training loop: prepare (checks, data, model, resumable state), epochs of shuffled mini-batches,
// dev evaluation and the resumable state after each epoch, early stopping, and the test evaluation of
// the best checkpoint at the end.
#include "train/trainer.h"

#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <memory>
#include <optional>
#include <ostream>
#include <sstream>

#include "autograd/backend.h"
#include "autograd/parallel.h"
#include "autograd/tape.h"
#include "datasets/glue.h"
#include "nn/bert_loader.h"
#include "nn/file_io.h"
#include "nn/optim.h"
#include "pelt/checkpoint.h"
#include "train/distributed.h"
#include "train/run_dir.h"
#include "train/train_progress.h"

namespace unipelt {

namespace {

namespace fs = std::filesystem;

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

// CPU copies that stay as they are while training goes on (a CPU tensor's to(CPU) would be the same tensor).
std::vector<std::pair<std::string, Tensor>> snapshot(std::vector<std::pair<std::string, Tensor>> tensors) {
  for (auto& [name, t] : tensors) t = t.clone();
  return tensors;
}

// Everything one invocation of train_glue holds while it runs. With data parallelism (distributed.h)
// every rank has one; rank 0 alone writes the run directory.
struct Session {
  Session(const TrainConfig& c, std::ostream& log, Communicator& comm)
      : config(c), out(c.out_dir), task(task_info(c.task)), progress(log), comm(comm) {}
  bool writes_run_directory() const { return comm.rank() == 0; }
  const TrainConfig& config;
  const fs::path out;
  const TaskInfo& task;
  Progress progress;
  std::optional<RunDirectoryLock> lock;
  std::vector<EncodedExample> train, dev, test;
  int pad_to = 0;
  BertLoadOptions load;
  std::unique_ptr<BertForSequenceClassification> bert;
  SavedBaseIdentity base;
  std::unique_ptr<PeltModel> model;
  std::vector<NamedTensor> params;
  std::unique_ptr<AdamW> optimizer;
  int64_t steps_per_epoch = 0, total_steps = 0;
  RunFingerprint fingerprint;
  nlohmann::json checkpoint_config;  // best/pelt_config.json
  TrainingState state;
  double prior_seconds = 0.0;  // spent by earlier, interrupted invocations
  Communicator& comm;
  std::unique_ptr<GradientAllReduce> gradients;  // over s.params
};

// A finished run's results.json as a TrainResult (`--resume` of a finished run does nothing more).
TrainResult finished_result(const fs::path& out) {
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

// Whether the directory may be used: a new run needs an empty one, a resumed run the same settings.
void check_run_directory(const TrainConfig& config, bool resume) {
  const fs::path out(config.out_dir);
  if (!resume && fs::exists(out / "config.json"))
    throw std::runtime_error(out.string() + " already holds a run; use --resume to continue it or another --out");
  if (resume && fs::exists(out / "config.json")) {
    const nlohmann::json saved = read_json_file(out / "config.json");
    if (saved != config.to_json())
      throw std::runtime_error(out.string() + "/config.json differs from this command's settings; resume with the "
                                              "same flags (saved: " + saved.dump() + ")");
  }
}

// The paper's splits, tokenized once.
void prepare_data(Session& s) {
  const TrainConfig& c = s.config;
  Splits splits = make_protocol_splits(s.task.name, task_directory(c.data_dir, s.task.name), c.k, c.data_seed);
  WordPieceTokenizer tokenizer = WordPieceTokenizer::from_vocab_file((fs::path(c.model_dir) / "vocab.txt").string());
  s.train = encode_examples(splits.train, tokenizer, c.max_len, s.task.is_pair);
  s.dev = encode_examples(splits.dev, tokenizer, c.max_len, s.task.is_pair);
  s.test = encode_examples(splits.test, tokenizer, c.max_len, s.task.is_pair);
  s.pad_to = padded_length(c);
}

// The base model, the PELT modules on it, the optimizer over what trains; returns the load report.
BertLoadReport prepare_model(Session& s) {
  const TrainConfig& c = s.config;
  s.load = {s.task.num_labels, c.dtype, c.device, c.seed, c.allow_unused};
  BertLoadReport report;
  s.bert = load_bert(c.model_dir, s.load, &report);
  s.base = base_identity(*s.bert);
  s.model = std::make_unique<PeltModel>(*s.bert, c.pelt, c.seed);
  s.params = s.model->trainable_parameters();
  s.optimizer = std::make_unique<AdamW>(
      s.params, AdamWOptions{c.resolved_lr(), c.beta1, c.beta2, c.adam_eps, c.weight_decay});
  s.steps_per_epoch = (static_cast<int64_t>(s.train.size()) + c.batch_size - 1) / c.batch_size;
  s.total_steps = s.steps_per_epoch * c.epochs;
  s.fingerprint = run_fingerprint(c, s.base.weights_hash);
  s.checkpoint_config = pelt_checkpoint_config(*s.model, s.base, false);
  return report;
}

void print_run_header(Session& s, const BertLoadReport& report) {
  const TrainConfig& c = s.config;
  s.progress.message(report.summary());
  if (c.device == Device::CPU) {
    s.progress.message("BLAS: " + cpu_blas_info());
    if (const std::string hint = cpu_blas_fallback_hint(); !hint.empty()) s.progress.message("note: " + hint);
  }
  const ParameterCounts counts = count_parameters(*s.model);
  std::ostringstream head;
  head << s.task.name << " K=" << k_label(c.k) << " (train " << s.train.size() << ", dev " << s.dev.size() << ", test "
       << s.test.size() << ")  method " << c.pelt.method << "  lr " << c.resolved_lr() << "  trainable parameters "
       << counts.trained << " (+ head " << counts.head << ")";
  s.progress.message(head.str());
  if (s.comm.size() > 1)
    s.progress.message("data parallel: " + s.comm.describe() + "; each step all-reduces " +
                       std::to_string(s.gradients->values()) + " gradient values (" + dtype_name(c.dtype) + ", " +
                       std::to_string(s.gradients->bytes()) + " bytes), the trainable parameters only");
}

// Data parallelism: every rank reads what rank 0 writes (a resumed state, best/), so all of them must see
// the run directory. Called after rank 0 wrote config.json.
void require_shared_run_directory(Session& s) {
  if (s.comm.size() == 1) return;
  s.comm.barrier();
  require_same_on_every_rank(s.comm, fs::exists(s.out / "config.json") ? 1 : 0,
                             "whether " + (s.out / "config.json").string() + " exists");
}

// ... and every rank holds the same replica: the same parameters after the same number of steps.
void require_same_replicas(Session& s) {
  if (s.comm.size() == 1) return;
  require_same_on_every_rank(s.comm, s.gradients->parameters_hash() ^ static_cast<uint64_t>(s.state.step),
                             "the parameters or the step count");
}

// Everything before the first step: the rules that need the model, the directory, data, model, state.
std::unique_ptr<Session> prepare(const TrainConfig& config, bool resume, std::ostream& log, Communicator& comm) {
  validate_against_model(config, load_bert_config(fs::path(config.model_dir) / "config.json"));
  auto s = std::make_unique<Session>(config, log, comm);
  if (s->writes_run_directory()) {
    s->lock.emplace(s->out);
    for (const fs::path& stale : remove_stale_temporaries(s->out))
      s->progress.message("removed " + stale.string() + " (left by a killed write)");
  }
  prepare_data(*s);
  const BertLoadReport report = prepare_model(*s);
  // Only once the data and the model have loaded: a run refused for its inputs leaves no config.json
  // behind, so the corrected command runs without --resume.
  if (s->writes_run_directory()) write_file_atomically(s->out / "config.json", config.to_json().dump(2) + "\n");
  require_shared_run_directory(*s);
  if (resume) {
    if (auto loaded = load_training_state(s->out, *s->model, *s->optimizer, s->fingerprint, config,
                                          s->steps_per_epoch)) {
      s->state = std::move(*loaded);
      if (s->writes_run_directory())  // a crash may have left them stale
        write_derived_files(s->out, s->state, s->checkpoint_config, true);
      s->progress.message("resuming after epoch " + std::to_string(s->state.epoch));
    }
  }
  s->prior_seconds = s->state.wall_seconds;
  s->gradients = std::make_unique<GradientAllReduce>(s->params);
  require_same_replicas(*s);
  print_run_header(*s, report);
  return s;
}

// The training losses of one epoch: every step's (for `unipelt plot`) and their mean.
struct EpochLosses {
  std::vector<double> steps;
  double mean = 0.0;
};

// One epoch of steps. Returns its losses, or nothing when Ctrl-C interrupted it.
std::optional<EpochLosses> run_epoch(Session& s, int epoch, Clock::time_point epoch_start) {
  const TrainConfig& c = s.config;
  const bool regression = s.task.kind == TaskKind::Regression;
  const std::vector<std::vector<size_t>> batches = epoch_batches(c, s.train.size(), epoch);
  EpochLosses losses;
  double loss_sum = 0.0;
  for (int64_t step = 0; step < s.steps_per_epoch; ++step) {
    const std::vector<size_t>& idx = batches[static_cast<size_t>(step)];
    const ShardedBatch mine = shard_of(s.comm, s.train, idx, s.pad_to);  // one process: the whole batch
    std::optional<Batch> batch;
    if (!mine.indices.empty())
      batch = make_batch(s.train, mine.indices, regression, true, mine.pad_to, c.dtype, c.device);
    const double lr = linear_schedule(c.resolved_lr(), s.state.step, s.total_steps, c.warmup_steps);
    const StepShare share{&s.comm, s.gradients.get(), mine.indices.size(), idx.size(), mine.example_offset};
    const double loss = training_step(*s.model, s.params, *s.optimizer, batch ? &*batch : nullptr, c, s.state.step,
                                      lr, share);
    if (!std::isfinite(loss))
      throw std::runtime_error("loss became " + std::to_string(loss) + " at epoch " + std::to_string(epoch) + " step " +
                               std::to_string(step + 1) + "; stopping. The last good state (epoch " +
                               std::to_string(s.state.epoch) + ") and best checkpoint are kept in " + s.out.string() +
                               "; try a lower --lr");
    ++s.state.step;
    loss_sum += loss;
    losses.steps.push_back(loss);
    const double elapsed = seconds_since(epoch_start);
    const double ex_per_s = static_cast<double>((step + 1) * c.batch_size) / std::max(elapsed, 1e-9);
    s.progress.update(epoch, c.epochs, s.state.step, s.steps_per_epoch, step + 1,
                      loss_sum / static_cast<double>(step + 1), ex_per_s,
                      elapsed / static_cast<double>(step + 1) * static_cast<double>(s.steps_per_epoch - step - 1));
    if (any_rank(s.comm, g_interrupted)) return std::nullopt;
  }
  losses.mean = loss_sum / static_cast<double>(s.steps_per_epoch);
  return losses;
}

// After an epoch: evaluate the dev set, keep the best checkpoint, commit the state, then the derived files.
void end_epoch(Session& s, int epoch, const EpochLosses& losses, Clock::time_point started,
               Clock::time_point epoch_start) {
  const TrainConfig& c = s.config;
  EvalResult dev = evaluate(*s.model, s.task.name, s.dev, c.eval_batch_size, s.pad_to, true, s.comm);
  const double metric = dev.metrics.at("main");
  TrainingState& st = s.state;
  st.epoch = epoch;
  const bool improved = metric > st.best;
  if (improved) {
    st.best = metric;
    st.best_epoch = epoch;
    st.bad_epochs = 0;
    st.best_tensors = snapshot(pelt_checkpoint_tensors(*s.model, false));
  } else {
    ++st.bad_epochs;
  }
  st.history.push_back({{"epoch", epoch},
                        {"step", st.step},
                        {"train_loss", losses.mean},
                        {"dev", dev.metrics},
                        {"dev_loss", dev.loss},
                        {"gates", dev.gates},
                        {"lr", linear_schedule(c.resolved_lr(), st.step, s.total_steps, c.warmup_steps)},
                        {"seconds", seconds_since(epoch_start)},
                        {"step_losses", losses.steps}});
  st.wall_seconds = s.prior_seconds + seconds_since(started);
  require_same_replicas(s);
  if (s.writes_run_directory()) {
    save_training_state(s.out, st, *s.model, *s.optimizer, s.fingerprint);  // the one commit that counts
    write_derived_files(s.out, st, s.checkpoint_config, improved);
  }
  s.progress.message("epoch " + std::to_string(epoch) + "  train loss " + std::to_string(losses.mean) + "  dev " +
                     format_metrics(dev.metrics) + (improved ? "  (best)" : ""));
}

// The best checkpoint on a freshly loaded base, evaluated on dev and test; results.json.
TrainResult finish(Session& s, Clock::time_point started, size_t peak_tensor_bytes, int64_t peak_rss_bytes) {
  const TrainConfig& c = s.config;
  // The base is reloaded from disk on purpose: BitFit and fine-tuning changed it, and the checkpoint's
  // base hash refers to the pretrained weights.
  auto fresh_base = load_bert(c.model_dir, s.load);
  s.comm.barrier();  // rank 0 has written best/
  auto best = load_pelt_checkpoint(s.out / "best", *fresh_base);
  const EvalResult dev = evaluate(*best, s.task.name, s.dev, c.eval_batch_size, s.pad_to, true, s.comm);
  const EvalResult test = evaluate(*best, s.task.name, s.test, c.eval_batch_size, s.pad_to, true, s.comm);
  TrainResult result;
  result.finished = true;
  result.epochs_run = s.state.epoch;
  result.best_epoch = s.state.best_epoch;
  result.best_dev = dev.metrics;
  result.test = test.metrics;
  result.wall_seconds = s.prior_seconds + seconds_since(started);
  nlohmann::json results = {{"task", s.task.name},
                            {"method", c.pelt.method},
                            {"k", c.k},
                            {"data_seed", c.data_seed},
                            {"seed", c.seed},
                            {"best_epoch", s.state.best_epoch},
                            {"epochs_run", s.state.epoch},
                            {"early_stopped", s.state.epoch < c.epochs},
                            {"best_dev", dev.metrics},
                            {"test", test.metrics},
                            {"test_gates", test.gates},
                            {"wall_seconds", result.wall_seconds},
                            {"peak_tensor_bytes", peak_tensor_bytes},
                            {"peak_rss_bytes", peak_rss_bytes},
                            {"trainable_parameters", count_parameters(*s.model).trained},
                                  {"optimizer_state_floats", s.optimizer->state_numel()}};
  if (s.comm.size() > 1)
    results["data_parallel"] = {{"ranks", s.comm.size()},
                                {"allreduce_values_per_step", s.gradients->values()},
                                {"allreduce_bytes_per_step", s.gradients->bytes()}};
  if (s.writes_run_directory()) write_file_atomically(s.out / "results.json", results.dump(2) + "\n");
  s.progress.message("best dev epoch " + std::to_string(s.state.best_epoch) + ": " + format_metrics(dev.metrics));
  s.progress.message("test (GLUE dev set): " + format_metrics(test.metrics));
  return result;
}

}  // namespace

TrainResult train_glue(const TrainConfig& config, bool resume, std::ostream& log) {
  return train_glue(config, resume, log, single_process());
}

TrainResult train_glue(const TrainConfig& config, bool resume, std::ostream& rank0_log, Communicator& comm) {
  std::ostream quiet(nullptr);  // the other ranks' progress would repeat rank 0's
  std::ostream& log = comm.rank() == 0 ? rank0_log : quiet;
  config.validate();
  set_cpu_threads(config.threads);
  const auto started = Clock::now();
  check_run_directory(config, resume);
  const bool finished_before = resume && fs::exists(fs::path(config.out_dir) / "results.json");
  // (With several ranks also the point after which rank 0 may write: every rank has checked the directory.)
  require_same_on_every_rank(comm, finished_before ? 1 : 0, "whether the run has finished");
  if (finished_before) {
    Progress(log).message("run already finished: " + (fs::path(config.out_dir) / "results.json").string());
    return finished_result(config.out_dir);
  }
  std::unique_ptr<Session> s = prepare(config, resume, log, comm);

  SigintGuard sigint;
  backend(config.device).reset_peak();
  int epochs_this_run = 0;
  while (s->state.epoch < config.epochs && s->state.bad_epochs < config.patience) {
    const int epoch = s->state.epoch + 1;
    const auto epoch_start = Clock::now();
    const std::optional<EpochLosses> losses = run_epoch(*s, epoch, epoch_start);
    if (!losses) {
      s->progress.message("interrupted during epoch " + std::to_string(epoch) + ": the state after epoch " +
                          std::to_string(s->state.epoch) + " is kept; rerun with --resume to continue");
      break;
    }
    end_epoch(*s, epoch, *losses, started, epoch_start);
    if (any_rank(comm, g_interrupted)) {  // Ctrl-C during the evaluation or the saves: the state just saved is complete
      s->progress.message("interrupted after epoch " + std::to_string(epoch) + ": state saved; rerun with --resume");
      break;
    }
    if (config.stop_after_epochs > 0 && ++epochs_this_run >= config.stop_after_epochs) break;
  }
  const bool done = !any_rank(comm, g_interrupted) && (s->state.epoch >= config.epochs ||
                                                       s->state.bad_epochs >= config.patience);
  sigint.restore();  // the final evaluation is short; Ctrl-C there ends the program
  // Memory of the training itself (read before the base model is loaded a second time in finish()).
  const size_t peak_tensor_bytes = backend(config.device).memory_stats().peak_bytes;
  struct rusage usage {};
  getrusage(RUSAGE_SELF, &usage);
  if (done) return finish(*s, started, peak_tensor_bytes, static_cast<int64_t>(usage.ru_maxrss) * 1024);
  TrainResult stopped;
  stopped.epochs_run = s->state.epoch;
  stopped.best_epoch = s->state.best_epoch;
  stopped.wall_seconds = s->prior_seconds + seconds_since(started);
  return stopped;
}

}  // namespace unipelt

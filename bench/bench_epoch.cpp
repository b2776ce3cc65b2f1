// The workload users run, timed: `bench epoch` and `bench eval`.
//
// bench epoch: one whole training epoch of a GLUE task under the paper's protocol (K training examples
// of the data seed's shuffle), with the batches the trainer makes (train/trainer.h epoch_batches: the
// epoch's shuffled order cut into batches of 16, each padded to its longest sequence) and its step
// (training_step: forward with dropout, backward, clipping, AdamW). A few steps of another epoch run
// first, untimed, so that the allocator's cache is warm as it is in every epoch after the first.
// --dump-batches writes the epoch's token ids, batch by batch, for bench/pytorch_bench.py epoch, which
// runs the same epoch in PyTorch (padded to 128, and padded per batch).
//
// bench eval: evaluate() on the GLUE dev set (the protocol's test split): the sorted, per-batch-padded
// inference pass of train/evaluate.h, with gradients off. The PELT modules are freshly initialised (speed
// does not depend on their values).
//
// Both also report their GEMM bound (bench_common.h): the matrix products of the last timed repetition
// are logged and replayed, so "wall / gemm" says how far the whole workload is from the time its
// products alone need at this thread count.
#include <time.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "autograd/backend.h"
#include "autograd/parallel.h"
#include "datasets/encoding.h"
#include "nn/bert_loader.h"
#include "train/evaluate.h"
#include "train/trainer.h"
#include "bench/bench_common.h"

namespace unipelt::bench {

namespace {

namespace fs = std::filesystem;

struct WorkloadOptions {
  std::string model = "../shared/data/models/bert-mini-mlm";
  std::string data = "../shared/data";
  std::string task = "SST-2";
  std::vector<std::string> methods;
  size_t k = 1000;
  uint64_t data_seed = 111, seed = 42;
  int threads = 0, warmup = 3, repeats = 1, batch = 0;  // batch 0: the settings' default (16 train, eval's)
  bool gemm_bound = true;
  std::string dump_batches, json;
};

double process_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

// The training configuration of a run of `method` with these options (the defaults of `unipelt train`).
TrainConfig run_config(const WorkloadOptions& o, const std::string& method) {
  TrainConfig c;
  c.task = task_info(o.task).name;
  c.pelt = preset(method);
  c.model_dir = o.model;
  c.data_dir = o.data;
  c.k = o.k;
  c.data_seed = o.data_seed;
  c.seed = o.seed;
  if (o.batch > 0) c.batch_size = c.eval_batch_size = o.batch;
  c.threads = o.threads;
  return c;
}

struct Data {
  std::vector<EncodedExample> train, test;
};

Data load_data(const TrainConfig& c) {
  const TaskInfo& task = task_info(c.task);
  Splits splits = make_protocol_splits(task.name, task_directory(c.data_dir, task.name), c.k, c.data_seed);
  WordPieceTokenizer tokenizer = WordPieceTokenizer::from_vocab_file((fs::path(c.model_dir) / "vocab.txt").string());
  return {encode_examples(splits.train, tokenizer, c.max_len, task.is_pair),
          encode_examples(splits.test, tokenizer, c.max_len, task.is_pair)};
}

struct Model {
  std::unique_ptr<BertForSequenceClassification> bert;
  std::unique_ptr<PeltModel> pelt;
};

Model load_model(const TrainConfig& c) {
  Model m;
  m.bert = load_bert(c.model_dir, {task_info(c.task).num_labels, DType::F32, Device::CPU, c.seed});
  m.pelt = std::make_unique<PeltModel>(*m.bert, c.pelt, c.seed);
  return m;
}

struct Timing {
  Stats wall, cpu;
  GemmBound gemm;  // of one repetition; zero with --no-gemm-bound
};

// Runs `work` with the CPU backend's product log on when `log` is set (the last timed repetition).
template <class Work>
void maybe_logging_gemms(bool log, std::vector<GemmCall>& calls, Work&& work) {
  if (log) CpuBackend::log_gemms(&calls);
  work();
  if (log) CpuBackend::log_gemms(nullptr);
}

// The epoch's token counts: real tokens, and what the batches hold after per-batch padding.
std::pair<int64_t, int64_t> token_counts(const std::vector<EncodedExample>& data,
                                         const std::vector<std::vector<size_t>>& batches) {
  int64_t real = 0, padded = 0;
  for (const auto& idx : batches) {
    size_t longest = 0;
    for (size_t i : idx) {
      real += static_cast<int64_t>(data[i].input_ids.size());
      longest = std::max(longest, data[i].input_ids.size());
    }
    padded += static_cast<int64_t>(longest * idx.size());
  }
  return {real, padded};
}

Timing time_epoch(const WorkloadOptions& o, const TrainConfig& c, const Data& data) {
  const bool regression = task_info(c.task).kind == TaskKind::Regression;
  std::vector<double> wall, cpu;
  std::vector<GemmCall> calls;
  for (int rep = 0; rep < o.repeats; ++rep) {
    Model m = load_model(c);  // every repeat starts from the same initial state
    const std::vector<NamedTensor> params = m.pelt->trainable_parameters();
    AdamW optimizer(params, AdamWOptions{c.resolved_lr(), c.beta1, c.beta2, c.adam_eps, c.weight_decay});
    const auto warmup_batches = epoch_batches(c, data.train.size(), 0);
    for (int s = 0; s < o.warmup && s < static_cast<int>(warmup_batches.size()); ++s) {
      Batch b = make_batch(data.train, warmup_batches[static_cast<size_t>(s)], regression, true, padded_length(c),
                           c.dtype, c.device);
      training_step(*m.pelt, params, optimizer, &b, c, s, c.resolved_lr());
    }
    const auto batches = epoch_batches(c, data.train.size(), 1);
    const double c0 = process_cpu_seconds();
    const auto t0 = Clock::now();
    int64_t step = o.warmup;
    maybe_logging_gemms(o.gemm_bound && rep + 1 == o.repeats, calls, [&] {
      for (const auto& idx : batches) {
        Batch b = make_batch(data.train, idx, regression, true, padded_length(c), c.dtype, c.device);
        training_step(*m.pelt, params, optimizer, &b, c, step++, c.resolved_lr());
      }
    });
    wall.push_back(seconds_between(t0, Clock::now()));
    cpu.push_back(process_cpu_seconds() - c0);
  }
  return {summarize(wall), summarize(cpu), o.gemm_bound ? gemm_bound(calls, 3) : GemmBound{}};
}

Timing time_eval(const WorkloadOptions& o, const TrainConfig& c, const Data& data) {
  Model m = load_model(c);
  evaluate(*m.pelt, c.task, data.test, c.eval_batch_size, padded_length(c));  // warm-up
  std::vector<double> wall, cpu;
  std::vector<GemmCall> calls;
  for (int rep = 0; rep < o.repeats; ++rep) {
    const double c0 = process_cpu_seconds();
    const auto t0 = Clock::now();
    maybe_logging_gemms(o.gemm_bound && rep + 1 == o.repeats, calls,
                        [&] { evaluate(*m.pelt, c.task, data.test, c.eval_batch_size, padded_length(c)); });
    wall.push_back(seconds_between(t0, Clock::now()));
    cpu.push_back(process_cpu_seconds() - c0);
  }
  return {summarize(wall), summarize(cpu), o.gemm_bound ? gemm_bound(calls, 3) : GemmBound{}};
}

// The epoch's batches as JSON for pytorch_bench.py: {"task", "k", "data_seed", "seed", "num_labels",
// "batches": [[{"input_ids", "token_type_ids", "label"}, ...], ...]}.
void dump_batches(const std::string& path, const TrainConfig& c, const Data& data) {
  nlohmann::json batches = nlohmann::json::array();
  for (const auto& idx : epoch_batches(c, data.train.size(), 1)) {
    nlohmann::json batch = nlohmann::json::array();
    for (size_t i : idx) {
      const EncodedExample& e = data.train[i];
      batch.push_back({{"input_ids", e.input_ids}, {"token_type_ids", e.token_type_ids}, {"label", e.label}});
    }
    batches.push_back(batch);
  }
  const nlohmann::json j = {{"task", c.task},           {"k", c.k},
                            {"data_seed", c.data_seed}, {"seed", c.seed},
                            {"num_labels", task_info(c.task).num_labels}, {"batch_size", c.batch_size},
                            {"batches", batches}};
  std::ofstream(path) << j.dump() << "\n";
  std::printf("wrote the epoch's %zu batches to %s\n", batches.size(), path.c_str());
}

bool inputs_present(const WorkloadOptions& o, const char* command) {
  const fs::path task_dir = task_directory(o.data, task_info(o.task).name);
  if (fs::exists(fs::path(o.model) / "config.json") && fs::exists(task_dir)) return true;
  std::printf("bench %s: skipped: no model at %s or no %s data at %s (pass --model DIR and --data DIR)\n", command,
              o.model.c_str(), o.task.c_str(), task_dir.c_str());
  return false;
}

void run_workload(const WorkloadOptions& o, bool epoch) {
  const char* command = epoch ? "epoch" : "eval";
  if (!inputs_present(o, command)) throw Exit{0};
  set_threads(o.threads);
  const std::vector<std::string> methods = o.methods.empty() ? preset_names() : o.methods;
  for (const std::string& m : methods) preset(m);  // validates the names before any work
  const TrainConfig base = run_config(o, methods.front());
  const Data data = load_data(base);
  if (!o.dump_batches.empty()) dump_batches(o.dump_batches, base, data);
  const auto [real, padded] = token_counts(data.train, epoch_batches(base, data.train.size(), 1));
  std::printf("bench %s: %s, cpu, float32, %d threads\n", command, base.task.c_str(), cpu_threads());
  std::printf("  model:    %s\n  cpu:      %s\n  blas:     %s\n", o.model.c_str(), cpu_description().c_str(),
              blas_description().c_str());
  if (epoch)
    std::printf("  work:     one epoch of K = %zu (data seed %llu, seed %llu): %zu batches of %d padded to their "
                "longest (%lld real tokens, %lld with padding); %d warm-up steps first; %d repeat(s), median\n\n",
                base.k, static_cast<unsigned long long>(base.data_seed), static_cast<unsigned long long>(base.seed),
                epoch_batches(base, data.train.size(), 1).size(), base.batch_size, static_cast<long long>(real),
                static_cast<long long>(padded), o.warmup, o.repeats);
  else
    std::printf("  work:     evaluate() on the GLUE dev set (%zu examples), batches of %d sorted by length, padded "
                "per batch; 1 warm-up pass, %d timed, median\n\n",
                data.test.size(), base.eval_batch_size, o.repeats);
  std::printf("%-15s %10s %10s %10s %10s %10s %10s\n", "preset", "wall s", "cpu s", "ex/s", "gemm s", "wall/gemm",
              "GFLOP");
  nlohmann::json results = nlohmann::json::array();
  for (const std::string& method : methods) {
    backend(Device::CPU).release_cached();  // each preset starts from a process that holds no spare memory
    const TrainConfig c = run_config(o, method);
    const Timing t = epoch ? time_epoch(o, c, data) : time_eval(o, c, data);
    const size_t examples = epoch ? data.train.size() : data.test.size();
    std::printf("%-15s %10.3f %10.3f %10.1f %10.3f %10.2f %10.1f\n", method.c_str(), t.wall.median, t.cpu.median,
                static_cast<double>(examples) / t.wall.median, t.gemm.seconds,
                t.gemm.seconds > 0 ? t.wall.median / t.gemm.seconds : 0.0, t.gemm.flops / 1e9);
    std::fflush(stdout);
    results.push_back({{"method", method}, {"wall_s_median", t.wall.median}, {"wall_s_best", t.wall.best},
                       {"cpu_s_median", t.cpu.median}, {"examples", examples},
                       {"examples_per_s", static_cast<double>(examples) / t.wall.median},
                       {"gemm_bound_s", t.gemm.seconds}, {"gemm_gflop", t.gemm.flops / 1e9}});
  }
  if (o.gemm_bound)
    std::printf("\ngemm s: the GEMM bound, the time the matrix products of one repetition alone take at this thread\n"
                "count (each distinct product replayed through the backend on scratch buffers, best of 3);\n"
                "wall/gemm: median wall time over it; GFLOP: those products' floating-point operations.\n");
  if (!o.json.empty()) {
    const nlohmann::json j = {{"implementation", "unipelt"}, {"command", command}, {"task", base.task},
                              {"threads", cpu_threads()},    {"k", base.k},       {"real_tokens", real},
                              {"padded_tokens", padded},     {"presets", results}};
    std::ofstream(o.json) << j.dump(2) << "\n";
    std::printf("wrote %s\n", o.json.c_str());
  }
}

void add_workload_options(CLI::App* sub, const std::shared_ptr<WorkloadOptions>& o) {
  sub->add_option("--model", o->model, "Hugging Face BERT directory")->capture_default_str();
  sub->add_option("--data", o->data, "data root holding glue/<TASK>/*.tsv")->capture_default_str();
  sub->add_option("--task", o->task, "GLUE task")->capture_default_str();
  sub->add_option("--methods", o->methods, "presets to run (default: all eight)")->delimiter(',');
  sub->add_option("--threads", o->threads, "CPU threads (0 = all CPUs)")->capture_default_str();
  sub->add_option("--repeats", o->repeats, "timed repetitions; the median is reported")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  sub->add_flag("!--no-gemm-bound", o->gemm_bound, "skip measuring the GEMM bound (the products' own time)");
  sub->add_option("--json", o->json, "also write the results to this JSON file");
}

}  // namespace

void setup_workload_commands(CLI::App& app) {
  auto* epoch = app.add_subcommand("epoch", "One training epoch of a GLUE task under the paper's protocol (K "
                                            "examples, the trainer's batches and steps), per preset");
  auto eo = std::make_shared<WorkloadOptions>();
  add_workload_options(epoch, eo);
  epoch->add_option("--k", eo->k, "training examples")->check(CLI::PositiveNumber)->capture_default_str();
  epoch->add_option("--data-seed", eo->data_seed, "data seed of the protocol's shuffle")->capture_default_str();
  epoch->add_option("--seed", eo->seed, "model seed (batch order, dropout, PELT init)")->capture_default_str();
  epoch->add_option("--batch", eo->batch, "training batch size (default: 16, the trainer's)");
  epoch->add_option("--warmup", eo->warmup, "untimed steps (of another epoch's batches) before the timed epoch")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  epoch->add_option("--dump-batches", eo->dump_batches, "write the epoch's batches (token ids) to this JSON file "
                                                        "for bench/pytorch_bench.py epoch");
  epoch->callback([eo] { run_workload(*eo, true); });

  auto* eval = app.add_subcommand("eval", "evaluate() on the GLUE dev set of a task (the protocol's test split), "
                                          "per preset: examples per second");
  auto vo = std::make_shared<WorkloadOptions>();
  vo->repeats = 3;
  add_workload_options(eval, vo);
  eval->add_option("--batch", vo->batch, "evaluation batch size (default: the trainer's --eval-batch-size)");
  eval->callback([vo] { run_workload(*vo, false); });
}

}  // namespace unipelt::bench

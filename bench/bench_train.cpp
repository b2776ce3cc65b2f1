// `bench train`: training throughput of each PELT preset, one full step at a time exactly as the trainer
// does it (train/trainer.cpp): zero_grad, forward (dropout on), loss.item(), backward, clip_grad_norm(1.0),
// AdamW step. The batch is B sequences of T real tokens with random ids (no padding), fixed across steps.
//
// Reported per preset: median and best ms/step, examples/s (from the median), peak tensor memory
// (Backend::memory_stats after reset_peak, so weights, optimizer state and activations together) and
// its part above the step's starting point, trainable parameters and optimizer state.
// --breakdown also splits a step into forward / backward / clip / AdamW and ranks the backward closures
// by op name (the tape's own node names), which is where the profile in docs/benchmarks.md starts.
#include <time.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>

#include "autograd/backend.h"
#include "autograd/cpu_backend.h"
#include "autograd/parallel.h"
#include "autograd/tape.h"
#include "nn/bert_loader.h"
#include "nn/optim.h"
#include "pelt/unipelt.h"
#include "bench/bench_common.h"

namespace unipelt::bench {

namespace {

struct TrainOptions {
  std::string model = "../shared/data/models/bert-mini-mlm";
  std::string synthetic;  // a random-weight model of this size instead of --model
  std::vector<std::string> methods;
  std::string device = "cpu";
  int threads = 0, batch = 16, seq_len = 128, warmup = 3, steps = 10;
  bool no_dropout = false, breakdown = false, gemm_bound = true;
  int gemm_detail = 0;  // > 0: print that many of the step's costliest products per preset
  int alternate_threads = 0;  // > 0: also time steps at this many threads, alternated with --threads
  std::string json;
};

// Random-weight BERT shapes (Turc et al. 2019 sizes, and BERT-base).
BertConfig synthetic_config(const std::string& name) {
  BertConfig c;
  struct Size {
    const char* name;
    int hidden, layers, heads;
  };
  static const Size sizes[] = {{"tiny", 128, 2, 2},  {"mini", 256, 4, 4},    {"small", 512, 4, 8},
                               {"medium", 512, 8, 8}, {"base", 768, 12, 12}};
  for (const Size& s : sizes)
    if (name == s.name) {
      c.hidden_size = s.hidden;
      c.num_hidden_layers = s.layers;
      c.num_attention_heads = s.heads;
      c.intermediate_size = 4 * s.hidden;
      return c;
    }
  throw std::invalid_argument("--synthetic must be one of tiny, mini, small, medium, base; got '" + name + "'");
}

std::unique_ptr<BertForSequenceClassification> make_model(const TrainOptions& o, Device device) {
  if (!o.synthetic.empty()) {
    BertConfig c = synthetic_config(o.synthetic);
    auto model = std::make_unique<BertForSequenceClassification>(c, DType::F32, Device::CPU);
    model->init_weights(1234);
    if (device == Device::CPU) return model;
    auto on_device = std::make_unique<BertForSequenceClassification>(c, DType::F32, device);
    auto src = model->parameters(), dst = on_device->parameters();
    for (size_t i = 0; i < src.size(); ++i) dst[i].tensor.copy_from(src[i].tensor);
    return on_device;
  }
  BertLoadOptions load;
  load.num_labels = 2;
  load.dtype = DType::F32;
  load.device = device;
  load.seed = 1234;
  return load_bert(o.model, load);
}

Batch make_random_batch(int64_t B, int64_t T, int vocab, Device device) {
  std::mt19937 gen(2024);
  std::uniform_int_distribution<int32_t> id(1000, vocab - 1), label(0, 1);
  std::vector<int32_t> ids(static_cast<size_t>(B * T)), types(static_cast<size_t>(B * T), 0), labels(static_cast<size_t>(B));
  for (int32_t& x : ids) x = id(gen);
  for (int32_t& x : labels) x = label(gen);
  Batch batch;
  batch.input_ids = Tensor::from_ints(ids, {B, T}, device);
  batch.token_type_ids = Tensor::from_ints(types, {B, T}, device);
  batch.attention_mask = Tensor::full({B, T}, 1.0, DType::F32, device);
  batch.labels = Tensor::from_ints(labels, {B}, device);
  return batch;
}

// Makes sure queued device work has finished (a 4-byte download; a no-op cost on the CPU).
void sync_device(Device device, const std::vector<NamedTensor>& params) {
  if (device == Device::CPU || params.empty()) return;
  float host = 0;
  backend(device).download(&host, params.back().tensor.data(), sizeof host);
}

// CPU time of the whole process (every thread), in seconds. With one thread it is much less sensitive
// than wall time to other jobs sharing the machine; with several it also counts OpenBLAS's spin-waiting.
double process_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

struct PhaseTimes {
  double forward = 0, backward = 0, clip = 0, adamw = 0;
};

// The tape's backward sweep (tape.cpp) with each closure timed and charged to its op name.
void timed_backward(const Tensor& loss, std::map<std::string, std::pair<double, int>>& per_op) {
  accumulate_grad(loss, Tensor::full(loss.shape(), 1.0, loss.dtype(), loss.device()));
  const auto& nodes = tape().nodes();
  for (auto it = nodes.rbegin(); it != nodes.rend(); ++it) {
    const auto t0 = Clock::now();
    if (!run_backward(*it)) continue;
    auto& slot = per_op[it->op];
    slot.first += seconds_between(t0, Clock::now());
    slot.second += 1;
  }
  tape().clear();
}

struct PresetResult {
  std::string method;
  Stats step, cpu;  // wall and process-CPU seconds per step
  double gemm_bound = 0, gemm_flops = 0;  // seconds and FLOPs of the step's products (CPU only)
  GemmBound gemm_detail;                   // the same, product by product
  // With --alternate-threads: the steps at that thread count, each paired with a step at --threads
  // (pair i is step_times[i] and alt_step_times[i]), and the GEMM bound at that count.
  std::vector<double> step_times, cpu_times, alt_step_times, alt_cpu_times;
  double alt_gemm_bound = 0;
  size_t peak_bytes = 0, start_bytes = 0;
  int64_t trainable = 0, optimizer_floats = 0;
  double loss_first = 0, loss_last = 0;
  PhaseTimes phases;  // medians, with --breakdown
  std::vector<std::pair<std::string, double>> backward_ops;  // ms per step, with --breakdown
};

// --alternate-threads: the VM this was written on drifts by +-10 % over minutes, so a 1-thread run
// and a 2-thread run a minute apart can land in different phases of it. Instead, every pair of
// steps runs one step at each thread count back to back, in alternating order (A B, B A, ...), and
// the ratio is taken per pair. step(s, timed, alternate) runs step s at the thread count already set.
// Each switch replaces the team (its workers are joined and new ones started, well under a millisecond,
// outside the timed step); the new workers start with cold caches, as any first loop of a step does.
template <class Step>
void run_alternating(const TrainOptions& o, Step&& step) {
  const int counts[2] = {o.threads, o.alternate_threads};
  int s = 0;
  for (int w = 0; w < o.warmup; ++w)
    for (int i = 0; i < 2; ++i) {
      set_threads(counts[i]);
      step(s++, false, i == 1);
    }
  for (int pair = 0; pair < o.steps; ++pair)
    for (int j = 0; j < 2; ++j) {
      const int i = pair % 2 == 0 ? j : 1 - j;
      set_threads(counts[i]);
      step(s++, true, i == 1);
    }
  set_threads(o.threads);
}

// One more step with the backend's product log on; its products are replayed at --threads (and at
// --alternate-threads) for the GEMM bound.
void measure_gemm_bound(const TrainOptions& o, PeltModel& model, const std::vector<NamedTensor>& params,
                        const Batch& batch, PresetResult& r) {
  std::vector<GemmCall> calls;
  for (const NamedTensor& p : params) p.tensor.zero_grad();
  CpuBackend::log_gemms(&calls);
  ForwardContext ctx{!o.no_dropout, 7, 0};
  backward(model.forward(batch, ctx).loss);
  CpuBackend::log_gemms(nullptr);
  r.gemm_detail = gemm_bound(calls, 5);
  r.gemm_flops = r.gemm_detail.flops;
  r.gemm_bound = r.gemm_detail.seconds;
  if (o.alternate_threads > 0) {
    set_threads(o.alternate_threads);
    r.alt_gemm_bound = gemm_bound(calls, 5).seconds;
    set_threads(o.threads);
  }
}

PresetResult run_preset(const TrainOptions& o, const std::string& method, Device device) {
  PresetResult r;
  r.method = method;
  auto bert = make_model(o, device);
  PeltModel model(*bert, preset(method), 42);
  const std::vector<NamedTensor> params = model.trainable_parameters();
  for (const NamedTensor& p : params) r.trainable += p.tensor.numel();
  AdamW optimizer(params, {1e-4, 0.9, 0.999, 1e-8, 0.0});
  r.optimizer_floats = optimizer.state_numel();
  const Batch batch = make_random_batch(o.batch, o.seq_len, bert->config().vocab_size, device);
  Backend& be = backend(device);

  std::vector<double> fwd, bwd, clip, adam;
  std::map<std::string, std::pair<double, int>> per_op;
  // One step, exactly as the trainer runs it; timed steps append their times (wall, CPU, phases) to
  // the given lists.
  auto run_step = [&](int s, bool timed, std::vector<double>& wall, std::vector<double>& cpu) {
    sync_device(device, params);
    tape().clear();
    for (const NamedTensor& p : params) p.tensor.zero_grad();
    be.reset_peak();
    const size_t start = be.memory_stats().bytes_in_use;
    const double c0 = process_cpu_seconds();
    const auto t0 = Clock::now();
    ForwardContext ctx{!o.no_dropout, 77 + static_cast<uint64_t>(s), 0};
    auto out = model.forward(batch, ctx);
    const double loss = out.loss.item();
    const auto t1 = Clock::now();
    if (o.breakdown && timed) timed_backward(out.loss, per_op);
    else backward(out.loss);
    sync_device(device, params);
    const auto t2 = Clock::now();
    clip_grad_norm(params, 1.0);
    sync_device(device, params);
    const auto t3 = Clock::now();
    optimizer.step(1e-4);
    sync_device(device, params);
    const auto t4 = Clock::now();
    const double c1 = process_cpu_seconds();
    if (s == 0) r.loss_first = loss;
    r.loss_last = loss;
    if (!timed) return;
    wall.push_back(seconds_between(t0, t4));
    cpu.push_back(c1 - c0);
    fwd.push_back(seconds_between(t0, t1));
    bwd.push_back(seconds_between(t1, t2));
    clip.push_back(seconds_between(t2, t3));
    adam.push_back(seconds_between(t3, t4));
    const AllocatorStats m = be.memory_stats();
    if (m.peak_bytes > r.peak_bytes) {
      r.peak_bytes = m.peak_bytes;
      r.start_bytes = start;
    }
  };
  if (o.alternate_threads == 0) {
    for (int s = 0; s < o.warmup + o.steps; ++s) run_step(s, s >= o.warmup, r.step_times, r.cpu_times);
  } else {
    run_alternating(o, [&](int s, bool timed, bool alternate) {
      run_step(s, timed, alternate ? r.alt_step_times : r.step_times, alternate ? r.alt_cpu_times : r.cpu_times);
    });
  }
  tape().clear();
  if (device == Device::CPU && o.gemm_bound) measure_gemm_bound(o, model, params, batch, r);
  r.step = summarize(r.step_times);
  r.cpu = summarize(r.cpu_times);
  r.phases = {summarize(fwd).median, summarize(bwd).median, summarize(clip).median, summarize(adam).median};
  for (const auto& [op, t] : per_op) r.backward_ops.emplace_back(op, t.first / o.steps * 1e3);
  std::sort(r.backward_ops.begin(), r.backward_ops.end(), [](auto& a, auto& b) { return a.second > b.second; });
  return r;
}

double mib(double bytes) { return bytes / (1024.0 * 1024.0); }

// The alternated steps' summary: each pair's ratio (time at --alternate-threads over time at --threads),
// their median, and the medians of the alternated steps' wall and CPU time.
struct Alternation {
  Stats step, cpu, ratio;
  std::vector<double> ratios;
};

Alternation summarize_alternation(const PresetResult& r) {
  Alternation a;
  for (size_t i = 0; i < r.step_times.size() && i < r.alt_step_times.size(); ++i)
    a.ratios.push_back(r.alt_step_times[i] / r.step_times[i]);
  a.step = summarize(r.alt_step_times);
  a.cpu = summarize(r.alt_cpu_times);
  a.ratio = summarize(a.ratios);
  return a;
}

void print_alternation(const TrainOptions& o, const PresetResult& r) {
  const Alternation a = summarize_alternation(r);
  const auto [lo, hi] = std::minmax_element(a.ratios.begin(), a.ratios.end());
  std::printf("  alternated, %d pairs: %d threads %.1f ms/step (cpu %.1f ms), %.2fx the %d-thread step per pair "
              "(median; %.2f-%.2f), cpu time %+.0f %%",
              a.ratio.n, o.alternate_threads, a.step.median * 1e3, a.cpu.median * 1e3, a.ratio.median,
              o.threads > 0 ? o.threads : available_cpus(), *lo, *hi, 100.0 * (a.cpu.median / r.cpu.median - 1.0));
  if (r.alt_gemm_bound > 0)
    std::printf(", gemm %.1f ms, step/gemm %.2f", r.alt_gemm_bound * 1e3, a.step.median / r.alt_gemm_bound);
  std::printf("\n");
}

// --json: the run's settings and every preset's results.
void write_json(const TrainOptions& o, Device device, const std::vector<PresetResult>& results) {
  nlohmann::json j;
  j["implementation"] = "unipelt";
  j["device"] = device_name(device);
  j["threads"] = cpu_threads();
  j["blas"] = blas_description();
  j["cpu"] = cpu_description();
  j["model"] = o.synthetic.empty() ? o.model : "synthetic-" + o.synthetic;
  j["batch"] = o.batch;
  j["seq_len"] = o.seq_len;
  j["dropout"] = !o.no_dropout;
  for (const PresetResult& r : results) {
    nlohmann::json p = {{"method", r.method},
                        {"ms_per_step_median", r.step.median * 1e3},
                        {"ms_per_step_best", r.step.best * 1e3},
                        {"cpu_ms_per_step_median", r.cpu.median * 1e3},
                        {"cpu_ms_per_step_best", r.cpu.best * 1e3},
                        {"examples_per_s", o.batch / r.step.median},
                        {"peak_bytes", r.peak_bytes},
                        {"step_bytes", r.peak_bytes - r.start_bytes},
                        {"trainable_parameters", r.trainable},
                        {"optimizer_state_floats", r.optimizer_floats},
                        {"loss_first", r.loss_first},
                        {"loss_last", r.loss_last},
                        {"gemm_bound_ms", r.gemm_bound * 1e3},
                        {"gemm_gflop", r.gemm_flops / 1e9}};
    if (o.alternate_threads > 0) {
      const Alternation a = summarize_alternation(r);
      p["alternate"] = {{"threads", o.alternate_threads},
                        {"ms_per_step_median", a.step.median * 1e3},
                        {"cpu_ms_per_step_median", a.cpu.median * 1e3},
                        {"ratio_median", a.ratio.median},
                        {"ratio_per_pair", a.ratios},
                        {"gemm_bound_ms", r.alt_gemm_bound * 1e3}};
    }
    if (o.breakdown) {
      p["forward_ms"] = r.phases.forward * 1e3;
      p["backward_ms"] = r.phases.backward * 1e3;
      p["clip_ms"] = r.phases.clip * 1e3;
      p["adamw_ms"] = r.phases.adamw * 1e3;
      for (const auto& [op, ms] : r.backward_ops) p["backward_ops_ms"][op] = ms;
    }
    j["presets"].push_back(p);
  }
  std::ofstream(o.json) << j.dump(2) << "\n";
  std::printf("wrote %s\n", o.json.c_str());
}

void run_train(const TrainOptions& o) {
  const Device device = o.device == "cuda" ? Device::CUDA : Device::CPU;
  // Before the device check: the combination is wrong on every machine, with or without a GPU.
  if (o.alternate_threads > 0 && device != Device::CPU)
    throw std::invalid_argument("--alternate-threads sets CPU threads: it needs --device cpu");
  if (device == Device::CUDA && !cuda_available()) {
    if (backend_registered(Device::CUDA))
      std::fprintf(stderr, "bench train --device cuda: this build has the CUDA backend, but no CUDA device is present "
                           "on this machine; nothing measured\n");
    else
      std::fprintf(stderr, "bench train --device cuda: this build has no CUDA backend (configure with nvcc available "
                           "and -DUNIPELT_CUDA=ON); nothing measured\n");
    throw Exit{2};
  }
  if (o.synthetic.empty() && !std::filesystem::exists(std::filesystem::path(o.model) / "config.json")) {
    std::printf("bench train: skipped: no model at %s (pass --model DIR or --synthetic SIZE)\n", o.model.c_str());
    throw Exit{0};
  }
  set_threads(o.threads);
  std::vector<std::string> methods = o.methods.empty() ? preset_names() : o.methods;
  for (const std::string& m : methods) preset(m);  // validates the names before any work

  std::printf("bench train: %s, float32, batch %d x %d tokens (all real, random ids), dropout %s\n",
              device_name(device), o.batch, o.seq_len, o.no_dropout ? "off" : "on (model config)");
  std::printf("  model:    %s\n", o.synthetic.empty() ? o.model.c_str() : ("random-weight BERT-" + o.synthetic).c_str());
  std::printf("  cpu:      %s\n", cpu_description().c_str());
  std::printf("  blas:     %s\n", blas_description().c_str());
  if (const std::string hint = unipelt::cpu_blas_fallback_hint(); !hint.empty()) std::printf("  WARNING:  %s\n", hint.c_str());
  std::printf("  step:     zero_grad, forward, loss.item(), backward, clip_grad_norm(1.0), AdamW; %d warm-up + %d "
              "timed steps; ex/s from the median\n\n",
              o.warmup, o.steps);
  std::printf("%-15s %9s %9s %9s %9s %10s %10s %12s %12s %9s %9s\n", "preset", "ms/step", "best ms", "cpu ms", "ex/s",
              "peak MiB", "step MiB", "trainable", "optim MiB", "gemm ms", "step/gemm");
  std::vector<PresetResult> results;
  for (const std::string& m : methods) {
    backend(Device::CPU).release_cached();  // each preset starts from a process that holds no spare memory
    PresetResult r = run_preset(o, m, device);
    std::printf("%-15s %9.1f %9.1f %9.1f %9.1f %10.1f %10.1f %12lld %12.2f %9.1f %9.2f\n", r.method.c_str(),
                r.step.median * 1e3, r.step.best * 1e3, r.cpu.median * 1e3, o.batch / r.step.median, mib(static_cast<double>(r.peak_bytes)),
                mib(static_cast<double>(r.peak_bytes - r.start_bytes)), static_cast<long long>(r.trainable),
                mib(4.0 * static_cast<double>(r.optimizer_floats)), r.gemm_bound * 1e3,
                r.gemm_bound > 0 ? r.step.median / r.gemm_bound : 0.0);
    if (o.alternate_threads > 0) print_alternation(o, r);
    if (o.gemm_detail > 0 && r.gemm_bound > 0) print_gemm_detail(r.gemm_detail, o.gemm_detail);
    std::fflush(stdout);
    results.push_back(std::move(r));
  }
  std::printf("\nms/step: median wall time; best ms: fastest step; cpu ms: median process CPU time per step (all\n"
              "threads, spin-waiting included). ex/s = batch / median wall time.\n");
  if (o.gemm_bound && device == Device::CPU)
    std::printf("gemm ms: the GEMM bound, the time the step's matrix products alone take at this thread count (every\n"
                "product of a forward + backward replayed through the backend on scratch buffers, best of 5 each);\n"
                "step/gemm: median step time over it.\n");
  std::printf("peak MiB: all live tensors at the step's high-water mark (weights + optimizer state + activations +\n"
              "gradients); step MiB: the part above the step's start. optim MiB: AdamW m and v (float32).\n");

  if (o.breakdown) {
    std::printf("\nbreakdown (median ms): forward / backward / clip / AdamW, then the backward closures by op\n");
    for (const PresetResult& r : results) {
      std::printf("%-15s fwd %8.1f  bwd %8.1f  clip %6.2f  adamw %6.2f\n", r.method.c_str(), r.phases.forward * 1e3,
                  r.phases.backward * 1e3, r.phases.clip * 1e3, r.phases.adamw * 1e3);
      double total = 0;
      for (const auto& [op, ms] : r.backward_ops) total += ms;
      std::string line = "    backward:";
      for (const auto& [op, ms] : r.backward_ops)
        if (ms >= 0.01 * total) line += strprintf(" %s %.1f (%.0f%%),", op.c_str(), ms, 100 * ms / total);
      line.pop_back();
      std::printf("%s\n", line.c_str());
    }
  }

  if (!o.json.empty()) write_json(o, device, results);
}

}  // namespace

void setup_train_command(CLI::App& app) {
  auto* sub = app.add_subcommand(
      "train",
      "Training throughput per PELT preset: full steps (zero_grad, forward with dropout, backward, clip, AdamW) on "
      "a batch of B x T real tokens with random ids. Prints ms/step, examples/s, peak tensor memory, trainable "
      "parameters and optimizer state. Skips (exit 0) when the model directory is absent.");
  auto o = std::make_shared<TrainOptions>();
  sub->add_option("--model", o->model, "Hugging Face BERT directory (config.json + model.safetensors)")
      ->capture_default_str();
  sub->add_option("--synthetic", o->synthetic,
                  "use a random-weight BERT of this size instead of --model: tiny, mini, small, medium, base");
  sub->add_option("--methods", o->methods, "presets to run (default: all eight)")->delimiter(',');
  sub->add_option("--device", o->device, "cpu or cuda (cuda exits with status 2 when no GPU is available)")
      ->check(CLI::IsMember({"cpu", "cuda"}))
      ->capture_default_str();
  sub->add_option("--threads", o->threads, "CPU threads for every kernel and product (default 0: all CPUs)");
  sub->add_option("--batch", o->batch, "examples per step")->check(CLI::PositiveNumber)->capture_default_str();
  sub->add_option("--seq-len", o->seq_len, "tokens per example")->check(CLI::PositiveNumber)->capture_default_str();
  sub->add_option("--warmup", o->warmup, "untimed steps first")->check(CLI::NonNegativeNumber)->capture_default_str();
  sub->add_option("--steps", o->steps, "timed steps")->check(CLI::PositiveNumber)->capture_default_str();
  sub->add_flag("--no-dropout", o->no_dropout, "forward in eval mode (dropout off); the default trains with dropout");
  auto* breakdown = sub->add_flag("--breakdown", o->breakdown,
                "also time forward / backward / clip / AdamW separately and rank the backward closures by op");
  sub->add_option("--alternate-threads", o->alternate_threads,
                  "also run each timed step at this many threads, alternated step by step with --threads in the same "
                  "process (A B, B A, ...), and print the ratio per pair: drift of the machine cancels out. --steps "
                  "counts pairs")
      ->check(CLI::PositiveNumber)
      ->excludes(breakdown);
  sub->add_flag("!--no-gemm-bound", o->gemm_bound, "skip measuring the GEMM bound of each preset's step");
  sub->add_option("--gemm-detail", o->gemm_detail,
                  "print the N products that take the most of each preset's GEMM bound (shape, count, time, rate)")
      ->check(CLI::NonNegativeNumber);
  sub->add_option("--json", o->json, "also write the results to this JSON file");
  sub->callback([o] { run_train(*o); });
}

}  // namespace unipelt::bench

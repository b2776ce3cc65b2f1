// Crash safety of the run directory (train/run_dir.h): `unipelt train` is killed with SIGKILL right after
// each of its file commits (UNIPELT_FAULT_AFTER_COMMITS, nn/file_io.cpp) and at random moments, then
// resumed; every resumed run must end exactly like an uninterrupted one: metrics.jsonl, results.json and
// best/ byte for byte, apart from the wall-clock and memory fields. Also: --resume refuses a state that
// belongs to another run or whose counters were edited, stale temporary files are removed, and a sweep
// killed mid-grid finishes with the same results when rerun.
#include <catch2/catch.hpp>

#include <signal.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <thread>

#include "nn/safetensors.h"
#include "tests/synthetic.h"
#include "tests/test_util.h"

using namespace unipelt;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr int kEpochs = 3;

json without_timing(json j) {
  for (const char* key : {"wall_seconds", "peak_tensor_bytes", "peak_rss_bytes", "seconds"}) j.erase(key);
  return j;
}

// metrics.jsonl and results.json without their timing fields, best/ byte for byte.
std::string comparable(const fs::path& run) {
  std::string out;
  std::ifstream metrics(run / "metrics.jsonl");
  for (std::string line; std::getline(metrics, line);) out += without_timing(json::parse(line)).dump() + "\n";
  out += without_timing(json::parse(testing::read_text(run / "results.json"))).dump() + "\n";
  for (const char* f : {"best/pelt_model.safetensors", "best/pelt_config.json"}) out += testing::read_text(run / f);
  return out;
}

std::vector<std::string> cli(const std::vector<std::string>& flags) {
  std::vector<std::string> args = {UNIPELT_CLI};
  args.insert(args.end(), flags.begin(), flags.end());
  return args;
}

// Runs `unipelt train` killing itself after its Nth commit (N = 0: never); returns the exit status.
int train_with_fault(const std::vector<std::string>& flags, int commits, const fs::path& log) {
  if (commits > 0) setenv("UNIPELT_FAULT_AFTER_COMMITS", std::to_string(commits).c_str(), 1);
  const pid_t pid = testing::spawn_program(cli(flags), log, log.string() + ".err");
  unsetenv("UNIPELT_FAULT_AFTER_COMMITS");
  return testing::wait_program(pid);
}

std::vector<std::string> resumed(std::vector<std::string> flags) {
  flags.push_back("--resume");
  return flags;
}

}  // namespace

TEST_CASE("crash safety: a run killed after any file commit or at a random moment resumes bit-identically",
          "[train][crash]") {
  const fs::path root = testing::scratch_dir("crash_resume");
  const auto s = testing::make_synthetic_setup(root);
  const auto flags = [&](const fs::path& out) { return testing::tiny_train_flags(s, out, "unipelt-apl", kEpochs); };
  REQUIRE(train_with_fault(flags(root / "reference"), 0, root / "reference.log") == 0);
  const std::string reference = comparable(root / "reference");

  int kill_points = 0;
  // Every commit boundary: N = 1, 2, ... until the run gets through without being killed.
  for (int n = 1;; ++n) {
    const fs::path run = root / ("boundary" + std::to_string(n));
    const int status = train_with_fault(flags(run), n, root / "boundary.log");
    if (status == 0) break;  // fewer than n commits: every boundary was tried
    INFO("killed after commit " << n);
    REQUIRE(status == 128 + SIGKILL);
    REQUIRE(train_with_fault(resumed(flags(run)), 0, root / "resume.log") == 0);
    CHECK(comparable(run) == reference);
    ++kill_points;
    REQUIRE(n < 100);
  }
  CHECK(kill_points >= 10);  // config.json, each epoch's state + best/ + metrics.jsonl, results.json

  // Random moments, some of them twice in a row before the resume finishes.
  std::mt19937 rng(12345);
  std::uniform_int_distribution<int> ms(20, 900);
  for (int i = 0; i < 10; ++i) {
    const fs::path run = root / ("random" + std::to_string(i));
    std::vector<std::string> args = flags(run);
    for (int kills = 0; kills < 1 + i % 2; ++kills) {
      const pid_t pid = testing::spawn_program(cli(args), root / "random.log", root / "random.err");
      std::this_thread::sleep_for(std::chrono::milliseconds(ms(rng)));
      kill(pid, SIGKILL);
      testing::wait_program(pid);
      args = resumed(flags(run));
      ++kill_points;
    }
    REQUIRE(train_with_fault(resumed(flags(run)), 0, root / "random-resume.log") == 0);
    INFO("random kill run " << i);
    CHECK(comparable(run) == reference);
  }
  std::printf("crash test: %d kill points (every commit boundary, then 15 random moments), each resumed to the "
              "reference result\n", kill_points);
  CHECK(kill_points >= 20);
}

TEST_CASE("crash safety: --resume refuses another run's state and edited counters, and stale temp files go",
          "[train][crash]") {
  const fs::path root = testing::scratch_dir("crash_refuse");
  const auto s = testing::make_synthetic_setup(root);
  const fs::path a = root / "a", b = root / "b";
  auto flags_a = testing::tiny_train_flags(s, a, "lora", 3);
  auto flags_b = testing::tiny_train_flags(s, b, "lora", 3);
  flags_b.insert(flags_b.end(), {"--seed", "7"});
  for (auto* f : {&flags_a, &flags_b}) f->insert(f->end(), {"--stop-after", "1"});
  REQUIRE(train_with_fault(flags_a, 0, root / "a.log") == 130);
  REQUIRE(train_with_fault(flags_b, 0, root / "b.log") == 130);
  const fs::path state_b = b / "state" / "state.safetensors";
  const std::string saved_b = testing::read_text(state_b);
  std::vector<std::string> resume_b = testing::tiny_train_flags(s, b, "lora", 3);
  resume_b.insert(resume_b.end(), {"--seed", "7", "--resume"});

  // Another run's state copied in: it belongs to other settings (a's seed).
  fs::copy_file(a / "state" / "state.safetensors", state_b, fs::copy_options::overwrite_existing);
  CHECK(train_with_fault(resume_b, 0, root / "r.log") == 1);
  CHECK_THAT(testing::read_text(root / "r.log.err"), Catch::Contains("belongs to a run with other settings"));

  // b's own state with its counters edited: an epoch beyond --epochs, then one that is no integer
  // (once cast by nlohmann's get<int>(), undefined behaviour for 1e300).
  auto edit_epoch = [&](const json& epoch) {
    std::ofstream(state_b, std::ios::binary | std::ios::trunc) << saved_b;
    SafetensorsFile original(state_b);
    json trainer_state = json::parse(original.metadata().at("trainer_state"));
    trainer_state["epoch"] = epoch;
    std::vector<std::pair<std::string, Tensor>> tensors;
    for (const StTensorInfo& info : original.tensors())
      tensors.emplace_back(info.name, original.load(info.name, info.dtype == StDType::F64 ? DType::F64 : DType::F32));
    auto metadata = original.metadata();
    metadata["trainer_state"] = trainer_state.dump();
    write_safetensors(state_b, tensors, metadata);
  };
  edit_epoch(99);
  CHECK(train_with_fault(resume_b, 0, root / "r.log") == 1);
  CHECK_THAT(testing::read_text(root / "r.log.err"), Catch::Contains("epoch 99 is outside 1..3"));
  edit_epoch(1e300);
  CHECK(train_with_fault(resume_b, 0, root / "r.log") == 1);
  CHECK_THAT(testing::read_text(root / "r.log.err"),
             Catch::Contains("trainer_state is damaged") && Catch::Contains("\"epoch\" must be an integer"));

  // b's own state, and a temporary file a killed write left behind (pid 999999 does not exist).
  std::ofstream(state_b, std::ios::binary | std::ios::trunc) << saved_b;
  std::ofstream(b / "state" / "state.safetensors.tmp.999999") << "partial";
  REQUIRE(train_with_fault(resume_b, 0, root / "r.log") == 0);
  CHECK_FALSE(fs::exists(b / "state" / "state.safetensors.tmp.999999"));
  CHECK_THAT(testing::read_text(root / "r.log.err"), Catch::Contains("removed") && Catch::Contains(".tmp.999999"));
  CHECK(fs::exists(b / "results.json"));
}

TEST_CASE("crash safety: a sweep killed with SIGKILL mid-grid finishes with the same results when rerun",
          "[train][crash]") {
  const fs::path root = testing::scratch_dir("crash_sweep");
  const auto s = testing::make_synthetic_setup(root);
  auto sweep_args = [&](const fs::path& out) {
    return cli({"sweep", "--tasks", "sst2", "--methods", "lora,unipelt-ap", "--k", "64", "--data-seeds", "111",
                "--model", s.model_dir, "--data", s.data_dir, "--out", out.string(), "--jobs", "2", "--epochs", "3",
                "--max-len", "32", "--eval-batch-size", "128", "--adapter-size", "4", "--prefix-len", "3",
                "--prefix-mid", "16", "--lora-r", "2", "--lora-alpha", "4"});
  };
  REQUIRE(testing::wait_program(testing::spawn_program(sweep_args(root / "reference"), root / "ref.md", root / "ref.log")) == 0);
  std::mt19937 rng(7);
  for (int attempt = 0; attempt < 3; ++attempt) {
    const fs::path sweep = root / ("killed" + std::to_string(attempt));
    const pid_t pid = testing::spawn_program(sweep_args(sweep), root / "k.md", root / "k.log");
    std::this_thread::sleep_for(std::chrono::milliseconds(std::uniform_int_distribution<int>(300, 1500)(rng)));
    kill(pid, SIGKILL);
    testing::wait_program(pid);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the children die with the sweep
    REQUIRE(testing::wait_program(testing::spawn_program(sweep_args(sweep), root / "k.md", root / "k.log")) == 0);
    for (const char* method : {"lora", "unipelt-ap"}) {
      const fs::path cell = fs::path("SST-2") / method / "k64" / "seed111";
      INFO("attempt " << attempt << " " << cell);
      CHECK(comparable(sweep / cell) == comparable(root / "reference" / cell));
    }
  }
}

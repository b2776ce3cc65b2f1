// The trainer and the run tools end to end, on a synthetic tiny BERT and synthetic SST-2 data
// (tests/synthetic.h): run directory contents, learning, interrupt + resume (in process and with a real
// Ctrl-C through the CLI), resume rules, eval / predict / gates on a saved run, and a small sweep.
#include <algorithm>
#include <catch2/catch.hpp>

#include <csignal>
#include <chrono>
#include <fstream>
#include <limits>
#include <sstream>
#include <thread>

#include "pelt/method_checks.h"
#include "train/saved_run.h"
#include "train/sweep.h"
#include "train/trainer.h"
#include "tests/synthetic.h"
#include "tests/test_util.h"

using namespace unipelt;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

TrainConfig tiny_config(const testing::SyntheticSetup& s, const fs::path& out, const std::string& method, int epochs) {
  TrainConfig c;
  c.task = "SST-2";
  c.pelt = testing::small_preset(method, 16);  // small PELT modules for the 16-wide model
  c.model_dir = s.model_dir.string();
  c.data_dir = s.data_dir.string();
  c.out_dir = out.string();
  c.k = 64;
  c.epochs = epochs;
  c.patience = 10;
  c.batch_size = 8;
  c.max_len = 32;
  c.eval_batch_size = 128;
  return c;
}

json read_json(const fs::path& path) {
  std::ifstream in(path);
  REQUIRE(in);
  return json::parse(in);
}

std::vector<json> read_jsonl(const fs::path& path) {
  std::ifstream in(path);
  std::vector<json> lines;
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) lines.push_back(json::parse(line));
  return lines;
}

// metrics.jsonl without the wall-clock fields.
std::vector<json> metrics_without_seconds(const fs::path& run) {
  std::vector<json> lines = read_jsonl(run / "metrics.jsonl");
  for (json& l : lines) l.erase("seconds");
  return lines;
}

void require_same_results(const fs::path& a, const fs::path& b) {
  const json ra = read_json(a / "results.json"), rb = read_json(b / "results.json");
  CHECK(ra.at("test") == rb.at("test"));          // exactly equal: same computation, same order
  CHECK(ra.at("best_dev") == rb.at("best_dev"));
  CHECK(ra.at("test_gates") == rb.at("test_gates"));
  CHECK(ra.at("best_epoch") == rb.at("best_epoch"));
  CHECK(ra.at("epochs_run") == rb.at("epochs_run"));
  CHECK(metrics_without_seconds(a) == metrics_without_seconds(b));
}

struct Quiet {
  std::ostringstream log;
};

}  // namespace

TEST_CASE("a training run writes its run directory, and fine-tuning lowers the training loss", "[train]") {
  const fs::path root = testing::scratch_dir("train_run_dir");
  const auto s = testing::make_synthetic_setup(root);
  Quiet q;

  const fs::path run = root / "apl";
  const TrainResult r = train_glue(tiny_config(s, run, "unipelt-apl", 3), false, q.log);
  INFO(q.log.str());
  REQUIRE(r.finished);
  CHECK(r.epochs_run == 3);
  for (const char* f : {"config.json", "metrics.jsonl", "results.json", "best/pelt_config.json",
                        "best/pelt_model.safetensors", "state/state.safetensors"})
    CHECK(fs::exists(run / f));
  CHECK(TrainConfig::from_json(read_json(run / "config.json")).to_json() == read_json(run / "config.json"));

  const std::vector<json> lines = read_jsonl(run / "metrics.jsonl");
  REQUIRE(lines.size() == 3);
  for (size_t i = 0; i < lines.size(); ++i) {
    CHECK(lines[i].at("epoch") == i + 1);
    CHECK(lines[i].at("train_loss").get<double>() > 0);
    CHECK(lines[i].at("dev").contains("main"));
    CHECK(lines[i].at("dev").contains("accuracy"));
    for (const char* g : {"adapter", "prefix", "lora_query", "lora_value"}) {
      REQUIRE(lines[i].at("gates").contains(g));
      const auto per_layer = lines[i].at("gates").at(g).get<std::vector<double>>();
      REQUIRE(per_layer.size() == 2);
      for (double v : per_layer) CHECK((v > 0.0 && v < 1.0));
    }
  }
  const json results = read_json(run / "results.json");
  CHECK(results.at("task") == "SST-2");
  CHECK(results.at("method") == "unipelt-apl");
  CHECK(results.at("test").at("main").get<double>() == results.at("test").at("accuracy").get<double>());
  CHECK(results.at("test_gates").at("adapter").size() == 2);
  CHECK(results.at("wall_seconds").get<double>() > 0);
  CHECK(results.at("peak_rss_bytes").get<int64_t>() > 0);
  CHECK(r.test == results.at("test").get<std::map<std::string, double>>());

  // Fine-tuning on learnable data: the last epoch's training loss is below the first's.
  const fs::path ft = root / "finetune";
  TrainConfig c = tiny_config(s, ft, "finetune", 4);
  c.lr = 1e-2;
  REQUIRE(train_glue(c, false, q.log).finished);
  const std::vector<json> ft_lines = read_jsonl(ft / "metrics.jsonl");
  REQUIRE(ft_lines.size() == 4);
  CHECK(ft_lines.back().at("train_loss").get<double>() < 0.8 * ft_lines.front().at("train_loss").get<double>());
  CHECK(read_json(ft / "results.json").at("best_dev").at("accuracy").get<double>() > 0.7);
  CHECK(read_json(ft / "results.json").at("test_gates").empty());  // no gates without UniPELT
}

// The run both resume tests interrupt: UniPELT (APL), 4 epochs, lr 1e-2 (the dev metric moves between
// epochs, so the best-epoch bookkeeping is exercised too).
TrainConfig resume_test_config(const testing::SyntheticSetup& s, const fs::path& out) {
  TrainConfig c = tiny_config(s, out, "unipelt-apl", 4);
  c.lr = 1e-2;
  return c;
}

TEST_CASE("an interrupted run, resumed, ends exactly like an uninterrupted one", "[train]") {
  const fs::path root = testing::scratch_dir("train_resume");
  const auto s = testing::make_synthetic_setup(root);
  Quiet q;

  const fs::path a = root / "a", b = root / "b";
  REQUIRE(train_glue(resume_test_config(s, a), false, q.log).finished);

  TrainConfig cb = resume_test_config(s, b);
  cb.stop_after_epochs = 2;
  const TrainResult first = train_glue(cb, false, q.log);
  CHECK_FALSE(first.finished);
  CHECK(first.epochs_run == 2);
  CHECK_FALSE(fs::exists(b / "results.json"));
  CHECK(read_jsonl(b / "metrics.jsonl").size() == 2);

  cb.stop_after_epochs = 0;
  const TrainResult second = train_glue(cb, true, q.log);
  INFO(q.log.str());
  REQUIRE(second.finished);
  CHECK(q.log.str().find("resuming after epoch 2") != std::string::npos);
  require_same_results(a, b);
}

TEST_CASE("resume rules: finished runs are left alone and existing runs need --resume with the same flags", "[train]") {
  const fs::path root = testing::scratch_dir("train_resume_rules");
  const auto s = testing::make_synthetic_setup(root);
  Quiet q;

  const fs::path done = root / "done";
  const TrainConfig c = tiny_config(s, done, "lora", 1);
  REQUIRE(train_glue(c, false, q.log).finished);
  const std::string results_before = testing::read_text(done / "results.json");
  const std::string metrics_before = testing::read_text(done / "metrics.jsonl");

  // --resume on a finished run: a no-op.
  std::ostringstream log;
  const TrainResult again = train_glue(c, true, log);
  CHECK(again.finished);
  CHECK(log.str().find("already finished") != std::string::npos);
  CHECK(testing::read_text(done / "results.json") == results_before);
  CHECK(testing::read_text(done / "metrics.jsonl") == metrics_before);

  // Without --resume, an existing run directory is refused.
  CHECK_THROWS_WITH(train_glue(c, false, q.log), Catch::Contains("already holds a run"));

  // Resuming an unfinished run with other settings is refused, and the run is untouched.
  const fs::path partial = root / "partial";
  TrainConfig p = tiny_config(s, partial, "lora", 3);
  p.stop_after_epochs = 1;
  REQUIRE_FALSE(train_glue(p, false, q.log).finished);
  const std::string state_before = testing::read_text(partial / "state" / "state.safetensors");
  TrainConfig other = p;
  other.lr = 3e-2;
  CHECK_THROWS_WITH(train_glue(other, true, q.log), Catch::Contains("differs"));
  other = p;
  other.data_seed = 222;
  CHECK_THROWS_WITH(train_glue(other, true, q.log), Catch::Contains("differs"));
  CHECK(testing::read_text(partial / "state" / "state.safetensors") == state_before);

  // The same flags through the CLI: a finished run is a no-op, a new run into it an error.
  const fs::path out = root / "cli.out", err = root / "cli.err";
  CHECK(testing::run_cli(testing::tiny_train_flags(s, root / "cli", "lora", 1), out, err) == 0);
  std::vector<std::string> resume = testing::tiny_train_flags(s, root / "cli", "lora", 1);
  resume.push_back("--resume");
  CHECK(testing::run_cli(resume, out, err) == 0);
  CHECK(testing::read_text(err).find("already finished") != std::string::npos);
  CHECK(testing::run_cli(testing::tiny_train_flags(s, root / "cli", "lora", 1), out, err) == 1);
  CHECK(testing::read_text(err).find("already holds a run") != std::string::npos);
  std::vector<std::string> changed = testing::tiny_train_flags(s, root / "cli2", "lora", 3);
  changed.insert(changed.end(), {"--stop-after", "1"});
  CHECK(testing::run_cli(changed, out, err) == 130);
  changed = testing::tiny_train_flags(s, root / "cli2", "lora", 3);
  changed.insert(changed.end(), {"--resume", "--lr", "0.03"});
  CHECK(testing::run_cli(changed, out, err) == 1);
  CHECK(testing::read_text(err).find("differs") != std::string::npos);
}

void caller_sigint_handler(int) {}

TEST_CASE("train_glue puts the caller's Ctrl-C handler back, finished or stopped early", "[train]") {
  const fs::path root = testing::scratch_dir("train_sigint_handler");
  const auto s = testing::make_synthetic_setup(root);
  Quiet q;
  auto previous = std::signal(SIGINT, caller_sigint_handler);
  REQUIRE(train_glue(tiny_config(s, root / "done", "lora", 1), false, q.log).finished);
  CHECK(std::signal(SIGINT, caller_sigint_handler) == caller_sigint_handler);
  TrainConfig partial = tiny_config(s, root / "partial", "lora", 2);
  partial.stop_after_epochs = 1;
  REQUIRE_FALSE(train_glue(partial, false, q.log).finished);
  CHECK(std::signal(SIGINT, previous) == caller_sigint_handler);
}

TEST_CASE("bad training settings are refused up front, naming the flag", "[train]") {
  const fs::path root = testing::scratch_dir("train_bad_settings");
  const auto s = testing::make_synthetic_setup(root);
  Quiet q;
  const TrainConfig good = tiny_config(s, root / "lib", "lora", 1);
  CHECK_NOTHROW(good.validate());
  auto refused = [&](auto change, const std::string& flag) {
    TrainConfig c = good;
    change(c);
    CHECK_THROWS_WITH(train_glue(c, false, q.log), Catch::Contains(flag));
  };
  refused([](TrainConfig& c) { c.batch_size = 0; }, "--batch-size: must be a whole number from 1 to 4096, got '0'");
  refused([](TrainConfig& c) { c.eval_batch_size = 0; }, "--eval-batch-size");
  refused([](TrainConfig& c) { c.epochs = 0; }, "--epochs");
  refused([](TrainConfig& c) { c.patience = 0; }, "--patience");
  refused([](TrainConfig& c) { c.max_len = 1; }, "--max-len");
  refused([](TrainConfig& c) { c.beta2 = 1.0; }, "--beta2");
  refused([](TrainConfig& c) { c.max_grad_norm = 0; }, "--max-grad-norm");
  CHECK_FALSE(fs::exists(root / "lib"));  // nothing written

  // Through the CLI: exit status 2 (a usage error) and the message; K is checked too.
  const fs::path out = root / "cli.out", err = root / "cli.err";
  auto with = [&](const std::string& flag, const std::string& value) {  // tiny_flags with one value replaced
    auto flags = testing::tiny_train_flags(s, root / "cli", "lora", 1);
    auto it = std::find(flags.begin(), flags.end(), flag);
    if (it == flags.end()) flags.insert(flags.end(), {flag, value});
    else *(it + 1) = value;
    return flags;
  };
  CHECK(testing::run_cli(with("--batch-size", "0"), out, err) == 2);
  CHECK(testing::read_text(err).find("--batch-size: must be a whole number from 1 to 4096, got '0'") != std::string::npos);
  for (const char* bad_k : {"abc", "-1", "100x", "0"}) {
    const auto flags = with("--k", bad_k);
    INFO("--k " << bad_k);
    CHECK(testing::run_cli(flags, out, err) == 2);
    CHECK(testing::read_text(err).find("--k: must be a whole number from 1 to 2^64 - 1 or 'all', got") != std::string::npos);
  }
  CHECK_FALSE(fs::exists(root / "cli"));
}

TEST_CASE("Ctrl-C during `unipelt train`, then --resume, ends like an uninterrupted run", "[train]") {
  const fs::path root = testing::scratch_dir("train_sigint");
  const auto s = testing::make_synthetic_setup(root);
  Quiet q;
  // Reference: uninterrupted, in process (the CLI runs the same code).
  const fs::path a = root / "a", b = root / "b";
  REQUIRE(train_glue(resume_test_config(s, a), false, q.log).finished);

  std::vector<std::string> args = {UNIPELT_CLI};
  auto flags = testing::tiny_train_flags(s, b, "unipelt-apl", 4);
  flags.insert(flags.end(), {"--lr", "0.01"});  // = resume_test_config
  args.insert(args.end(), flags.begin(), flags.end());
  const fs::path log = root / "b.log";
  const pid_t pid = testing::spawn_program(args, root / "b.out", log);
  // Interrupt as soon as the first epoch is reported: three epochs are still to run.
  bool signalled = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    if (testing::read_text(log).find("\nepoch 1  train loss") != std::string::npos) {
      kill(pid, SIGINT);
      signalled = true;
      break;
    }
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) FAIL("train exited before its first epoch:\n" + testing::read_text(log));
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  REQUIRE(signalled);
  const int code = testing::wait_program(pid);
  INFO(testing::read_text(log));
  if (code == 0) {
    WARN("the run finished before Ctrl-C reached it; the interruption was not exercised");
  } else {
    REQUIRE(code == 130);
    CHECK(testing::read_text(log).find("rerun with --resume") != std::string::npos);
    CHECK_FALSE(fs::exists(b / "results.json"));
    const size_t kept = read_jsonl(b / "metrics.jsonl").size();
    CHECK((kept >= 1 && kept < 4));
    std::vector<std::string> resume = flags;
    resume.push_back("--resume");
    REQUIRE(testing::run_cli(resume, root / "b2.out", root / "b2.log") == 0);
    CHECK(testing::read_text(root / "b2.log").find("resuming after epoch") != std::string::npos);
  }
  require_same_results(a, b);
}

TEST_CASE("eval, predict and gates on a saved run", "[train]") {
  const fs::path root = testing::scratch_dir("train_tools");
  const auto s = testing::make_synthetic_setup(root);
  Quiet q;
  const fs::path run = root / "run";
  REQUIRE(train_glue(tiny_config(s, run, "unipelt-apl", 2), false, q.log).finished);
  const json results = read_json(run / "results.json");

  // eval: the library and the CLI reproduce results.json exactly.
  {
    LoadedRun loaded = load_run(run);
    const EvalResult test = evaluate_run(loaded, run_examples(loaded, "test"));
    CHECK(json(test.metrics) == results.at("test"));
    CHECK(json(test.gates) == results.at("test_gates"));
    CHECK(run_examples(loaded, "train").size() == 64);
    CHECK(run_examples(loaded, "dev").size() == 1000);
    const EvalResult dev = evaluate_run(loaded, run_examples(loaded, "dev"));
    CHECK(json(dev.metrics) == results.at("best_dev"));
  }
  const fs::path out = root / "out.txt", err = root / "err.txt";
  REQUIRE(testing::run_cli({"eval", run.string(), "--json"}, out, err) == 0);
  {
    const json j = json::parse(testing::read_text(out));
    CHECK(j.at("metrics") == results.at("test"));
    CHECK(j.at("examples") == 60);
  }
  // The thread count changes nothing: the same JSON at 1 and 2 threads.
  REQUIRE(testing::run_cli({"eval", run.string(), "--json", "--threads", "1"}, out, err) == 0);
  const std::string one_thread = testing::read_text(out);
  REQUIRE(testing::run_cli({"eval", run.string(), "--json", "--threads", "2"}, out, err) == 0);
  CHECK(testing::read_text(out) == one_thread);
  CHECK(testing::run_cli({"eval", run.string(), "--threads", "-1"}, out, err) == 2);
  REQUIRE(testing::run_cli({"eval", run.string(), "--split", "dev", "--data", s.data_dir.string()}, out, err) == 0);
  CHECK(testing::read_text(out).find("accuracy") != std::string::npos);
  CHECK(testing::run_cli({"eval", (root / "nothing").string()}, out, err) != 0);

  // predict: one line per input (after the header), label names and probabilities summing to 1.
  const fs::path input = root / "inputs.tsv";
  {
    std::ofstream in(input);
    in << "sentence\n"  // the longest first, so that the length-sorted batch has another order
       << "the story is quite nice and the music great\n"
       << "the movie was good\n"
       << "a very bad film\n";
  }
  REQUIRE(testing::run_cli({"predict", run.string(), "--input", input.string(), "--out", (root / "pred.tsv").string()},
                           out, err) == 0);
  {
    std::istringstream lines(testing::read_text(root / "pred.tsv"));
    std::string line;
    std::getline(lines, line);
    CHECK(line == "label\tp_negative\tp_positive");
    int n = 0;
    while (std::getline(lines, line)) {
      ++n;
      std::istringstream fields(line);
      std::string label;
      double p0 = 0, p1 = 0;
      fields >> label >> p0 >> p1;
      CHECK((label == "negative" || label == "positive"));
      CHECK(p0 + p1 == Approx(1.0).margin(2e-4));
      CHECK((label == "positive") == (p1 > p0));
    }
    CHECK(n == 3);
  }
  // predict runs length-sorted batches (the inputs above are not in length order): each line is what
  // that input alone predicts, so the results came back in input order.
  {
    const std::vector<std::string> sentences = {"the story is quite nice and the music great",
                                                "the movie was good", "a very bad film"};
    std::istringstream batched(testing::read_text(root / "pred.tsv"));
    std::string line;
    std::getline(batched, line);  // header
    for (const std::string& sentence : sentences) {
      std::ofstream(root / "one.tsv") << "sentence\n" << sentence << "\n";
      REQUIRE(testing::run_cli({"predict", run.string(), "--input", (root / "one.tsv").string(), "--out",
                                (root / "one_pred.tsv").string(), "--no-header"},
                               out, err) == 0);
      REQUIRE(std::getline(batched, line));
      const std::string alone = testing::read_text(root / "one_pred.tsv");
      INFO(sentence);
      CHECK(line + "\n" == alone);
    }
  }
  {
    std::ofstream bad(root / "bad.tsv");
    bad << "the movie was good\nthe\tplot\n";
  }
  CHECK(testing::run_cli({"predict", run.string(), "--input", (root / "bad.tsv").string()}, out, err) == 1);
  CHECK(testing::read_text(err).find("bad.tsv:2: expected 1 column") != std::string::npos);

  // gates: table and SVG, one polyline per submodule.
  REQUIRE(testing::run_cli({"gates", run.string()}, out, err) == 0);
  CHECK(testing::read_text(out).find("LoRA (value)") != std::string::npos);
  const std::string svg = testing::read_text(run / "gates.svg");
  size_t polylines = 0;
  for (size_t at = svg.find("<polyline"); at != std::string::npos; at = svg.find("<polyline", at + 1)) ++polylines;
  CHECK(polylines == 4);
  CHECK(svg.rfind("<?xml", 0) == 0);
  CHECK(svg.find("</svg>") != std::string::npos);
  REQUIRE(testing::run_cli({"gates", run.string(), "--recompute", "--json", "--svg", (root / "g.svg").string()}, out,
                           err) == 0);
  CHECK(json::parse(testing::read_text(out)).at("gates") == results.at("test_gates"));
  CHECK(fs::exists(root / "g.svg"));
}

TEST_CASE("a small sweep through the CLI: runs, skips finished runs, writes the report", "[train]") {
  const fs::path root = testing::scratch_dir("train_sweep");
  const auto s = testing::make_synthetic_setup(root);
  const fs::path sweep = root / "sweep";
  const std::vector<std::string> args = {
      "sweep",      "--tasks",   "sst2",       "--methods", "lora,bitfit",  "--k",         "64",
      "--data-seeds", "111,222", "--model",    s.model_dir, "--data",       s.data_dir,    "--out",
      sweep.string(), "--jobs",  "2",          "--epochs",  "1",            "--max-len",   "32",
      "--eval-batch-size", "128", "--lora-r",  "2"};
  const fs::path out = root / "out.md", err = root / "err.txt";
  REQUIRE(testing::run_cli(args, out, err) == 0);
  INFO(testing::read_text(err));
  for (const char* m : {"lora", "bitfit"})
    for (const char* seed : {"seed111", "seed222"}) {
      const fs::path dir = sweep / "SST-2" / m / "k64" / seed;
      CHECK(fs::exists(dir / "results.json"));
      CHECK(testing::read_text(dir / "train.log").find("test (GLUE dev set)") != std::string::npos);
      CHECK(read_json(dir / "config.json").at("epochs") == 1);
      CHECK(read_json(dir / "config.json").at("pelt").at("lora_r") == 2);
    }
  const std::string report = testing::read_text(sweep / "report.md");
  CHECK(report == testing::read_text(out));
  CHECK(report.find("| Method | SST-2 | Avg |") != std::string::npos);
  CHECK(report.find("| BitFit |") < report.find("| LoRA |"));
  CHECK(report.find("--methods lora,bitfit") != std::string::npos);

  // Again: everything is skipped and the report is the same.
  REQUIRE(testing::run_cli(args, out, err) == 0);
  CHECK(testing::read_text(err).find("4 already finished, 0 to run") != std::string::npos);
  CHECK(testing::read_text(sweep / "report.md") == report);

  // Other training flags into the same sweep directory are refused.
  std::vector<std::string> changed = args;
  changed.back() = "4";
  CHECK(testing::run_cli(changed, out, err) == 1);
  CHECK(testing::read_text(err).find("another set of training flags") != std::string::npos);

  // --report-only rebuilds it from the runs.
  REQUIRE(testing::run_cli({"sweep", "--report-only", "--out", sweep.string(), "--report", (root / "r.md").string()},
                           out, err) == 0);
  const std::string rebuilt = testing::read_text(root / "r.md");
  CHECK(rebuilt.find("| BitFit |") != std::string::npos);
  CHECK(rebuilt.find("# report:") != std::string::npos);
}

TEST_CASE("evaluation stops on a NaN or an infinity in the logits, naming the example", "[train]") {
  TinyPeltSetup tiny = make_tiny_pelt(testing::small_preset("lora"), false);
  std::vector<EncodedExample> data(3);
  for (size_t i = 0; i < data.size(); ++i) {
    data[i].input_ids = {2, static_cast<int32_t>(5 + i), 3};
    data[i].token_type_ids = {0, 0, 0};
    data[i].label = static_cast<int>(i % 2);
  }
  CHECK_NOTHROW(evaluate(*tiny.model, "SST-2", data, 2, 0));
  std::vector<double> bias = tiny.bert->classifier.bias.to_vector();
  bias[0] = std::numeric_limits<double>::quiet_NaN();
  tiny.bert->classifier.bias.copy_from(Tensor::from_vector(bias, {static_cast<int64_t>(bias.size())}, DType::F64));
  CHECK_THROWS_AS(evaluate(*tiny.model, "SST-2", data, 2, 0), NonFiniteError);
  CHECK_THROWS_WITH(evaluate(*tiny.model, "SST-2", data, 2, 0), Catch::Contains("logits of example"));
}

// A strict load refuses a model directory whose config.json describes fewer layers than its weights
// hold; `--allow-unused on` trains anyway, is stored in config.json, and `eval` then loads the run the
// same way without being told again.
TEST_CASE("train refuses unused checkpoint tensors unless --allow-unused on, which the run remembers", "[train]") {
  const fs::path root = testing::scratch_dir("train_allow_unused");
  const auto s = testing::make_synthetic_setup(root);
  json config = read_json(s.model_dir / "config.json");
  config["num_hidden_layers"] = 1;  // the weights keep both layers
  std::ofstream(s.model_dir / "config.json") << config.dump();
  const fs::path run = root / "run", out = root / "out.txt", err = root / "err.txt";
  std::vector<std::string> flags = testing::tiny_train_flags(s, run, "lora", 1);
  CHECK(testing::run_cli(flags, out, err) == 1);
  CHECK_THAT(testing::read_text(err), Catch::Contains("tensor(s) the model does not use") &&
                                          Catch::Contains("--allow-unused on"));
  CHECK_FALSE(fs::exists(run / "config.json"));  // refused before anything was written: no --resume needed
  flags.insert(flags.end(), {"--allow-unused", "on"});
  REQUIRE(testing::run_cli(flags, out, err) == 0);
  CHECK(read_json(run / "config.json").at("allow_unused") == true);
  CHECK_THAT(testing::read_text(err), Catch::Contains("unused tensors (allowed by --allow-unused on)"));
  REQUIRE(testing::run_cli({"eval", run.string(), "--json"}, out, err) == 0);
  CHECK(json::parse(testing::read_text(out)).at("metrics") == read_json(run / "results.json").at("test"));
}

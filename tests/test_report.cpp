// The report and sweep library (train/report.h, train/sweep.h) without training: Table-1 layout from
// hand-written results.json files, statistics by hand, the predict input format, the gate plot, the
// sweep grid and the child-process runner (with a stand-in program).
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <cmath>
#include <fstream>
#include <sstream>

#include "autograd/parallel.h"
#include "train/gate_plot.h"
#include "train/report.h"
#include "train/saved_run.h"
#include "train/text.h"
#include "train/sweep.h"
#include "tests/synthetic.h"
#include "tests/test_util.h"

using namespace unipelt;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

void write_result(const fs::path& dir, const std::string& task, const std::string& method, size_t k, uint64_t seed,
                  double main) {
  fs::create_directories(dir);
  json j = {{"task", task},           {"method", method},         {"k", k},
            {"data_seed", seed},      {"seed", 42},               {"best_epoch", 3},
            {"epochs_run", 5},        {"best_dev", {{"main", 0.5}}}, {"test", {{"main", main}}},
            {"test_gates", json::object()}, {"wall_seconds", 1.5}};
  std::ofstream(dir / "results.json") << j.dump(2);
}

// The row of the markdown table that starts with "| name |".
std::string row(const std::string& md, const std::string& name, size_t from = 0) {
  const size_t at = md.find("| " + name + " |", from);
  REQUIRE(at != std::string::npos);
  return md.substr(at, md.find('\n', at) - at);
}

}  // namespace

TEST_CASE("cell statistics: mean and population / sample standard deviation", "[report]") {
  const CellStats p = cell_stats({80.0, 82.0, 84.0}, StdKind::Population);
  CHECK(p.n == 3);
  CHECK(p.mean == Approx(82.0));
  CHECK(p.std == Approx(std::sqrt(8.0 / 3.0)));  // sum of squares 8, / n
  const CellStats s = cell_stats({80.0, 82.0, 84.0}, StdKind::Sample);
  CHECK(s.std == Approx(2.0));  // 8 / (n - 1) = 4
  CHECK(cell_stats({71.5}, StdKind::Sample).std == 0.0);
  CHECK(cell_stats({71.5}, StdKind::Population).std == 0.0);
  CHECK(cell_stats({}, StdKind::Population).n == 0);
}

TEST_CASE("the report is laid out like Table 1: paper column and row order, mean (std), Avg", "[report]") {
  const fs::path root = testing::scratch_dir("report_table");
  // K = 100: three tasks, three methods, two seeds; written in a scrambled order.
  write_result(root / "a", "STS-B", "unipelt-apl", 100, 111, 0.80);
  write_result(root / "b", "STS-B", "unipelt-apl", 100, 222, 0.90);
  write_result(root / "c", "rte", "unipelt-apl", 100, 111, 0.60);
  write_result(root / "d", "RTE", "unipelt-apl", 100, 222, 0.64);
  write_result(root / "e", "SST-2", "unipelt-apl", 100, 111, 0.85);
  write_result(root / "f", "SST-2", "unipelt-apl", 100, 222, 0.87);
  write_result(root / "g", "SST-2", "finetune", 100, 111, 0.81);
  write_result(root / "h", "SST-2", "finetune", 100, 222, 0.83);
  write_result(root / "i", "RTE", "finetune", 100, 111, 0.55);
  write_result(root / "j", "STS-B", "lora", 100, 111, 0.70);  // one seed only: a partial cell
  // An unfinished run (config.json only) of another method.
  fs::create_directories(root / "k");
  std::ofstream(root / "k" / "config.json")
      << json{{"task", "SST-2"}, {"pelt", {{"method", "adapter"}}}, {"k", 100}, {"data_seed", 111}, {"seed", 42}}.dump();
  // K = all and K = 500 (one seed each).
  write_result(root / "l", "SST-2", "finetune", 0, 111, 0.92);
  write_result(root / "m", "SST-2", "finetune", 500, 111, 0.88);
  // A run's best/ and state/ folders are not runs.
  fs::create_directories(root / "a" / "best");

  const std::vector<RunRecord> runs = collect_runs(root);
  REQUIRE(runs.size() == 13);
  const auto tables = build_report_tables(runs, StdKind::Population);
  REQUIRE(tables.size() == 3);
  CHECK(tables[0].k == 100);
  CHECK(tables[1].k == 500);
  CHECK(tables[2].k == 0);  // "all" last
  const ReportTable& t = tables[0];
  CHECK(t.tasks == std::vector<std::string>{"SST-2", "RTE", "STS-B"});
  CHECK(t.methods == std::vector<std::string>{"finetune", "adapter", "lora", "unipelt-apl"});
  CHECK(t.max_seeds == 2);
  CHECK(t.unfinished.size() == 1);
  CHECK(t.cells.at({"unipelt-apl", "STS-B"}).mean == Approx(85.0));
  CHECK(t.cells.at({"unipelt-apl", "STS-B"}).std == Approx(5.0));
  CHECK(t.cells.at({"unipelt-apl", "RTE"}).mean == Approx(62.0));
  CHECK(t.cells.at({"unipelt-apl", "RTE"}).std == Approx(2.0));
  REQUIRE(t.average("unipelt-apl"));
  CHECK(*t.average("unipelt-apl") == Approx((86.0 + 62.0 + 85.0) / 3.0));
  CHECK_FALSE(t.average("finetune"));  // no STS-B cell

  ReportOptions options;
  options.commands = {"unipelt sweep --tasks SST-2,RTE,STS-B"};
  const std::string md = render_report_markdown(runs, options);
  INFO(md);
  CHECK(md.find("unipelt sweep --tasks SST-2,RTE,STS-B") != std::string::npos);
  CHECK(md.find("population standard deviation") != std::string::npos);
  const size_t k100 = md.find("## K = 100"), k500 = md.find("## K = 500"), kall = md.find("## K = all");
  REQUIRE(k100 != std::string::npos);
  CHECK(k100 < k500);
  CHECK(k500 < kall);
  CHECK(row(md, "Method", k100) == "| Method | SST-2 | RTE | STS-B | Avg |");
  CHECK(row(md, "UniPELT (APL)", k100) == "| UniPELT (APL) | 86.00 (1.00) | 62.00 (2.00) | 85.00 (5.00) | 77.67 |");
  CHECK(row(md, "Fine-tuning", k100) == "| Fine-tuning | 82.00 (1.00) | 55.00 (0.00) [n=1] | – | – |");
  CHECK(row(md, "LoRA", k100) == "| LoRA | – | – | 70.00 (0.00) [n=1] | – |");
  CHECK(row(md, "Adapter", k100) == "| Adapter | – | – | – | – |");
  // Rows in the paper's order.
  CHECK(md.find("| Fine-tuning |", k100) < md.find("| Adapter |", k100));
  CHECK(md.find("| Adapter |", k100) < md.find("| LoRA |", k100));
  CHECK(md.find("| LoRA |", k100) < md.find("| UniPELT (APL) |", k100));
  CHECK(md.find((root / "k").string()) != std::string::npos);  // listed as unfinished
  // One seed: std 0.00, and the single-task table's Avg is that task's mean.
  CHECK(row(md, "Fine-tuning", kall) == "| Fine-tuning | 92.00 (0.00) | 92.00 |");
  CHECK(row(md, "Fine-tuning", k500) == "| Fine-tuning | 88.00 (0.00) | 88.00 |");

  options.std_kind = StdKind::Sample;
  const std::string sample = render_report_markdown(runs, options);
  CHECK(row(sample, "UniPELT (APL)") ==
        "| UniPELT (APL) | 86.00 (1.41) | 62.00 (2.83) | 85.00 (7.07) | 77.67 |");
  CHECK(sample.find("sample standard deviation") != std::string::npos);
}

TEST_CASE("paper orders and display names", "[report]") {
  CHECK(paper_task_order() ==
        std::vector<std::string>{"SST-2", "MRPC", "CoLA", "RTE", "QNLI", "STS-B", "MNLI", "QQP"});
  CHECK(paper_method_order() == preset_names());
  CHECK(method_display_name("finetune") == "Fine-tuning");
  CHECK(method_display_name("unipelt-nogate") == "UniPELT-NoGate");
  CHECK(method_display_name("unipelt-ap") == "UniPELT (AP)");
  CHECK(method_display_name("custom thing") == "custom thing");
  CHECK(shell_quote("--tasks") == "--tasks");
  CHECK(shell_quote("a b") == "'a b'");
  CHECK(shell_quote("it's") == "'it'\\''s'");
  CHECK(shell_quote("") == "''");
}

TEST_CASE("predict inputs: one or two columns, optional header, clear errors", "[report]") {
  const fs::path root = testing::scratch_dir("report_predict_inputs");
  auto write = [&](const std::string& name, const std::string& text) {
    std::ofstream(root / name, std::ios::binary) << text;
    return root / name;
  };
  auto single = read_predict_inputs(write("a.tsv", "a good film\nbad\r\n"), false);
  REQUIRE(single.size() == 2);
  CHECK(single[0].text_a == "a good film");
  CHECK(single[1].text_a == "bad");
  CHECK(single[1].line == 2);
  // GLUE's test.tsv layout: index column ignored through the header.
  auto glue = read_predict_inputs(write("b.tsv", "index\tsentence\n0\tfine\n1\tawful\n"), false);
  REQUIRE(glue.size() == 2);
  CHECK(glue[1].text_a == "awful");
  CHECK(glue[1].line == 3);
  auto pair = read_predict_inputs(write("c.tsv", "Sentence1\tsentence2\nx y\tz\n"), true);
  REQUIRE(pair.size() == 1);
  CHECK(pair[0].text_a == "x y");
  CHECK(pair[0].text_b == "z");
  auto pair_plain = read_predict_inputs(write("d.tsv", "q\tr\ns\tt\n"), true);
  CHECK(pair_plain.size() == 2);

  CHECK_THROWS_WITH(read_predict_inputs(write("e.tsv", "one\n\ntwo\n"), false),
                    Catch::Contains("e.tsv:2: blank line"));
  CHECK_THROWS_WITH(read_predict_inputs(write("f.tsv", "one\ttwo\n"), false),
                    Catch::Contains("f.tsv:1: expected 1 column"));
  CHECK_THROWS_WITH(read_predict_inputs(write("g.tsv", "a\tb\nc\n"), true),
                    Catch::Contains("g.tsv:2: expected 2 tab-separated columns"));
  CHECK_THROWS_WITH(read_predict_inputs(write("h.tsv", "index\tsentence\n0\tx\ty\n"), false),
                    Catch::Contains("h.tsv:2: expected 2 columns (as the header)"));
  CHECK_THROWS_WITH(read_predict_inputs(write("i.tsv", ""), false), Catch::Contains("no inputs"));
  CHECK_THROWS_AS(read_predict_inputs(root / "missing.tsv", false), DataError);
}

TEST_CASE("gate table and SVG plot", "[report]") {
  GateTable gates = {{"lora_value", {0.1, 0.2, 0.3}},
                     {"adapter", {0.5, 0.6, 0.7}},
                     {"prefix", {0.9, 1.0, 0.95}},
                     {"lora_query", {0.0, 0.25, 0.5}}};
  CHECK(gate_submodules(gates) == std::vector<std::string>{"adapter", "prefix", "lora_query", "lora_value"});
  const std::string table = format_gate_table(gates);
  CHECK(table.find("Adapter") < table.find("Prefix-tuning"));
  CHECK(table.find("mean") != std::string::npos);
  CHECK(table.find("0.6000") != std::string::npos);  // adapter mean and layer 1
  const std::string svg = render_gates_svg(gates, "SST-2 & <APL>");
  size_t polylines = 0;
  for (size_t at = svg.find("<polyline"); at != std::string::npos; at = svg.find("<polyline", at + 1)) ++polylines;
  CHECK(polylines == 4);
  CHECK(svg.find("SST-2 &amp; &lt;APL&gt;") != std::string::npos);
  CHECK(svg.find("Mean gate value") != std::string::npos);
  CHECK(svg.find("LoRA (query)") != std::string::npos);
  CHECK(svg.find(">1.0</text>") != std::string::npos);  // y axis up to 1
  // Gate 1.0 at y = top (60), gate 0 at y = bottom (370).
  CHECK(svg.find(",60.0") != std::string::npos);
  CHECK(svg.find(",370.0") != std::string::npos);
  // One layer only: still a valid plot.
  CHECK(render_gates_svg({{"adapter", {0.5}}}, "x").find("<polyline") != std::string::npos);
}

TEST_CASE("sweep grid: names, order, run directories", "[report]") {
  CHECK(split_list("SST-2, cola,,RTE ") == std::vector<std::string>{"SST-2", "cola", "RTE"});
  CHECK(parse_k("100") == 100);
  CHECK(parse_k("all") == 0);
  CHECK_THROWS_AS(parse_k("1e3"), std::invalid_argument);
  CHECK_THROWS_AS(parse_k("-5"), std::invalid_argument);
  CHECK_THROWS_AS(parse_k("0"), std::invalid_argument);
  CHECK(parse_seed("111") == 111);
  CHECK(parse_seed("0") == 0);
  CHECK_THROWS_WITH(parse_seed("-1"), Catch::Contains("'-1'"));
  CHECK_THROWS_AS(parse_seed("11x"), std::invalid_argument);
  CHECK_THROWS_AS(parse_seed(""), std::invalid_argument);
  SweepGrid g{{"sst2", "RTE"}, {"lora", "finetune"}, {100, 0}, {111, 222}};
  const auto points = expand_grid(g);
  REQUIRE(points.size() == 16);
  CHECK(points[0].task == "SST-2");
  CHECK(points[0].method == "lora");
  CHECK(points[1].data_seed == 222);
  CHECK(points[2].k == 0);
  CHECK(points.back().task == "RTE");
  CHECK(sweep_run_dir("/s", points[0]) == fs::path("/s/SST-2/lora/k100/seed111"));
  CHECK(sweep_run_dir("/s", points[2]) == fs::path("/s/SST-2/lora/kall/seed111"));
  CHECK_THROWS(expand_grid({{"SST-3"}, {"lora"}, {100}, {1}}));
  CHECK_THROWS_WITH(expand_grid({{"SST-2"}, {"loar"}, {100}, {1}}), Catch::Contains("unknown method"));
  CHECK(expand_grid({{"SST-2", "sst2"}, {"lora"}, {100}, {1}}).size() == 1);  // duplicates dropped

  SweepOptions o;
  o.binary = "/bin/unipelt";
  o.root = "/s";
  o.model_dir = "/m";
  o.data_dir = "/d";
  o.train_flags = {"--epochs", "3"};
  o.threads_per_run = 3;
  const auto argv = sweep_child_argv(o, points[2]);
  const std::vector<std::string> expected = {"/bin/unipelt", "train", "--task", "SST-2", "--method", "lora", "--k",
                                             "all", "--data-seed", "111", "--model", "/m", "--data", "/d", "--out",
                                             "/s/SST-2/lora/kall/seed111", "--resume", "--epochs", "3", "--threads", "3"};
  CHECK(argv == expected);
  // Without --threads the runs share the CPUs: cores / jobs each, at least one.
  o.threads_per_run = -1;
  o.jobs = 2;
  CHECK(sweep_threads_per_run(o) == std::max(1, available_cpus() / 2));
  o.jobs = 1000;
  CHECK(sweep_threads_per_run(o) == 1);
}

TEST_CASE("sweep runner: jobs, skipped finished runs, failures, logs", "[report]") {
  const fs::path root = testing::scratch_dir("report_sweep_runner");
  // A stand-in for `unipelt`: writes results.json into --out, fails for data seed 13.
  const fs::path fake = root / "fake-unipelt";
  {
    std::ofstream f(fake);
    f << "#!/bin/sh\n"
         "out=''; task=''; method=''; k=''; seed=''\n"
         "while [ $# -gt 0 ]; do case \"$1\" in\n"
         "  --out) out=$2; shift;; --task) task=$2; shift;; --method) method=$2; shift;;\n"
         "  --k) k=$2; shift;; --data-seed) seed=$2; shift;; esac; shift; done\n"
         "echo \"fake train $task $method $k $seed $EXTRA_FLAG\" >&2\n"
         "if [ \"$seed\" = 13 ]; then echo 'error: something broke' >&2; exit 1; fi\n"
         "sleep 0.1\n"
         "printf '{\"task\":\"%s\",\"method\":\"%s\",\"k\":%s,\"data_seed\":%s,\"test\":{\"main\":0.5}}' "
         "\"$task\" \"$method\" \"$k\" \"$seed\" > \"$out/results.json\"\n";
  }
  chmod(fake.c_str(), 0755);
  SweepOptions o;
  o.binary = fake;
  o.root = root / "sweep";
  o.model_dir = "/m";
  o.data_dir = "/d";
  o.grid = {{"RTE"}, {"lora", "adapter"}, {100}, {1, 2, 13}};
  o.jobs = 3;
  std::ostringstream log;
  SweepSummary s = run_sweep(o, log);
  INFO(log.str());
  CHECK(s.total == 6);
  CHECK(s.finished == 4);
  CHECK(s.failed == 2);
  CHECK(s.skipped == 0);
  REQUIRE(s.failures.size() == 2);
  CHECK(s.failures[0].find("seed13") != std::string::npos);
  CHECK(log.str().find("something broke") != std::string::npos);  // the failed run's log tail
  CHECK(testing::read_text(o.root / "RTE/lora/k100/seed1/train.log").find("fake train RTE lora 100 1") !=
        std::string::npos);
  CHECK(fs::exists(o.root / "RTE/adapter/k100/seed2/results.json"));

  // Again: finished runs are skipped, failed ones retried (and their logs appended to).
  std::ostringstream log2;
  s = run_sweep(o, log2);
  CHECK(s.skipped == 4);
  CHECK(s.failed == 2);
  CHECK(s.finished == 0);
  const std::string failed_log = testing::read_text(o.root / "RTE/lora/k100/seed13/train.log");
  CHECK(failed_log.find("fake train") != failed_log.rfind("fake train"));  // two attempts

  const std::vector<RunRecord> runs = collect_runs(o.root);
  CHECK(runs.size() == 4);  // the failed runs wrote nothing the report reads
  const std::string md = render_report_markdown(runs, {});
  CHECK(row(md, "Adapter") == "| Adapter | 50.00 (0.00) | 50.00 |");

  // The manifest: same flags pass, other flags are refused, the command history is kept.
  json m = sweep_manifest(o, {"unipelt", "sweep", "--jobs", "3"});
  write_sweep_manifest(o.root, m);
  CHECK_NOTHROW(check_sweep_manifest(o.root, m));
  write_sweep_manifest(o.root, sweep_manifest(o, {"unipelt", "sweep", "--jobs", "1"}));
  std::ifstream in(o.root / "sweep.json");
  CHECK(json::parse(in).at("commands").size() == 2);
  o.train_flags = {"--epochs", "2"};
  CHECK_THROWS_WITH(check_sweep_manifest(o.root, sweep_manifest(o, {})), Catch::Contains("training flags"));
  o.train_flags = {};
  o.model_dir = "/other";
  CHECK_THROWS_WITH(check_sweep_manifest(o.root, sweep_manifest(o, {})), Catch::Contains("--model"));
  // A damaged manifest is an error naming the file, for checking and for recording alike.
  std::ofstream(o.root / "sweep.json") << "{\"model\": ";
  CHECK_THROWS_WITH(check_sweep_manifest(o.root, m), Catch::Contains("sweep.json: not valid JSON"));
  CHECK_THROWS_WITH(write_sweep_manifest(o.root, m), Catch::Contains("sweep.json: not valid JSON"));
  std::ofstream(o.root / "sweep.json") << "[1, 2]";
  CHECK_THROWS_WITH(read_sweep_manifest(o.root), Catch::Contains("expected a JSON object"));
}

// Pictures: a run's training curve (`unipelt plot RUN`) and the sweep report's per-task figures. Every
// SVG is rasterised with rsvg-convert (Debian's librsvg2-bin, in scripts/install-deps.sh): a file it
// cannot render fails the test.
#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "train/plot.h"
#include "train/trainer.h"
#include "tests/synthetic.h"
#include "tests/test_util.h"

using namespace unipelt;
using Catch::Contains;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// rsvg-convert renders `svg` to PNG; its exit status must be 0 and the PNG non-trivial.
void require_renders(const fs::path& svg) {
  if (std::system("command -v rsvg-convert >/dev/null 2>&1") != 0)
    FAIL("rsvg-convert is not installed (Debian package librsvg2-bin; scripts/install-deps.sh installs it)");
  const fs::path png = fs::path(svg.string() + ".png"), err = fs::path(svg.string() + ".err");
  const std::string command = "rsvg-convert -o '" + png.string() + "' '" + svg.string() + "' 2>'" + err.string() + "'";
  const int rc = std::system(command.c_str());
  INFO(svg.string() << ": " << testing::read_text(err));
  REQUIRE(rc == 0);
  CHECK(testing::read_text(err).empty());
  CHECK(fs::file_size(png) > 2000);
}

size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// A finished record as read_run_record would give it.
RunRecord record(const std::string& task, const std::string& method, size_t k, uint64_t seed, double main) {
  RunRecord r;
  r.dir = "runs/" + task + "/" + method + "/k" + std::to_string(k) + "/seed" + std::to_string(seed);
  r.task = task;
  r.method = method;
  r.k = k;
  r.data_seed = seed;
  r.finished = true;
  r.test = {{"main", main}};
  return r;
}

}  // namespace

TEST_CASE("unipelt plot RUN: loss per step, dev metric per epoch, best epoch and early stop marked", "[plot]") {
  const fs::path root = testing::scratch_dir("plot_run");
  const auto s = testing::make_synthetic_setup(root);
  TrainConfig c;
  c.pelt = testing::small_preset("lora", 16);
  c.model_dir = s.model_dir.string();
  c.data_dir = s.data_dir.string();
  c.out_dir = (root / "run").string();
  c.k = 64;
  c.epochs = 12;
  c.patience = 1;  // dev accuracy drops in epoch 2 of this tiny run: an early stop
  c.batch_size = 8;
  c.max_len = 32;
  c.eval_batch_size = 128;
  c.lr = 3e-2;
  std::ostringstream log;
  const TrainResult result = train_glue(c, false, log);
  REQUIRE(result.finished);
  REQUIRE(result.epochs_run < 12);

  const TrainingCurve curve = read_training_curve(root / "run");
  CHECK(curve.step_losses.size() == static_cast<size_t>(result.epochs_run) * 8);  // 64 examples, batch 8
  CHECK(curve.dev.size() == static_cast<size_t>(result.epochs_run));
  CHECK(curve.best_epoch == result.best_epoch);
  CHECK(curve.metric == "accuracy");
  CHECK(curve.early_stopped);

  const fs::path out = root / "out.txt", err = root / "err.txt";
  REQUIRE(testing::run_cli({"plot", (root / "run").string()}, out, err) == 0);
  CHECK_THAT(testing::read_text(out), Contains("training-curve.svg"));
  const std::string svg = testing::read_text(root / "run" / "training-curve.svg");
  CHECK(svg.rfind("<?xml", 0) == 0);
  CHECK_THAT(svg, Contains("best: epoch " + std::to_string(result.best_epoch)));
  CHECK_THAT(svg, Contains("Training step") && Contains("Dev accuracy") && Contains("test accuracy of the best epoch"));
  CHECK_THAT(svg, Contains("early stop after epoch " + std::to_string(result.epochs_run) + " (1 epoch without"));
  CHECK(count(svg, "<polyline") == 3);  // step losses, epoch means, dev metric
  require_renders(root / "run" / "training-curve.svg");

  // A run that did not stop early shows no stop.
  TrainingCurve full = curve;
  full.early_stopped = false;
  CHECK_THAT(render_training_svg(full), !Contains("early stop"));
  // Without per-step losses (runs from before they were recorded) the epoch means are drawn alone.
  TrainingCurve old = curve;
  old.step_losses.clear();
  std::ofstream(root / "old.svg") << render_training_svg(old);
  CHECK_THAT(testing::read_text(root / "old.svg"), Contains("no per-step losses recorded"));
  require_renders(root / "old.svg");
  CHECK(testing::run_cli({"plot", root.string() + "/nothing"}, out, err) == 2);
}

TEST_CASE("the sweep report embeds one figure per task: method x K bars with error bars over seeds", "[plot][report]") {
  const fs::path dir = testing::scratch_dir("plot_sweep");
  std::vector<RunRecord> runs;
  for (uint64_t seed : {1, 2, 3})
    for (size_t k : {100, 1000}) {
      runs.push_back(record("SST-2", "lora", k, seed, 0.5 + 0.01 * static_cast<double>(seed) + (k == 1000 ? 0.1 : 0)));
      runs.push_back(record("SST-2", "unipelt-apl", k, seed, 0.55 + 0.02 * static_cast<double>(seed)));
      runs.push_back(record("CoLA", "lora", k, seed, -0.05 + 0.05 * static_cast<double>(seed)));  // MCC can be < 0
    }
  ReportOptions options;
  std::vector<fs::path> figures;
  const std::string md = write_sweep_report(dir / "report.md", runs, options, &figures);
  REQUIRE(figures.size() == 2);
  CHECK(testing::read_text(dir / "report.md") == md);
  CHECK_THAT(md, Contains("![SST-2: method × K](report-SST-2.svg)") && Contains("![CoLA: method × K](report-CoLA.svg)"));
  CHECK_THAT(md, Contains("| LoRA |"));  // the tables are still there
  const std::string sst2 = testing::read_text(dir / "report-SST-2.svg");
  CHECK(count(sst2, "<rect") >= 1 + 4 + 2);  // background, 2 K × 2 methods, legend
  CHECK_THAT(sst2, Contains("K = 100") && Contains("K = 1000") && Contains("UniPELT (APL)"));
  CHECK_THAT(sst2, Contains("LoRA: 62.00 ± 0.82 (n=3)"));  // mean and population std of 61, 62, 63
  for (const fs::path& f : figures) require_renders(f);
  CHECK(render_sweep_figure("RTE", build_report_tables(runs, StdKind::Population)).empty());

  // `unipelt plot SWEEP` writes the same figures beside its own Markdown (not over report.md).
  for (const RunRecord& r : runs) {
    fs::create_directories(dir / r.dir);
    const json results = {{"task", r.task}, {"method", r.method}, {"k", r.k}, {"data_seed", r.data_seed}, {"test", r.test}};
    std::ofstream(dir / r.dir / "results.json") << results.dump();
  }
  const fs::path out = dir / "out.txt", err = dir / "err.txt";
  REQUIRE(testing::run_cli({"plot", (dir / "runs").string()}, out, err) == 0);
  CHECK(fs::exists(dir / "runs" / "figures.md"));
  CHECK(testing::read_text(dir / "runs" / "figures-SST-2.svg") == sst2);
  require_renders(dir / "runs" / "figures-CoLA.svg");
}

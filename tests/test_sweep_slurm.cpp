// `unipelt sweep --scheduler slurm`, --run-cell and --status (train/sweep_slurm.h): the flags' rules,
// the job-array script (--dry-run), the submission bookkeeping against stand-in sbatch/squeue/sacct
// programs, and the whole thing against a real one-node Slurm started by the test (tests/slurm_cluster.h;
// skipped, saying why, where Slurm cannot be started).
#include <catch2/catch.hpp>

#include <cstdlib>
#include <fstream>
#include <regex>

#include "train/process.h"
#include "train/sweep_slurm.h"
#include "tests/slurm_cluster.h"
#include "tests/synthetic.h"
#include "tests/test_util.h"

using namespace unipelt;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// The tiny grid of the tests: 2 methods x 2 data seeds of the synthetic SST-2, 1 epoch each. The high
// learning rate moves the runs off the majority class within the epoch, so that every cell of the report
// has its own mean and spread and the comparison of two reports means something.
std::vector<std::string> grid_args(const testing::SyntheticSetup& s, const fs::path& sweep) {
  return {"sweep",          "--tasks",   "sst2",      "--methods",   "lora,bitfit", "--k",
          "64",             "--data-seeds", "111,222", "--model",    s.model_dir,   "--data",
          s.data_dir,       "--out",     sweep.string(), "--epochs",  "1",           "--max-len",
          "32",             "--eval-batch-size", "128", "--lora-r",  "2",
          "--lr",           "2e-2"};
}

std::vector<std::string> plus(std::vector<std::string> args, const std::vector<std::string>& more) {
  args.insert(args.end(), more.begin(), more.end());
  return args;
}

struct Cli {
  fs::path dir;
  int run(const std::vector<std::string>& args) { return testing::run_cli(args, dir / "out.txt", dir / "err.txt"); }
  std::string out() const { return testing::read_text(dir / "out.txt"); }
  std::string err() const { return testing::read_text(dir / "err.txt"); }
};

void write_program(const fs::path& path, const std::string& body) {
  std::ofstream(path) << "#!/bin/sh\n" << body << "\n";
  fs::permissions(path, fs::perms::owner_all);
}

// The report without its command block (the commands differ between two sweeps; the tables must not).
std::string report_tables(const std::string& report) {
  return std::regex_replace(report, std::regex("Commands?:\n\n```sh\n[^`]*```\n\n"), "");
}

}  // namespace

TEST_CASE("slurm flags: time, memory, partition and sbatch options are checked up front", "[slurm]") {
  for (const char* ok : {"30", "10:00", "4:00:00", "2-0", "2-12:30", "1-00:00:00"}) CHECK_NOTHROW(check_slurm_time(ok));
  for (const char* bad : {"", "1h", "1:2:3:4", "-5", "2-", "1:100"}) CHECK_THROWS_AS(check_slurm_time(bad), std::invalid_argument);
  for (const char* ok : {"500", "16G", "2048M", "1T"}) CHECK_NOTHROW(check_slurm_memory(ok));
  for (const char* bad : {"", "0", "16GB", "1.5G", "-1"}) CHECK_THROWS_AS(check_slurm_memory(bad), std::invalid_argument);
  CHECK_NOTHROW(check_slurm_partition("gpu,debug"));
  CHECK_THROWS_AS(check_slurm_partition("gpu debug"), std::invalid_argument);
  CHECK_NOTHROW(check_sbatch_arg("--qos=high"));
  CHECK_THROWS_AS(check_sbatch_arg("qos=high"), std::invalid_argument);
  CHECK_THROWS_AS(check_sbatch_arg("--qos=high\n#SBATCH --x"), std::invalid_argument);
  CHECK(slurm_array_spec({0, 1, 2, 3}, 0) == "0-3");
  CHECK(slurm_array_spec({7, 1, 3, 5, 6}, 2) == "1,3,5-7%2");
  CHECK(slurm_array_spec({4}, 0) == "4");
}

TEST_CASE("sweep --scheduler slurm --dry-run prints the job array and writes nothing, bad flags exit 2",
          "[slurm]") {
  const fs::path root = testing::scratch_dir("slurm_dry_run");
  const auto s = testing::make_synthetic_setup(root);
  const fs::path sweep = root / "sweep";
  Cli cli{root};
  const auto slurm = plus(grid_args(s, sweep), {"--scheduler", "slurm", "--dry-run", "--partition", "gpu", "--time",
                                                "1:00:00", "--cpus-per-task", "4", "--gpus-per-task", "1", "--mem",
                                                "16G", "--array-parallel", "2", "--sbatch-arg=--qos=high",
                                                "--sbatch-arg=--account=proj"});
  REQUIRE(cli.run(slurm) == 0);
  const std::string script = cli.out();
  for (const char* line : {"#SBATCH --array=0-3%2", "#SBATCH --partition=gpu", "#SBATCH --time=1:00:00",
                           "#SBATCH --cpus-per-task=4", "#SBATCH --gpus-per-task=1", "#SBATCH --mem=16G",
                           "#SBATCH --qos=high\n#SBATCH --account=proj", "#   cell 3: SST-2/bitfit/k64/seed222",
                           "sweep --run-cell \"$SLURM_ARRAY_TASK_ID\" --tasks sst2 --methods lora,bitfit --k 64 "
                           "--data-seeds 111,222"})
    CHECK(script.find(line) != std::string::npos);
  CHECK(script.find("--epochs 1") != std::string::npos);
  CHECK(!fs::exists(sweep / "sweep.json"));
  CHECK(!fs::exists(sweep / "slurm"));

  const std::vector<std::pair<std::vector<std::string>, std::string>> usage_errors = {
      {plus(grid_args(s, sweep), {"--partition", "gpu"}), "--partition is a Slurm flag; add --scheduler slurm"},
      {plus(grid_args(s, sweep), {"--scheduler", "slurm", "--jobs", "2"}), "--jobs is the local scheduler's"},
      {plus(grid_args(s, sweep), {"--scheduler", "slurm", "--time", "1:2:3:4"}), "a Slurm time limit"},
      {plus(grid_args(s, sweep), {"--scheduler", "slurm", "--mem", "16GB"}), "a memory size"},
      {plus(grid_args(s, sweep), {"--scheduler", "slurm", "--sbatch-arg", "qos=high"}), "an sbatch option"},
      {plus(grid_args(s, sweep), {"--scheduler", "pbs"}), "pbs"},
      {plus(grid_args(s, sweep), {"--run-cell", "4"}), "--run-cell: must be a cell of the grid, 0 to 3, got 4"},
      {plus(grid_args(s, sweep), {"--status", "--report-only"}), "give one"},
  };
  for (const auto& [args, message] : usage_errors) {
    INFO(message);
    CHECK(cli.run(args) == 2);
    CHECK(cli.err().find(message) != std::string::npos);
  }
}

TEST_CASE("slurm submissions: only unfinished cells that are not queued, --run-cell, --status", "[slurm]") {
  const fs::path root = testing::scratch_dir("slurm_fake");
  const auto s = testing::make_synthetic_setup(root);
  const fs::path sweep = root / "sweep", bin = root / "bin";
  fs::create_directories(bin);
  // Stand-ins: sbatch records its arguments and answers job 4242; squeue says 4242's cell 2 runs; no
  // accounting (sacct fails as it does without slurmdbd).
  write_program(bin / "sbatch", "echo \"$@\" >> " + (root / "sbatch.log").string() + "; echo '4242;cluster'");
  write_program(bin / "squeue", "echo '4242|2|RUNNING'; echo '77|0|PENDING'");
  write_program(bin / "sacct", "echo 'Slurm accounting storage is disabled' >&2; exit 1");
  const testing::ScopedEnv path("PATH", bin.string() + ":" + std::getenv("PATH"));
  Cli cli{root};
  const auto submit = plus(grid_args(s, sweep), {"--scheduler", "slurm"});

  REQUIRE(cli.run(submit) == 0);
  INFO(cli.err());
  CHECK(cli.out().find("submitted job 4242: 4 cell(s)") != std::string::npos);
  json subs = json::parse(testing::read_text(sweep / "slurm" / "submissions.json"));
  REQUIRE(subs.size() == 1);
  CHECK(subs[0].at("job") == "4242");
  CHECK(subs[0].at("cells") == json::array({0, 1, 2, 3}));
  CHECK(testing::read_text(sweep / "slurm" / "submit-1.sbatch").find("#SBATCH --array=0-3\n") != std::string::npos);
  CHECK(testing::read_text(root / "sbatch.log").find("--parsable " + (sweep / "slurm" / "submit-1.sbatch").string()) !=
        std::string::npos);

  // What array task 0 runs: cell 0 alone, into its run directory, with its train.log.
  REQUIRE(cli.run(plus(grid_args(s, sweep), {"--run-cell", "0"})) == 0);
  CHECK(fs::exists(sweep / "SST-2" / "lora" / "k64" / "seed111" / "results.json"));
  CHECK(!fs::exists(sweep / "SST-2" / "lora" / "k64" / "seed222" / "config.json"));

  // Again: cell 0 is finished and cell 2 is running, so cells 1 and 3 go.
  REQUIRE(cli.run(submit) == 0);
  CHECK(cli.err().find("4 cells: 1 finished, 1 pending or running in the queue (2), 2 to submit: 1, 3") !=
        std::string::npos);
  subs = json::parse(testing::read_text(sweep / "slurm" / "submissions.json"));
  REQUIRE(subs.size() == 2);
  CHECK(subs[1].at("cells") == json::array({1, 3}));
  CHECK(testing::read_text(sweep / "slurm" / "submit-2.sbatch").find("#SBATCH --array=1,3\n") != std::string::npos);

  REQUIRE(cli.run({"sweep", "--status", "--out", sweep.string()}) == 0);
  const std::string status = cli.out();
  INFO(status);
  CHECK(std::regex_search(status, std::regex(R"(\n?\s+0  finished\s+SST-2/lora/k64/seed111\s+test accuracy \d+\.\d\d\n)")));
  CHECK(std::regex_search(status, std::regex(R"(\s+2  running\s+SST-2/bitfit/k64/seed111\s+job 4242_2 RUNNING\n)")));
  CHECK(std::regex_search(status, std::regex(R"(\s+1  failed\s+SST-2/lora/k64/seed222\s+job 4242_1 left the queue)")));
  CHECK(status.find("4 cells: 1 finished, 1 running, 0 pending, 2 failed, 0 not started") != std::string::npos);
}

TEST_CASE("slurm on a real one-node cluster: the job array reproduces the local report, and a cancelled cell is "
          "the only one resubmitted", "[slurm][slurm_cluster]") {
  const fs::path root = testing::scratch_dir("slurm_cluster");
  testing::SlurmCluster cluster(root / "slurm");
  if (!cluster.ready()) testing::skip("cannot start a one-node Slurm here: " + cluster.skip_reason());
  const auto s = testing::make_synthetic_setup(root);
  Cli cli{root};
  const testing::ScopedEnv one_blas_thread("OPENBLAS_NUM_THREADS", "1");

  // The local scheduler's report of the grid.
  REQUIRE(cli.run(plus(grid_args(s, root / "local"), {"--jobs", "2"})) == 0);
  REQUIRE(cli.run({"sweep", "--report-only", "--out", (root / "local").string()}) == 0);
  const std::string local_report = cli.out();

  // The same grid as a job array, held so that one cell can be cancelled before it starts.
  const fs::path sweep = root / "sweep";
  const auto submit = plus(grid_args(s, sweep), {"--scheduler", "slurm", "--array-parallel", "2", "--sbatch-arg=--hold"});
  auto submit_and_release = [&] {
    REQUIRE(cli.run(submit) == 0);
    INFO(cli.err());
    const json subs = json::parse(testing::read_text(sweep / "slurm" / "submissions.json"));
    const std::string job = subs.back().at("job");
    return std::pair{job, subs.back().at("cells").get<std::vector<size_t>>()};
  };
  auto wait_until_done = [&](const std::string& job) {
    const bool drained = testing::SlurmCluster::wait_for(
        [&] {  // (squeue -j would list the finished tasks too)
          const CommandResult q = run_command({"squeue", "--noheader", "--me", "--format=%F"});
          return q.exit_code == 0 && q.output.find(job) == std::string::npos;
        },
        90);
    INFO(cluster.logs());
    REQUIRE(drained);
  };

  const auto [job, cells] = submit_and_release();
  CHECK(cells == std::vector<size_t>{0, 1, 2, 3});
  REQUIRE(run_command({"scancel", job + "_1"}).exit_code == 0);
  REQUIRE(run_command({"scontrol", "release", job}).exit_code == 0);
  wait_until_done(job);
  REQUIRE(cli.run({"sweep", "--status", "--out", sweep.string()}) == 0);
  INFO(cli.out());
  CHECK(cli.out().find("4 cells: 3 finished, 0 running, 0 pending, 1 failed, 0 not started") != std::string::npos);
  CHECK(std::regex_search(cli.out(), std::regex(R"(\s+1  failed\s+SST-2/lora/k64/seed222\s+job )" + job)));

  // The same command again: exactly the cancelled cell.
  const auto [job2, cells2] = submit_and_release();
  CHECK(job2 != job);
  CHECK(cells2 == std::vector<size_t>{1});
  CHECK(testing::read_text(sweep / "slurm" / "submit-2.sbatch").find("#SBATCH --array=1%2\n") != std::string::npos);
  REQUIRE(run_command({"scontrol", "release", job2}).exit_code == 0);
  wait_until_done(job2);

  REQUIRE(cli.run({"sweep", "--status", "--out", sweep.string()}) == 0);
  CHECK(cli.out().find("4 cells: 4 finished") != std::string::npos);
  REQUIRE(cli.run({"sweep", "--report-only", "--out", sweep.string()}) == 0);
  CHECK(report_tables(cli.out()) == report_tables(local_report));
  CHECK(report_tables(local_report).find("| LoRA |") != std::string::npos);
  CHECK(report_tables(local_report).find("(0.00)") == std::string::npos);  // the seeds differ: a real comparison
  // Nothing left to submit: the report, as the local scheduler writes it.
  REQUIRE(cli.run(submit) == 0);
  CHECK(cli.err().find("0 to submit") != std::string::npos);
  CHECK(report_tables(testing::read_text(sweep / "report.md")) == report_tables(local_report));
}

// GLUE readers and the paper's data protocol: malformed files written to a scratch directory, the
// real files of the data mirror (counts checked against `wc -l` / awk on the files themselves), and
// the determinism of the protocol's shuffle.
#include <catch2/catch.hpp>

#include <algorithm>
#include <fstream>
#include <set>
#include <string>

#include "datasets/glue.h"
#include "tests/test_util.h"

using namespace unipelt;
namespace fs = std::filesystem;

namespace {

fs::path write(const fs::path& dir, const std::string& name, const std::string& text) {
  std::ofstream(dir / name, std::ios::binary) << text;
  return dir / name;
}

// The message of the DataError that `f` throws.
template <typename F>
std::string error_of(F&& f) {
  return testing::error_of<DataError>(f);
}

using Catch::Contains;

}  // namespace

TEST_CASE("task names are normalised and label orders follow HF glue", "[glue]") {
  CHECK(&task_info("sst2") == &task_info("SST-2"));
  CHECK(&task_info("sst-2") == &task_info("Sst_2"));
  CHECK(task_info("stsb").name == "STS-B");
  CHECK(task_info("STS-B").kind == TaskKind::Regression);
  CHECK(task_info("stsb").num_labels == 1);
  CHECK(task_info("mnli").label_names == std::vector<std::string>{"entailment", "neutral", "contradiction"});
  CHECK(task_info("mnli").dev_split == "dev_matched");
  CHECK(task_info("wnli").label_names == std::vector<std::string>{"not_entailment", "entailment"});
  CHECK(task_info("rte").label_names == std::vector<std::string>{"entailment", "not_entailment"});
  CHECK(task_info("cola").metric == "mcc");
  CHECK_FALSE(task_info("cola").is_pair);
  CHECK(task_info("qqp").is_pair);
  CHECK(glue_task_names().size() == 9);
  for (const auto& name : glue_task_names()) CHECK(task_info(name).name == name);
  std::string error = error_of([] { task_info("sst5"); });
  CHECK_THAT(error, Contains("sst5") && Contains("valid tasks") && Contains("SST-2") && Contains("WNLI"));
}

TEST_CASE("reader handles CRLF BOM trailing blank lines and quotes", "[glue]") {
  fs::path dir = testing::scratch_dir("glue_wellformed");
  SECTION("CRLF line endings and trailing empty lines") {
    write(dir, "train.tsv", "sentence\tlabel\r\ngood movie \t1\r\nbad\t0\r\n\r\n\n");
    auto ex = read_glue_split("SST-2", dir, "train");
    REQUIRE(ex.size() == 2);
    CHECK(ex[0].text_a == "good movie ");  // the text is kept as is; no '\r' left on the label
    CHECK(ex[0].label == 1);
    CHECK(ex[0].line == 2);
    CHECK(ex[1].label == 0);
  }
  SECTION("UTF-8 BOM before the header (MRPC)") {
    write(dir, "dev.tsv", "\xEF\xBB\xBFQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\n1\t1\t2\tA.\tB.\n");
    auto ex = read_glue_split("mrpc", dir, "dev");
    REQUIRE(ex.size() == 1);
    CHECK(ex[0].text_a == "A.");
    CHECK(ex[0].text_b == "B.");
    CHECK(ex[0].label == 1);
  }
  SECTION("quotes are ordinary characters (no CSV quoting)") {
    write(dir, "train.tsv", "index\tsentence1\tsentence2\tlabel\n0\t\"He said\t\"no\"\"\tnot_entailment\n");
    auto ex = read_glue_split("RTE", dir, "train");
    REQUIRE(ex.size() == 1);
    CHECK(ex[0].text_a == "\"He said");
    CHECK(ex[0].text_b == "\"no\"\"");
    CHECK(ex[0].label == 1);
  }
  SECTION("columns are found by header name, whatever their order and number") {
    write(dir, "dev_matched.tsv",
          "index\tgenre\tsentence1\tsentence2\tlabel1\tgold_label\n0\tfiction\tP.\tH.\tneutral\tcontradiction\n");
    auto ex = read_glue_split("MNLI", dir, "dev");  // MNLI "dev" means dev_matched
    REQUIRE(ex.size() == 1);
    CHECK(ex[0].text_a == "P.");
    CHECK(ex[0].label == 2);  // contradiction, from gold_label, not label1
  }
  SECTION("CoLA: headerless train/dev, header in test") {
    write(dir, "train.tsv", "gj04\t1\t\tA fine sentence.\ngj04\t0\t*\tSentence fine a.");  // no final '\n'
    auto ex = read_glue_split("CoLA", dir, "train");
    REQUIRE(ex.size() == 2);
    CHECK(ex[1].text_a == "Sentence fine a.");
    CHECK(ex[1].label == 0);
    CHECK(ex[1].line == 2);
    write(dir, "test.tsv", "index\tsentence\n0\tUnlabelled.\n");
    auto test = read_glue_split("CoLA", dir, "test");
    REQUIRE(test.size() == 1);
    CHECK(test[0].label == -1);
  }
  SECTION("STS-B scores") {
    write(dir, "train.tsv", "index\tsentence1\tsentence2\tscore\n0\ta\tb\t5.000\n1\tc\td\t0\n2\te\tf\t2.4\n");
    auto ex = read_glue_split("stsb", dir, "train");
    REQUIRE(ex.size() == 3);
    CHECK(ex[0].score == 5.0f);
    CHECK(ex[2].score == Approx(2.4f));
    CHECK(ex[2].label == -1);
  }
}

TEST_CASE("reader rejects malformed files naming file line and expectation", "[glue]") {
  fs::path dir = testing::scratch_dir("glue_malformed");
  const std::string sst_header = "sentence\tlabel\n";
  SECTION("missing column") {
    write(dir, "train.tsv", sst_header + "fine\t1\nno label here\n");
    CHECK_THAT(error_of([&] { read_glue_split("sst2", dir, "train"); }),
               Contains("train.tsv:3") && Contains("expected 2 tab-separated columns, found 1"));
  }
  SECTION("extra tab") {
    write(dir, "train.tsv", sst_header + "a\tb\t1\n");
    CHECK_THAT(error_of([&] { read_glue_split("sst2", dir, "train"); }),
               Contains("train.tsv:2") && Contains("found 3"));
  }
  SECTION("unknown label") {
    write(dir, "dev.tsv", sst_header + "fine\t1\nodd\tpositive\n");
    CHECK_THAT(error_of([&] { read_glue_split("sst2", dir, "dev"); }),
               Contains("dev.tsv:3") && Contains("label 'positive' is not one of '0', '1'"));
  }
  SECTION("unparsable or out-of-range STS-B score") {
    const std::string header = "index\tsentence1\tsentence2\tscore\n";
    write(dir, "train.tsv", header + "0\ta\tb\t4.x\n");
    CHECK_THAT(error_of([&] { read_glue_split("stsb", dir, "train"); }),
               Contains("train.tsv:2") && Contains("score '4.x' is not a number in [0, 5]"));
    write(dir, "train.tsv", header + "0\ta\tb\t5.5\n");
    CHECK_THAT(error_of([&] { read_glue_split("stsb", dir, "train"); }), Contains("'5.5'"));
  }
  SECTION("empty file, blank-only file, header only") {
    write(dir, "train.tsv", "");
    CHECK_THAT(error_of([&] { read_glue_split("rte", dir, "train"); }), Contains("file is empty"));
    write(dir, "train.tsv", "\n\r\n");
    CHECK_THAT(error_of([&] { read_glue_split("rte", dir, "train"); }), Contains("file is empty"));
    write(dir, "train.tsv", "index\tsentence1\tsentence2\tlabel\n");
    CHECK_THAT(error_of([&] { read_glue_split("rte", dir, "train"); }), Contains("no examples"));
  }
  SECTION("blank line in the middle") {
    write(dir, "train.tsv", sst_header + "a\t1\n\nb\t0\n");
    CHECK_THAT(error_of([&] { read_glue_split("sst2", dir, "train"); }),
               Contains("train.tsv:3") && Contains("blank line"));
  }
  SECTION("wrong header, missing label column, missing file") {
    write(dir, "train.tsv", "premise\thypothesis\tlabel\na\tb\tentailment\n");
    CHECK_THAT(error_of([&] { read_glue_split("rte", dir, "train"); }),
               Contains("train.tsv:1") && Contains("'sentence1', 'sentence2', 'label'"));
    write(dir, "train.tsv", "index\tsentence1\tsentence2\na\tb\tc\n");
    CHECK_THAT(error_of([&] { read_glue_split("rte", dir, "train"); }), Contains("no label column"));
    CHECK_THAT(error_of([&] { read_glue_split("rte", dir, "validation"); }),
               Contains("validation.tsv") && Contains("'train.tsv'"));
  }
}

TEST_CASE("reader skips and reports QQP rows with missing columns", "[glue]") {
  fs::path dir = testing::scratch_dir("glue_qqp");
  write(dir, "train.tsv",
        "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n"
        "0\t1\t2\tHow?\tWhy?\t0\n"
        "1\t3\t4\tA question with no partner\n"
        "2\t5\t6\tWhat?\tWhat is it?\t1\n");
  ReadReport report;
  auto ex = read_glue_split("QQP", dir, "train", &report);
  REQUIRE(ex.size() == 2);
  CHECK(ex[1].label == 1);
  CHECK(report.rows_read == 2);
  CHECK(report.rows_skipped == 1);
  REQUIRE(report.skipped.size() == 1);
  CHECK_THAT(report.skipped[0], Contains("train.tsv:3") && Contains("found 4"));
  CHECK_THAT(format_report(report), Contains("1 malformed rows skipped"));
  // A bad label is still an error in QQP: only the known column-count quirk is tolerated.
  write(dir, "train.tsv", "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n0\t1\t2\ta\tb\tyes\n");
  CHECK_THROWS_AS(read_glue_split("QQP", dir, "train"), DataError);
}

// Counts are data rows (lines minus the header; CoLA train/dev have no header and CoLA dev has no
// final newline). Label counts come from `cut -f` on the same files.
TEST_CASE("real GLUE files have the expected row counts and label balance", "[glue]") {
  struct Case { std::string task, split; size_t rows; int label; size_t with_label; };
  const std::vector<Case> cases = {
      {"SST-2", "train", 67349, 1, 37569}, {"SST-2", "dev", 872, 0, 428},   {"SST-2", "test", 1821, -1, 1821},
      {"CoLA", "train", 8551, 0, 2528},    {"CoLA", "dev", 1043, 1, 721},   {"CoLA", "test", 1063, -1, 1063},
      {"MRPC", "train", 3668, 1, 2474},    {"MRPC", "dev", 408, 0, 129},    {"MRPC", "test", 1725, -1, 1725},
      {"RTE", "train", 2490, 0, 1249},     {"RTE", "dev", 277, 1, 131},     {"RTE", "test", 3000, -1, 3000},
      {"STS-B", "train", 5749, -1, 5749},  {"STS-B", "dev", 1500, -1, 1500}, {"STS-B", "test", 1379, -1, 1379},
      {"WNLI", "train", 635, 1, 312},      {"WNLI", "dev", 71, 0, 40},      {"WNLI", "test", 146, -1, 146},
      {"QNLI", "dev", 5463, 0, 2702},      {"QNLI", "test", 5463, -1, 5463},
  };
  const fs::path glue = testing::require_data("glue/SST-2/train.tsv").parent_path().parent_path();
  for (const auto& c : cases) {
    INFO(c.task << " " << c.split);
    ReadReport report;
    auto ex = read_glue_split(c.task, glue / c.task, c.split, &report);
    CHECK(ex.size() == c.rows);
    CHECK(report.rows_skipped == 0);  // the mirror's files have no malformed rows at all
    CHECK(std::count_if(ex.begin(), ex.end(), [&](const Example& e) { return e.label == c.label; }) ==
          static_cast<long>(c.with_label));
    const bool pair = task_info(c.task).is_pair;
    CHECK(std::all_of(ex.begin(), ex.end(), [&](const Example& e) {
      return !e.text_a.empty() && e.text_b.empty() != pair;
    }));
  }
  auto sst = read_glue_split("sst2", glue / "SST-2", "train");
  CHECK(sst[0].text_a == "hide new secretions from the parental units ");
  CHECK(sst[0].label == 0);
  auto sts = read_glue_split("stsb", glue / "STS-B", "dev");
  CHECK(sts[0].text_b == "A man wearing a hard hat is dancing.");
  CHECK(sts[0].score == 5.0f);
  double sum = 0;
  for (const auto& e : sts) sum += e.score;
  CHECK(sum / sts.size() == Approx(2.36391).epsilon(1e-4));  // awk's mean of the score column
}

TEST_CASE("real k-shot subsets of MNLI QNLI and QQP", "[glue]") {
  const fs::path root = testing::require_data("glue_subsets/k-shot-16/MNLI/16-13/train.tsv")
                            .parent_path().parent_path().parent_path();
  for (const std::string seed : {"13", "21", "42", "87", "100"}) {
    INFO("seed " << seed);
    const std::vector<std::pair<std::string, int>> tasks = {{"MNLI", 3}, {"QNLI", 2}, {"QQP", 2}};
    for (const auto& [task, classes] : tasks) {
      for (const std::string split : {"train", "dev"}) {
        auto ex = read_glue_split(task, root / task / ("16-" + seed), split);
        REQUIRE(ex.size() == size_t(16 * classes));  // 16 examples per class
        for (int label = 0; label < classes; ++label)
          CHECK(std::count_if(ex.begin(), ex.end(), [&](const Example& e) { return e.label == label; }) == 16);
      }
    }
  }
}

TEST_CASE("shuffled_order is a reproducible permutation", "[glue]") {
  CHECK(shuffled_order(0, 1).empty());
  CHECK(shuffled_order(1, 1) == std::vector<size_t>{0});
  auto a = shuffled_order(1000, 111);
  auto sorted = a;
  std::sort(sorted.begin(), sorted.end());
  for (size_t i = 0; i < sorted.size(); ++i) REQUIRE(sorted[i] == i);
  CHECK(a == shuffled_order(1000, 111));
  CHECK(a != shuffled_order(1000, 222));
  // Pinned output: mt19937_64 is fully specified by the standard and the bounded draw is our own,
  // so these values must be the same with every compiler and standard library.
  CHECK(shuffled_order(10, 111) == std::vector<size_t>{9, 4, 0, 5, 8, 1, 3, 6, 2, 7});
  CHECK(shuffled_order(10, 555) == std::vector<size_t>{7, 1, 4, 5, 2, 8, 3, 6, 0, 9});
}

TEST_CASE("protocol splits on a synthetic task", "[glue]") {
  fs::path dir = testing::scratch_dir("glue_protocol");
  std::string train = "sentence\tlabel\n", dev = "sentence\tlabel\n";
  for (int i = 0; i < 1100; ++i) train += "train sentence " + std::to_string(i) + "\t" + std::to_string(i % 2) + "\n";
  for (int i = 0; i < 10; ++i) dev += "dev sentence " + std::to_string(i) + "\t1\n";
  write(dir, "train.tsv", train);
  write(dir, "dev.tsv", dev);

  Splits s = make_protocol_splits("sst2", dir, 100, 111);
  CHECK(s.train.size() == 100);
  CHECK(s.dev.size() == 1000);
  CHECK(s.test.size() == 10);
  CHECK(s.test[0].text_a == "dev sentence 0");
  std::set<std::string> seen;
  for (const auto& e : s.train) seen.insert(e.text_a);
  for (const auto& e : s.dev) seen.insert(e.text_a);
  CHECK(seen.size() == 1100);  // train and dev are disjoint and together use K + 1000 rows

  auto texts = [](const std::vector<Example>& v) {
    std::vector<std::string> t;
    for (const auto& e : v) t.push_back(e.text_a);
    return t;
  };
  CHECK(texts(make_protocol_splits("sst2", dir, 100, 111).train) == texts(s.train));
  CHECK(texts(make_protocol_splits("sst2", dir, 100, 222).train) != texts(s.train));

  Splits all = make_protocol_splits("sst2", dir, 0, 111);
  CHECK(all.train.size() == 1100);
  CHECK(all.train[5].text_a == "train sentence 5");  // full data keeps file order
  CHECK(texts(all.dev) == texts(all.test));
  CHECK(all.test.size() == 10);

  CHECK_THAT(error_of([&] { make_protocol_splits("sst2", dir, 101, 111); }),
             Contains("K + 1000 training rows (K = 101") && Contains("has only 1100"));
  // A K so large that K + 1000 wraps around is refused too (it used to pass the size check).
  CHECK_THAT(error_of([&] { make_protocol_splits("sst2", dir, static_cast<size_t>(-1), 111); }),
             Contains("has only 1100"));
}

TEST_CASE("protocol splits on the real data with the paper seeds 111 to 555", "[glue]") {
  const fs::path glue = testing::require_data("glue/RTE/train.tsv").parent_path().parent_path();
  std::vector<std::vector<int>> lines_per_seed;
  for (uint64_t seed : {111, 222, 333, 444, 555}) {
    Splits s = make_protocol_splits("RTE", glue / "RTE", 1000, seed);  // 2,000 of RTE's 2,490 rows
    REQUIRE(s.train.size() == 1000);
    REQUIRE(s.dev.size() == 1000);
    CHECK(s.test.size() == 277);  // the GLUE dev set
    std::set<int> train_lines;
    for (const auto& e : s.train) train_lines.insert(e.line);
    CHECK(std::none_of(s.dev.begin(), s.dev.end(), [&](const Example& e) { return train_lines.count(e.line); }));
    std::vector<int> lines;
    for (const auto& e : s.train) lines.push_back(e.line);
    for (const auto& earlier : lines_per_seed) CHECK(earlier != lines);
    lines_per_seed.push_back(lines);
  }
  CHECK_THAT(error_of([&] { make_protocol_splits("WNLI", glue / "WNLI", 16, 111); }),
             Contains("has only 635"));
}

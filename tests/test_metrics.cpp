// Metrics against hand-computed values (each worked out in the comment beside it), including the
// degenerate cases where a careless formula returns NaN.
#include <catch2/catch.hpp>

#include <cmath>
#include <stdexcept>
#include <vector>

#include "datasets/glue.h"
#include "datasets/metrics.h"

using namespace unipelt;
using Ints = std::vector<int>;
using Doubles = std::vector<double>;
using Floats = std::vector<float>;

TEST_CASE("accuracy counts exact matches", "[metrics]") {
  CHECK(accuracy(Ints{1, 0, 1, 1}, Ints{1, 1, 1, 0}) == Approx(0.5));
  CHECK(accuracy(Ints{2, 1, 0}, Ints{2, 1, 0}) == Approx(1.0));
  CHECK(accuracy(Ints{0}, Ints{1}) == Approx(0.0));
}

TEST_CASE("F1 of the positive class", "[metrics]") {
  // TP = 2 (positions 0, 2), FP = 1 (3), FN = 1 (1): F1 = 2*2 / (2*2 + 1 + 1) = 2/3.
  CHECK(f1_positive(Ints{1, 0, 1, 1}, Ints{1, 1, 1, 0}) == Approx(2.0 / 3.0));
  // Precision 1/2, recall 1/1 -> F1 = 2 * 0.5 * 1 / 1.5 = 2/3.
  CHECK(f1_positive(Ints{1, 1, 0}, Ints{1, 0, 0}) == Approx(2.0 / 3.0));
  CHECK(f1_positive(Ints{1, 0}, Ints{1, 0}) == Approx(1.0));
  SECTION("no positive predictions: precision undefined, F1 = 0 (sklearn zero_division=0)") {
    CHECK(f1_positive(Ints{0, 0, 0}, Ints{1, 0, 1}) == 0.0);
  }
  SECTION("no positives anywhere: 0/0 -> 0") { CHECK(f1_positive(Ints{0, 0}, Ints{0, 0}) == 0.0); }
  SECTION("all predictions wrong") { CHECK(f1_positive(Ints{1, 0}, Ints{0, 1}) == 0.0); }
}

TEST_CASE("Matthews correlation binary", "[metrics]") {
  // TP = 2, TN = 0, FP = 1, FN = 1: (2*0 - 1*1) / sqrt(3 * 3 * 1 * 1) = -1/3.
  CHECK(matthews_corrcoef(Ints{1, 0, 1, 1}, Ints{1, 1, 1, 0}) == Approx(-1.0 / 3.0));
  // TP = 2, TN = 2, FP = 1, FN = 1: (4 - 1) / sqrt(3 * 3 * 3 * 3) = 1/3.
  CHECK(matthews_corrcoef(Ints{1, 1, 0, 0, 1, 0}, Ints{1, 1, 0, 0, 0, 1}) == Approx(1.0 / 3.0));
  CHECK(matthews_corrcoef(Ints{0, 1, 1, 0}, Ints{0, 1, 1, 0}) == Approx(1.0));
  CHECK(matthews_corrcoef(Ints{1, 0, 0, 1}, Ints{0, 1, 1, 0}) == Approx(-1.0));
}

TEST_CASE("Matthews correlation multiclass as sklearn", "[metrics]") {
  // labels {0,1,2,0,1,2}, predictions {0,2,1,0,0,2}: true counts t = (2,2,2), predicted p = (3,1,2),
  // 3 correct, n = 6. cov(true,pred) = 3*6 - (6+2+4) = 6; cov(pred) = 36 - 14 = 22;
  // cov(true) = 36 - 12 = 24. MCC = 6 / sqrt(22 * 24).
  CHECK(matthews_corrcoef(Ints{0, 2, 1, 0, 0, 2}, Ints{0, 1, 2, 0, 1, 2}) ==
        Approx(6.0 / std::sqrt(22.0 * 24.0)));
  CHECK(matthews_corrcoef(Ints{0, 1, 2}, Ints{0, 1, 2}) == Approx(1.0));
}

TEST_CASE("Matthews correlation degenerate cases are 0 not NaN", "[metrics]") {
  SECTION("constant predictions") { CHECK(matthews_corrcoef(Ints{1, 1, 1, 1}, Ints{1, 0, 1, 0}) == 0.0); }
  SECTION("one class only in the labels") {
    CHECK(matthews_corrcoef(Ints{1, 0, 1}, Ints{1, 1, 1}) == 0.0);
  }
  SECTION("everything constant and correct") { CHECK(matthews_corrcoef(Ints{0, 0}, Ints{0, 0}) == 0.0); }
  SECTION("negative class ids are rejected") {
    CHECK_THROWS_AS(matthews_corrcoef(Ints{-1, 0}, Ints{0, 0}), std::invalid_argument);
  }
}

TEST_CASE("Pearson correlation", "[metrics]") {
  CHECK(pearson(Doubles{1, 2, 3, 4}, Doubles{2, 4, 6, 8}) == Approx(1.0));
  CHECK(pearson(Doubles{1, 2, 3, 4}, Doubles{8, 6, 4, 2}) == Approx(-1.0));
  // Means 2 and 2; centred x (-1,0,1), y (-1,1,0): sxy = 1, sxx = syy = 2 -> 0.5.
  CHECK(pearson(Doubles{1, 2, 3}, Doubles{1, 3, 2}) == Approx(0.5));
  // Shift and scale do not matter, and large offsets do not wreck the two-pass formula.
  CHECK(pearson(Doubles{1e9 + 1, 1e9 + 2, 1e9 + 3}, Doubles{10, 30, 20}) == Approx(0.5));
  SECTION("a constant side gives 0, not NaN") {
    CHECK(pearson(Doubles{3, 3, 3}, Doubles{1, 2, 3}) == 0.0);
    CHECK(pearson(Doubles{1, 2, 3}, Doubles{7, 7, 7}) == 0.0);
  }
}

TEST_CASE("average ranks share ties", "[metrics]") {
  CHECK(average_ranks(Doubles{10, 20, 20, 30}) == Doubles{1, 2.5, 2.5, 4});
  CHECK(average_ranks(Doubles{3, 1, 2}) == Doubles{3, 1, 2});
  CHECK(average_ranks(Doubles{5, 5, 5}) == Doubles{2, 2, 2});
  CHECK(average_ranks(Doubles{2, 1, 2, 1}) == Doubles{3.5, 1.5, 3.5, 1.5});
}

TEST_CASE("Spearman correlation", "[metrics]") {
  // Monotone but not linear: rank correlation 1 where Pearson is not.
  CHECK(spearman(Doubles{1, 2, 3, 4}, Doubles{1, 8, 27, 64}) == Approx(1.0));
  CHECK(pearson(Doubles{1, 2, 3, 4}, Doubles{1, 8, 27, 64}) < 0.99);
  CHECK(spearman(Doubles{1, 2, 3, 4}, Doubles{40, 30, 20, 10}) == Approx(-1.0));
  // Ties: ranks x = (1, 2.5, 2.5, 4), y = (1, 2, 3, 4), both mean 2.5. sxy = 2.25 + 2.25 = 4.5,
  // sxx = 4.5, syy = 5 -> 4.5 / sqrt(22.5) = sqrt(0.9) (scipy.stats.spearmanr agrees: 0.94868...).
  CHECK(spearman(Doubles{1, 2, 2, 3}, Doubles{1, 2, 3, 4}) == Approx(std::sqrt(0.9)));
  CHECK(spearman(Doubles{5, 5, 5}, Doubles{1, 2, 3}) == 0.0);
}

TEST_CASE("metrics reject empty and mismatched inputs", "[metrics]") {
  CHECK_THROWS_AS(accuracy(Ints{}, Ints{}), std::invalid_argument);
  CHECK_THROWS_AS(accuracy(Ints{1}, Ints{1, 0}), std::invalid_argument);
  CHECK_THROWS_AS(f1_positive(Ints{1, 0}, Ints{1}), std::invalid_argument);
  CHECK_THROWS_AS(pearson(Doubles{1, 2}, Doubles{1}), std::invalid_argument);
  CHECK_THROWS_AS(spearman(Doubles{}, Doubles{}), std::invalid_argument);
}

TEST_CASE("compute_task_metrics picks the paper's metrics per task", "[metrics]") {
  const Ints preds{1, 0, 1, 1}, labels{1, 1, 1, 0};  // acc 0.5, F1 2/3, MCC -1/3
  SECTION("CoLA: MCC is main") {
    Metrics m = compute_task_metrics("cola", preds, labels);
    CHECK(m.at("main") == Approx(-1.0 / 3.0));
    CHECK(m.at("mcc") == Approx(-1.0 / 3.0));
    CHECK(m.at("accuracy") == Approx(0.5));
    CHECK(m.size() == 3);
  }
  SECTION("MRPC and QQP: F1 is main, with accuracy and their average") {
    for (const char* task : {"MRPC", "qqp"}) {
      Metrics m = compute_task_metrics(task, preds, labels);
      CHECK(m.at("main") == Approx(2.0 / 3.0));
      CHECK(m.at("f1") == Approx(2.0 / 3.0));
      CHECK(m.at("accuracy") == Approx(0.5));
      CHECK(m.at("acc_and_f1") == Approx((0.5 + 2.0 / 3.0) / 2));
    }
  }
  SECTION("accuracy tasks") {
    for (const char* task : {"sst2", "RTE", "qnli", "wnli"}) {
      Metrics m = compute_task_metrics(task, preds, labels);
      CHECK(m.at("main") == Approx(0.5));
      CHECK(m.size() == 2);
    }
    CHECK(compute_task_metrics("mnli", Ints{0, 1, 2, 2}, Ints{0, 1, 2, 0}).at("main") == Approx(0.75));
  }
  SECTION("STS-B: Spearman is main, with Pearson and their average") {
    // x = (1,2,3,4), y = (1,3,2,4): ranks equal the values, so both correlations are 0.8.
    Metrics m = compute_task_metrics("STS-B", Floats{1, 2, 3, 4}, Floats{1, 3, 2, 4});
    CHECK(m.at("pearson") == Approx(0.8));
    CHECK(m.at("spearman") == Approx(0.8));
    CHECK(m.at("corr") == Approx(0.8));
    CHECK(m.at("main") == Approx(0.8));
  }
  SECTION("the wrong kind of predictions is rejected") {
    CHECK_THROWS_AS(compute_task_metrics("stsb", preds, labels), std::invalid_argument);
    CHECK_THROWS_AS(compute_task_metrics("sst2", Floats{1}, Floats{1}), std::invalid_argument);
    CHECK_THROWS_AS(compute_task_metrics("nope", preds, labels), DataError);
  }
}

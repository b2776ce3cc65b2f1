// Data-parallel training (train/distributed.h): dropout drawn by global index, batch shards, the
// weighted gradient all-reduce of every preset checked in one process against the whole batch (two
// ranks simulated by a loopback communicator), and `mpirun -np 2 unipelt train` against `-np 1` and a
// plain run (skipped where MPI is not built or mpirun is missing).
#include <catch2/catch.hpp>

#include <cmath>
#include <fstream>
#include <map>
#include <regex>

#include "autograd/dropout_hash.h"
#include "autograd/tape.h"
#include "pelt/method_checks.h"
#include "pelt/unipelt.h"
#include "train/distributed.h"
#include "train/process.h"
#include "tests/synthetic.h"
#include "tests/test_util.h"

using namespace unipelt;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// Pretends to be `rank` of `size`: an all-reduce keeps a copy of what this rank contributed and adds
// `others` (what the other ranks contributed, recorded earlier). Runs the ranks one after the other.
class Loopback final : public Communicator {
 public:
  Loopback(int rank, int size, std::vector<double> others = {}) : rank_(rank), size_(size), others_(std::move(others)) {}
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string describe() const override { return "loopback"; }
  void all_reduce_sum(float*, size_t) override { FAIL("the float64 model all-reduces doubles"); }
  void all_reduce_sum(double* data, size_t n) override {
    contributed.assign(data, data + n);
    if (!others_.empty()) {
      REQUIRE(others_.size() == n);
      for (size_t i = 0; i < n; ++i) data[i] += others_[i];
    }
  }
  void broadcast(void*, size_t, int) override {}
  void barrier() override {}
  [[noreturn]] void abort(int code) override { std::_Exit(code); }
  std::vector<double> contributed;

 private:
  int rank_, size_;
  std::vector<double> others_;
};

// pelt/method_checks.h's tiny BERT with dropout everywhere.
BertConfig tiny_config() {
  BertConfig c = tiny_bert_config(2);
  c.hidden_dropout_prob = c.attention_probs_dropout_prob = c.classifier_dropout = 0.2;
  return c;
}

// Examples of different lengths (3 to 11 tokens), labels alternating.
std::vector<EncodedExample> examples(size_t n) {
  std::vector<EncodedExample> out;
  for (size_t i = 0; i < n; ++i) {
    EncodedExample e;
    const size_t len = 3 + (i * 5) % 9;
    for (size_t t = 0; t < len; ++t) {
      e.input_ids.push_back(static_cast<int32_t>(t == 0 ? 2 : 5 + (i * 7 + t * 3) % 35));
      e.token_type_ids.push_back(t > len / 2 ? 1 : 0);
    }
    e.label = static_cast<int>(i % 2);
    out.push_back(e);
  }
  return out;
}

struct Step {
  double loss = 0.0;
  std::map<std::string, std::vector<double>> grads;
};

// Forward and backward of `comm`'s shard of `global` (dropout on, seed 1234); returns the shard's loss.
double shard_backward(PeltModel& model, const std::vector<NamedTensor>& params, const std::vector<EncodedExample>& data,
                      const std::vector<size_t>& global, Communicator& comm) {
  tape().clear();
  for (const NamedTensor& p : params) p.tensor.zero_grad();
  const ShardedBatch mine = shard_of(comm, data, global, 0);
  if (mine.indices.empty()) return 0.0;
  Batch batch = make_batch(data, mine.indices, false, true, mine.pad_to, DType::F64, Device::CPU);
  ForwardContext ctx{true, 1234, 0, mine.example_offset};
  auto out = model.forward(batch, ctx);
  backward(out.loss);
  return out.loss.item();
}

Step gradients_of(const std::vector<NamedTensor>& params, double loss) {
  Step s{loss, {}};
  for (const NamedTensor& p : params) {
    REQUIRE(p.tensor.grad().defined());  // every trainable tensor of every preset gets a gradient
    s.grads[p.name] = p.tensor.grad().to_vector();
  }
  return s;
}

// The whole batch in one process, and the same batch as two simulated ranks.
std::pair<Step, Step> single_and_two_ranks(const std::string& method, size_t batch_size) {
  BertForSequenceClassification bert(tiny_config(), DType::F64, Device::CPU);
  init_tiny_bert(bert, 3);
  PeltModel model(bert, testing::small_preset(method, 8), 5);
  const std::vector<NamedTensor> params = model.trainable_parameters();
  const std::vector<EncodedExample> data = examples(9);
  std::vector<size_t> global;
  for (size_t i = 0; i < batch_size; ++i) global.push_back((i * 4 + 1) % data.size());
  const GradientAllReduce reducer(params);

  // The whole batch, padded like the shards to its longest sequence (make_batch does that anyway).
  const Step whole = gradients_of(params, shard_backward(model, params, data, global, single_process()));

  Loopback rank1(1, 2);
  const double loss1 = shard_backward(model, params, data, global, rank1);
  const size_t n1 = batch_shard(global.size(), 1, 2).size();
  reducer.reduce(rank1, n1, global.size());
  for (const NamedTensor& p : params) CHECK(p.tensor.grad().defined());  // even for an empty shard

  Loopback rank0(0, 2, rank1.contributed);
  const double loss0 = shard_backward(model, params, data, global, rank0);
  const size_t n0 = batch_shard(global.size(), 0, 2).size();
  reducer.reduce(rank0, n0, global.size());
  const double B = static_cast<double>(global.size());
  return {whole, gradients_of(params, loss0 * static_cast<double>(n0) / B + loss1 * static_cast<double>(n1) / B)};
}

// max |a - b| over max |a|, with a floor: some gradients are zero in exact arithmetic (a key bias: the
// softmax does not see a constant added to every score) and only rounding noise of 1e-17 here.
double relative_difference(const std::vector<double>& a, const std::vector<double>& b) {
  double diff = 0.0, scale = 1e-6;
  for (size_t i = 0; i < a.size(); ++i) {
    diff = std::max(diff, std::abs(a[i] - b[i]));
    scale = std::max(scale, std::abs(a[i]));
  }
  return diff / scale;
}

}  // namespace

TEST_CASE("dropout's index offset: a shard draws its rows of the whole tensor's mask", "[distributed]") {
  const Tensor x = Tensor::full({6, 5}, 1.0, DType::F64);
  const std::vector<double> whole = ops::dropout(x, 0.4, 99, true).to_vector();
  const std::vector<double> rows_2_to_5 = ops::dropout(Tensor::full({4, 5}, 1.0, DType::F64), 0.4, 99, true, 10).to_vector();
  CHECK(std::vector<double>(whole.begin() + 10, whole.end()) == rows_2_to_5);
  CHECK(ops::dropout(x, 0.4, 99, true, 0).to_vector() == whole);  // offset 0: the seed itself, bit for bit
  CHECK(dropout_bits(dropout_seed_at(7, 1000), 5) == dropout_bits(7, 1005));
  CHECK_THROWS_WITH(ops::dropout(x, 0.4, 99, true, -1), Catch::Contains("index offset must be >= 0"));
}

TEST_CASE("batch shards: contiguous, in rank order, sizes differing by at most one", "[distributed]") {
  for (size_t n = 0; n <= 13; ++n)
    for (int size = 1; size <= 5; ++size) {
      size_t next = 0;
      for (int r = 0; r < size; ++r) {
        const Shard s = batch_shard(n, r, size);
        CHECK(s.begin == next);
        CHECK((s.size() == n / size || s.size() == n / size + 1));
        next = s.end;
      }
      CHECK(next == n);
    }
  CHECK_THROWS(batch_shard(4, 2, 2));
}

TEST_CASE("two ranks' weighted, all-reduced gradients equal the whole batch's, for every preset", "[distributed]") {
  // Batch 5: shards of 3 and 2 (unequal weights); batch 1: rank 1's shard is empty (a last batch of 1).
  for (size_t batch : {size_t{5}, size_t{1}})
    for (const std::string& method : preset_names()) {
      INFO(method << ", batch " << batch);
      const auto [whole, ranks] = single_and_two_ranks(method, batch);
      CHECK(std::abs(whole.loss - ranks.loss) <= 1e-12 * std::abs(whole.loss));
      for (const auto& [name, g] : whole.grads) {
        INFO(name);
        CHECK(relative_difference(g, ranks.grads.at(name)) <= 1e-10);
      }
    }
}

TEST_CASE("GradientAllReduce moves the trainable parameters only, in their dtype", "[distributed]") {
  BertForSequenceClassification bert(tiny_config(), DType::F32, Device::CPU);
  PeltModel model(bert, testing::small_preset("lora", 8), 1);
  int64_t trainable = 0;
  for (const NamedTensor& p : model.trainable_parameters()) trainable += p.tensor.numel();
  const GradientAllReduce reducer(model.trainable_parameters());
  CHECK(reducer.values() == static_cast<size_t>(trainable));
  CHECK(reducer.bytes() == 4 * static_cast<size_t>(trainable));
  const ParameterCounts counts = count_parameters(model);
  CHECK(static_cast<int64_t>(reducer.values()) == counts.trained + counts.head);
}

// ---------------------------------------------------------------------------------------------
// The real thing: mpirun
// ---------------------------------------------------------------------------------------------

namespace {

std::vector<json> read_jsonl(const fs::path& path) {
  std::ifstream in(path);
  std::vector<json> lines;
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) lines.push_back(json::parse(line));
  return lines;
}

// `unipelt train` on the synthetic task: K = 57 with batch 8 ends each epoch on a batch of 1, so with
// two ranks the last shard of every epoch is empty; dev (1,000 examples, 8 batches of 128) is sharded,
// test (60 examples, one batch) is evaluated by every rank.
std::vector<std::string> train_args(const testing::SyntheticSetup& s, const fs::path& out) {
  return {"train",        "--task",       "SST-2",         "--method",   "unipelt-apl", "--model",
          s.model_dir,    "--data",       s.data_dir,      "--out",      out.string(),  "--k",
          "57",           "--epochs",     "2",             "--batch-size", "8",         "--max-len",
          "32",           "--eval-batch-size", "128",      "--adapter-size", "4",       "--prefix-len",
          "3",            "--prefix-mid", "16",            "--lora-r",   "2",           "--lr",
          "5e-3"};
}

int mpirun_train(int ranks, const std::vector<std::string>& args, const fs::path& log) {
  std::vector<std::string> cmd = {"mpirun", "--allow-run-as-root", "--oversubscribe", "-np", std::to_string(ranks),
                                  "-x", "OPENBLAS_NUM_THREADS=1", UNIPELT_CLI};
  cmd.insert(cmd.end(), args.begin(), args.end());
  const CommandResult r = run_command(cmd, 240);
  std::ofstream(log) << r.output;
  return r.exit_code;
}

}  // namespace

TEST_CASE("mpirun -np 2 unipelt train: the losses and test metric of -np 1, all-reducing the trainable "
          "parameters only", "[distributed][mpi]") {
  if (!built_with_mpi())
    testing::skip("this build has no MPI (CMake did not find it; install libopenmpi-dev, scripts/install-deps.sh)");
  if (run_command({"mpirun", "--version"}).exit_code != 0)
    testing::skip("mpirun is not installed (openmpi-bin, scripts/install-deps.sh)");
  const fs::path root = testing::scratch_dir("distributed_mpirun");
  const auto s = testing::make_synthetic_setup(root);
  const testing::ScopedEnv one_blas_thread("OPENBLAS_NUM_THREADS", "1");

  REQUIRE(testing::run_cli(train_args(s, root / "plain"), root / "plain.out", root / "plain.err") == 0);
  const int np1 = mpirun_train(1, train_args(s, root / "np1"), root / "np1.log");
  INFO(testing::read_text(root / "np1.log"));
  REQUIRE(np1 == 0);
  const int np2 = mpirun_train(2, train_args(s, root / "np2"), root / "np2.log");
  const std::string log2 = testing::read_text(root / "np2.log");
  INFO(log2);
  REQUIRE(np2 == 0);

  // -np 1 is the single-process run, bit for bit.
  const std::vector<json> plain = read_jsonl(root / "plain" / "metrics.jsonl"), one = read_jsonl(root / "np1" / "metrics.jsonl"),
                          two = read_jsonl(root / "np2" / "metrics.jsonl");
  REQUIRE(plain.size() == 2);
  REQUIRE(one.size() == 2);
  REQUIRE(two.size() == 2);
  for (size_t e = 0; e < 2; ++e) {
    CHECK(one[e].at("train_loss") == plain[e].at("train_loss"));
    const double l1 = one[e].at("train_loss"), l2 = two[e].at("train_loss");
    INFO("epoch " << e + 1 << ": train loss " << l1 << " (-np 1) vs " << l2 << " (-np 2)");
    CHECK(std::abs(l1 - l2) <= 1e-5 * std::abs(l1));
    // Dev accuracy of 1,000 examples after the same steps: an example may only flip where its two logits
    // are closer than the runs' float32 rounding differences.
    CHECK(std::abs(two[e].at("dev").at("main").get<double>() - one[e].at("dev").at("main").get<double>()) <= 0.002);
  }
  const json r1 = json::parse(testing::read_text(root / "np1" / "results.json"));
  const json r2 = json::parse(testing::read_text(root / "np2" / "results.json"));
  CHECK(r2.at("test") == r1.at("test"));
  CHECK(r2.at("best_epoch") == r1.at("best_epoch"));

  // The bytes all-reduced per step: every trainable parameter (PELT tensors and head), nothing else.
  REQUIRE(testing::run_cli({"params", "--config", (s.model_dir / "config.json").string(), "--method", "unipelt-apl",
                            "--adapter-size", "4", "--prefix-len", "3", "--prefix-mid", "16", "--lora-r", "2", "--json"},
                           root / "params.json", root / "params.err") == 0);
  const json params = json::parse(testing::read_text(root / "params.json"));
  const int64_t trainable = params.at("trained").get<int64_t>() + params.at("head").get<int64_t>();
  CHECK(r2.at("data_parallel").at("ranks") == 2);
  CHECK(r2.at("data_parallel").at("allreduce_values_per_step") == trainable);
  CHECK(r2.at("data_parallel").at("allreduce_bytes_per_step") == 4 * trainable);
  std::smatch m;
  REQUIRE(std::regex_search(log2, m, std::regex(R"(each step all-reduces (\d+) gradient values \(f32, (\d+) bytes\))")));
  CHECK(std::stoll(m[1]) == trainable);
  CHECK(std::stoll(m[2]) == 4 * trainable);
  CHECK(!r1.contains("data_parallel"));  // one rank: nothing to all-reduce
}

// Files for other tools: runs exported as peft LoRA adapters and as transformers model directories, and
// read back (export -> import gives the same tensors and logits); peft adapters in `eval` and
// `grads --init`; `unipelt convert`. Runs are tiny synthetic ones (tests/synthetic.h).
#include <algorithm>
#include <catch2/catch.hpp>
#include <cstring>
#include <fstream>
#include <sstream>

#include "autograd/tape.h"
#include "nn/batch_io.h"
#include "nn/bert_loader.h"
#include "nn/safetensors.h"
#include "pelt/grads.h"
#include "pelt/peft_format.h"
#include "train/export.h"
#include "train/saved_run.h"
#include "train/trainer.h"
#include "tests/synthetic.h"
#include "tests/test_util.h"

using namespace unipelt;
using Catch::Contains;
using testing::same_bits;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

fs::path fixtures() { return testing::source_dir() / "tests" / "fixtures"; }

// A finished tiny run of `method` under root/run-METHOD.
fs::path tiny_run(const fs::path& root, const testing::SyntheticSetup& s, const std::string& method) {
  TrainConfig c;
  c.pelt = testing::small_preset(method, 16);
  c.model_dir = s.model_dir.string();
  c.data_dir = s.data_dir.string();
  c.out_dir = (root / ("run-" + method)).string();
  c.k = 64;
  c.epochs = 2;
  c.batch_size = 8;
  c.max_len = 32;
  c.eval_batch_size = 128;
  c.lr = 1e-2;
  std::ostringstream log;
  REQUIRE(train_glue(c, false, log).finished);
  return c.out_dir;
}

// Logits of a loaded run on its test split, in one batch.
Tensor test_logits(LoadedRun& run) {
  NoGradGuard no_grad;
  const auto data = run_examples(run, "test");
  std::vector<size_t> idx(data.size());
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = i;
  Batch batch = make_batch(data, idx, false, false, 0, DType::F32, Device::CPU);
  ForwardContext ctx;
  return run.model->forward(batch, ctx).logits;
}

json read_json(const fs::path& path) { return json::parse(testing::read_text(path)); }

}  // namespace

TEST_CASE("LoRA run -> peft adapter -> back: same tensors, same logits, same eval", "[export]") {
  const fs::path root = testing::scratch_dir("export_peft");
  const auto s = testing::make_synthetic_setup(root);
  const fs::path run = tiny_run(root, s, "lora"), out = root / "peft";
  const std::vector<std::string> files = export_run(run, ExportFormat::Peft, out);
  CHECK(files == std::vector<std::string>{"adapter_model.safetensors", "adapter_config.json", "unipelt_run.json"});

  // The files peft's save_pretrained writes for this LoRA.
  const json config = read_json(out / "adapter_config.json");
  CHECK(config.at("peft_type") == "LORA");
  CHECK(config.at("task_type") == "SEQ_CLS");
  CHECK(config.at("r") == 2);
  CHECK(config.at("lora_alpha") == 4);
  CHECK(config.at("target_modules") == json({"query", "value"}));
  CHECK(config.at("modules_to_save").at(0) == "classifier");
  CHECK(config.at("bias") == "none");
  CHECK(config.at("base_model_name_or_path") == fs::absolute(s.model_dir).string());
  SafetensorsFile adapter(out / "adapter_model.safetensors"), best(run / "best" / "pelt_model.safetensors");
  CHECK(adapter.names().size() == best.names().size());
  CHECK(adapter.contains("base_model.model.bert.encoder.layer.0.attention.self.query.lora_A.weight"));
  CHECK(adapter.contains("base_model.model.bert.encoder.layer.1.attention.self.value.lora_B.weight"));
  CHECK(adapter.contains("base_model.model.classifier.weight"));
  CHECK(adapter.contains("base_model.model.classifier.bias"));
  for (const std::string& name : adapter.names()) {
    INFO(name);
    CHECK(name.starts_with("base_model.model."));
    CHECK(same_bits(adapter.load(name), best.load(peft_to_unipelt_name(name))));
  }
  CHECK(unipelt_to_peft_name(peft_to_unipelt_name("base_model.model.classifier.bias")) == "base_model.model.classifier.bias");

  // Import: the adapter directory is a run for eval, with the same logits and metrics.
  LoadedRun original = load_run(run), imported = load_run(out);
  CHECK(imported.model->config().lora_r == 2);
  CHECK(same_bits(test_logits(imported), test_logits(original)));
  const json results = read_json(run / "results.json");
  const fs::path o = root / "out.txt", e = root / "err.txt";
  REQUIRE(testing::run_cli({"eval", out.string(), "--json"}, o, e) == 0);
  CHECK(json::parse(testing::read_text(o)).at("metrics") == results.at("test"));

  CHECK(testing::run_cli({"eval", run.string(), "--task", "sst2"}, o, e) == 2);  // a run names its own task
  CHECK_THAT(testing::read_text(e), Contains("--task is for peft adapter directories only"));
  // An adapter trained elsewhere has no unipelt_run.json: eval needs --task and --data.
  fs::remove(out / kPeftRunFile);
  CHECK(testing::run_cli({"eval", out.string()}, o, e) == 2);
  CHECK_THAT(testing::read_text(e), Contains("--task"));
  REQUIRE(testing::run_cli({"eval", out.string(), "--json", "--task", "sst2", "--data", s.data_dir.string()}, o, e) == 0);
  CHECK(json::parse(testing::read_text(o)).at("metrics") == results.at("test"));  // the test split ignores K
}

TEST_CASE("gated, adapter and prefix runs are refused by the exports that cannot hold them", "[export]") {
  const fs::path root = testing::scratch_dir("export_refused");
  const auto s = testing::make_synthetic_setup(root);
  const fs::path apl = tiny_run(root, s, "unipelt-apl"), adapter = tiny_run(root, s, "adapter");
  CHECK_THROWS_WITH(export_run(apl, ExportFormat::Peft, root / "x"), Contains("gated") && Contains("peft has no gates"));
  CHECK_THROWS_WITH(export_run(adapter, ExportFormat::Peft, root / "x"), Contains("has no LoRA"));
  CHECK_THROWS_WITH(export_run(adapter, ExportFormat::Transformers, root / "x"), Contains("an adapter"));
  CHECK_THROWS_WITH(export_run(apl, ExportFormat::Transformers, root / "x"), Contains("gates"));
  CHECK_FALSE(fs::exists(root / "x"));  // nothing is written for a refused run
  const fs::path o = root / "out.txt", e = root / "err.txt";
  CHECK(testing::run_cli({"export", apl.string(), "--format", "peft", "--out", (root / "x").string()}, o, e) == 2);
  CHECK_THAT(testing::read_text(e), Contains("gated"));
}

TEST_CASE("fine-tuning, BitFit and merged-LoRA runs -> transformers directory -> back: same logits", "[export]") {
  const fs::path root = testing::scratch_dir("export_transformers");
  const auto s = testing::make_synthetic_setup(root);
  for (const char* method : {"finetune", "bitfit", "lora"}) {
    INFO(method);
    const fs::path run = tiny_run(root, s, method), out = root / (std::string("hf-") + method);
    const fs::path o = root / "out.txt", e = root / "err.txt";
    REQUIRE(testing::run_cli({"export", run.string(), "--format", "transformers", "--out", out.string()}, o, e) == 0);
    for (const char* f : {"config.json", "model.safetensors", "vocab.txt", "tokenizer_config.json"})
      CHECK(fs::exists(out / f));
    const json config = read_json(out / "config.json");
    CHECK(config.at("num_labels") == 2);
    CHECK(config.at("id2label") == json({{"0", "negative"}, {"1", "positive"}}));
    CHECK(config.at("label2id") == json({{"negative", 0}, {"positive", 1}}));
    CHECK(config.at("problem_type") == "single_label_classification");
    CHECK(config.at("architectures") == json({"BertForSequenceClassification"}));
    CHECK(read_json(out / "tokenizer_config.json").at("do_lower_case") == true);
    CHECK(testing::read_text(out / "vocab.txt") == testing::read_text(s.model_dir / "vocab.txt"));
    SafetensorsFile weights(out / "model.safetensors");
    CHECK(weights.contains("bert.encoder.layer.1.attention.self.query.weight"));
    CHECK(weights.contains("classifier.weight"));
    CHECK_FALSE(weights.contains("bert.encoder.layer.0.attention.self.query.lora_A"));

    // Our loader reads the directory back as a plain BERT; the logits match the run's best model
    // exactly (LoRA: up to the rounding of the merge W + s·B·A).
    LoadedRun original = load_run(run);
    const Tensor expected = test_logits(original);
    LoadedRun reloaded = load_run(run);
    reloaded.model.reset();
    reloaded.base = load_bert(out, {});
    CHECK(reloaded.base->config().id2label == std::vector<std::string>{"negative", "positive"});
    reloaded.model = std::make_unique<PeltModel>(*reloaded.base, preset("finetune"), 0);
    const Tensor got = test_logits(reloaded);
    if (std::string(method) == "lora") CHECK(testing::max_abs_diff(got, expected) < 1e-5);
    else CHECK(same_bits(got, expected));
  }
}

TEST_CASE("grads --init takes a peft adapter directory: same outputs as the safetensors it came from", "[export]") {
  const fs::path root = testing::scratch_dir("export_grads_init");
  BertLoadOptions options;
  options.num_labels = 3;
  options.dtype = DType::F64;
  auto base = load_bert(fixtures() / "tiny-bert", options);
  PeltModel model(*base, testing::small_preset("lora"), 0);
  load_named_tensors(model, fixtures() / "pelt" / "lora-cls.safetensors");
  save_peft_adapter(root / "adapter", model, (fixtures() / "tiny-bert").string());
  const std::vector<std::string> common = {"grads", "--model", (fixtures() / "tiny-bert").string(), "--batch",
                                           (fixtures() / "batch-cls.safetensors").string(), "--method", "lora",
                                           "--num-labels", "3", "--dtype", "f64", "--lora-r", "2", "--lora-alpha", "4"};
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = common;
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  };
  const fs::path o = root / "out.txt", e = root / "err.txt";
  REQUIRE(testing::run_cli(with({"--init", (fixtures() / "pelt" / "lora-cls.safetensors").string(), "--out",
                                 (root / "a.safetensors").string()}), o, e) == 0);
  REQUIRE(testing::run_cli(with({"--init", (root / "adapter").string(), "--out", (root / "b.safetensors").string()}), o,
                           e) == 0);
  SafetensorsFile a(root / "a.safetensors"), b(root / "b.safetensors");
  REQUIRE(a.names() == b.names());
  for (const std::string& name : a.names()) {
    INFO(name);
    CHECK(same_bits(a.load(name, DType::F64), b.load(name, DType::F64)));
  }
  // Another rank than the adapter's is refused, naming the flags to pass.
  std::vector<std::string> wrong = with({"--init", (root / "adapter").string(), "--out", (root / "c.safetensors").string()});
  wrong[std::find(wrong.begin(), wrong.end(), "--lora-r") - wrong.begin() + 1] = "4";
  CHECK(testing::run_cli(wrong, o, e) == 2);
  CHECK_THAT(testing::read_text(e), Contains("--lora-r 2"));
}

TEST_CASE("peft adapter configs that are not a query/value LoRA are refused, naming the setting", "[export]") {
  const fs::path dir = testing::scratch_dir("export_peft_config");
  auto refused = [&](const json& config) {
    std::ofstream(dir / "adapter_config.json") << config.dump();
    try {
      read_peft_config(dir);
    } catch (const std::exception& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  const json good = {{"peft_type", "LORA"}, {"r", 4}, {"lora_alpha", 8}, {"target_modules", {"value", "query"}}};
  auto changed = [&](const json& patch) {
    json j = good;
    j.update(patch);
    return j;
  };
  CHECK(refused(good) == "accepted");
  CHECK(refused(changed({{"base_model_name_or_path", nullptr}, {"revision", nullptr}})) == "accepted");
  CHECK_THAT(refused(changed({{"peft_type", 3}})), Contains("peft_type is 3"));
  CHECK_THAT(refused(changed({{"peft_type", "IA3"}})), Contains("peft_type"));
  CHECK_THAT(refused(changed({{"target_modules", {"query", "key", "value"}}})), Contains("target_modules"));
  CHECK_THAT(refused(changed({{"use_dora", true}})), Contains("use_dora"));
  CHECK_THAT(refused(changed({{"use_rslora", true}})), Contains("use_rslora"));
  CHECK_THAT(refused(changed({{"bias", "all"}})), Contains("bias"));
  CHECK_THAT(refused(changed({{"rank_pattern", {{"layer.0", 2}}}})), Contains("rank_pattern"));
  CHECK_THAT(refused(changed({{"r", 0}})), Contains("r must be"));
}

TEST_CASE("unipelt convert writes model.safetensors beside a pytorch_model.bin", "[export][torch]") {
  const fs::path dir = testing::scratch_dir("convert_cli");
  fs::copy_file(fixtures() / "tiny-bert" / "config.json", dir / "config.json");
  fs::copy_file(fixtures() / "torch" / "tiny-bert-f32-legacy.bin", dir / "pytorch_model.bin");
  const fs::path o = dir / "out.txt", e = dir / "err.txt";
  REQUIRE(testing::run_cli({"convert", "--model", dir.string()}, o, e) == 0);
  CHECK_THAT(testing::read_text(o), Contains("legacy checkpoint") && Contains("model.safetensors"));
  SafetensorsFile converted(dir / "model.safetensors"), reference(fixtures() / "tiny-bert" / "model.safetensors");
  REQUIRE(converted.names() == reference.names());
  for (const std::string& name : converted.names()) CHECK(same_bits(converted.load(name), reference.load(name)));
  CHECK(testing::run_cli({"convert", "--model", dir.string()}, o, e) == 2);  // exists: needs --force
  CHECK_THAT(testing::read_text(e), Contains("--force"));
  CHECK(testing::run_cli({"convert", "--model", dir.string(), "--force"}, o, e) == 0);
}

// A BertForMaskedLM checkpoint has no pooler: loading initialises it (as transformers does) and says so.
#include <catch2/catch.hpp>

#include "nn/bert_loader.h"
#include "nn/safetensors.h"
#include "pelt/method_checks.h"
#include "tests/test_util.h"

using namespace unipelt;

TEST_CASE("a checkpoint without a pooler loads with the pooler initialised and reported", "[bert]") {
  const auto dir = testing::scratch_dir("no_pooler");
  BertConfig config = tiny_bert_config(2);
  BertForSequenceClassification source(config, DType::F32);
  source.init_weights(3);
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (auto& [name, t] : state_dict(source))
    if (name.rfind("bert.pooler.", 0) != 0 && name.rfind("classifier.", 0) != 0) tensors.emplace_back(name, t);
  write_safetensors(dir / "model.safetensors", tensors);
  save_bert_config(config, dir / "config.json");

  BertLoadReport report;
  auto model = load_bert(dir, {}, &report);
  CHECK(report.pooler_initialised);
  CHECK(report.classifier_initialised);
  CHECK(report.summary().find("pooler initialised") != std::string::npos);
  // The pooler got BERT's init (normal weights, zero bias), not zeros.
  std::vector<double> w = model->pooler.weight.to_vector();
  double sum_sq = 0;
  for (double v : w) sum_sq += v * v;
  CHECK(sum_sq > 0.0);
  // Every other tensor came from the file.
  CHECK(model->word_embeddings.weight.to_vector() == source.word_embeddings.weight.to_vector());
}

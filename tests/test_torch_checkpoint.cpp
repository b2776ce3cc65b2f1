// PyTorch checkpoints: the restricted unpickler, both torch.save containers, strided views of shared
// storages, float16/bfloat16 conversion, hostile files, and .bin model directories in load_bert.
// Fixtures: tests/fixtures/torch/ (tests/reference/make_torch_fixtures.py).
#include <algorithm>
#include <catch2/catch.hpp>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "nn/batch_io.h"
#include "nn/bert_loader.h"
#include "nn/pickle.h"
#include "nn/safetensors.h"
#include "nn/torch_checkpoint.h"
#include "tests/test_util.h"

using namespace unipelt;
using Catch::Contains;
using testing::same_bits;
using namespace std::string_literals;
namespace fs = std::filesystem;

namespace {

fs::path torch_fixtures() { return testing::source_dir() / "tests" / "fixtures" / "torch"; }
fs::path tiny_bert() { return testing::source_dir() / "tests" / "fixtures" / "tiny-bert"; }

std::vector<std::byte> file_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::string s((std::istreambuf_iterator<char>(in)), {});
  std::vector<std::byte> out(s.size());
  std::memcpy(out.data(), s.data(), s.size());
  return out;
}

// A model directory holding the tiny BERT's config and `bin` as pytorch_model.bin (and nothing else).
fs::path bin_model_dir(const std::string& name, const std::string& bin) {
  fs::path dir = testing::scratch_dir(name);
  fs::copy_file(tiny_bert() / "config.json", dir / "config.json");
  fs::copy_file(torch_fixtures() / bin, dir / "pytorch_model.bin");
  return dir;
}

PickleRef unpickle_bytes(const std::string& bytes, const UnpickleRules& rules = {}) {
  std::vector<std::byte> data(bytes.size());
  std::memcpy(data.data(), bytes.data(), bytes.size());
  return unpickle(data, 0, rules, "test");
}

}  // namespace

TEST_CASE("zip and legacy .bin of the tiny BERT load bit-identical to its safetensors", "[torch]") {
  SafetensorsFile reference(tiny_bert() / "model.safetensors");
  for (const char* file : {"tiny-bert-f32-zip.bin", "tiny-bert-f32-legacy.bin"}) {
    INFO(file);
    TorchCheckpoint bin(torch_fixtures() / file);
    CHECK(bin.format() == (std::string(file).find("zip") != std::string::npos ? "zip" : "legacy"));
    REQUIRE(bin.names() == reference.names());
    for (const std::string& name : bin.names()) {
      INFO(name);
      CHECK(bin.info(name).dtype == StDType::F32);
      CHECK(same_bits(bin.load(name), reference.load(name)));  // F64 file rounded to F32 = torch's .float()
    }
  }
}

TEST_CASE("float16 .bin files load, converted to float32 exactly as a float16 safetensors", "[torch]") {
  SafetensorsFile expected(torch_fixtures() / "tiny-bert-f16-expected.safetensors");
  for (const char* file : {"tiny-bert-f16-zip.bin", "tiny-bert-f16-legacy.bin"}) {
    INFO(file);
    TorchCheckpoint bin(torch_fixtures() / file);
    REQUIRE(bin.names() == expected.names());
    for (const std::string& name : bin.names()) {
      INFO(name);
      CHECK(bin.info(name).dtype == StDType::F16);
      CHECK(same_bits(bin.load(name, DType::F32), expected.load(name, DType::F32)));
      CHECK(same_bits(bin.load(name, DType::F64), expected.load(name, DType::F64)));
    }
  }
}

TEST_CASE("load_bert reads pytorch_model.bin when there is no model.safetensors: same weights, same logits", "[torch]") {
  BertLoadOptions options;
  options.num_labels = 3;
  auto reference = load_bert(tiny_bert(), options);
  Batch batch = read_batch(tiny_bert() / ".." / "batch-cls.safetensors", DType::F32, Device::CPU, false);
  ForwardContext ctx;
  const Tensor expected_logits = reference->forward(batch, ctx).logits;
  for (const char* file : {"tiny-bert-f32-zip.bin", "tiny-bert-f32-legacy.bin"}) {
    INFO(file);
    BertLoadReport report;
    auto model = load_bert(bin_model_dir("torch_bin_model", file), options, &report);
    CHECK(report.weights.filename() == "pytorch_model.bin");
    CHECK_THAT(report.summary(), Contains("from pytorch_model.bin"));
    const auto a = model->parameters(), b = reference->parameters();
    REQUIRE(a.size() == b.size());
    for (size_t i = 0; i < a.size(); ++i) {
      INFO(a[i].name);
      CHECK(same_bits(a[i].tensor, b[i].tensor));  // the classifier too: both initialised from the same seed
    }
    ForwardContext ctx2;
    CHECK(same_bits(model->forward(batch, ctx2).logits, expected_logits));
  }
  // With both files present, the safetensors one is used.
  fs::path both = bin_model_dir("torch_bin_and_safetensors", "tiny-bert-f16-zip.bin");
  fs::copy_file(tiny_bert() / "model.safetensors", both / "model.safetensors");
  BertLoadReport report;
  load_bert(both, options, &report);
  CHECK(report.weights.filename() == "model.safetensors");
  CHECK_THAT(report.summary(), !Contains("pytorch_model.bin"));
}

TEST_CASE("strided views of one shared storage, bfloat16, float64, int64, 0-d and empty tensors", "[torch]") {
  SafetensorsFile expected(torch_fixtures() / "shared-strided-expected.safetensors");
  for (const char* file : {"shared-strided-zip.bin", "shared-strided-legacy.bin"}) {
    INFO(file);
    TorchCheckpoint bin(torch_fixtures() / file);
    REQUIRE(bin.names() == expected.names());
    // The views really are views: one storage, with offsets and strides.
    CHECK(bin.info("transposed").storage == bin.info("base").storage);
    CHECK(bin.info("tied").storage == bin.info("base").storage);
    CHECK(bin.info("transposed").stride == std::vector<int64_t>{1, 6});
    CHECK(bin.info("slice").offset == 6);
    CHECK(bin.info("slice").stride == std::vector<int64_t>{6, 2});
    CHECK(bin.info("column").offset == 2);
    CHECK(bin.info("bf16").dtype == StDType::BF16);
    CHECK(bin.info("scalar").shape.empty());
    for (const std::string& name : bin.names()) {
      INFO(name);
      const StDType stored = expected.info(name).dtype;
      const DType as = stored == StDType::I64 ? DType::I32 : stored == StDType::F64 ? DType::F64 : DType::F32;
      CHECK(same_bits(bin.load(name, as), expected.load(name, as)));
    }
  }
}

TEST_CASE("the newer torch layout: archive/ folder, .data/version, byteorder record, protocol 4", "[torch]") {
  TorchCheckpoint bin(torch_fixtures() / "torch2-layout.bin");
  CHECK(bin.names() == std::vector<std::string>{"w"});
  CHECK(bin.load("w").to_vector() == std::vector<double>{0, 1, 2, 3, 4, 5});
  CHECK(bin.shape("w") == std::vector<int64_t>{2, 3});
  // The same bytes from memory: the constructor the fuzzer uses.
  TorchCheckpoint from_memory(file_bytes(torch_fixtures() / "torch2-layout.bin"), "in-memory.bin");
  CHECK(same_bits(from_memory.load("w"), bin.load("w")));
}

TEST_CASE("hostile .bin files are refused with an error naming the global, opcode or problem", "[torch]") {
  std::ifstream in(torch_fixtures() / "hostile.json");
  const nlohmann::json cases = nlohmann::json::parse(in);
  REQUIRE(cases.size() >= 6);
  for (const auto& c : cases) {
    const std::string file = c.at("file"), error = c.at("error");
    INFO(file << ": " << c.at("what").get<std::string>());
    CHECK_THROWS_WITH(TorchCheckpoint(torch_fixtures() / file), Contains(error) && Contains(file));
    CHECK_THROWS_WITH(TorchCheckpoint(file_bytes(torch_fixtures() / file), file), Contains(error));
  }
}

TEST_CASE("a .bin converts to safetensors with its dtypes kept and views made contiguous", "[torch]") {
  const fs::path dir = testing::scratch_dir("torch_convert");
  for (const char* file : {"tiny-bert-f16-legacy.bin", "shared-strided-zip.bin"}) {
    INFO(file);
    TorchCheckpoint bin(torch_fixtures() / file);
    write_checkpoint_as_safetensors(bin, dir / "out.safetensors");
    SafetensorsFile st(dir / "out.safetensors");
    REQUIRE(st.names() == bin.names());
    CHECK(st.metadata().at("format") == "pt");
    for (const std::string& name : st.names()) {
      INFO(name);
      CHECK(st.info(name).dtype == bin.info(name).dtype);
      CHECK(st.info(name).shape == bin.info(name).shape);
      const auto raw = st.raw(name);
      const std::vector<std::byte> bytes = bin.contiguous_bytes(name);
      CHECK(std::equal(raw.begin(), raw.end(), bytes.begin(), bytes.end()));  // (memcmp: UB on empty ones)
    }
  }
}

TEST_CASE("unpickler: values, memo, sign extension, and errors that name the byte", "[torch][pickle]") {
  // {"a": (1, -2, 300), "b": [1.5, None, True], "c": -129 (LONG1), "d": memo copy of "a"'s tuple}
  std::string p = "\x80\x02}q\x00(X\x01\x00\x00\x00" "aK\x01J\xfe\xff\xff\xffM\x2c\x01\x87q\x01"
                  "X\x01\x00\x00\x00" "b](G\x3f\xf8\x00\x00\x00\x00\x00\x00N\x88" "e"
                  "X\x01\x00\x00\x00" "c\x8a\x02\x7f\xff" "X\x01\x00\x00\x00" "dh\x01u."s;
  PickleRef v = unpickle_bytes(p);
  REQUIRE(v->is(PickleValue::Kind::Dict));
  REQUIRE(v->entries.size() == 4);
  const PickleValue& a = *v->entries[0].second;
  CHECK(a.items.size() == 3);
  CHECK(a.items[1]->integer == -2);
  CHECK(a.items[2]->integer == 300);
  CHECK(v->entries[1].second->items[0]->real == 1.5);
  CHECK(v->entries[1].second->items[2]->boolean);
  CHECK(v->entries[2].second->integer == -129);
  CHECK(v->entries[3].second.get() == v->entries[0].second.get());  // the memo returns the same object

  CHECK_THROWS_WITH(unpickle_bytes("\x80\x02\xff"), Contains("byte 2") && Contains("unknown opcode 0xff"));
  CHECK_THROWS_WITH(unpickle_bytes("\x80\x02X\xff\x00\x00\x00" "ab"s), Contains("truncated"));
  CHECK_THROWS_WITH(unpickle_bytes("\x80\x02K\x01K\x02."), Contains("2 values on the stack"));
  CHECK_THROWS_WITH(unpickle_bytes("\x80\x02]q\x00h\x00" "a."s), Contains("inside itself"));
  // A list stored in a tuple can no longer change, so no reference cycle can be built.
  CHECK_THROWS_WITH(unpickle_bytes("\x80\x02]q\x00\x85h\x00K\x01" "a."s), Contains("already stored"));
  CHECK_THROWS_WITH(unpickle_bytes("\x80\x02K\x01"), Contains("without a STOP"));
  CHECK_THROWS_WITH(unpickle_bytes("\x80\x02" "cos\nsystem\n."), Contains("global 'os.system' is not allowed"));
  CHECK_THROWS_WITH(unpickle_bytes("\x80\x02" "cos\nsystem\n)R."), Contains("global 'os.system' is not allowed"));
  CHECK_THROWS_WITH(unpickle_bytes("\x80\x02N\x81."), Contains("opcode NEWOBJ is not allowed"));
  CHECK_THROWS_WITH(unpickle_bytes("\x80\x02X\x01\x00\x00\x00xQ."s), Contains("persistent ids are not allowed"));
}

// Safetensors reader/writer and checkpoint name mapping.
#include <signal.h>
#include <sys/resource.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>

#include "nn/checkpoint_names.h"
#include "nn/safetensors.h"
#include "tests/test_util.h"

using namespace unipelt;
using Catch::Contains;
namespace fs = std::filesystem;

namespace {

// Writes a file byte by byte: header length field (the real one unless overridden), header, buffer.
void write_file(const fs::path& path, const std::string& header, const std::vector<uint8_t>& buffer,
                int64_t header_len_override = -1) {
  uint64_t n = header_len_override >= 0 ? static_cast<uint64_t>(header_len_override) : header.size();
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(&n), 8);
  out.write(header.data(), static_cast<std::streamsize>(header.size()));
  out.write(reinterpret_cast<const char*>(buffer.data()), static_cast<std::streamsize>(buffer.size()));
}

std::string read_all(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Little-endian bytes of 16-bit patterns (F16/BF16 test data).
std::vector<std::byte> u16_bytes(const std::vector<uint16_t>& v) {
  std::vector<std::byte> out(v.size() * 2);
  std::memcpy(out.data(), v.data(), out.size());
  return out;
}

template <class T>
std::vector<std::byte> as_bytes(const std::vector<T>& v) {
  std::vector<std::byte> out(v.size() * sizeof(T));
  std::memcpy(out.data(), v.data(), out.size());
  return out;
}

// Everything in `dir` whose name contains ".tmp." (leftover temp files).
int temp_files_in(const fs::path& dir) {
  int n = 0;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().filename().string().find(".tmp.") != std::string::npos) ++n;
  return n;
}

}  // namespace

TEST_CASE("safetensors round trip of F32, F64 and I32 with metadata", "[safetensors]") {
  auto dir = testing::scratch_dir("st_roundtrip");
  auto path = dir / "model.safetensors";
  Tensor a = Tensor::from_vector({1.5, -2.25, 3.0, 0.0, 1e-30, -7.0}, {2, 3}, DType::F32);
  Tensor b = Tensor::from_vector({3.141592653589793, -1e300}, {2}, DType::F64);
  Tensor c = Tensor::from_ints({7, -8, 2147483647, -2147483647 - 1}, {2, 1, 2});
  Tensor d = Tensor::from_vector(std::vector<double>(24, 0.5), {1, 2, 3, 4}, DType::F32);
  write_safetensors(path, {{"z.weight", a}, {"b.double", b}, {"a.ints", c}, {"four.d", d}}, {{"format", "pt"}, {"note", "héllo"}});
  CHECK(temp_files_in(dir) == 0);

  // The header length is a multiple of 8, so the buffer starts 8-byte aligned.
  std::string bytes = read_all(path);
  uint64_t header_len;
  std::memcpy(&header_len, bytes.data(), 8);
  CHECK(header_len % 8 == 0);
  CHECK(bytes[8] == '{');

  SafetensorsFile f(path);
  REQUIRE(f.tensors().size() == 4);
  CHECK(f.names() == std::vector<std::string>{"a.ints", "b.double", "four.d", "z.weight"});  // sorted by name
  CHECK(f.metadata() == std::map<std::string, std::string>{{"format", "pt"}, {"note", "héllo"}});
  CHECK(f.info("b.double").dtype == StDType::F64);
  CHECK(f.info("b.double").begin == 0);  // the 8-byte dtype goes first (alignment), then by name
  CHECK(f.info("z.weight").shape == std::vector<int64_t>{2, 3});
  CHECK(f.raw("z.weight").size() == 24);

  Tensor a2 = f.load("z.weight");
  CHECK(a2.shape() == Shape{2, 3});
  CHECK(a2.dtype() == DType::F32);
  CHECK(a2.to_vector() == a.to_vector());
  Tensor b2 = f.load("b.double", DType::F64);
  CHECK(b2.to_vector() == b.to_vector());
  CHECK(f.load("b.double", DType::F32).to_vector()[0] == Approx(3.14159265f));
  CHECK(f.load("a.ints", DType::I32).to_ints() == c.to_ints());
  CHECK(f.load("four.d").shape() == Shape{1, 2, 3, 4});
  CHECK(f.load("z.weight", DType::F64).to_vector()[1] == -2.25);

  CHECK_THROWS_WITH(f.load("nope"), Contains("no tensor named 'nope'") && Contains("model.safetensors"));
  CHECK_THROWS_WITH(f.load("z.weight", DType::I32), Contains("'z.weight'") && Contains("F32"));
  CHECK_THROWS_WITH(f.load("a.ints", DType::F32), Contains("'a.ints'") && Contains("I32"));

  // Moving keeps the mapping valid; the moved-from object is empty.
  SafetensorsFile g = std::move(f);
  CHECK(g.load("z.weight").to_vector() == a.to_vector());

  // Overwriting an existing file replaces it completely.
  write_safetensors(path, {{"only", a}});
  CHECK(SafetensorsFile(path).names() == std::vector<std::string>{"only"});
  CHECK(SafetensorsFile(path).metadata().empty());
}

TEST_CASE("F16 and BF16 decoding is exact, subnormals and specials included", "[safetensors]") {
  CHECK(f16_to_f32(0x3C00) == 1.0f);
  CHECK(f16_to_f32(0xC000) == -2.0f);
  CHECK(f16_to_f32(0x0001) == std::ldexp(1.0f, -24));     // smallest subnormal
  CHECK(f16_to_f32(0x03FF) == std::ldexp(1023.0f, -24));  // largest subnormal
  CHECK(f16_to_f32(0x0400) == std::ldexp(1.0f, -14));     // smallest normal
  CHECK(f16_to_f32(0x7BFF) == 65504.0f);                  // largest finite
  CHECK(f16_to_f32(0x7C00) == std::numeric_limits<float>::infinity());
  CHECK(f16_to_f32(0xFC00) == -std::numeric_limits<float>::infinity());
  CHECK(std::isnan(f16_to_f32(0x7E00)));
  CHECK(std::isnan(f16_to_f32(0xFC01)));
  CHECK(std::signbit(f16_to_f32(0x8000)));
  CHECK(f16_to_f32(0x8000) == 0.0f);

  // Every one of the 65536 half patterns against the textbook formula.
  for (uint32_t h = 0; h < 65536; ++h) {
    int exponent = (h >> 10) & 0x1f, mantissa = h & 0x3ff;
    float sign = (h & 0x8000) ? -1.0f : 1.0f;
    float got = f16_to_f32(static_cast<uint16_t>(h));
    if (exponent == 31) {
      if (mantissa == 0) REQUIRE(got == sign * std::numeric_limits<float>::infinity());
      else REQUIRE(std::isnan(got));
    } else {
      float want = exponent == 0 ? sign * std::ldexp(static_cast<float>(mantissa), -24)
                                 : sign * std::ldexp(static_cast<float>(1024 + mantissa), exponent - 25);
      REQUIRE(got == want);
      REQUIRE(std::signbit(got) == std::signbit(sign));
    }
  }

  CHECK(bf16_to_f32(0x3F80) == 1.0f);
  CHECK(bf16_to_f32(0xC000) == -2.0f);
  CHECK(bf16_to_f32(0x0001) == std::ldexp(1.0f, -133));  // a float subnormal
  CHECK(bf16_to_f32(0x7F80) == std::numeric_limits<float>::infinity());
  CHECK(std::isnan(bf16_to_f32(0x7FC0)));

  // The same values through a file, loaded as F32 and as F64.
  auto dir = testing::scratch_dir("st_half");
  auto f16 = u16_bytes({0x3C00, 0xC000, 0x0001, 0x7C00});
  auto bf16 = u16_bytes({0x3F80, 0xC000, 0x4049, 0xFF80});
  write_safetensors_raw(dir / "h.safetensors", {{"h", StDType::F16, {2, 2}, f16}, {"b", StDType::BF16, {4}, bf16}});
  SafetensorsFile f(dir / "h.safetensors");
  auto h = f.load("h").to_vector();
  CHECK(h == std::vector<double>{1.0, -2.0, std::ldexp(1.0, -24), std::numeric_limits<double>::infinity()});
  CHECK(f.load("h", DType::F64).to_vector() == h);
  auto b = f.load("b").to_vector();
  CHECK(b[0] == 1.0);
  CHECK(b[1] == -2.0);
  CHECK(b[2] == 3.140625);  // 0x4049: 1.5703125 · 2
  CHECK(b[3] == -std::numeric_limits<double>::infinity());
}

TEST_CASE("integer safetensors load as I32, range-checked", "[safetensors]") {
  auto dir = testing::scratch_dir("st_ints");
  auto i64 = as_bytes<int64_t>({0, -5, 2147483647, -2147483648LL});
  auto big = as_bytes<int64_t>({1, 2147483648LL});
  auto i16 = as_bytes<int16_t>({-300, 300});
  auto i8 = as_bytes<int8_t>({-128, 127});
  auto u8 = as_bytes<uint8_t>({0, 255});
  auto boolean = as_bytes<uint8_t>({0, 1, 1});
  auto scalar = as_bytes<int64_t>({42});
  write_safetensors_raw(dir / "i.safetensors", {{"i64", StDType::I64, {4}, i64},
                                                {"big", StDType::I64, {2}, big},
                                                {"i16", StDType::I16, {2}, i16},
                                                {"i8", StDType::I8, {2}, i8},
                                                {"u8", StDType::U8, {2}, u8},
                                                {"bool", StDType::BOOL, {3}, boolean},
                                                {"scalar", StDType::I64, {}, scalar}});
  SafetensorsFile f(dir / "i.safetensors");
  CHECK(f.load("i64", DType::I32).to_ints() == std::vector<int32_t>{0, -5, 2147483647, -2147483647 - 1});
  CHECK(f.load("i16", DType::I32).to_ints() == std::vector<int32_t>{-300, 300});
  CHECK(f.load("i8", DType::I32).to_ints() == std::vector<int32_t>{-128, 127});
  CHECK(f.load("u8", DType::I32).to_ints() == std::vector<int32_t>{0, 255});
  CHECK(f.load("bool", DType::I32).to_ints() == std::vector<int32_t>{0, 1, 1});
  Tensor s = f.load("scalar", DType::I32);  // 0-d loads as [1]
  CHECK(s.shape() == Shape{1});
  CHECK(s.to_ints() == std::vector<int32_t>{42});
  CHECK(f.info("scalar").shape.empty());
  CHECK_THROWS_WITH(f.load("big", DType::I32),
                    Contains("'big'") && Contains("element 1") && Contains("2147483648") && Contains("int32"));
}

TEST_CASE("malformed safetensors files give clear errors", "[safetensors]") {
  auto dir = testing::scratch_dir("st_malformed");
  auto path = dir / "bad.safetensors";
  const std::vector<uint8_t> eight(8, 0);
  auto expect_error = [&](const std::string& fragment) {
    CHECK_THROWS_WITH(SafetensorsFile(path), Contains("bad.safetensors") && Contains(fragment));
  };

  SECTION("missing file") { expect_error("cannot open"); }
  SECTION("shorter than 8 bytes") {
    std::ofstream(path, std::ios::binary) << "abc";
    expect_error("expected at least 8");
  }
  SECTION("header length past the end") {
    write_file(path, "{}", {}, 1000);
    expect_error("header length field says 1000 bytes, but only 2");
  }
  SECTION("invalid JSON") {
    write_file(path, "{\"a\": [", {});
    expect_error("not valid JSON");
  }
  SECTION("header not an object") {
    write_file(path, "[1, 2]", {});
    expect_error("must be a JSON object");
  }
  SECTION("unknown dtype") {
    write_file(path, R"({"w":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]}})", {1, 2});
    expect_error("tensor 'w': unknown dtype \"F8_E4M3\"");
  }
  SECTION("end past the buffer") {
    write_file(path, R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", eight);
    expect_error("tensor 'w': data_offsets [0, 16] run past the data buffer, which holds 8 bytes");
  }
  SECTION("begin after end") {
    write_file(path, R"({"w":{"dtype":"F32","shape":[0],"data_offsets":[8,4]}})", eight);
    expect_error("tensor 'w': data_offsets [8, 4] has begin > end");
  }
  SECTION("negative offset") {
    write_file(path, R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}})", eight);
    expect_error("tensor 'w': \"data_offsets\" must be [begin, end]");
  }
  SECTION("size does not match shape × dtype") {
    write_file(path, R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", eight);
    expect_error("tensor 'w': shape [3] of F32 needs 12 bytes, but data_offsets [0, 8] cover 8");
  }
  SECTION("overlapping tensors") {
    write_file(path, R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},
                         "b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", eight);
    expect_error("tensor 'b': data_offsets [4, 8] overlap tensor 'a'");
  }
  SECTION("a hole between tensors") {
    write_file(path, R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", eight);
    expect_error("tensor 'a': data starts at 4, expected 0");
  }
  SECTION("trailing bytes no tensor owns") {
    write_file(path, R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", eight);
    expect_error("tensors cover 4 bytes of the data buffer, but it holds 8");
  }
  SECTION("duplicate tensor names") {
    write_file(path, R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},
                         "a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", eight);
    expect_error("duplicate tensor name 'a'");
  }
  SECTION("missing field") {
    write_file(path, R"({"a":{"dtype":"F32","data_offsets":[0,8]}})", eight);
    expect_error("tensor 'a': missing \"shape\"");
  }
  SECTION("bad shape") {
    write_file(path, R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", eight);
    expect_error("tensor 'a': \"shape\" must be an array of non-negative integers");
  }
  SECTION("overflowing shape") {
    write_file(path, R"({"a":{"dtype":"F64","shape":[4611686018427387904, 8],"data_offsets":[0,8]}})", eight);
    expect_error("too large to address");
  }
  SECTION("an empty tensor whose other dimensions overflow (found under UBSan with fuzz_safetensors)") {
    // [2^62, 3, 0] holds no bytes, but 2^62 * 3 overflowed int64 in numel() (undefined behaviour).
    const fs::path found = testing::source_dir() / "tests/fixtures/fuzz/safetensors/empty-tensor-huge-dims.safetensors";
    CHECK_THROWS_WITH(SafetensorsFile(found), Contains("tensor 't': shape [4611686018427387904,3,0] is too large to address"));
    write_file(path, R"({"e":{"dtype":"F32","shape":[0,4611686018427387904,4],"data_offsets":[0,0]}})", {});
    expect_error("tensor 'e': shape [0,4611686018427387904,4] is too large to address");
    write_file(path, R"({"e":{"dtype":"F32","shape":[1000,0,7],"data_offsets":[0,0]}})", {});  // an ordinary empty one
    CHECK(SafetensorsFile(path).info("e").numel() == 0);
  }
  SECTION("metadata value not a string") {
    write_file(path, R"({"__metadata__":{"epoch":3}})", {});
    expect_error("\"__metadata__\" value for 'epoch' must be a string");
  }
  SECTION("a directory") {
    fs::create_directory(path);
    expect_error("not a regular file");
  }
  SECTION("an empty header and buffer is a valid empty file") {
    write_file(path, "{}      ", {});
    CHECK(SafetensorsFile(path).tensors().empty());
  }
}

TEST_CASE("safetensors writes are atomic and validated", "[safetensors]") {
  auto dir = testing::scratch_dir("st_atomic");
  auto path = dir / "model.safetensors";
  Tensor a = Tensor::from_vector({1, 2, 3, 4}, {4});
  write_safetensors(path, {{"a", a}});
  const std::string original = read_all(path);

  SECTION("an invalid entry is refused before any file is created") {
    std::vector<std::byte> five(5);
    CHECK_THROWS_WITH(write_safetensors_raw(path, {{"w", StDType::F32, {2}, five}}),
                      Contains("model.safetensors") && Contains("tensor 'w'") && Contains("needs 8 bytes, got 5"));
    CHECK_THROWS_WITH(write_safetensors(path, {{"a", a}, {"a", a}}), Contains("'a' given twice"));
    CHECK_THROWS_WITH(write_safetensors(path, {{"__metadata__", a}}), Contains("invalid tensor name"));
  }
  SECTION("a parent that is a file: error, nothing left behind") {
    std::ofstream(dir / "plain_file") << "x";
    CHECK_THROWS_WITH(write_safetensors(dir / "plain_file" / "m.safetensors", {{"a", a}}),
                      Contains("plain_file/m.safetensors") && Contains("Not a directory"));
  }
  SECTION("a failed rename removes the temp file") {
    fs::create_directories(dir / "occupied" / "child");  // rename(file, non-empty dir) fails
    CHECK_THROWS_WITH(write_safetensors(dir / "occupied", {{"a", a}}), Contains("rename"));
    CHECK(fs::is_directory(dir / "occupied" / "child"));
  }
  SECTION("a write failing half-way leaves the original intact") {
    // RLIMIT_FSIZE makes write() fail with EFBIG once the temp file reaches 4 KiB (root included).
    Tensor big = Tensor::zeros({64, 1024});
    struct rlimit saved;
    getrlimit(RLIMIT_FSIZE, &saved);
    auto saved_handler = signal(SIGXFSZ, SIG_IGN);
    struct rlimit small = saved;
    small.rlim_cur = 4096;
    setrlimit(RLIMIT_FSIZE, &small);
    bool threw = false;
    std::string message;
    try {
      write_safetensors(path, {{"big", big}});
    } catch (const std::runtime_error& e) {
      threw = true;
      message = e.what();
    }
    setrlimit(RLIMIT_FSIZE, &saved);
    signal(SIGXFSZ, saved_handler);
    CHECK(threw);
    CHECK_THAT(message, Contains("model.safetensors") && Contains("File too large"));
  }
  CHECK(read_all(path) == original);
  CHECK(temp_files_in(dir) == 0);
}

TEST_CASE("checkpoint names map to canonical BERT names", "[safetensors]") {
  SECTION("BertModel layout, legacy gamma/beta, buffers and heads") {
    auto m = map_checkpoint_names({"embeddings.word_embeddings.weight", "embeddings.LayerNorm.gamma",
                                   "embeddings.LayerNorm.beta", "embeddings.position_ids",
                                   "encoder.layer.11.output.LayerNorm.gamma", "encoder.layer.0.attention.self.query.weight",
                                   "pooler.dense.bias", "cls.predictions.bias", "lm_head.weight",
                                   "encoder.layer.0.attention.self.rotary.weight", "encoder.layer.x.output.dense.weight"});
    CHECK(m.canonical_to_file.at("bert.embeddings.word_embeddings.weight") == "embeddings.word_embeddings.weight");
    CHECK(m.canonical_to_file.at("bert.embeddings.LayerNorm.weight") == "embeddings.LayerNorm.gamma");
    CHECK(m.canonical_to_file.at("bert.embeddings.LayerNorm.bias") == "embeddings.LayerNorm.beta");
    CHECK(m.canonical_to_file.at("bert.encoder.layer.11.output.LayerNorm.weight") ==
          "encoder.layer.11.output.LayerNorm.gamma");
    CHECK(m.canonical_to_file.count("bert.encoder.layer.0.attention.self.query.weight") == 1);
    CHECK(m.canonical_to_file.count("bert.pooler.dense.bias") == 1);
    CHECK(m.canonical_to_file.size() == 6);
    REQUIRE(m.ignored.size() == 2);
    CHECK_THAT(m.ignored[0], Contains("embeddings.position_ids: "));
    CHECK_THAT(m.ignored[1], Contains("cls.predictions.bias: pre-training head"));
    CHECK(m.unused == std::vector<std::string>{"lm_head.weight", "encoder.layer.0.attention.self.rotary.weight",
                                                "encoder.layer.x.output.dense.weight"});
  }
  SECTION("sequence classification keeps the classifier") {
    auto m = map_checkpoint_names({"bert.pooler.dense.weight", "classifier.weight", "classifier.bias"});
    CHECK(m.canonical_to_file.at("classifier.weight") == "classifier.weight");
    CHECK(m.canonical_to_file.size() == 3);
    CHECK(m.ignored.empty());
  }
  SECTION("two names for one parameter are an error") {
    CHECK_THROWS_WITH(map_checkpoint_names({"bert.pooler.dense.weight", "pooler.dense.weight"}),
                      Contains("ambiguous") && Contains("bert.pooler.dense.weight"));
  }
  CHECK(is_canonical_bert_name("bert.encoder.layer.3.attention.output.dense.bias"));
  CHECK_FALSE(is_canonical_bert_name("bert.encoder.layer.03.attention.output.dense.bias"));
  CHECK_FALSE(is_canonical_bert_name("bert.encoder.layer..output.dense.bias"));
}

TEST_CASE("load_expected reports every missing and wrong-shaped tensor at once", "[safetensors]") {
  auto dir = testing::scratch_dir("st_expected");
  auto path = dir / "ckpt.safetensors";
  write_safetensors(path, {{"embeddings.word_embeddings.weight", Tensor::zeros({10, 4})},
                           {"pooler.dense.weight", Tensor::zeros({4, 4})},
                           {"pooler.dense.bias", Tensor::zeros({3})},
                           {"cls.predictions.bias", Tensor::zeros({10})}});
  SafetensorsFile f(path);
  NameMapping m = map_checkpoint_names(f.names());

  std::vector<std::pair<std::string, Shape>> expected = {{"bert.embeddings.word_embeddings.weight", {10, 4}},
                                                         {"bert.pooler.dense.weight", {4, 4}},
                                                         {"bert.pooler.dense.bias", {4}},
                                                         {"bert.embeddings.LayerNorm.weight", {4}},
                                                         {"classifier.weight", {2, 4}}};
  CHECK_THROWS_WITH(load_expected(f, m, expected), Contains("ckpt.safetensors") && Contains("does not match") &&
                                                       Contains("missing 2 tensor(s)") &&
                                                       Contains("bert.embeddings.LayerNorm.weight [4]") &&
                                                       Contains("classifier.weight [2, 4]") &&
                                                       Contains("bert.pooler.dense.bias (stored as 'pooler.dense.bias')"
                                                                ": checkpoint has [3], model expects [4]"));

  expected[2].second = {3};
  expected.erase(expected.begin() + 3);
  CHECK_THROWS_WITH(load_expected(f, m, expected), Contains("classifier.weight"));
  std::vector<std::string> optional;
  auto loaded = load_expected(f, m, expected, DType::F64, true, &optional);
  CHECK(optional == std::vector<std::string>{"classifier.weight"});
  REQUIRE(loaded.size() == 3);
  CHECK(loaded.at("bert.pooler.dense.weight").dtype() == DType::F64);
  CHECK(loaded.at("bert.embeddings.word_embeddings.weight").shape() == Shape{10, 4});
}

TEST_CASE("reading the real bert-mini-mlm checkpoint", "[safetensors]") {
  auto path = testing::require_data("models/bert-mini-mlm/model.safetensors");
  SafetensorsFile f(path);
  NameMapping m = map_checkpoint_names(f.names());
  CHECK(m.unused.empty());
  CHECK(m.ignored.size() == 7);  // cls.predictions.* (5) and cls.seq_relationship.* (2)
  for (const auto& s : m.ignored) CHECK_THAT(s, Catch::StartsWith("cls."));

  const int64_t H = 256, I = 1024, V = 30522;
  std::vector<std::pair<std::string, Shape>> expected = {
      {"bert.embeddings.word_embeddings.weight", {V, H}}, {"bert.embeddings.position_embeddings.weight", {512, H}},
      {"bert.embeddings.token_type_embeddings.weight", {2, H}}, {"bert.embeddings.LayerNorm.weight", {H}},
      {"bert.embeddings.LayerNorm.bias", {H}}, {"bert.pooler.dense.weight", {H, H}}, {"bert.pooler.dense.bias", {H}},
      {"classifier.weight", {2, H}}, {"classifier.bias", {2}}};
  for (int layer = 0; layer < 4; ++layer) {
    std::string p = "bert.encoder.layer." + std::to_string(layer) + ".";
    for (const char* qkv : {"query", "key", "value"}) {
      expected.push_back({p + "attention.self." + qkv + ".weight", {H, H}});
      expected.push_back({p + "attention.self." + qkv + ".bias", {H}});
    }
    expected.push_back({p + "attention.output.dense.weight", {H, H}});
    expected.push_back({p + "attention.output.dense.bias", {H}});
    expected.push_back({p + "intermediate.dense.weight", {I, H}});
    expected.push_back({p + "intermediate.dense.bias", {I}});
    expected.push_back({p + "output.dense.weight", {H, I}});
    expected.push_back({p + "output.dense.bias", {H}});
    for (const char* ln : {"attention.output.LayerNorm.", "output.LayerNorm."}) {
      expected.push_back({p + ln + "weight", {H}});
      expected.push_back({p + ln + "bias", {H}});
    }
  }
  CHECK(m.canonical_to_file.size() == expected.size() - 2);  // everything but the classifier

  std::vector<std::string> optional;
  auto tensors = load_expected(f, m, expected, DType::F32, true, &optional);
  CHECK(optional == std::vector<std::string>{"classifier.weight", "classifier.bias"});
  CHECK(tensors.size() == expected.size() - 2);
  // A trained LayerNorm scale is near 1 and finite everywhere.
  auto gamma = tensors.at("bert.encoder.layer.3.output.LayerNorm.weight").to_vector();
  double mean = 0;
  for (double g : gamma) {
    REQUIRE(std::isfinite(g));
    mean += g / static_cast<double>(gamma.size());
  }
  CHECK(mean > 0.3);
  CHECK(mean < 3.0);
}

// The settings table (train/settings.h) and the flags built from it: `unipelt train` and `unipelt sweep`
// accept and reject exactly the same values for every shared flag, config.json round-trips and refuses
// damaged files, the docs' flag table is the table, and the CLI's exit statuses follow its conventions.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "examples/cli/cli.h"
#include "tests/synthetic.h"
#include "tests/test_util.h"
#include "train/settings.h"

using namespace unipelt;
namespace fs = std::filesystem;

namespace {

struct ParsedOnly {};

// Parses `args` with the whole `unipelt` app but stops before any command runs: the app's
// parse-complete callback runs after every flag was read and checked, and before the subcommands'
// callbacks. Returns the CLI11 error message, or "" when the arguments were accepted.
std::string parse_only(const std::string& command, std::vector<std::string> args) {
  CLI::App app{"unipelt"};
  cli::add_all_commands(app);
  app.parse_complete_callback([] { throw ParsedOnly{}; });
  args.insert(args.begin(), {"unipelt", command});
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  try {
    app.parse(static_cast<int>(argv.size()), argv.data());
  } catch (const ParsedOnly&) {
    return "";
  } catch (const CLI::ParseError& e) {
    return std::string(e.what()).empty() ? "error" : e.what();
  }
  FAIL("the command ran: parse_only must stop before it");
  return "";
}

// Values that probe every kind of rule: whole numbers, signs, fractions, special floats, huge numbers,
// names, switches and empty text.
const std::vector<std::string>& probe_values() {
  static const std::vector<std::string> values = {
      "0",      "1",     "2",   "3",   "16",    "4096", "4097", "-1",    "2.5",  "1e-4", "0.5", "1",
      "0.999",  "1e999", "inf", "nan", "-inf",  "abc",  "",     " 16",   "16x",  "all",  "100", "18446744073709551615",
      "18446744073709551616", "masked", "f32", "f64", "cuda", "cpu", "on", "off", "sst2", "SST-2", "lora"};
  return values;
}

struct Dirs {
  fs::path model, data, out;
};

// Each test case its own directory: ctest -j runs test cases at the same time, and scratch_dir empties it.
Dirs scratch_dirs(const std::string& name) {
  const fs::path root = testing::scratch_dir(name);
  Dirs d{root / "model", root / "data", root / "out"};
  fs::create_directories(d.model);
  fs::create_directories(d.data);
  return d;
}

}  // namespace

TEST_CASE("settings: train and sweep accept and reject the same values for every shared flag", "[settings]") {
  const Dirs d = scratch_dirs("settings_cli_shared_flags");
  const std::vector<std::string> train_required = {"--model", d.model.string(), "--data", d.data.string(), "--out",
                                                   d.out.string()};
  const std::vector<std::string> sweep_required = {"--out", d.out.string()};
  size_t compared = 0;
  for (const Setting& s : train_settings()) {
    if (s.scope != SettingScope::Run && s.scope != SettingScope::Grid) continue;
    // The sweep takes a grid setting as a list: --task T is --tasks T, --k K is --k K, ...
    const std::string sweep_flag = s.flag == "--task"        ? "--tasks"
                                   : s.flag == "--method"    ? "--methods"
                                   : s.flag == "--data-seed" ? "--data-seeds"
                                                             : s.flag;
    bool accepted_any = false, refused_any = false;
    for (const std::string& value : probe_values()) {
      if (s.scope == SettingScope::Grid && (value.empty() || value.find(',') != std::string::npos)) continue;
      std::vector<std::string> train_args = train_required, sweep_args = sweep_required;
      train_args.insert(train_args.end(), {s.flag, value});
      sweep_args.insert(sweep_args.end(), {sweep_flag, value});
      const std::string train_error = parse_only("train", train_args);
      const std::string sweep_error = parse_only("sweep", sweep_args);
      TrainConfig scratch;
      bool table_accepts = true;
      try {
        s.set(scratch, value);
      } catch (const std::invalid_argument&) {
        table_accepts = false;
      }
      INFO(s.flag << " '" << value << "': train says [" << train_error << "], sweep says [" << sweep_error << "]");
      CHECK(train_error.empty() == sweep_error.empty());
      CHECK(train_error.empty() == table_accepts);
      if (!train_error.empty()) {
        CHECK(train_error.find(s.flag) != std::string::npos);       // the error names the flag
        CHECK(train_error.find(s.accepts) != std::string::npos);    // and the rule
      }
      (train_error.empty() ? accepted_any : refused_any) = true;
      ++compared;
    }
    INFO(s.flag);
    CHECK(refused_any);  // a rule that refuses nothing would be no rule (-inf, abc, "" are no values)
    CHECK(accepted_any);
  }
  CHECK(compared > 500);
}

TEST_CASE("settings: the values the issue lists are refused up front, naming the flag and the range", "[settings]") {
  const Dirs d = scratch_dirs("settings_cli_refused_values");
  auto train_error = [&](const std::string& flag, const std::string& value) {
    return parse_only("train", {"--model", d.model.string(), "--data", d.data.string(), "--out", d.out.string(), flag,
                                value});
  };
  CHECK_THAT(train_error("--lr", "inf"), Catch::Contains("--lr") && Catch::Contains("a number > 0"));
  CHECK_THAT(train_error("--lr", "0"), Catch::Contains("a number > 0"));
  CHECK_THAT(train_error("--adapter-size", "1000000000"), Catch::Contains("from 0 to 65536"));
  CHECK_THAT(train_error("--prefix-len", "100000"), Catch::Contains("from 1 to 512"));
  CHECK_THAT(train_error("--seed", "-1"), Catch::Contains("--seed") && Catch::Contains("0 to 2^64 - 1"));
  CHECK_THAT(train_error("--adapter", "maybe"), Catch::Contains("--adapter") && Catch::Contains("on or off"));
  CHECK_THAT(train_error("--dtype", "f16"), Catch::Contains("one of f32, f64"));
  CHECK_THAT(train_error("--out", ""), Catch::Contains("--out") && Catch::Contains("a directory"));
  std::ofstream(d.model / "a-file") << "x";
  CHECK_THAT(train_error("--out", (d.model / "a-file").string()), Catch::Contains("--out"));
  CHECK_THAT(parse_only("sweep", {"--out", d.out.string(), "--jobs", "0"}),
             Catch::Contains("--jobs") && Catch::Contains("1 to 256"));
  CHECK_THAT(parse_only("params", {"--config", (d.model / "a-file").string(), "--num-labels", "-3"}),
             Catch::Contains("--num-labels"));
  // --max-len against the model: checked before any weight is read.
  BertConfig model;
  model.max_position_embeddings = 64;
  model.hidden_size = 32;
  TrainConfig c;
  c.max_len = 100;
  CHECK_THROWS_WITH(validate_against_model(c, model), Catch::Contains("--max-len") && Catch::Contains("64"));
  c.max_len = 64;
  c.pelt.adapter_size = 33;
  CHECK_THROWS_WITH(validate_against_model(c, model), Catch::Contains("--adapter-size") && Catch::Contains("32"));
  c.pelt.adapter_size = 0;
  CHECK_NOTHROW(validate_against_model(c, model));
}

TEST_CASE("settings: config.json round-trips, and damaged ones are refused naming the key", "[settings]") {
  std::map<std::string, std::string> flags = {
      {"--task", "mrpc"},   {"--method", "lora"}, {"--lora-r", "4"},     {"--k", "all"},      {"--data-seed", "222"},
      {"--model", "."},     {"--data", "."},      {"--out", "x"},        {"--lr", "3e-4"},    {"--epochs", "7"},
      {"--dtype", "f64"},   {"--gates", "on"},    {"--seed", "18446744073709551615"}};
  const TrainConfig c = train_config_from_flags(flags);
  CHECK(c.task == "MRPC");
  CHECK(c.pelt.method == "lora (modified)");
  CHECK(c.pelt.gated);
  CHECK(c.pelt.lora_r == 4);
  CHECK(c.k == 0);
  CHECK(c.seed == 18446744073709551615ull);
  CHECK(c.dtype == DType::F64);
  const nlohmann::json j = c.to_json();
  CHECK(TrainConfig::from_json(j).to_json() == j);

  auto refused = [&](const std::string& key, const nlohmann::json& value, const std::string& message) {
    nlohmann::json bad = j;
    if (value.is_null()) bad.erase(key);
    else bad[key] = value;
    CHECK_THROWS_WITH(TrainConfig::from_json(bad), Catch::Contains(message));
  };
  refused("epochs", nullptr, "missing key 'epochs'");
  refused("epochs", 2.5, "key 'epochs' (--epochs)");
  refused("epochs", 0, "from 1 to 10000");
  refused("seed", -1, "key 'seed'");
  refused("dtype", "f16", "one of f32, f64");
  refused("lr", "0.1", "a number > 0");
  refused("surprise", 1, "unknown key 'surprise'");
  refused("allow_unused", "yes", "true or false");
  // A config.json from before --allow-unused existed has no such key: it means the default (off).
  nlohmann::json older = j;
  older["allow_unused"] = true;
  CHECK(TrainConfig::from_json(older).allow_unused);
  older.erase("allow_unused");
  CHECK_FALSE(TrainConfig::from_json(older).allow_unused);
  CHECK_THROWS_WITH(TrainConfig::from_json(nlohmann::json::array()), Catch::Contains("JSON object"));
}

TEST_CASE("settings: docs/training.md's flag table is the settings table", "[settings]") {
  const std::string doc = testing::read_text(testing::source_dir() / "docs" / "training.md");
  const std::string begin = "<!-- settings-table:begin (generated by `unipelt settings`) -->\n";
  const std::string end = "<!-- settings-table:end -->";
  const size_t a = doc.find(begin), b = doc.find(end);
  REQUIRE(a != std::string::npos);
  REQUIRE(b != std::string::npos);
  INFO("regenerate with: build/unipelt settings, and paste its output between the markers");
  CHECK(doc.substr(a + begin.size(), b - a - begin.size()) == settings_markdown_table());
}

TEST_CASE("CLI conventions: usage errors exit 2, runtime errors 1, --version and the help footer", "[settings]") {
  const fs::path root = testing::scratch_dir("cli_conventions");
  const fs::path out = root / "out.txt", err = root / "err.txt";
  CHECK(testing::run_cli({"--version"}, out, err) == 0);
  CHECK(testing::read_text(out).find("unipelt 0.1.0") != std::string::npos);
  CHECK(testing::run_cli({"--help"}, out, err) == 0);
  CHECK(testing::read_text(out).find("Exit status: 0 success, 1 runtime error") != std::string::npos);
  CHECK(testing::run_cli({}, out, err) == 2);                                   // no subcommand
  CHECK(testing::run_cli({"train", "--no-such-flag"}, out, err) == 2);          // unknown flag
  CHECK(testing::run_cli({"train", "--epochs", "0"}, out, err) == 2);           // bad value
  CHECK(testing::read_text(err).find("--epochs") != std::string::npos);
  CHECK(testing::run_cli({"eval", (root / "no-run").string()}, out, err) == 2);  // not a directory: usage
  fs::create_directories(root / "empty-run");
  CHECK(testing::run_cli({"eval", (root / "empty-run").string()}, out, err) == 1);  // no config.json: runtime
  CHECK(testing::read_text(err).find("no config.json") != std::string::npos);
  CHECK(testing::run_cli({"settings"}, out, err) == 0);
  CHECK(testing::read_text(out) == settings_markdown_table());
}

// The two CLI tests above share scratch_dirs(); under ctest -j they ran at once and one deleted the
// other's --model directory mid-parse. Scratch directories are now private to their test case.
TEST_CASE("scratch directories of two test cases asking for the same name do not touch each other", "[settings]") {
  const fs::path other = testing::scratch_dir_of_case("some other test case", "settings_cli");
  std::ofstream(other / "kept.txt") << "still here\n";
  const fs::path mine = testing::scratch_dir("settings_cli");
  CHECK(mine != other);
  CHECK(fs::exists(other / "kept.txt"));
  CHECK(fs::is_empty(mine));
}

// fuzz_run_files' input (selector byte 0: TrainConfig::from_json): "k": 1e300 was once cast to size_t by
// nlohmann's get<>() (undefined behaviour, UBSan). The table's readers take integers only.
TEST_CASE("a run config.json with k = 1e300 is refused naming the key (found by fuzz_run_files)", "[settings]") {
  const std::string bytes =
      testing::read_text(testing::source_dir() / "tests/fixtures/fuzz/run_files/trainconfig-k-1e300");
  REQUIRE(bytes.size() > 1);
  REQUIRE(bytes[0] == 0);
  CHECK_THROWS_WITH(TrainConfig::from_json(nlohmann::json::parse(bytes.substr(1))),
                    Catch::Contains("key 'k' (--k)") && Catch::Contains("1e+300"));
}

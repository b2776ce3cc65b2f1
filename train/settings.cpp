// The settings table (settings.h): one row per `unipelt train` flag. The helpers below build a row
// from a field of TrainConfig and its rule; the rule's text is what --help, the errors and the docs say.
#include "train/settings.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <limits>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <type_traits>

#include <unistd.h>

#include "datasets/glue.h"

namespace unipelt {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

[[noreturn]] void refuse(const std::string& accepts, const std::string& got) {
  throw std::invalid_argument("must be " + accepts + ", got '" + got + "'");
}

// Digits only (no sign, no spaces, no trailing text) and within 64 bits; empty when not.
std::optional<uint64_t> whole_number(const std::string& text) {
  if (text.empty() || text.size() > 20 || text.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
  errno = 0;
  char* end = nullptr;
  const unsigned long long v = std::strtoull(text.c_str(), &end, 10);
  if (errno == ERANGE || *end != '\0') return std::nullopt;
  return static_cast<uint64_t>(v);
}

// A finite decimal number, the whole text ("1e-4", "0.5"; not "inf", "nan", "1e999", "2x", "").
std::optional<double> real_number(const std::string& text) {
  if (text.empty() || text.find_first_of(" \t\n") != std::string::npos) return std::nullopt;
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (*end != '\0' || !std::isfinite(v)) return std::nullopt;
  return v;
}

// A whole JSON number that is not negative (nlohmann would wrap -1 into a uint64_t, or cut 2.5 to 2).
std::optional<uint64_t> json_whole(const json& j) {
  if (j.is_number_unsigned()) return j.get<uint64_t>();
  if (j.is_number_integer() && j.get<int64_t>() >= 0) return static_cast<uint64_t>(j.get<int64_t>());
  return std::nullopt;
}

std::string real_text(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

// A field of TrainConfig: a lambda `[](auto& c) -> auto& { return c.x; }` or a member pointer.
template <class T, class Field>
T& field_of(const Field& field, TrainConfig& c) { return std::invoke(field, c); }
template <class T, class Field>
const T& field_of(const Field& field, const TrainConfig& c) { return std::invoke(field, c); }

struct Row {  // the words of a row; the helpers add the behaviour
  std::string flag, key, help;
  SettingScope scope = SettingScope::Run;
};

Setting make(const Row& r, std::string type, std::string accepts) {
  Setting s;
  s.flag = r.flag;
  s.key = r.key;
  s.help = r.help;
  s.scope = r.scope;
  s.type = std::move(type);
  s.accepts = std::move(accepts);
  return s;
}

// Whole numbers from lo to hi (int, size_t, uint64_t fields).
template <class T, class Field>
Setting whole(const Row& r, Field field, uint64_t lo, uint64_t hi, std::string type = "INT") {
  const std::string accepts = hi == std::numeric_limits<uint64_t>::max()
                                  ? "a whole number from " + std::to_string(lo) + " to 2^64 - 1"
                                  : "a whole number from " + std::to_string(lo) + " to " + std::to_string(hi);
  Setting s = make(r, std::move(type), accepts);
  auto in_range = [lo, hi](std::optional<uint64_t> v) { return v && *v >= lo && *v <= hi; };
  s.set = [=](TrainConfig& c, const std::string& text) {
    const auto v = whole_number(text);
    if (!in_range(v)) refuse(accepts, text);
    field_of<T>(field, c) = static_cast<T>(*v);
  };
  s.text = [=](const TrainConfig& c) { return std::to_string(field_of<T>(field, c)); };
  s.check = [=](const TrainConfig& c) {
    const T v = field_of<T>(field, c);
    bool negative = false;
    if constexpr (std::is_signed_v<T>) negative = v < 0;
    if (negative || !in_range(static_cast<uint64_t>(v))) refuse(accepts, std::to_string(v));
  };
  s.to_json = [=](const TrainConfig& c) { return json(field_of<T>(field, c)); };
  s.from_json = [=](TrainConfig& c, const json& j) {
    const auto v = json_whole(j);
    if (!in_range(v)) refuse(accepts, j.dump());
    field_of<T>(field, c) = static_cast<T>(*v);
  };
  return s;
}

// Finite real numbers in an interval; `ok` is the rule, `accepts` its words.
template <class Field>
Setting real(const Row& r, Field field, std::function<bool(double)> ok, std::string accepts) {
  Setting s = make(r, "FLOAT", accepts);
  auto good = [ok](double v) { return std::isfinite(v) && ok(v); };
  s.set = [=](TrainConfig& c, const std::string& text) {
    const auto v = real_number(text);
    if (!v || !good(*v)) refuse(accepts, text);
    field_of<double>(field, c) = *v;
  };
  s.text = [=](const TrainConfig& c) { return real_text(field_of<double>(field, c)); };
  s.check = [=](const TrainConfig& c) {
    const double v = field_of<double>(field, c);
    if (!good(v)) refuse(accepts, real_text(v));
  };
  s.to_json = [=](const TrainConfig& c) { return json(field_of<double>(field, c)); };
  s.from_json = [=](TrainConfig& c, const json& j) {
    if (!j.is_number() || !good(j.get<double>())) refuse(accepts, j.dump());
    field_of<double>(field, c) = j.get<double>();
  };
  return s;
}

// One of a list of names; `parse` maps a name to the field's value and `name` back.
template <class T, class Field>
Setting choice(const Row& r, Field field, std::vector<std::string> names, std::function<T(const std::string&)> parse,
               std::function<std::string(const T&)> name) {
  std::string list;
  for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
  const std::string accepts = "one of " + list;
  Setting s = make(r, "NAME", accepts);
  auto parse_or_refuse = [=](const std::string& text) {
    try {
      return parse(text);
    } catch (const std::exception&) {
      refuse(accepts, text);
    }
  };
  s.set = [=](TrainConfig& c, const std::string& text) { field_of<T>(field, c) = parse_or_refuse(text); };
  s.text = [=](const TrainConfig& c) { return name(field_of<T>(field, c)); };
  s.check = [=](const TrainConfig& c) { parse_or_refuse(name(field_of<T>(field, c))); };
  s.to_json = [=](const TrainConfig& c) { return json(name(field_of<T>(field, c))); };
  s.from_json = [=](TrainConfig& c, const json& j) {
    if (!j.is_string()) refuse(accepts, j.dump());
    field_of<T>(field, c) = parse_or_refuse(j.get<std::string>());
  };
  return s;
}

// A directory: `existing` ones must exist (--model, --data); the run directory must be one or be creatable.
Setting directory(const Row& r, std::string TrainConfig::*field, bool existing) {
  const std::string accepts = existing ? "an existing directory" : "a directory, or a path where one can be created";
  Setting s = make(r, "DIR", accepts);
  s.required = true;
  auto usable = [existing](const std::string& text) {
    if (text.empty()) return false;
    std::error_code ec;
    if (fs::exists(text, ec)) return fs::is_directory(text, ec);
    if (existing) return false;
    fs::path parent = fs::absolute(text, ec).parent_path();  // the nearest existing ancestor must be writable
    while (!parent.empty() && !fs::exists(parent, ec)) parent = parent.parent_path();
    return fs::is_directory(parent, ec) && ::access(parent.c_str(), W_OK) == 0;
  };
  s.set = [=](TrainConfig& c, const std::string& text) {
    if (!usable(text)) refuse(accepts, text);
    c.*field = text;
  };
  // A stored run may have moved (eval and predict override --model and --data): only non-empty here.
  s.text = [=](const TrainConfig& c) { return c.*field; };
  s.check = [=](const TrainConfig& c) {
    if ((c.*field).empty()) refuse(accepts, "");
  };
  s.to_json = [=](const TrainConfig& c) { return json(c.*field); };
  s.from_json = [=](TrainConfig& c, const json& j) {
    if (!j.is_string()) refuse(accepts, j.dump());
    c.*field = j.get<std::string>();
  };
  return s;
}

// --allow-unused on|off and the like: a yes/no setting, stored as a JSON boolean. `field` is a member
// pointer or a lambda returning the bool (see field_of).
template <class Field>
Setting on_off(const Row& r, Field field) {
  Setting s = make(r, "on|off", "on or off");
  s.set = [=](TrainConfig& c, const std::string& text) {
    if (text != "on" && text != "off") refuse("on or off", text);
    field_of<bool>(field, c) = text == "on";
  };
  s.text = [=](const TrainConfig& c) { return std::string(field_of<bool>(field, c) ? "on" : "off"); };
  s.check = [](const TrainConfig&) {};
  s.to_json = [=](const TrainConfig& c) { return json(field_of<bool>(field, c)); };
  s.from_json = [=](TrainConfig& c, const json& j) {
    if (!j.is_boolean()) refuse("true or false", j.dump());
    field_of<bool>(field, c) = j.get<bool>();
  };
  return s;
}

// --adapter on|off and the like: change one switch of the preset chosen by --method (stored by
// PeltConfig::to_json under "pelt", and marking the method "(modified)").
Setting method_edit(const std::string& flag, const std::string& what, bool PeltConfig::*field) {
  Setting s = on_off({flag, "pelt." + flag.substr(2), "Change the preset: " + what + " on or off",
                      SettingScope::MethodEdit},
                     [field](auto& c) -> auto& { return c.pelt.*field; });
  if (flag == "--gates") s.key = "pelt.gated";
  s.shown_default = "the preset's";
  s.set = [set = std::move(s.set)](TrainConfig& c, const std::string& text) {
    set(c, text);
    const std::string mark = " (modified)";
    if (c.pelt.method.size() < mark.size() || c.pelt.method.compare(c.pelt.method.size() - mark.size(), mark.size(), mark))
      c.pelt.method += mark;
  };
  s.to_json = nullptr;  // stored by PeltConfig::to_json under "pelt"; PeltConfig::validate checks the combination
  s.from_json = nullptr;
  return s;
}

std::vector<Setting> build_table();

}  // namespace

const std::vector<Setting>& train_settings() {
  static const std::vector<Setting> table = [] {
    std::vector<Setting> rows = build_table();
    const TrainConfig defaults;
    for (Setting& s : rows) {
      if (s.shown_default.empty()) s.shown_default = s.required ? "required" : s.text(defaults);
      // Spaces around a value mean nothing (" 16" is 16): the sweep's lists ("SST-2, MRPC") and
      // `train`'s flags then read every value alike.
      s.set = [set = std::move(s.set)](TrainConfig& c, const std::string& text) {
        const size_t first = text.find_first_not_of(" \t"), last = text.find_last_not_of(" \t");
        set(c, first == std::string::npos ? std::string() : text.substr(first, last - first + 1));
      };
    }
    return rows;
  }();
  return table;
}

namespace {

using S = SettingScope;

// What is trained on what: the sweep's grid, and the changes to a method preset.
void add_grid_rows(std::vector<Setting>& t) {
  t.push_back(choice<std::string>({"--task", "task", "GLUE task (any spelling: SST-2, sst2, sts-b, ...)", S::Grid},
                                  [](auto& c) -> auto& { return c.task; }, glue_task_names(),
                                  [](const std::string& n) { return task_info(n).name; },
                                  [](const std::string& n) { return n; }));
  t.push_back(choice<PeltConfig>({"--method", "pelt.method", "Tuning method preset (docs/methods.md)", S::Grid},
                                 [](auto& c) -> auto& { return c.pelt; }, preset_names(),
                                 [](const std::string& n) { return preset(n); },
                                 [](const PeltConfig& p) { return p.method.substr(0, p.method.find(" (modified)")); }));
  t.back().to_json = nullptr;  // stored by PeltConfig::to_json under "pelt"
  t.back().from_json = nullptr;
  t.push_back(method_edit("--adapter", "the adapter", &PeltConfig::adapter));
  t.push_back(method_edit("--prefix", "prefix-tuning", &PeltConfig::prefix));
  t.push_back(method_edit("--lora", "LoRA", &PeltConfig::lora));
  t.push_back(method_edit("--bitfit", "BitFit", &PeltConfig::bitfit));
  t.push_back(method_edit("--gates", "the UniPELT gates", &PeltConfig::gated));
  Setting k = make({"--k", "k", "Training examples: the first K of the shuffled GLUE training set ('all': the whole "
                                "set, and dev = test = GLUE dev)", S::Grid},
                   "K", "a whole number from 1 to 2^64 - 1 or 'all'");
  k.set = [](TrainConfig& c, const std::string& text) { c.k = parse_k(text); };
  k.text = [](const TrainConfig& c) { return k_label(c.k); };
  k.check = [](const TrainConfig&) {};  // every size_t is a K (0 = all)
  k.to_json = [](const TrainConfig& c) { return json(c.k); };
  k.from_json = [](TrainConfig& c, const json& j) {
    if (!json_whole(j)) refuse("a whole number (0 = all)", j.dump());
    c.k = static_cast<size_t>(*json_whole(j));
  };
  t.push_back(k);
  const uint64_t any = std::numeric_limits<uint64_t>::max();
  t.push_back(whole<uint64_t>({"--data-seed", "data_seed", "Seed of the training-set shuffle (paper: 111 222 333 444 "
                                                           "555)", S::Grid},
                              &TrainConfig::data_seed, 0, any, "SEED"));
}

// Where things are, and how each run trains.
void add_run_rows(std::vector<Setting>& t) {
  t.push_back(directory({"--model", "model_dir", "Hugging Face BERT directory (config.json, model.safetensors, "
                                                 "vocab.txt)", S::Location},
                        &TrainConfig::model_dir, true));
  t.push_back(directory({"--data", "data_dir", "Data root holding glue/<TASK>/*.tsv (scripts/fetch-data.sh fills one)",
                         S::Location},
                        &TrainConfig::data_dir, true));
  t.push_back(directory({"--out", "out_dir", "Run directory to create (config.json, metrics.jsonl, results.json, "
                                             "best/, state/)", S::Location},
                        &TrainConfig::out_dir, false));
  // How each run trains.
  t.push_back(whole<uint64_t>({"--seed", "seed", "Model seed: PELT init, classifier init, batch order, dropout"},
                              &TrainConfig::seed, 0, std::numeric_limits<uint64_t>::max(), "SEED"));
  Setting lr = real({"--lr", "lr", "Peak learning rate"}, &TrainConfig::lr, [](double v) { return v > 0; },
                    "a number > 0");
  lr.shown_default = "the method's: finetune 2e-5, bitfit 1e-4, adapter 1e-4, prefix 2e-4, lora 5e-4, unipelt 5e-4";
  lr.check = [](const TrainConfig& c) {  // 0 = not given
    if (!(c.lr == 0 || (std::isfinite(c.lr) && c.lr > 0))) refuse("a number > 0", real_text(c.lr));
  };
  lr.to_json = [](const TrainConfig& c) { return json(c.resolved_lr()); };
  t.push_back(lr);
  t.push_back(whole<int>({"--epochs", "epochs", "Maximum epochs"}, &TrainConfig::epochs, 1, 10000));
  t.push_back(whole<int>({"--patience", "patience", "Early stopping: epochs without dev improvement"},
                         &TrainConfig::patience, 1, 10000));
  t.push_back(whole<int>({"--batch-size", "batch_size", "Training batch size"}, &TrainConfig::batch_size, 1, 4096));
  t.push_back(whole<int>({"--eval-batch-size", "eval_batch_size", "Evaluation batch size"},
                         &TrainConfig::eval_batch_size, 1, 4096));
  t.push_back(whole<int>({"--max-len", "max_len", "Maximum sequence length in tokens, [CLS] and [SEP] included (at "
                                                  "most the model's max_position_embeddings)"},
                         &TrainConfig::max_len, 3, 8192));
  auto non_negative = [](double v) { return v >= 0; };
  auto fraction = [](double v) { return v >= 0 && v < 1; };
  t.push_back(real({"--weight-decay", "weight_decay", "AdamW decoupled weight decay"}, &TrainConfig::weight_decay,
                   non_negative, "a number >= 0"));
  t.push_back(real({"--beta1", "beta1", "AdamW beta1"}, &TrainConfig::beta1, fraction, "a number in [0, 1)"));
  t.push_back(real({"--beta2", "beta2", "AdamW beta2"}, &TrainConfig::beta2, fraction, "a number in [0, 1)"));
  auto positive = [](double v) { return v > 0; };
  t.push_back(real({"--adam-eps", "adam_eps", "AdamW epsilon"}, &TrainConfig::adam_eps, positive, "a number > 0"));
  t.push_back(real({"--max-grad-norm", "max_grad_norm", "Gradient clipping: the largest global L2 norm"},
                   &TrainConfig::max_grad_norm, positive, "a number > 0"));
  t.push_back(whole<int>({"--warmup-steps", "warmup_steps", "Linear warm-up steps before the linear decay"},
                         &TrainConfig::warmup_steps, 0, 1000000000));
  t.push_back(choice<DType>({"--dtype", "dtype", "Computation dtype (f64 for checks)"},
                            [](auto& c) -> auto& { return c.dtype; }, {"f32", "f64"},
                            [](const std::string& n) {
                              if (n != "f32" && n != "f64") throw std::invalid_argument(n);
                              return parse_dtype(n);
                            },
                            [](const DType& d) { return std::string(dtype_name(d)); }));
  t.push_back(choice<Device>({"--device", "device", "Where to compute (cuda: when built with CUDA and a GPU is present)"},
                             [](auto& c) -> auto& { return c.device; }, {"cpu", "cuda"},
                             [](const std::string& n) { return parse_device(n); },
                             [](const Device& d) { return std::string(device_name(d)); }));
  Setting allow_unused = on_off({"--allow-unused", "allow_unused", "Load a checkpoint holding tensors the model does "
                                                                  "not use (e.g. more encoder layers than config.json "
                                                                  "says); off: that is an error listing them"},
                                 &TrainConfig::allow_unused);
  allow_unused.absent_means_default = true;  // run directories from before the setting
  t.push_back(allow_unused);
}

// The sizes of the PELT modules (stored under "pelt" by PeltConfig::to_json), and --stop-after.
void add_module_rows(std::vector<Setting>& t) {
  auto positive = [](double v) { return v > 0; };
  auto pelt_size = [&](const Row& r, int PeltConfig::*field, uint64_t lo, uint64_t hi) {
    Setting s = whole<int>(r, [field](auto& c) -> auto& { return c.pelt.*field; }, lo, hi);
    s.to_json = nullptr;
    s.from_json = nullptr;
    t.push_back(s);
  };
  pelt_size({"--adapter-size", "pelt.adapter_size", "Adapter bottleneck m (0 = hidden/16, 48 for BERT-base; at most "
                                                    "the hidden size)"},
            &PeltConfig::adapter_size, 0, 65536);
  pelt_size({"--prefix-len", "pelt.prefix_len", "Prefix length L"}, &PeltConfig::prefix_len, 1, 512);
  pelt_size({"--prefix-mid", "pelt.prefix_mid", "Width of the prefix reparameterisation MLP"}, &PeltConfig::prefix_mid,
            1, 4096);
  pelt_size({"--lora-r", "pelt.lora_r", "LoRA rank r (at most the hidden size)"}, &PeltConfig::lora_r, 1, 65536);
  Setting alpha = real({"--lora-alpha", "pelt.lora_alpha", "LoRA alpha; the ungated scaling is alpha/r"},
                       [](auto& c) -> auto& { return c.pelt.lora_alpha; }, positive, "a number > 0");
  alpha.to_json = nullptr;
  alpha.from_json = nullptr;
  t.push_back(alpha);
  Setting pool = choice<GatePool>({"--gate-pool", "pelt.gate_pool", "How gates pool token scores: masked (real tokens "
                                                                    "only) or all (padding included, as the official "
                                                                    "code)"},
                                  [](auto& c) -> auto& { return c.pelt.gate_pool; }, {"masked", "all"},
                                  [](const std::string& n) { return parse_gate_pool(n); },
                                  [](const GatePool& p) { return std::string(gate_pool_name(p)); });
  pool.to_json = nullptr;
  pool.from_json = nullptr;
  t.push_back(pool);
  // This invocation only.
  Setting stop = whole<int>({"--stop-after", "", "Stop after this many epochs of this invocation, as if interrupted "
                                                 "(0 = off; for testing --resume)", S::Invocation},
                            &TrainConfig::stop_after_epochs, 0, 10000);
  stop.to_json = nullptr;
  stop.from_json = nullptr;
  t.push_back(stop);
  // How the process uses the machine.
  Setting threads = whole<int>({"--threads", "", "CPU threads for every kernel and matrix product (0 = every CPU "
                                                 "this process may use); results are the same for any count",
                                S::Machine},
                               &TrainConfig::threads, 0, 4096);
  threads.shown_default = "0 (all CPUs; a sweep: cores / jobs)";
  threads.to_json = nullptr;
  threads.from_json = nullptr;
  t.push_back(threads);
}

std::vector<Setting> build_table() {
  std::vector<Setting> t;
  add_grid_rows(t);
  add_run_rows(t);
  add_module_rows(t);
  return t;
}

}  // namespace

const Setting& find_setting(const std::string& flag) {
  for (const Setting& s : train_settings())
    if (s.flag == flag) return s;
  throw std::invalid_argument("unknown setting " + flag);
}

void apply_setting(TrainConfig& config, const std::string& flag, const std::string& text) {
  try {
    find_setting(flag).set(config, text);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(flag + ": " + e.what());
  }
}

void apply_settings(TrainConfig& config, const std::map<std::string, std::string>& values) {
  for (const auto& [flag, text] : values) find_setting(flag);  // unknown flags are an error, not ignored
  for (const Setting& s : train_settings())
    if (auto it = values.find(s.flag); it != values.end()) apply_setting(config, s.flag, it->second);
}

TrainConfig train_config_from_flags(const std::map<std::string, std::string>& values) {
  TrainConfig config;
  apply_settings(config, values);
  config.validate();
  return config;
}

double TrainConfig::resolved_lr() const { return lr > 0 ? lr : default_learning_rate(pelt); }

void TrainConfig::validate() const {
  for (const Setting& s : train_settings()) {
    try {
      s.check(*this);
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(s.flag + ": " + e.what());
    }
  }
  pelt.validate();
}

nlohmann::json TrainConfig::to_json() const {
  json j = {{"pelt", pelt.to_json()}};
  for (const Setting& s : train_settings())
    if (s.to_json) j[s.key] = s.to_json(*this);
  return j;
}

TrainConfig TrainConfig::from_json(const nlohmann::json& j) {
  if (!j.is_object()) throw std::invalid_argument("a run configuration must be a JSON object");
  TrainConfig c;
  std::vector<std::string> known = {"pelt"};
  for (const Setting& s : train_settings()) {
    if (!s.from_json) continue;
    known.push_back(s.key);
    if (!j.contains(s.key) && s.absent_means_default) continue;
    if (!j.contains(s.key)) throw std::invalid_argument("missing key '" + s.key + "' (" + s.flag + ")");
    try {
      s.from_json(c, j.at(s.key));
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument("key '" + s.key + "' (" + s.flag + "): " + e.what());
    }
  }
  for (const auto& [key, value] : j.items())
    if (std::find(known.begin(), known.end(), key) == known.end())
      throw std::invalid_argument("unknown key '" + key + "' (not a setting of this version)");
  if (!j.contains("pelt")) throw std::invalid_argument("missing key 'pelt'");
  try {
    c.pelt = PeltConfig::from_json(j.at("pelt"));
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument(std::string("key 'pelt': ") + e.what());
  }
  c.validate();
  return c;
}

namespace {

[[noreturn]] void exceeds(const std::string& flag, int64_t value, const std::string& limit) {
  throw std::invalid_argument(flag + ": must be at most " + limit + " for this model, got " + std::to_string(value));
}

}  // namespace

void validate_method_against_model(const PeltConfig& p, const BertConfig& m) {
  const std::string hidden = "its hidden size (" + std::to_string(m.hidden_size) + ")";
  if (p.adapter_size > m.hidden_size) exceeds("--adapter-size", p.adapter_size, hidden);
  if (p.lora_r > m.hidden_size) exceeds("--lora-r", p.lora_r, hidden);
}

void validate_against_model(const TrainConfig& c, const BertConfig& m) {
  if (c.max_len > m.max_position_embeddings)
    exceeds("--max-len", c.max_len, "its max_position_embeddings (" + std::to_string(m.max_position_embeddings) + ")");
  validate_method_against_model(c.pelt, m);
}

int padded_length(const TrainConfig& c) { return c.pelt.gate_pool == GatePool::All && c.pelt.gated ? c.max_len : 0; }

std::string settings_markdown_table() {
  std::ostringstream md;
  md << "| flag | config.json | default | accepts | sweep | meaning |\n|---|---|---|---|---|---|\n";
  for (const Setting& s : train_settings()) {
    const char* sweep = s.scope == SettingScope::Run          ? "passed to every run"
                        : s.scope == SettingScope::Grid       ? "a grid axis"
                        : s.scope == SettingScope::Location   ? "set by the sweep"
                        : s.scope == SettingScope::MethodEdit ? "no (presets only)"
                        : s.scope == SettingScope::Machine    ? "passed to every run (default: cores / jobs)"
                                                              : "no";
    auto cell = [](const std::string& text) {  // a '|' would end the Markdown cell
      std::string out;
      for (char ch : text) {
        if (ch == '|') out.push_back('\\');
        out.push_back(ch);
      }
      return out;
    };
    md << "| `" << cell(s.flag + " " + s.type) << "` | " << (s.key.empty() ? "–" : "`" + s.key + "`") << " | "
       << cell(s.shown_default) << " | " << cell(s.accepts) << " | " << sweep << " | " << cell(s.help) << " |\n";
  }
  return md.str();
}

double default_learning_rate(const PeltConfig& p) {
  const int modules = int(p.adapter) + int(p.prefix) + int(p.lora) + int(p.bitfit);
  if (p.finetune) return 2e-5;
  if (modules > 1) return 5e-4;  // UniPELT
  if (p.adapter) return 1e-4;
  if (p.prefix) return 2e-4;
  if (p.lora) return 5e-4;
  if (p.bitfit) return 1e-4;
  return 1e-4;  // head only
}

size_t parse_k(const std::string& text) {
  if (text == "all") return 0;
  const auto v = whole_number(text);
  if (!v || *v == 0) refuse("a whole number from 1 to 2^64 - 1 or 'all'", text);
  return static_cast<size_t>(*v);
}

uint64_t parse_seed(const std::string& text) {
  const auto v = whole_number(text);
  if (!v) throw std::invalid_argument("a seed must be a whole number from 0 to 2^64 - 1, got '" + text + "'");
  return *v;
}

std::string k_label(size_t k) { return k ? std::to_string(k) : std::string("all"); }

}  // namespace unipelt

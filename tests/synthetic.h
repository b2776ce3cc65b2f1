// A synthetic, tiny training setup so that the trainer and the run tools can be tested in seconds
// without the data mirror or a real BERT checkpoint:
//
//   ROOT/model/config.json        a BERT config (hidden 16, 2 layers, 2 heads, intermediate 32)
//   ROOT/model/model.safetensors  its weights after init_weights(seed), classifier included
//   ROOT/model/vocab.txt          [PAD] [UNK] [CLS] [SEP] [MASK] + the 36 words below
//   ROOT/data/glue/SST-2/train.tsv  "sentence\tlabel", 1,100 rows (K + the protocol's 1,000 dev rows)
//   ROOT/data/glue/SST-2/dev.tsv    60 rows (the protocol's test set)
//
// Every sentence holds a few filler words and 2-3 sentiment words of one polarity; the label is 1 when
// they are positive, so a bag of words learns it (fine-tuning at lr 1e-2, batch 8, gets well above
// chance within 4 epochs of K = 64). Everything is deterministic (our own LCG, no std::*_distribution).
//
// Also here: spawn_program / run_cli to run the `unipelt` program (UNIPELT_CLI) from tests.
#pragma once

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

#include <cerrno>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

#include "nn/bert.h"
#include "nn/bert_config.h"
#include "nn/bert_loader.h"
#include "nn/safetensors.h"

namespace unipelt::testing {

struct SyntheticSetup {
  std::filesystem::path model_dir, data_dir;
};

inline const std::vector<std::string>& synthetic_positive_words() {
  static const std::vector<std::string> w = {"good", "great", "nice"};
  return w;
}
inline const std::vector<std::string>& synthetic_negative_words() {
  static const std::vector<std::string> w = {"bad", "awful", "poor"};
  return w;
}
inline const std::vector<std::string>& synthetic_filler_words() {
  static const std::vector<std::string> w = {"the",   "a",    "movie", "film",   "story", "actor",  "plot",
                                             "was",   "is",   "very",  "quite",  "and",   "but",    "it",
                                             "this",  "that", "with",  "of",     "scene", "music",  "ending",
                                             "cast",  "really", "so",  "too",    "also",  "script", "director",
                                             "show",  "book"};
  return w;
}

// Numerical Recipes' 64-bit LCG: the same numbers on every platform.
struct SyntheticRng {
  uint64_t state;
  explicit SyntheticRng(uint64_t seed) : state(seed * 2862933555777941757ull + 3037000493ull) {}
  uint64_t next() {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return state >> 33;
  }
  size_t below(size_t n) { return static_cast<size_t>(next() % n); }
};

// One sentence and its label: 1-3 filler words and 2-3 sentiment words of the label's polarity.
inline std::pair<std::string, int> synthetic_sentence(SyntheticRng& rng) {
  const int label = static_cast<int>(rng.below(2));
  const auto& sentiment = label ? synthetic_positive_words() : synthetic_negative_words();
  std::vector<std::string> words;
  for (size_t i = 0, n = 1 + rng.below(3); i < n; ++i)
    words.push_back(synthetic_filler_words()[rng.below(synthetic_filler_words().size())]);
  for (size_t i = 0, n = 2 + rng.below(2); i < n; ++i)
    words.insert(words.begin() + static_cast<long>(rng.below(words.size() + 1)), sentiment[rng.below(sentiment.size())]);
  std::string text;
  for (const auto& w : words) text += (text.empty() ? "" : " ") + w;
  return {text, label};
}

inline void write_synthetic_sst2(const std::filesystem::path& task_dir, size_t train_rows, size_t dev_rows,
                                 uint64_t seed) {
  std::filesystem::create_directories(task_dir);
  SyntheticRng rng(seed);
  for (const auto& [name, rows] : {std::pair<std::string, size_t>{"train.tsv", train_rows}, {"dev.tsv", dev_rows}}) {
    std::ofstream out(task_dir / name);
    out << "sentence\tlabel\n";
    for (size_t i = 0; i < rows; ++i) {
      auto [text, label] = synthetic_sentence(rng);
      out << text << " \t" << label << "\n";  // SST-2's files end each sentence with a space, too
    }
  }
}

// Writes the model directory and SST-2 data under `root` (which must exist).
inline SyntheticSetup make_synthetic_setup(const std::filesystem::path& root, uint64_t seed = 7) {
  SyntheticSetup s{root / "model", root / "data"};
  std::filesystem::create_directories(s.model_dir);

  std::vector<std::string> vocab = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
  for (const auto* list : {&synthetic_positive_words(), &synthetic_negative_words(), &synthetic_filler_words()})
    vocab.insert(vocab.end(), list->begin(), list->end());
  {
    std::ofstream out(s.model_dir / "vocab.txt");
    for (const auto& t : vocab) out << t << "\n";
  }

  BertConfig config;
  config.vocab_size = static_cast<int>(vocab.size());
  config.hidden_size = 16;
  config.num_hidden_layers = 2;
  config.num_attention_heads = 2;
  config.intermediate_size = 32;
  config.max_position_embeddings = 64;
  config.initializer_range = 0.2;  // larger than BERT's 0.02, so that a few steps already learn something
  config.num_labels = 2;
  config.id2label = {"LABEL_0", "LABEL_1"};
  config.validate("synthetic config");
  save_bert_config(config, s.model_dir / "config.json");

  BertForSequenceClassification model(config, DType::F32, Device::CPU);
  model.init_weights(seed);
  write_safetensors(s.model_dir / "model.safetensors", state_dict(model));

  write_synthetic_sst2(s.data_dir / "glue" / "SST-2", 1100, 60, seed + 1);
  return s;
}

// `unipelt train` flags for a tiny run on the synthetic setup: K = 64, batches of 8, max_len 32, and PELT
// modules small enough for the 16-wide model.
inline std::vector<std::string> tiny_train_flags(const SyntheticSetup& s, const std::filesystem::path& out,
                                                 const std::string& method, int epochs) {
  return {"train",          "--task",        "SST-2",       "--method",     method,
          "--model",        s.model_dir,     "--data",      s.data_dir,     "--out",
          out.string(),     "--k",           "64",          "--epochs",     std::to_string(epochs),
          "--patience",     "10",            "--batch-size", "8",           "--max-len",
          "32",             "--eval-batch-size", "128",     "--adapter-size", "4",
          "--prefix-len",   "3",             "--prefix-mid", "16",          "--lora-r",
          "2",              "--lora-alpha",  "4"};
}

}  // namespace unipelt::testing

// ---------------------------------------------------------------------------------------------
// Running the unipelt program from tests.
// ---------------------------------------------------------------------------------------------
namespace unipelt::testing {

// Starts `args` (args[0] = program path) with stdout to `out_path` and stderr to `err_path`
// (both truncated; empty: inherit). Returns the pid; throws when it cannot start.
inline pid_t spawn_program(const std::vector<std::string>& args, const std::filesystem::path& out_path,
                           const std::filesystem::path& err_path) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  if (!out_path.empty())
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (!err_path.empty())
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, args.at(0).c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) throw std::runtime_error("cannot start " + args[0]);
  return pid;
}

// Exit status of a spawned program (128 + signal when killed by one).
inline int wait_program(pid_t pid) {
  int status = 0;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// Runs the unipelt CLI built beside the tests (UNIPELT_CLI) with `args` and waits for it.
inline int run_cli(const std::vector<std::string>& args, const std::filesystem::path& out_path,
                   const std::filesystem::path& err_path) {
  std::vector<std::string> full = {UNIPELT_CLI};
  full.insert(full.end(), args.begin(), args.end());
  return wait_program(spawn_program(full, out_path, err_path));
}

inline std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace unipelt::testing

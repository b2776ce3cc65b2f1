// `unipelt convert --model DIR`: DIR/pytorch_model.bin -> DIR/model.safetensors, once, for users who
// would rather keep the safer, memory-mapped format. Reading the .bin runs no code from it (the
// restricted unpickler of nn/torch_checkpoint.h); every tensor keeps its dtype.
#include <cstdio>

#include "examples/cli/cli.h"
#include "nn/torch_checkpoint.h"

namespace {

struct ConvertOptions {
  std::string model, input = "pytorch_model.bin";
  bool force = false;
};

void run_convert(const ConvertOptions& o) {
  using namespace unipelt;
  const std::filesystem::path dir(o.model), in = dir / o.input, out = dir / "model.safetensors";
  if (!std::filesystem::exists(in)) throw std::runtime_error(in.string() + ": no such file");
  if (std::filesystem::exists(out) && !o.force)
    throw std::invalid_argument(out.string() + " exists already (pass --force to overwrite it)");
  const TorchCheckpoint checkpoint(in);
  write_checkpoint_as_safetensors(checkpoint, out);
  const SafetensorsFile check(out);  // reopen: the header parses and covers every byte
  std::printf("%s (PyTorch %s checkpoint, %zu tensors) -> %s (%zu tensors)\n", in.c_str(), checkpoint.format().c_str(),
              checkpoint.names().size(), out.c_str(), check.names().size());
}

}  // namespace

namespace unipelt::cli {

void add_convert_command(CLI::App& app) {
  auto o = std::make_shared<ConvertOptions>();
  auto* cmd = app.add_subcommand("convert", "Convert a model directory's pytorch_model.bin to model.safetensors beside "
                                            "it (no code from the .bin is run; dtypes are kept)");
  cmd->add_option("--model", o->model, "Hugging Face model directory holding pytorch_model.bin")
      ->required()->check(CLI::ExistingDirectory);
  cmd->add_option("--input", o->input, "File name of the PyTorch checkpoint inside DIR")->capture_default_str();
  cmd->add_flag("--force", o->force, "Overwrite an existing model.safetensors");
  cmd->callback([o] { run_convert(*o); });
}

}  // namespace unipelt::cli

#include "pelt/grads.h"

#include <map>

#include "autograd/tape.h"
#include "nn/safetensors.h"
#include "pelt/peft_format.h"

namespace unipelt {

void load_named_tensors(const PeltModel& model, const TensorFile& file,
                        const std::function<std::string(const std::string&)>& rename) {
  std::map<std::string, Tensor> by_name;
  for (const NamedTensor& p : model.all_parameters()) by_name[p.name] = p.tensor;
  const std::vector<std::string> names = file.names();
  std::string problems;
  for (const std::string& stored : names) {
    const std::string name = rename ? rename(stored) : stored;
    const std::string shown = name == stored ? name : stored + " (as " + name + ")";
    auto it = by_name.find(name);
    if (it == by_name.end()) {
      problems += "\n  unexpected tensor " + shown + " (not a parameter of this model/method)";
    } else if (Shape(file.shape(stored)) != it->second.shape()) {
      problems += "\n  " + shown + ": file has " + shape_str(file.shape(stored)) + ", model expects " +
                  shape_str(it->second.shape());
    }
  }
  if (!problems.empty()) throw std::runtime_error(file.path().string() + ": cannot load" + problems);
  for (const std::string& stored : names) {
    const Tensor& dst = by_name.at(rename ? rename(stored) : stored);
    dst.copy_from(file.load(stored, dst.dtype(), dst.device()));
  }
}

void load_named_tensors(const PeltModel& model, const std::filesystem::path& path) {
  if (!is_peft_adapter_dir(path)) {
    load_named_tensors(model, SafetensorsFile(path));
    return;
  }
  const PeftLoraConfig adapter = read_peft_config(path);
  const PeltConfig& c = model.config();
  if (!c.lora || c.gated || c.lora_r != adapter.r || c.lora_alpha != adapter.lora_alpha)
    throw std::invalid_argument(path.string() + ": a peft LoRA adapter (r " + std::to_string(adapter.r) + ", lora_alpha " +
                                std::to_string(adapter.lora_alpha) + ") needs an ungated LoRA with the same settings: "
                                "--method lora --lora-r " + std::to_string(adapter.r) + " --lora-alpha " +
                                std::to_string(adapter.lora_alpha));
  load_named_tensors(model, *open_weights_file(peft_weights_path(path)), peft_to_unipelt_name);
}

std::vector<std::pair<std::string, Tensor>> forward_backward_outputs(PeltModel& model, const Batch& batch) {
  tape().clear();
  const std::vector<NamedTensor> trainable = model.trainable_parameters();
  for (const NamedTensor& p : trainable) p.tensor.zero_grad();
  ForwardContext ctx;  // training = false: dropout off
  auto out = model.forward(batch, ctx);
  if (!out.loss.defined()) throw std::runtime_error("grads: the batch has no labels, so there is no loss");
  backward(out.loss);

  std::vector<std::pair<std::string, Tensor>> result;
  result.emplace_back("logits", out.logits.to(Device::CPU));
  result.emplace_back("loss", out.loss.to(Device::CPU));
  for (const auto& [name, g] : model.gate_values()) result.emplace_back("gate/" + name, g.to(Device::CPU));
  for (const NamedTensor& p : trainable) {
    Tensor g = p.tensor.grad();
    if (!g.defined()) g = Tensor::zeros(p.tensor.shape(), p.tensor.dtype());  // did not influence the loss
    result.emplace_back("grad/" + p.name, g.to(Device::CPU));
  }
  return result;
}

}  // namespace unipelt

#include "pelt/grads.h"

#include <map>

#include "autograd/tape.h"
#include "nn/safetensors.h"

namespace unipelt {

void load_named_tensors(const PeltModel& model, const std::filesystem::path& path) {
  SafetensorsFile file(path);
  std::map<std::string, Tensor> by_name;
  for (const NamedTensor& p : model.all_parameters()) by_name[p.name] = p.tensor;
  std::string problems;
  for (const StTensorInfo& info : file.tensors()) {
    auto it = by_name.find(info.name);
    if (it == by_name.end()) {
      problems += "\n  unexpected tensor " + info.name + " (not a parameter of this model/method)";
    } else if (Shape(info.shape) != it->second.shape()) {
      problems += "\n  " + info.name + ": file has " + shape_str(info.shape) + ", model expects " +
                  shape_str(it->second.shape());
    }
  }
  if (!problems.empty()) throw std::runtime_error(path.string() + ": cannot load" + problems);
  for (const StTensorInfo& info : file.tensors()) {
    const Tensor& dst = by_name.at(info.name);
    dst.copy_from(file.load(info.name, dst.dtype(), dst.device()));
  }
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

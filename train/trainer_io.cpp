// The trainer's supporting pieces: configuration (de)serialisation, learning-rate defaults, data
// location, and evaluation. The loop itself is in trainer.cpp.
#include <algorithm>
#include <fstream>
#include <numeric>
#include <sstream>

#include "autograd/tape.h"
#include "datasets/metrics.h"
#include "train/trainer.h"

namespace unipelt {

void TrainConfig::validate() const {
  auto need = [](bool ok, const std::string& flag, const std::string& rule, double got) {
    if (!ok) {
      std::ostringstream value;
      value << got;
      throw std::invalid_argument("train: " + flag + " must be " + rule + ", got " + value.str());
    }
  };
  need(epochs >= 1, "--epochs", "at least 1", epochs);
  need(patience >= 1, "--patience", "at least 1", patience);
  need(batch_size >= 1, "--batch-size", "at least 1", batch_size);
  need(eval_batch_size >= 1, "--eval-batch-size", "at least 1", eval_batch_size);
  need(max_len >= 3, "--max-len", "at least 3 ([CLS], one token, [SEP])", max_len);
  need(lr >= 0, "--lr", ">= 0 (0: the paper's rate for the method)", lr);
  need(weight_decay >= 0, "--weight-decay", ">= 0", weight_decay);
  need(beta1 >= 0 && beta1 < 1, "--beta1", "in [0, 1)", beta1);
  need(beta2 >= 0 && beta2 < 1, "--beta2", "in [0, 1)", beta2);
  need(adam_eps > 0, "--adam-eps", "positive", adam_eps);
  need(max_grad_norm > 0, "--max-grad-norm", "positive", max_grad_norm);
  need(warmup_steps >= 0, "--warmup-steps", ">= 0", warmup_steps);
  need(stop_after_epochs >= 0, "--stop-after", ">= 0", stop_after_epochs);
  pelt.validate();
}

nlohmann::json TrainConfig::to_json() const {
  return {{"task", task},
          {"pelt", pelt.to_json()},
          {"model_dir", model_dir},
          {"data_dir", data_dir},
          {"out_dir", out_dir},
          {"k", k},
          {"data_seed", data_seed},
          {"seed", seed},
          {"lr", lr > 0 ? lr : default_learning_rate(pelt)},
          {"epochs", epochs},
          {"patience", patience},
          {"batch_size", batch_size},
          {"max_len", max_len},
          {"eval_batch_size", eval_batch_size},
          {"weight_decay", weight_decay},
          {"beta1", beta1},
          {"beta2", beta2},
          {"adam_eps", adam_eps},
          {"max_grad_norm", max_grad_norm},
          {"warmup_steps", warmup_steps},
          {"dtype", dtype},
          {"device", device}};
}

TrainConfig TrainConfig::from_json(const nlohmann::json& j) {
  TrainConfig c;
  c.task = j.at("task");
  c.pelt = PeltConfig::from_json(j.at("pelt"));
  c.model_dir = j.at("model_dir");
  c.data_dir = j.at("data_dir");
  c.out_dir = j.at("out_dir");
  c.k = j.at("k");
  c.data_seed = j.at("data_seed");
  c.seed = j.at("seed");
  c.lr = j.at("lr");
  c.epochs = j.at("epochs");
  c.patience = j.at("patience");
  c.batch_size = j.at("batch_size");
  c.max_len = j.at("max_len");
  c.eval_batch_size = j.at("eval_batch_size");
  c.weight_decay = j.at("weight_decay");
  c.beta1 = j.at("beta1");
  c.beta2 = j.at("beta2");
  c.adam_eps = j.at("adam_eps");
  c.max_grad_norm = j.at("max_grad_norm");
  c.warmup_steps = j.at("warmup_steps");
  c.dtype = j.at("dtype");
  c.device = j.at("device");
  return c;
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

EvalResult evaluate(PeltModel& model, const std::string& task, const std::vector<EncodedExample>& data,
                    int batch_size, int pad_to, bool with_labels) {
  NoGradGuard no_grad;
  const bool regression = model.base().is_regression();
  const DType dtype = model.base().dtype();
  const Device device = model.base().device();
  // Sort by length so that each batch pads little (results are put back in the original order).
  std::vector<size_t> order(data.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return data[a].input_ids.size() < data[b].input_ids.size(); });
  EvalResult r;
  r.predictions.assign(data.size(), 0.0);
  std::map<std::string, double> gate_sums;
  double loss_sum = 0.0;
  for (size_t start = 0; start < order.size(); start += static_cast<size_t>(batch_size)) {
    std::vector<size_t> idx(order.begin() + static_cast<long>(start),
                            order.begin() + static_cast<long>(std::min(order.size(), start + batch_size)));
    Batch batch = make_batch(data, idx, regression, with_labels, pad_to, dtype, device);
    ForwardContext ctx;
    auto out = model.forward(batch, ctx);
    if (out.loss.defined()) loss_sum += out.loss.item() * static_cast<double>(idx.size());
    const std::vector<double> logits = out.logits.to_vector();
    const size_t c = static_cast<size_t>(out.logits.size(1));
    for (size_t i = 0; i < idx.size(); ++i) {
      if (regression) {
        r.predictions[idx[i]] = logits[i];
      } else {
        r.predictions[idx[i]] = static_cast<double>(
            std::max_element(logits.begin() + static_cast<long>(i * c), logits.begin() + static_cast<long>((i + 1) * c)) -
            (logits.begin() + static_cast<long>(i * c)));
      }
    }
    for (const auto& [name, g] : model.gate_values()) {
      double s = 0.0;
      for (double v : g.to_vector()) s += v;
      gate_sums[name] += s;
    }
  }
  // "layer.3.adapter" -> gates["adapter"][3]
  for (const auto& [name, sum] : gate_sums) {
    const size_t dot1 = name.find('.'), dot2 = name.find('.', dot1 + 1);
    const size_t layer = std::stoul(name.substr(dot1 + 1, dot2 - dot1 - 1));
    auto& per_layer = r.gates[name.substr(dot2 + 1)];
    if (per_layer.size() <= layer) per_layer.resize(layer + 1, 0.0);
    per_layer[layer] = sum / static_cast<double>(data.size());
  }
  if (with_labels && !data.empty()) {
    r.loss = loss_sum / static_cast<double>(data.size());
    if (regression) {
      std::vector<float> pred, gold;
      for (size_t i = 0; i < data.size(); ++i) {
        pred.push_back(static_cast<float>(r.predictions[i]));
        gold.push_back(data[i].score);
      }
      r.metrics = compute_task_metrics(task, pred, gold);
    } else {
      std::vector<int> pred, gold;
      for (size_t i = 0; i < data.size(); ++i) {
        pred.push_back(static_cast<int>(r.predictions[i]));
        gold.push_back(data[i].label);
      }
      r.metrics = compute_task_metrics(task, pred, gold);
    }
  }
  return r;
}

}  // namespace unipelt

// Losses: mean cross-entropy over logits and mean squared error. Both return a [1] tensor.
#include "autograd/op_util.h"

namespace unipelt::ops {
using detail::be;

// loss = mean_i [ logsumexp(logits_i) - logits_i[label_i] ];  dlogits = (softmax - onehot) · dloss / N
Tensor cross_entropy(const Tensor& logits, const Tensor& labels) {
  detail::check_float("cross_entropy", logits);
  check(logits.ndim() == 2, "cross_entropy", [&] { return "logits must be [N, C], got " + shape_str(logits.shape()); });
  check(labels.dtype() == DType::I32 && labels.shape() == Shape{logits.size(0)}, "cross_entropy", [&] {
    return "labels must be i32 [" + std::to_string(logits.size(0)) + "], got " + dtype_name(labels.dtype()) + " " +
           shape_str(labels.shape());
  });
  check(labels.device() == logits.device(), "cross_entropy", "labels and logits are on different devices");
  const int64_t n = logits.size(0), c = logits.size(1);
  Tensor probs = detail::empty_like(logits);
  Tensor loss = detail::empty_as({1}, logits);
  be(logits).cross_entropy_forward(logits.dtype(), n, c, logits.data(), labels.data_as<int32_t>(), probs.data(),
                                   loss.data());
  if (needs_grad({&logits})) {
    tape().record("cross_entropy", loss, [logits_t = grad_target(logits), labels, probs, n, c](const Tensor& dloss) {
      Tensor dlogits = empty_for(logits_t);
      be(dloss).cross_entropy_backward(dloss.dtype(), n, c, probs.data(), labels.data_as<int32_t>(), dloss.data(),
                                       dlogits.data());
      accumulate_grad(logits_t, dlogits);
    });
  }
  return loss;
}

// loss = mean_i (pred_i - target_i)²;  dpred = 2 (pred - target) · dloss / N
Tensor mse_loss(const Tensor& pred, const Tensor& target) {
  detail::check_float("mse_loss", pred);
  check_same_dtype_device("mse_loss", pred, target);
  const int64_t n = target.numel();
  check(target.ndim() == 1 && pred.numel() == n && (pred.ndim() == 1 || (pred.ndim() == 2 && pred.size(1) == 1)),
        "mse_loss", [&] {
          return "pred must be [N] or [N, 1] and target [N], got " + shape_str(pred.shape()) + " and " +
                 shape_str(target.shape());
        });
  Tensor loss = detail::empty_as({1}, pred);
  be(pred).mse_forward(pred.dtype(), n, pred.data(), target.data(), loss.data());
  if (needs_grad({&pred})) {
    tape().record("mse_loss", loss, [pred_t = grad_target(pred), pred, target, n](const Tensor& dloss) {
      Tensor dpred = empty_for(pred_t);
      be(dloss).mse_backward(dloss.dtype(), n, pred.data(), target.data(), dloss.data(), dpred.data());
      accumulate_grad(pred_t, dpred);
    });
  }
  return loss;
}

}  // namespace unipelt::ops

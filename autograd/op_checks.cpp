#include "autograd/op_checks.h"

#include <cmath>

#include "autograd/ops.h"
#include "autograd/tape.h"

namespace unipelt {

namespace {

using Inputs = std::vector<Tensor>;

// A differentiable random input.
Tensor var(const Shape& shape, uint64_t seed, DType dtype, double lo = -1.0, double hi = 1.0) {
  Tensor t = random_uniform(shape, lo, hi, seed, dtype);
  t.set_requires_grad(true);
  return t;
}
// A constant (no gradient) input.
Tensor constant(const std::vector<double>& values, const Shape& shape, DType dtype) {
  return Tensor::from_vector(values, shape, dtype);
}

OpCase make(std::string op, std::string shapes, std::function<Inputs(DType)> in, TensorFunction f) {
  return OpCase{std::move(op), std::move(shapes), std::move(in), std::move(f)};
}

void add_linear_cases(std::vector<OpCase>& cases) {
  cases.push_back(make("linear", "x[3,5] W[4,5] b[4]",
      [](DType d) { return Inputs{var({3, 5}, 1, d), var({4, 5}, 2, d), var({4}, 3, d)}; },
      [](const Inputs& v) { return ops::linear(v[0], v[1], v[2]); }));
  cases.push_back(make("linear", "x[2,3,7] W[5,7] b[5]",
      [](DType d) { return Inputs{var({2, 3, 7}, 4, d), var({5, 7}, 5, d), var({5}, 6, d)}; },
      [](const Inputs& v) { return ops::linear(v[0], v[1], v[2]); }));
  cases.push_back(make("linear", "x[2,2,3,4] W[3,4] (no bias, frozen W)",
      [](DType d) { return Inputs{var({2, 2, 3, 4}, 7, d), random_uniform({3, 4}, -1, 1, 8, d)}; },
      [](const Inputs& v) { return ops::linear(v[0], v[1]); }));
  cases.push_back(make("matmul", "a[3,5]·b[5,4]",
      [](DType d) { return Inputs{var({3, 5}, 9, d), var({5, 4}, 10, d)}; },
      [](const Inputs& v) { return ops::matmul(v[0], v[1]); }));
  cases.push_back(make("matmul", "a[5,3]ᵀ·b[4,5]ᵀ",
      [](DType d) { return Inputs{var({5, 3}, 11, d), var({4, 5}, 12, d)}; },
      [](const Inputs& v) { return ops::matmul(v[0], v[1], true, true); }));
  cases.push_back(make("matmul", "a[5,3]ᵀ·b[5,2]",
      [](DType d) { return Inputs{var({5, 3}, 13, d), var({5, 2}, 14, d)}; },
      [](const Inputs& v) { return ops::matmul(v[0], v[1], true, false); }));
  cases.push_back(make("bmm", "a[2,3,5]·b[2,5,4]",
      [](DType d) { return Inputs{var({2, 3, 5}, 15, d), var({2, 5, 4}, 16, d)}; },
      [](const Inputs& v) { return ops::bmm(v[0], v[1]); }));
  cases.push_back(make("bmm", "q[2,3,4,5]·k[2,3,6,5]ᵀ",
      [](DType d) { return Inputs{var({2, 3, 4, 5}, 17, d), var({2, 3, 6, 5}, 18, d)}; },
      [](const Inputs& v) { return ops::bmm(v[0], v[1], false, true); }));
  cases.push_back(make("bmm", "a[2,5,3]ᵀ·b[2,5,2]",
      [](DType d) { return Inputs{var({2, 5, 3}, 19, d), var({2, 5, 2}, 20, d)}; },
      [](const Inputs& v) { return ops::bmm(v[0], v[1], true, false); }));
}

void add_elementwise_cases(std::vector<OpCase>& cases) {
  cases.push_back(make("add", "[3,4]+[3,4]",
      [](DType d) { return Inputs{var({3, 4}, 21, d), var({3, 4}, 22, d)}; },
      [](const Inputs& v) { return ops::add(v[0], v[1]); }));
  cases.push_back(make("add", "x[2,3,5]+bias[5]",
      [](DType d) { return Inputs{var({2, 3, 5}, 23, d), var({5}, 24, d)}; },
      [](const Inputs& v) { return ops::add(v[0], v[1]); }));
  cases.push_back(make("add", "[3,1]+[1,4]",
      [](DType d) { return Inputs{var({3, 1}, 25, d), var({1, 4}, 26, d)}; },
      [](const Inputs& v) { return ops::add(v[0], v[1]); }));
  cases.push_back(make("sub", "x[2,3,5]-y[2,1,5]",
      [](DType d) { return Inputs{var({2, 3, 5}, 27, d), var({2, 1, 5}, 28, d)}; },
      [](const Inputs& v) { return ops::sub(v[0], v[1]); }));
  cases.push_back(make("sub", "[3,4]-[3,4]",
      [](DType d) { return Inputs{var({3, 4}, 69, d), var({3, 4}, 70, d)}; },
      [](const Inputs& v) { return ops::sub(v[0], v[1]); }));
  cases.push_back(make("mul", "[3,4]*[3,4]",
      [](DType d) { return Inputs{var({3, 4}, 29, d), var({3, 4}, 30, d)}; },
      [](const Inputs& v) { return ops::mul(v[0], v[1]); }));
  cases.push_back(make("mul", "h[2,3,5]*gate[2,1,1]",
      [](DType d) { return Inputs{var({2, 3, 5}, 31, d), var({2, 1, 1}, 32, d)}; },
      [](const Inputs& v) { return ops::mul(v[0], v[1]); }));
  cases.push_back(make("mul", "[2,3,2,4]*[4]",
      [](DType d) { return Inputs{var({2, 3, 2, 4}, 33, d), var({4}, 34, d)}; },
      [](const Inputs& v) { return ops::mul(v[0], v[1]); }));
  cases.push_back(make("scale", "x[3,5]·(-1.7)",
      [](DType d) { return Inputs{var({3, 5}, 35, d)}; },
      [](const Inputs& v) { return ops::scale(v[0], -1.7); }));
  cases.push_back(make("scale", "x[2,3,5]·0.5",
      [](DType d) { return Inputs{var({2, 3, 5}, 71, d)}; },
      [](const Inputs& v) { return ops::scale(v[0], 0.5); }));
}

void add_activation_cases(std::vector<OpCase>& cases) {
  const std::vector<std::pair<std::string, Tensor (*)(const Tensor&)>> acts = {
      {"gelu", ops::gelu}, {"relu", ops::relu}, {"tanh", ops::tanh}, {"sigmoid", ops::sigmoid}};
  for (const auto& [name, fn] : acts) {
    auto f = fn;
    cases.push_back(make(name, "[3,7]", [](DType d) { return Inputs{var({3, 7}, 36, d, -3, 3)}; },
                         [f](const Inputs& v) { return f(v[0]); }));
    cases.push_back(make(name, "[2,3,5]", [](DType d) { return Inputs{var({2, 3, 5}, 37, d, -3, 3)}; },
                         [f](const Inputs& v) { return f(v[0]); }));
  }
}

void add_reduction_cases(std::vector<OpCase>& cases) {
  cases.push_back(make("sum", "[3,5]", [](DType d) { return Inputs{var({3, 5}, 38, d)}; },
                       [](const Inputs& v) { return ops::sum(v[0]); }));
  cases.push_back(make("sum", "[2,3,4,5]", [](DType d) { return Inputs{var({2, 3, 4, 5}, 72, d)}; },
                       [](const Inputs& v) { return ops::sum(v[0]); }));
  cases.push_back(make("mean", "[2,3,4]", [](DType d) { return Inputs{var({2, 3, 4}, 39, d)}; },
                       [](const Inputs& v) { return ops::mean(v[0]); }));
  cases.push_back(make("mean", "[7]", [](DType d) { return Inputs{var({7}, 73, d)}; },
                       [](const Inputs& v) { return ops::mean(v[0]); }));
  cases.push_back(make("masked_mean", "x[2,5,3] mask[2,5] with padding",
      [](DType d) {
        return Inputs{var({2, 5, 3}, 40, d), constant({1, 1, 1, 0, 0, 1, 1, 1, 1, 1}, {2, 5}, d)};
      },
      [](const Inputs& v) { return ops::masked_mean(v[0], v[1]); }));
  cases.push_back(make("masked_mean", "x[3,4,1] mask[3,4], one row all padding",
      [](DType d) {
        return Inputs{var({3, 4, 1}, 41, d), constant({1, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 1}, {3, 4}, d)};
      },
      [](const Inputs& v) { return ops::masked_mean(v[0], v[1]); }));
}

void add_normalisation_cases(std::vector<OpCase>& cases) {
  cases.push_back(make("softmax", "[3,7]", [](DType d) { return Inputs{var({3, 7}, 42, d, -2, 2)}; },
                       [](const Inputs& v) { return ops::softmax(v[0]); }));
  cases.push_back(make("softmax", "scores[2,2,3,5] mask[2,5]",
      [](DType d) {
        return Inputs{var({2, 2, 3, 5}, 43, d, -2, 2), constant({0, 0, 0, -10000, -10000, 0, 0, 0, 0, 0}, {2, 5}, d)};
      },
      [](const Inputs& v) { return ops::softmax(v[0], v[1]); }));
  cases.push_back(make("layer_norm", "x[4,6] eps=1e-5",
      [](DType d) { return Inputs{var({4, 6}, 44, d, -2, 2), var({6}, 45, d, 0.5, 1.5), var({6}, 46, d)}; },
      [](const Inputs& v) { return ops::layer_norm(v[0], v[1], v[2], 1e-5); }));
  cases.push_back(make("layer_norm", "x[2,3,7] eps=1e-12",
      [](DType d) { return Inputs{var({2, 3, 7}, 47, d, -2, 2), var({7}, 48, d, 0.5, 1.5), var({7}, 49, d)}; },
      [](const Inputs& v) { return ops::layer_norm(v[0], v[1], v[2], 1e-12); }));
}

void add_lookup_and_shape_cases(std::vector<OpCase>& cases) {
  cases.push_back(make("embedding", "ids[2,3] (repeats) table[7,4]",
      [](DType d) { return Inputs{Tensor::from_ints({1, 4, 1, 6, 0, 4}, {2, 3}), var({7, 4}, 50, d)}; },
      [](const Inputs& v) { return ops::embedding(v[0], v[1]); }));
  cases.push_back(make("embedding", "ids[5] table[3,6]",
      [](DType d) { return Inputs{Tensor::from_ints({2, 2, 0, 1, 2}, {5}), var({3, 6}, 74, d)}; },
      [](const Inputs& v) { return ops::embedding(v[0], v[1]); }));
  cases.push_back(make("dropout", "x[4,5] p=0.3",
      [](DType d) { return Inputs{var({4, 5}, 51, d)}; },
      [](const Inputs& v) { return ops::dropout(v[0], 0.3, 7, true); }));
  cases.push_back(make("dropout", "x[2,3,7] p=0.1",
      [](DType d) { return Inputs{var({2, 3, 7}, 75, d)}; },
      [](const Inputs& v) { return ops::dropout(v[0], 0.1, 99, true); }));
  cases.push_back(make("reshape", "[2,3,4]->[6,-1]", [](DType d) { return Inputs{var({2, 3, 4}, 52, d)}; },
                       [](const Inputs& v) { return ops::reshape(v[0], {6, -1}); }));
  cases.push_back(make("reshape", "[6,4]->[2,3,4]", [](DType d) { return Inputs{var({6, 4}, 76, d)}; },
                       [](const Inputs& v) { return ops::reshape(v[0], {2, 3, 4}); }));
  cases.push_back(make("permute", "[2,3,4,5] (0,2,1,3)", [](DType d) { return Inputs{var({2, 3, 4, 5}, 53, d)}; },
                       [](const Inputs& v) { return ops::permute(v[0], {0, 2, 1, 3}); }));
  cases.push_back(make("permute", "[3,4,5] (2,0,1)", [](DType d) { return Inputs{var({3, 4, 5}, 54, d)}; },
                       [](const Inputs& v) { return ops::permute(v[0], {2, 0, 1}); }));
  cases.push_back(make("transpose", "[3,5] (0,1)", [](DType d) { return Inputs{var({3, 5}, 55, d)}; },
                       [](const Inputs& v) { return ops::transpose(v[0], 0, 1); }));
  cases.push_back(make("transpose", "[2,3,4] (-1,-2)", [](DType d) { return Inputs{var({2, 3, 4}, 77, d)}; },
                       [](const Inputs& v) { return ops::transpose(v[0], -1, -2); }));
  cases.push_back(make("concat", "prefix[2,3,2,4] ++ keys[2,3,5,4] on axis 2",
      [](DType d) { return Inputs{var({2, 3, 2, 4}, 56, d), var({2, 3, 5, 4}, 57, d)}; },
      [](const Inputs& v) { return ops::concat({v[0], v[1]}, 2); }));
  cases.push_back(make("concat", "[2,3] ++ [1,3] ++ [2,3] on axis 0",
      [](DType d) { return Inputs{var({2, 3}, 58, d), var({1, 3}, 59, d), var({2, 3}, 60, d)}; },
      [](const Inputs& v) { return ops::concat({v[0], v[1], v[2]}, 0); }));
  // The fused q, k, v head split: deltas on two parts; and a part whose output reaches no loss (its
  // slice of dx must be zeros).
  cases.push_back(make("split_heads", "x[2,3,24] 3 parts × 2 heads, deltas[2,3,8] on parts 0 and 2",
      [](DType d) { return Inputs{var({2, 3, 24}, 80, d), var({2, 3, 8}, 81, d), var({2, 3, 8}, 82, d)}; },
      [](const Inputs& v) {
        const std::vector<Tensor> qkv = ops::split_heads(v[0], 3, 2, {v[1], Tensor(), v[2]});
        return ops::concat({qkv[0], ops::mul(qkv[1], qkv[1]), qkv[2]}, 3);
      }));
  cases.push_back(make("split_heads", "x[2,4,12] 2 parts × 3 heads, only part 1 used",
      [](DType d) { return Inputs{var({2, 4, 12}, 83, d)}; },
      [](const Inputs& v) { return ops::split_heads(v[0], 2, 3)[1]; }));
  cases.push_back(make("slice", "[2,5,3] axis 1 [1,4)", [](DType d) { return Inputs{var({2, 5, 3}, 61, d)}; },
                       [](const Inputs& v) { return ops::slice(v[0], 1, 1, 3); }));
  cases.push_back(make("slice", "[2,3,6] axis -1 [2,6)", [](DType d) { return Inputs{var({2, 3, 6}, 78, d)}; },
                       [](const Inputs& v) { return ops::slice(v[0], -1, 2, 4); }));
  cases.push_back(make("select", "[3,4,5] axis 1 index 0 ([CLS])", [](DType d) { return Inputs{var({3, 4, 5}, 62, d)}; },
                       [](const Inputs& v) { return ops::select(v[0], 1, 0); }));
  cases.push_back(make("select", "[2,5] axis 0 index 1", [](DType d) { return Inputs{var({2, 5}, 79, d)}; },
                       [](const Inputs& v) { return ops::select(v[0], 0, 1); }));
}

void add_loss_cases(std::vector<OpCase>& cases) {
  cases.push_back(make("cross_entropy", "logits[4,3] labels[4]",
      [](DType d) { return Inputs{var({4, 3}, 63, d, -2, 2), Tensor::from_ints({0, 2, 1, 2}, {4})}; },
      [](const Inputs& v) { return ops::cross_entropy(v[0], v[1]); }));
  cases.push_back(make("cross_entropy", "logits[5,2] labels[5]",
      [](DType d) { return Inputs{var({5, 2}, 64, d, -2, 2), Tensor::from_ints({1, 1, 0, 1, 0}, {5})}; },
      [](const Inputs& v) { return ops::cross_entropy(v[0], v[1]); }));
  cases.push_back(make("mse_loss", "pred[5,1] target[5]",
      [](DType d) { return Inputs{var({5, 1}, 65, d), random_uniform({5}, 0, 5, 66, d)}; },
      [](const Inputs& v) { return ops::mse_loss(v[0], v[1]); }));
  cases.push_back(make("mse_loss", "pred[4] target[4]",
      [](DType d) { return Inputs{var({4}, 67, d), random_uniform({4}, -1, 1, 68, d)}; },
      [](const Inputs& v) { return ops::mse_loss(v[0], v[1]); }));
}

}  // namespace

std::vector<OpCase> op_cases() {
  std::vector<OpCase> cases;
  add_linear_cases(cases);
  add_elementwise_cases(cases);
  add_activation_cases(cases);
  add_reduction_cases(cases);
  add_normalisation_cases(cases);
  add_lookup_and_shape_cases(cases);
  add_loss_cases(cases);
  return cases;
}

OpCaseResult run_op_case(const OpCase& c, const GradcheckOptions& options) {
  OpCaseResult r{&c, gradcheck(c.f, c.make_inputs(DType::F64), options)};
  NoGradGuard no_grad;
  const std::vector<double> ref = c.f(c.make_inputs(DType::F64)).to_vector();
  const std::vector<double> low = c.f(c.make_inputs(DType::F32)).to_vector();
  for (size_t i = 0; i < ref.size(); ++i)
    r.f32_max_error = std::max(r.f32_max_error, std::abs(low[i] - ref[i]) / (1.0 + std::abs(ref[i])));
  r.f32_passed = low.size() == ref.size() && r.f32_max_error <= kF32ForwardTolerance;
  return r;
}

}  // namespace unipelt

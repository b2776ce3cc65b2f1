// Tape autograd: gradient checks of every op, the harness catching a wrong backward (and naming the
// input and element), frozen inputs, no-grad mode, accumulation, the FLOP counter and error messages.
#include <catch2/catch.hpp>

#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>

#include "autograd/backend.h"
#include "autograd/flop_counter.h"
#include "autograd/op_checks.h"
#include "autograd/ops.h"
#include "autograd/tape.h"
#include "nn/optim.h"
#include "tests/test_util.h"

using namespace unipelt;

TEST_CASE("every op passes the float64 gradient check and float32 forward consistency", "[autograd]") {
  for (const OpCase& c : op_cases()) {
    OpCaseResult r = run_op_case(c);
    INFO(c.op << " " << c.shapes << ": " << r.grad.worst << " (f32 error " << r.f32_max_error << ")");
    CHECK(r.grad.passed);
    CHECK(r.grad.elements_checked > 0);
    CHECK(r.f32_passed);
  }
}

TEST_CASE("the op suite covers every op of the foundation issue on several shapes", "[autograd]") {
  std::map<std::string, int> count;
  for (const OpCase& c : op_cases()) ++count[c.op];
  for (const char* op : {"linear", "matmul", "bmm", "add", "sub", "mul", "scale", "sum", "mean", "masked_mean", "gelu",
                         "relu", "tanh", "sigmoid", "softmax", "layer_norm", "embedding", "dropout", "reshape",
                         "permute", "transpose", "concat", "slice", "select", "split_heads", "cross_entropy",
                         "mse_loss"}) {
    INFO(op);
    CHECK(count[op] >= 2);
  }
}

namespace {
// y = x², with a deliberately wrong backward (dx = dy·x, the factor 2 forgotten).
Tensor wrong_square(const Tensor& x) {
  Tensor y = Tensor::empty(x.shape(), x.dtype());
  Broadcast4 same;
  same.shape[3] = x.numel();
  same.a_stride[3] = same.b_stride[3] = 1;
  backend(Device::CPU).binary(Binary::Mul, x.dtype(), same, x.data(), x.data(), y.data());
  tape().record("wrong_square", y, [x, same](const Tensor& dy) {
    Tensor dx = Tensor::empty(x.shape(), x.dtype());
    backend(Device::CPU).binary(Binary::Mul, x.dtype(), same, dy.data(), x.data(), dx.data());
    accumulate_grad(x, dx);
  });
  return y;
}
// The message names the element both flat and as a multi-index.
bool bad_message_names_index(const std::string& worst) {
  return worst.find("element ") != std::string::npos && worst.find("] element") != std::string::npos &&
         worst.find(": analytic") != std::string::npos && worst.find(" [") != std::string::npos;
}
}  // namespace

TEST_CASE("the gradient check fails on a deliberately wrong backward", "[autograd]") {
  Tensor x = random_uniform({3, 4}, 0.5, 1.5, 3).set_requires_grad(true);
  GradcheckResult bad = gradcheck([](const std::vector<Tensor>& v) { return wrong_square(v[0]); }, {x});
  CHECK_FALSE(bad.passed);
  CHECK(bad.max_abs_error > 0.1);
  CHECK(bad.worst.find("analytic") != std::string::npos);
  // The same function with the right backward passes.
  GradcheckResult good = gradcheck([](const std::vector<Tensor>& v) { return ops::mul(v[0], v[0]); }, {x});
  CHECK(good.passed);
}

TEST_CASE("the gradient check reports per input the worst errors and where they occurred", "[autograd]") {
  // Two inputs, one with a broken backward: only its row fails, and the worst element is located.
  Tensor x = random_uniform({3, 4}, 0.5, 1.5, 3).set_requires_grad(true);
  Tensor y = random_uniform({2, 5}, -1, 1, 5).set_requires_grad(true);
  Tensor frozen = random_uniform({2}, -1, 1, 6);
  auto f = [](const std::vector<Tensor>& v) {
    return ops::add(ops::sum(wrong_square(v[0])), ops::sum(ops::mul(v[2], v[2])));
  };
  GradcheckResult r = gradcheck(f, {x, frozen, y});
  CHECK_FALSE(r.passed);
  REQUIRE(r.inputs.size() == 2);  // the frozen input is not checked
  const InputErrors& ex = r.inputs[0];
  const InputErrors& ey = r.inputs[1];
  CHECK(ex.input == 0);
  CHECK(ey.input == 2);
  CHECK(ex.shape == Shape({3, 4}));
  CHECK(ex.elements == 12);
  CHECK(ex.failures == 12);
  CHECK_FALSE(ex.passed());
  CHECK(ey.passed());
  CHECK(ey.max_abs_error < 1e-8);
  CHECK(r.elements_checked == 22);
  // dx is wrong by x·R (R the projection): the worst element is the largest |x_j|.
  const std::vector<double> xs = x.to_vector();
  const int64_t largest = std::max_element(xs.begin(), xs.end()) - xs.begin();
  CHECK(ex.max_abs_at == largest);
  CHECK(std::abs(ex.analytic_at_max_abs - ex.numeric_at_max_abs) == Approx(ex.max_abs_error));
  CHECK(ex.max_rel_error == Approx(0.5).margin(1e-6));  // x·R against 2x·R
  CHECK(multi_index({3, 4}, 7) == "[1, 3]");
  CHECK(multi_index({2, 3, 4}, 23) == "[1, 2, 3]");
  CHECK(multi_index({5}, 0) == "[0]");
  CHECK(bad_message_names_index(r.worst));
  const std::string table = input_errors_table(r, {"x", "y"});
  CHECK(table.find("x ") != std::string::npos);
  CHECK(table.find("FAIL (12 elements)") != std::string::npos);
  CHECK(table.find(std::to_string(largest) + " " + multi_index({3, 4}, largest)) != std::string::npos);
  CHECK(table.find("pass") != std::string::npos);
}

TEST_CASE("the FLOP counter counts every matrix product the ops issue, forward and backward", "[autograd]") {
  tape().clear();
  Tensor x = random_uniform({2, 3, 5}, -1, 1, 7).set_requires_grad(true);
  Tensor w = random_uniform({4, 5}, -1, 1, 8);                           // frozen
  Tensor v = random_uniform({4, 5}, -1, 1, 9).set_requires_grad(true);  // trains
  FlopCounter all;
  Tensor y = ops::linear(x, w);  // 6 rows, in 5, out 4
  CHECK(all.flops() == 2 * 6 * 5 * 4);
  Tensor z = ops::linear(y, Tensor::full({3, 4}, 0.5, DType::F64));
  Tensor u = ops::linear(x, v);
  const int64_t forward = all.flops();
  CHECK(forward == 2 * 6 * 5 * 4 + 2 * 6 * 4 * 3 + 2 * 6 * 5 * 4);
  FlopCounter backward_only;
  backward(ops::add(ops::sum(z), ops::sum(u)));
  // z: dx only (frozen weight) 2·6·3·4; y: dx only 2·6·4·5; u: dx and dW, 2·6·5·4 each.
  CHECK(backward_only.flops() == 2 * 6 * 3 * 4 + 2 * 6 * 4 * 5 + 2 * (2 * 6 * 5 * 4));
  CHECK(all.flops() == forward + backward_only.flops());
  backward_only.reset();
  CHECK(backward_only.flops() == 0);
  {
    NoGradGuard no_grad;  // bmm and masked_mean count too, recorded or not
    ops::bmm(random_uniform({2, 3, 4}, -1, 1, 10), random_uniform({2, 4, 6}, -1, 1, 11));
    ops::masked_mean(random_uniform({2, 3, 4}, -1, 1, 12), Tensor::full({2, 3}, 1.0, DType::F64));
  }
  CHECK(backward_only.flops() == 2 * 2 * 3 * 4 * 6 + 2 * 2 * 4 * 3);
}

TEST_CASE("the gradient check catches a gradient that is off by a tiny relative amount", "[autograd]") {
  // 1% too large: above rtol = 1e-3, so it must fail even though it is "almost right".
  Tensor x = random_uniform({5}, -1, 1, 4).set_requires_grad(true);
  auto almost = [](const std::vector<Tensor>& v) {
    Tensor y = ops::scale(v[0], 3.0);
    Tensor out = Tensor::empty(y.shape(), y.dtype());
    out.copy_from(y);
    tape().record("almost", out, [y](const Tensor& dy) { accumulate_grad(y, ops::scale(dy, 1.01)); });
    return out;
  };
  CHECK_FALSE(gradcheck(almost, {x}).passed);
}

TEST_CASE("a frozen input gets no gradient buffer and no gradient computation", "[autograd]") {
  auto& cpu = backend(Device::CPU);
  // A large frozen weight: if backward computed dW, it would allocate 256×512×4 bytes = 512 KiB.
  Tensor x = random_uniform({8, 512}, -1, 1, 5, DType::F32).set_requires_grad(true);
  Tensor w_frozen = random_uniform({256, 512}, -1, 1, 6, DType::F32);
  Tensor w_trained = w_frozen.clone().set_requires_grad(true);
  const size_t w_bytes = w_frozen.nbytes();

  auto peak_during_backward = [&](const Tensor& w) {
    tape().clear();
    Tensor loss = ops::sum(ops::linear(x, w));
    cpu.reset_peak();
    const size_t before = cpu.memory_stats().bytes_in_use;
    backward(loss);
    return cpu.memory_stats().peak_bytes - before;
  };
  const size_t frozen_peak = peak_during_backward(w_frozen);
  x.zero_grad();
  const size_t trained_peak = peak_during_backward(w_trained);
  CHECK_FALSE(w_frozen.grad().defined());
  CHECK(w_trained.grad().defined());
  CHECK(x.grad().defined());
  CHECK(trained_peak >= frozen_peak + w_bytes);

  // Layer norm with frozen gamma/beta: the input still gets its gradient, the parameters none.
  tape().clear();
  Tensor h = random_uniform({4, 6}, -1, 1, 7).set_requires_grad(true);
  Tensor gamma = Tensor::full({6}, 1.0, DType::F64), beta = Tensor::zeros({6}, DType::F64);
  backward(ops::sum(ops::mul(ops::layer_norm(h, gamma, beta, 1e-5), random_uniform({4, 6}, -1, 1, 8))));
  CHECK(h.grad().defined());
  CHECK_FALSE(gamma.grad().defined());
  CHECK_FALSE(beta.grad().defined());
}

TEST_CASE("an activation that only feeds a frozen linear layer is freed after the forward pass", "[autograd]") {
  // r = relu(x) feeds y = r·Wᵀ. With W frozen, backward needs W (for dr) but never r's values, so
  // nothing may keep r alive once the forward pass is done; with W trainable, r is kept for dW.
  auto& cpu = backend(Device::CPU);
  Tensor x = random_uniform({64, 256}, -1, 1, 13, DType::F32).set_requires_grad(true);
  Tensor w_frozen = random_uniform({256, 256}, -1, 1, 14, DType::F32);
  Tensor w_trained = w_frozen.clone().set_requires_grad(true);
  const size_t r_bytes = x.nbytes();
  auto retained_after_forward = [&](const Tensor& w) {
    tape().clear();
    const size_t before = cpu.memory_stats().bytes_in_use;
    Tensor loss;
    {
      Tensor r = ops::relu(x);
      loss = ops::sum(ops::linear(r, w));
    }
    const size_t retained = cpu.memory_stats().bytes_in_use - before;
    backward(loss);
    return retained;
  };
  const size_t frozen = retained_after_forward(w_frozen);
  const size_t trained = retained_after_forward(w_trained);
  CHECK(frozen < r_bytes);
  CHECK(trained >= r_bytes);
  CHECK(x.grad().defined());
}

TEST_CASE("an op on inputs that need no gradient records nothing", "[autograd]") {
  tape().clear();
  Tensor a = random_uniform({3, 3}, -1, 1, 9), b = random_uniform({3, 3}, -1, 1, 10);
  Tensor c = ops::matmul(a, b);
  CHECK(tape().size() == 0);
  CHECK_FALSE(c.requires_grad());
}

TEST_CASE("inference under no-grad records no tape nodes", "[autograd]") {
  tape().clear();
  Tensor w = random_uniform({4, 3}, -1, 1, 11).set_requires_grad(true);
  Tensor x = random_uniform({2, 3}, -1, 1, 12);
  {
    NoGradGuard no_grad;
    CHECK_FALSE(grad_enabled());
    Tensor y = ops::softmax(ops::gelu(ops::linear(x, w)));
    CHECK(tape().size() == 0);
    CHECK_FALSE(y.requires_grad());
  }
  CHECK(grad_enabled());
  Tensor y = ops::linear(x, w);
  CHECK(tape().size() == 1);
  CHECK(y.requires_grad());
  tape().clear();
}

TEST_CASE("gradients accumulate when a tensor is used more than once", "[autograd]") {
  tape().clear();
  Tensor x = Tensor::from_vector({1.0, -2.0, 3.0}, {3}, DType::F64).set_requires_grad(true);
  // L = Σ (x·x + x + reshape(x))  ->  dL/dx = 2x + 2
  Tensor y = ops::add(ops::add(ops::mul(x, x), x), ops::reshape(x, {3}));
  backward(ops::sum(y));
  CHECK(x.grad().to_vector() == std::vector<double>{4.0, -2.0, 8.0});
  CHECK(tape().size() == 0);  // backward clears the tape

  // A second backward adds to the existing gradient (as PyTorch does until zero_grad).
  backward(ops::sum(ops::scale(x, 2.0)));
  CHECK(x.grad().to_vector() == std::vector<double>{6.0, 0.0, 10.0});
  x.zero_grad();
  CHECK_FALSE(x.grad().defined());
}

TEST_CASE("a gradient shared through reshape is not corrupted by accumulation", "[autograd]") {
  // a and b = reshape(a) receive the same gradient buffer; accumulating into one must not change the other.
  tape().clear();
  Tensor a = Tensor::from_vector({1, 2, 3, 4}, {2, 2}, DType::F64).set_requires_grad(true);
  Tensor b = Tensor::from_vector({5, 6, 7, 8}, {2, 2}, DType::F64).set_requires_grad(true);
  Tensor s = ops::add(a, b);  // both get dy itself
  Tensor loss = ops::add(ops::sum(s), ops::sum(ops::scale(a, 10.0)));
  backward(loss);
  CHECK(a.grad().to_vector() == std::vector<double>{11, 11, 11, 11});
  CHECK(b.grad().to_vector() == std::vector<double>{1, 1, 1, 1});
}

TEST_CASE("a product adds its input gradient straight into an existing one, copying it first when shared",
          "[autograd]") {
  // Small integers: every product and sum below is exact in float64, so the checks compare exactly.
  tape().clear();
  const Tensor w1 = Tensor::from_vector({1, 2, 0, -1, 3, 1, 2, 0, 1}, {3, 3}, DType::F64);
  const Tensor w2 = Tensor::from_vector({0, 1, 1, 2, -2, 1, 1, 1, 3}, {3, 3}, DType::F64);
  const Tensor c1 = Tensor::from_vector({1, 2, 3, -1, 0, 2}, {2, 3}, DType::F64);
  const Tensor c2 = Tensor::from_vector({2, 0, -1, 1, 1, 1}, {2, 3}, DType::F64);
  auto matmul_plain = [](const Tensor& a, const Tensor& b) {  // a [2,3] · b [3,3], by hand
    std::vector<double> out(6, 0.0);
    const auto av = a.to_vector(), bv = b.to_vector();
    for (int i = 0; i < 2; ++i)
      for (int j = 0; j < 3; ++j)
        for (int k = 0; k < 3; ++k) out[i * 3 + j] += av[i * 3 + k] * bv[k * 3 + j];
    return out;
  };

  SECTION("two linear layers read x: the second adds into the gradient the first left") {
    Tensor x = Tensor::from_vector({1, -2, 3, 0, 1, 2}, {2, 3}, DType::F64).set_requires_grad(true);
    Tensor loss = ops::add(ops::sum(ops::mul(ops::linear(x, w1), c1)), ops::sum(ops::mul(ops::linear(x, w2), c2)));
    backward(loss);
    std::vector<double> expect = matmul_plain(c1, w1);  // dx = c1·W1 + c2·W2
    const std::vector<double> second = matmul_plain(c2, w2);
    for (size_t i = 0; i < expect.size(); ++i) expect[i] += second[i];
    CHECK(x.grad().to_vector() == expect);
  }
  SECTION("x's gradient shares its bytes with the dy the product reads: it is copied, not overwritten") {
    // z = linear(x) + x: add hands the same dz to x and to linear's output, so when linear's backward
    // runs, x's gradient and the dy it reads are one buffer. Adding dz·W into it in place would change
    // dy while the GEMM still reads it: with K = 1024, OpenBLAS packs and adds one K block at a time.
    const int64_t rows = 4, n = 1024;
    auto small_ints = [](int64_t count, int seed) {
      std::vector<double> v(static_cast<size_t>(count));
      for (int64_t i = 0; i < count; ++i) v[static_cast<size_t>(i)] = static_cast<double>((i * 7 + seed) % 5 - 2);
      return v;
    };
    const std::vector<double> xv = small_ints(rows * n, 1), wv = small_ints(n * n, 3), cv = small_ints(rows * n, 2);
    Tensor x = Tensor::from_vector(xv, {rows, n}, DType::F64).set_requires_grad(true);
    const Tensor w = Tensor::from_vector(wv, {n, n}, DType::F64), c = Tensor::from_vector(cv, {rows, n}, DType::F64);
    backward(ops::sum(ops::mul(ops::add(ops::linear(x, w), x), c)));
    std::vector<double> expect = cv;  // dx = c + c·W
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t k = 0; k < n; ++k)
        for (int64_t j = 0; j < n; ++j)
          expect[static_cast<size_t>(i * n + j)] += cv[static_cast<size_t>(i * n + k)] * wv[static_cast<size_t>(k * n + j)];
    CHECK(x.grad().to_vector() == expect);
  }
  SECTION("both operands of one bmm are q: dq = C·q + Cᵀ·q") {
    Tensor q = Tensor::from_vector({1, -2, 3, 0, 1, 2}, {1, 2, 3}, DType::F64).set_requires_grad(true);
    const Tensor c = Tensor::from_vector({1, 2, -1, 3}, {1, 2, 2}, DType::F64);
    backward(ops::sum(ops::mul(ops::bmm(q, q, false, true), c)));  // s = q·qᵀ [1,2,2]
    const auto qv = q.to_vector(), cv = c.to_vector();
    std::vector<double> expect(6, 0.0);
    for (int i = 0; i < 2; ++i)
      for (int k = 0; k < 2; ++k)
        for (int e = 0; e < 3; ++e) expect[i * 3 + e] += (cv[i * 2 + k] + cv[k * 2 + i]) * qv[k * 3 + e];
    CHECK(q.grad().to_vector() == expect);
  }
  SECTION("a second backward adds a trainable weight's gradient into the one still there") {
    Tensor w = w1.clone().set_requires_grad(true);
    const Tensor x = Tensor::from_vector({1, -2, 3, 0, 1, 2}, {2, 3}, DType::F64);
    backward(ops::sum(ops::mul(ops::linear(x, w), c1)));
    const std::vector<double> once = w.grad().to_vector();  // dW = c1ᵀ·x
    backward(ops::sum(ops::mul(ops::linear(x, w), c1)));
    std::vector<double> twice = once;
    for (double& v : twice) v *= 2.0;
    CHECK(w.grad().to_vector() == twice);
    CHECK(once != std::vector<double>(9, 0.0));
  }
}

TEST_CASE("check builds a lambda's message only when the check fails", "[autograd]") {
  int built = 0;
  auto message = [&] {
    ++built;
    return "got " + shape_str({2, 3});
  };
  check(true, "op", message);
  CHECK(built == 0);
  try {
    check(false, "op", message);
    FAIL("check(false, ...) did not throw");
  } catch (const ShapeError& e) {
    CHECK(std::string(e.what()) == "op: got [2, 3]");
  }
  CHECK(built == 1);
  CHECK_THROWS_WITH(check(false, "op", "a constant message"), "op: a constant message");
}

TEST_CASE("shape errors name the op and the shapes", "[autograd]") {
  Tensor a = Tensor::zeros({2, 3}, DType::F64), b = Tensor::zeros({4, 5}, DType::F64);
  auto message = [](auto fn) {
    try {
      fn();
    } catch (const ShapeError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  std::string m = message([&] { ops::matmul(a, b); });
  CHECK(m.find("matmul") != std::string::npos);
  CHECK(m.find("[2, 3]") != std::string::npos);
  CHECK(m.find("[4, 5]") != std::string::npos);
  CHECK(message([&] { ops::add(a, b); }).find("do not broadcast") != std::string::npos);
  CHECK(message([&] { ops::linear(a, b); }).find("linear") != std::string::npos);
  CHECK(message([&] { ops::reshape(a, {4, 2}); }).find("reshape") != std::string::npos);
  CHECK(message([&] { ops::concat({a, b}, 0); }).find("concat") != std::string::npos);
  CHECK(message([&] { ops::slice(a, 1, 2, 5); }).find("slice") != std::string::npos);
  CHECK(message([&] { ops::add(a, Tensor::zeros({2, 3}, DType::F32)); }).find("dtypes differ") != std::string::npos);
  CHECK(message([&] { Tensor::zeros({1, 2, 3, 4, 5}); }).find("at most 4") != std::string::npos);
  CHECK_THROWS_WITH(ops::embedding(Tensor::from_ints({9}, {1}), Tensor::zeros({3, 2})),
                    Catch::Contains("outside the table"));
  CHECK_THROWS_WITH(ops::cross_entropy(Tensor::zeros({1, 2}), Tensor::from_ints({2}, {1})),
                    Catch::Contains("label 2"));
}

TEST_CASE("the CPU embedding backward refuses an out-of-range id instead of writing outside the table",
          "[autograd]") {
  // Regression test: the scatter-add once trusted its ids and wrote past the gradient buffer.
  std::vector<double> dout(4, 1.0), table(6, 0.0);
  const int32_t ids[2] = {1, 7};
  CHECK_THROWS_WITH(backend(Device::CPU).embedding_backward(DType::F64, 2, 2, ids, dout.data(), 3, table.data()),
                    Catch::Contains("id 7"));
}

TEST_CASE("dropout: the same seed gives the same mask, eval mode is the identity", "[autograd]") {
  Tensor x = Tensor::full({1000}, 1.0, DType::F64);
  std::vector<double> a = ops::dropout(x, 0.25, 42, true).to_vector();
  std::vector<double> b = ops::dropout(x, 0.25, 42, true).to_vector();
  std::vector<double> c = ops::dropout(x, 0.25, 43, true).to_vector();
  CHECK(a == b);
  CHECK(a != c);
  int dropped = 0;
  for (double v : a) {
    CHECK((v == 0.0 || std::abs(v - 1.0 / 0.75) < 1e-12));
    dropped += v == 0.0;
  }
  CHECK(dropped > 200);
  CHECK(dropped < 300);
  CHECK(ops::dropout(x, 0.25, 42, false).same(x));
}

TEST_CASE("unipelt gradcheck ops prints every op and exits 0", "[autograd][cli]") {
  const std::string out = (testing::scratch_dir("gradcheck_cli") / "out.txt").string();
  const int status = std::system((std::string(UNIPELT_CLI) + " gradcheck ops > " + out).c_str());
  CHECK(status == 0);
  std::ifstream in(out);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  for (const char* op : {"linear", "softmax", "layer_norm", "cross_entropy", "all passed"})
    CHECK(text.find(op) != std::string::npos);
}

TEST_CASE("unipelt gradcheck methods --verbose prints every trainable tensor with its worst errors", "[autograd][cli]") {
  const std::string out = (testing::scratch_dir("gradcheck_methods_cli") / "out.txt").string();
  const int status =
      std::system((std::string(UNIPELT_CLI) + " gradcheck methods --method lora --verbose > " + out).c_str());
  CHECK(status == 0);
  std::ifstream in(out);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // Only the chosen preset, both tasks; one table per check with every trainable tensor.
  CHECK(text.find("unipelt-apl") == std::string::npos);
  CHECK(text.find("2 checks: all passed") != std::string::npos);
  for (const char* row : {"classifier.weight", "bert.encoder.layer.1.attention.self.value.lora_B", "max abs err",
                          "max rel err"})
    CHECK(text.find(row) != std::string::npos);
  size_t tables = 0;
  for (size_t at = text.find("\ntensor "); at != std::string::npos; at = text.find("\ntensor ", at + 1)) ++tables;
  CHECK(tables == 2);
  // A row: name, shape, element count, errors, and where they occurred as "flat [i, j]".
  std::istringstream lines(text);
  std::string line;
  bool found = false;
  while (std::getline(lines, line))
    if (line.rfind("bert.encoder.layer.0.attention.self.query.lora_A ", 0) == 0) {
      found = true;
      CHECK(line.find("[2, 16]") != std::string::npos);
      CHECK(line.find(" 32 ") != std::string::npos);
      CHECK(line.find("pass") != std::string::npos);
      CHECK(std::count(line.begin(), line.end(), '[') >= 3);  // shape and two positions
    }
  CHECK(found);
  // A preset that does not exist is a usage error.
  CHECK(WEXITSTATUS(std::system((std::string(UNIPELT_CLI) + " gradcheck methods --method nope > /dev/null 2>&1").c_str())) == 2);
}

TEST_CASE("copy_from needs the same shape, not just the same size, optimizer state names a wrong shape",
          "[autograd]") {
  // A [2,3] tensor must not load silently into a [3,2] one (a transposed checkpoint tensor would).
  Tensor a = Tensor::zeros({3, 2}, DType::F64);
  CHECK_THROWS_WITH(a.copy_from(Tensor::full({2, 3}, 1.0, DType::F64)), Catch::Contains("same shape"));
  CHECK_NOTHROW(a.copy_from(Tensor::full({3, 2}, 1.0, DType::F64)));

  Tensor w = Tensor::zeros({3, 2}, DType::F32).set_requires_grad(true);
  AdamW opt({{"w", w}}, {1e-3, 0.9, 0.999, 1e-8, 0.0});
  std::map<std::string, Tensor> state = {{"m/w", Tensor::zeros({2, 3}, DType::F64)},
                                         {"v/w", Tensor::zeros({3, 2}, DType::F64)}};
  CHECK_THROWS_WITH(opt.load_state(state, 1), Catch::Contains("m/w has shape [2, 3]"));
}

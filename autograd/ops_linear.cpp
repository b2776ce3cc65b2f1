// Matrix-product ops: linear, matmul, bmm. Every product is a backend GEMM (OpenBLAS / cuBLAS).
//
// For C = op(A)·op(B) the gradients are dop(A) = dC·op(B)ᵀ and dop(B) = op(A)ᵀ·dC; when A itself was
// stored transposed, dA is the transpose of that, which is again a single GEMM with swapped flags.
// A closure captures A only if B needs a gradient and vice versa: a frozen weight costs no GEMM.
#include "autograd/flop_counter.h"
#include "autograd/op_util.h"

namespace unipelt::ops {

using detail::be;

namespace {

// The batched product behind matmul and bmm. a holds `batch` matrices of (ra × ca), b of (rb × cb).
struct ProductShape {
  int64_t batch, m, n, k, ra, ca, rb, cb;
  bool ta, tb;
};

ProductShape product_shape(const char* op, const Tensor& a, const Tensor& b, bool ta, bool tb) {
  const int64_t ra = a.size(-2), ca = a.size(-1), rb = b.size(-2), cb = b.size(-1);
  ProductShape p{a.numel() / (ra * ca), ta ? ca : ra, tb ? rb : cb, ta ? ra : ca, ra, ca, rb, cb, ta, tb};
  const int64_t kb = tb ? cb : rb;
  check(p.k == kb, op, [&] {
    return "inner dimensions differ: " + shape_str(a.shape()) + (ta ? "ᵀ" : "") + " · " + shape_str(b.shape()) +
           (tb ? "ᵀ" : "");
  });
  return p;
}

// C = op(A)·op(B) for every batch entry.
void product_forward(const ProductShape& p, const Tensor& a, const Tensor& b, const Tensor& c) {
  detail::count_matmul_flops(p.m, p.n, p.k, p.batch);
  be(a).gemm_batched(a.dtype(), p.ta, p.tb, p.m, p.n, p.k, 1.0, a.data(), p.ca, p.ra * p.ca, b.data(), p.cb,
                     p.rb * p.cb, 0.0, c.data(), p.n, p.m * p.n, p.batch);
}

// dA (stored like A: ra × ca) from dC (m × n) and B, added into A's gradient (grad_destination).
void product_grad_a(const ProductShape& p, const Tensor& dc, const GradTarget& a_target, const Tensor& b) {
  const GradDestination da = grad_destination(a_target);
  detail::count_matmul_flops(p.m, p.k, p.n, p.batch);  // dop(A) [m,k] = dC [m,n] · op(B)ᵀ [n,k]
  if (!p.ta)  // dA = dC · op(B)ᵀ
    be(dc).gemm_batched(dc.dtype(), false, !p.tb, p.m, p.k, p.n, 1.0, dc.data(), p.n, p.m * p.n, b.data(), p.cb,
                        p.rb * p.cb, da.beta, da.buffer.data(), p.ca, p.ra * p.ca, p.batch);
  else  // dA = op(B) · dCᵀ
    be(dc).gemm_batched(dc.dtype(), p.tb, true, p.k, p.m, p.n, 1.0, b.data(), p.cb, p.rb * p.cb, dc.data(), p.n,
                        p.m * p.n, da.beta, da.buffer.data(), p.ca, p.ra * p.ca, p.batch);
  da.finish(a_target);
}

// dB (stored like B: rb × cb) from dC and A, added into B's gradient.
void product_grad_b(const ProductShape& p, const Tensor& dc, const Tensor& a, const GradTarget& b_target) {
  const GradDestination db = grad_destination(b_target);
  detail::count_matmul_flops(p.k, p.n, p.m, p.batch);  // dop(B) [k,n] = op(A)ᵀ [k,m] · dC [m,n]
  if (!p.tb)  // dB = op(A)ᵀ · dC
    be(dc).gemm_batched(dc.dtype(), !p.ta, false, p.k, p.n, p.m, 1.0, a.data(), p.ca, p.ra * p.ca, dc.data(), p.n,
                        p.m * p.n, db.beta, db.buffer.data(), p.cb, p.rb * p.cb, p.batch);
  else  // dB = dCᵀ · op(A)
    be(dc).gemm_batched(dc.dtype(), true, p.ta, p.n, p.k, p.m, 1.0, dc.data(), p.n, p.m * p.n, a.data(), p.ca,
                        p.ra * p.ca, db.beta, db.buffer.data(), p.cb, p.rb * p.cb, p.batch);
  db.finish(b_target);
}

Tensor product(const char* op, const Tensor& a, const Tensor& b, bool ta, bool tb) {
  detail::check_float(op, a);
  detail::check_float(op, b);
  check_same_dtype_device(op, a, b);
  check(a.ndim() == b.ndim() && a.ndim() >= 2, op,
        [&] { return "operands need the same rank (>= 2): " + shape_str(a.shape()) + " and " + shape_str(b.shape()); });
  for (int64_t d = 0; d + 2 < a.ndim(); ++d)
    check(a.size(d) == b.size(d), op,
          [&] { return "batch dimensions differ: " + shape_str(a.shape()) + " and " + shape_str(b.shape()); });
  const ProductShape p = product_shape(op, a, b, ta, tb);
  Shape out_shape = a.shape();
  out_shape[out_shape.size() - 2] = p.m;
  out_shape[out_shape.size() - 1] = p.n;
  Tensor c = detail::empty_as(out_shape, a);
  product_forward(p, a, b, c);
  if (needs_grad({&a, &b})) {
    // Save A only if B needs a gradient, B only if A needs one.
    Tensor saved_a = b.requires_grad() ? a : Tensor(), saved_b = a.requires_grad() ? b : Tensor();
    GradTarget a_t = grad_target(a), b_t = grad_target(b);
    tape().record(op, c, [p, saved_a, saved_b, a_t, b_t](const Tensor& dc) {
      if (a_t) product_grad_a(p, dc, a_t, saved_b);
      if (b_t) product_grad_b(p, dc, saved_a, b_t);
    });
  }
  return c;
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b, bool trans_a, bool trans_b) {
  check(a.ndim() == 2 && b.ndim() == 2, "matmul", [&] {
    return "expects 2-D operands, got " + shape_str(a.shape()) + " and " + shape_str(b.shape()) + " (use bmm)";
  });
  return product("matmul", a, b, trans_a, trans_b);
}

Tensor bmm(const Tensor& a, const Tensor& b, bool trans_a, bool trans_b) {
  check(a.ndim() >= 3, "bmm", [&] { return "expects 3-D or 4-D operands, got " + shape_str(a.shape()); });
  return product("bmm", a, b, trans_a, trans_b);
}

// y[rows, out] = x[rows, in] · Wᵀ + b, rows = every leading dim of x flattened.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  detail::check_float("linear", x);
  check_same_dtype_device("linear", x, weight);
  check(weight.ndim() == 2, "linear", [&] { return "weight must be [out, in], got " + shape_str(weight.shape()); });
  const int64_t in = weight.size(1), out = weight.size(0);
  check(x.ndim() >= 1 && x.size(-1) == in, "linear", [&] {
    return "input " + shape_str(x.shape()) + " does not end in " + std::to_string(in) + " for weight " +
           shape_str(weight.shape());
  });
  if (bias.defined()) {
    check_same_dtype_device("linear", x, bias);
    check(bias.ndim() == 1 && bias.size(0) == out, "linear",
          [&] { return "bias must be [" + std::to_string(out) + "], got " + shape_str(bias.shape()); });
  }
  const int64_t rows = x.numel() / in;
  Shape out_shape = x.shape();
  out_shape.back() = out;
  Tensor y = detail::empty_as(out_shape, x);
  Backend& b = be(x);
  double beta = 0.0;
  if (bias.defined()) {  // y starts as the bias in every row, then the GEMM adds x·Wᵀ onto it
    const int64_t shape4[4] = {1, 1, rows, out}, stride4[4] = {0, 0, 0, 1};
    b.expand(x.dtype(), shape4, stride4, bias.data(), y.data());
    beta = 1.0;
  }
  detail::count_matmul_flops(rows, out, in);
  b.gemm(x.dtype(), false, true, rows, out, in, 1.0, x.data(), in, weight.data(), in, beta, y.data(), out);

  if (needs_grad({&x, &weight, &bias})) {
    // x is kept only to form dW, W only to form dx: a frozen W keeps neither W's gradient nor x alive.
    Tensor x_for_dw = weight.requires_grad() ? x : Tensor();
    Tensor w_for_dx = x.requires_grad() ? weight : Tensor();
    GradTarget x_t = grad_target(x), w_t = grad_target(weight), b_t = grad_target(bias);
    tape().record("linear", y, [=](const Tensor& dy) {
      Backend& bk = be(dy);
      if (x_t) {  // dx = dy · W
        const GradDestination dx = grad_destination(x_t);
        detail::count_matmul_flops(rows, in, out);
        bk.gemm(dy.dtype(), false, false, rows, in, out, 1.0, dy.data(), out, w_for_dx.data(), in, dx.beta,
                dx.buffer.data(), in);
        dx.finish(x_t);
      }
      if (w_t) {  // dW = dyᵀ · x
        const GradDestination dw = grad_destination(w_t);
        detail::count_matmul_flops(out, in, rows);
        bk.gemm(dy.dtype(), true, false, out, in, rows, 1.0, dy.data(), out, x_for_dw.data(), in, dw.beta,
                dw.buffer.data(), in);
        dw.finish(w_t);
      }
      if (b_t) {  // db = Σ_rows dy
        Tensor db = empty_for(b_t);
        const int64_t shape4[4] = {1, 1, rows, out}, stride4[4] = {0, 0, 0, 1};
        bk.reduce_broadcast(dy.dtype(), shape4, stride4, dy.data(), db.data(), out);
        accumulate_grad(b_t, db);
      }
    });
  }
  return y;
}

}  // namespace unipelt::ops

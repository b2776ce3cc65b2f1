// Counting the matrix-product FLOPs a computation runs, forward and backward.
//
// Every GEMM an op issues (linear, matmul, bmm and masked_mean, in their forward and in their backward
// closures) adds 2·m·n·k per product (one multiply and one add per term) to a per-thread total. A
// FlopCounter reads how much that total grew since it was made, so
//
//   FlopCounter step;                      // forward and backward of one training step
//   auto out = model.forward(batch, ctx);  //   step.flops() now holds the forward's products
//   backward(out.loss);                    //   and now the backward's too
//
// measures what a method really costs: a frozen weight's gradient GEMM is never issued, so it is
// never counted. Elementwise work (activations, softmax, layer norm, additions) is not counted; it is
// O(B·T·H) per op against the products' O(B·T·H²). docs/gradients.md gives the formulas this counter
// confirms (tests/test_hand_gradients*.cpp), examples/03_method_costs.cpp prints them per preset.
#pragma once

#include <cstdint>

namespace unipelt {

class FlopCounter {
 public:
  FlopCounter();
  // Matrix-product FLOPs issued on this thread since construction or the last reset().
  int64_t flops() const;
  void reset();

 private:
  int64_t start_;
};

namespace detail {
// Called by the ops for every product they issue: `batch` products of (m×k)·(k×n).
void count_matmul_flops(int64_t m, int64_t n, int64_t k, int64_t batch = 1);
}  // namespace detail

}  // namespace unipelt

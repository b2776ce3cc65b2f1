// How the CPU kernels cut their work into blocks for the backend's threads (autograd/parallel.h).
// Internal to cpu_backend.cpp and cpu_kernels_*.cpp.
//
// Element-wise work may be cut anywhere: each output element is computed the same way in any block.
// Sums are the only place where the cut matters, and there it depends on the shape alone:
//   - row_sums cuts a row into kSumBlock-long blocks and adds the block sums in order;
//   - column-parallel sums (bias gradients, the embedding scatter) give each thread whole columns,
//     which it sums over the rows in row order, as one thread would.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "autograd/parallel.h"

namespace unipelt {

// Elements per block of element-wise work: about 64 KiB of floats, large enough that handing a block
// to another thread (~1 µs) is worth it, small enough that two threads share a 32k-element tensor.
constexpr int64_t kElementGrain = 16384;
// Elements per partial sum of a long row (part of the result's definition: never tune it per machine).
constexpr int64_t kSumBlock = 8192;

// Rows per block when each row costs `cols` elements of work.
inline int64_t row_grain(int64_t cols) { return std::max<int64_t>(1, kElementGrain / std::max<int64_t>(1, cols)); }
// Columns per block when each column costs `rows` elements of work; at least one cache line of floats,
// so that two threads never write the same line.
inline int64_t column_grain(int64_t rows) {
  return std::max<int64_t>(16, kElementGrain / std::max<int64_t>(1, rows));
}

// f(row, c_begin, c_end) over every element of a rows × cols array, in segments of whole or partial rows.
template <class F>
void parallel_row_segments(int64_t rows, int64_t cols, const F& f) {
  if (cols <= 0) return;
  parallel_for(rows * cols, kElementGrain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end;) {
      const int64_t r = i / cols, c0 = i - r * cols, c1 = std::min(cols, c0 + (end - i));
      f(r, c0, c1);
      i += c1 - c0;
    }
  });
}

template <class T>
void parallel_fill(T* out, int64_t n, T value) {
  parallel_for(n, kElementGrain, [&](int64_t b, int64_t e) { std::fill(out + b, out + e, value); });
}

// Σ x[0..n): vectorised (the compiler may reorder the additions within the block).
template <class T>
T block_sum(const T* x, int64_t n) {
  T total = 0;
#pragma omp simd reduction(+ : total)
  for (int64_t i = 0; i < n; ++i) total += x[i];
  return total;
}

// The sum of each row of x [rows, n]: the row's kSumBlock-long blocks are summed (in parallel), then
// added in block order.
template <class T>
std::vector<T> row_sums(const T* x, int64_t rows, int64_t n) {
  const int64_t blocks_per_row = std::max<int64_t>(1, block_count(n, kSumBlock));
  std::vector<T> partial(static_cast<size_t>(rows * blocks_per_row), T(0));
  const int64_t block_len = std::min(n, kSumBlock);
  parallel_for(rows * blocks_per_row, row_grain(block_len), [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int64_t r = i / blocks_per_row, q = i % blocks_per_row;
      const int64_t c0 = q * kSumBlock, c1 = std::min(n, c0 + kSumBlock);
      partial[static_cast<size_t>(i)] = block_sum(x + r * n + c0, c1 - c0);
    }
  });
  std::vector<T> totals(static_cast<size_t>(rows), T(0));
  for (int64_t r = 0; r < rows; ++r) {
    T total = 0;
    for (int64_t q = 0; q < blocks_per_row; ++q) total += partial[static_cast<size_t>(r * blocks_per_row + q)];
    totals[static_cast<size_t>(r)] = total;
  }
  return totals;
}

}  // namespace unipelt

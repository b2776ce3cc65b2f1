// The CPU backend's threads: one small team of worker threads (parallel.cpp) runs every CPU kernel and,
// split into fixed blocks, every matrix product. OpenBLAS itself is kept at one thread per call, so there
// is exactly one pool of worker threads in the process and no two pools spin against each other; idle
// workers spin for a few tens of microseconds (the gap between two kernels of a step), then sleep.
//
// Results do not depend on the number of threads. Work is cut into blocks that depend only on the
// problem's shape (never on the thread count); threads take blocks in any order, each block is
// computed exactly as it would be on one thread, and every reduction sums its blocks' partial results
// in block order on one thread. One thread runs the same blocks one after the other, so 1, 2 or 16
// threads give the same bits (tests/test_threads.cpp checks training steps at 1, 2 and 3 threads).
//
// The thread count is a process-wide setting: `--threads N` of every command calls set_cpu_threads
// (train/settings.h, the "--threads" row). The default is every CPU the process may run on.
#pragma once

#include <cstdint>
#include <type_traits>

namespace unipelt {

// The CPUs this process may run on (its affinity mask: taskset and container CPU sets count), >= 1.
int available_cpus();
// The threads the CPU backend uses (>= 1).
int cpu_threads();
// Sets the thread count; 0 means available_cpus(). Throws std::invalid_argument below 0.
void set_cpu_threads(int threads);

// body(ctx, begin, end) for every block [b·grain, min(n, (b+1)·grain)) of [0, n).
using BlockBody = void (*)(void* ctx, int64_t begin, int64_t end);
void parallel_blocks(int64_t n, int64_t grain, BlockBody body, void* ctx);

// Runs body(begin, end) over the blocks of [0, n) that are `grain` long (the last one shorter), on the
// backend's threads when there are several blocks and several threads, else on the calling thread in
// block order. The blocks depend only on n and grain. `body` may run on any thread, several blocks at
// once: it must write only what its own block owns. An exception thrown by a block is rethrown here
// (the first one; the other blocks still run).
template <class Body>
void parallel_for(int64_t n, int64_t grain, Body&& body) {
  using B = std::remove_reference_t<Body>;
  parallel_blocks(
      n, grain, [](void* ctx, int64_t begin, int64_t end) { (*static_cast<B*>(ctx))(begin, end); },
      const_cast<void*>(static_cast<const void*>(&body)));
}

// The number of blocks parallel_for makes of n with this grain.
inline int64_t block_count(int64_t n, int64_t grain) { return n <= 0 ? 0 : (n + grain - 1) / grain; }

}  // namespace unipelt

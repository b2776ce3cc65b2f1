#include "autograd/flop_counter.h"

namespace unipelt {

namespace {
// Per thread, like the tape: a backward runs on the thread that recorded its forward.
thread_local int64_t matmul_flops = 0;
}  // namespace

FlopCounter::FlopCounter() : start_(matmul_flops) {}
int64_t FlopCounter::flops() const { return matmul_flops - start_; }
void FlopCounter::reset() { start_ = matmul_flops; }

void detail::count_matmul_flops(int64_t m, int64_t n, int64_t k, int64_t batch) { matmul_flops += 2 * m * n * k * batch; }

}  // namespace unipelt

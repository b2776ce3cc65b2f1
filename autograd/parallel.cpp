// The CPU backend's thread team (parallel.h): a small pool of our own, OpenBLAS pinned to one thread.
//
// Why OpenBLAS gets one thread: the pthread build of OpenBLAS (Debian's libopenblas0-pthread) has a
// pool of its own whose idle workers spin for about 2^28 cycles after every call, with a timeout read
// once from the environment at load time. Next to a second pool (ours) the two would spin against each
// other. With one thread per call OpenBLAS never wakes its pool; the backend cuts every product into
// blocks (cpu_backend.cpp) that this team runs like any other kernel, each block one OpenBLAS call.
//
// Why not OpenMP: libgomp's idle threads spin for ~300,000 pauses (milliseconds) before they sleep, and
// that too is fixed at load time (GOMP_SPINCOUNT). A training step runs thousands of short parallel
// loops with serial gaps between them; on a machine shared with other jobs those spinning threads burn
// the CPU time the jobs need, and on an idle one they double the step's CPU time. This team spins for
// kSpinMicroseconds after a loop (long enough to catch the next kernel of a step), then sleeps.
//
// How a loop runs: the caller publishes a job (body, blocks) under a new generation number, wakes the
// sleeping workers, and takes blocks itself. Each thread first takes the blocks of its own contiguous
// share (thread t of T: blocks [t·B/T, (t+1)·B/T)), one atomic increment each, then helps with the
// shares of the others. Consecutive kernels over tensors of one shape thus give each thread the same rows
// (still in its own L2 cache), and the threads' claims land on different cache lines. The
// caller returns when every block is done and no worker is still inside the job. Jobs alternate between
// two slots, so a worker that is late for job g (it saw g but had not yet claimed) only ever reads
// job g's slot while the caller may already be filling the other one for g + 1.
#include "autograd/parallel.h"

#include <sched.h>

#include <algorithm>
#include <atomic>
#include <cblas.h>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <immintrin.h>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace unipelt {

namespace {

constexpr int kSpinMicroseconds = 50;

using SteadyClock = std::chrono::steady_clock;

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#endif
}

thread_local bool t_in_team_job = false;  // a block calling parallel_for runs it inline

// One thread's share of a loop's blocks: a contiguous range, claimed from its front with one atomic
// increment per block. On its own cache line, so two threads' claims do not bounce one line.
struct alignas(64) Share {
  std::atomic<int64_t> next{0};  // the next block of this share to claim
  int64_t end = 0;               // one past the share's last block
};

struct Job {
  BlockBody body = nullptr;
  void* ctx = nullptr;
  int64_t n = 0, grain = 1, blocks = 0;
  std::unique_ptr<Share[]> shares;  // one per thread of the team
  int threads = 1;
  std::atomic<int64_t> done{0};  // blocks finished
  std::exception_ptr error;      // the first exception a block threw
  std::mutex error_mutex;

  // Thread t's share: blocks [t·blocks/threads, (t+1)·blocks/threads) (why: the comment at the top).
  void split(int64_t block_total) {
    blocks = block_total;
    for (int t = 0; t < threads; ++t) {
      shares[t].next.store(block_total * t / threads, std::memory_order_relaxed);
      shares[t].end = block_total * (t + 1) / threads;
    }
  }

  // Claims and runs the blocks of its own share, then helps with the others' (a late or descheduled
  // thread's blocks are taken by whoever is free), until none is left.
  void work(int self) {
    const bool outer = t_in_team_job;
    t_in_team_job = true;
    for (int i = 0; i < threads; ++i) {
      Share& share = shares[(self + i) % threads];
      for (int64_t b = share.next.fetch_add(1); b < share.end; b = share.next.fetch_add(1)) run_block(b);
    }
    t_in_team_job = outer;
  }

  void run_block(int64_t b) {
    try {
      body(ctx, b * grain, std::min(n, (b + 1) * grain));
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mutex);
      if (!error) error = std::current_exception();
    }
    done.fetch_add(1, std::memory_order_release);
  }
};

class Team {
 public:
  explicit Team(int threads) {
    // Workers start from generation 0, the team's first: a worker that starts late (after the first job
    // or after the destructor's stop) still sees that the generation moved, instead of sleeping forever.
    for (Job& job : slots_) {
      job.threads = threads;
      job.shares = std::make_unique<Share[]>(static_cast<size_t>(threads));
    }
    for (int i = 1; i < threads; ++i) workers_.emplace_back([this, i] { worker_loop(i, 0); });
  }
  ~Team() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
      generation_.fetch_add(1);
    }
    wake_.notify_all();
    for (std::thread& t : workers_) t.join();
  }
  int size() const { return static_cast<int>(workers_.size()) + 1; }

  // False when another thread is using the team (the caller then runs the loop itself).
  bool run(int64_t n, int64_t grain, BlockBody body, void* ctx) {
    std::unique_lock<std::mutex> caller(caller_mutex_, std::try_to_lock);
    if (!caller.owns_lock()) return false;
    const uint64_t g = generation_.load() + 1;
    Job& job = slots_[g % 2];
    job.body = body;
    job.ctx = ctx;
    job.n = n;
    job.grain = grain;
    job.split(block_count(n, grain));
    job.done.store(0);
    job.error = nullptr;
    generation_.store(g);  // publishes the job (seq_cst: see the sleepers check in the worker)
    if (sleepers_.load() > 0) {
      { std::lock_guard<std::mutex> lock(mutex_); }
      wake_.notify_all();
    }
    job.work(0);
    // Wait for the blocks other threads claimed, and for every worker to leave the job.
    const auto start = SteadyClock::now();
    for (int spins = 0; job.done.load(std::memory_order_acquire) < job.blocks || active_.load() > 0; ++spins) {
      cpu_relax();
      if ((spins & 255) == 255 && SteadyClock::now() - start > std::chrono::microseconds(kSpinMicroseconds))
        std::this_thread::yield();  // a worker holding a block may have lost its core: let it run
    }
    if (job.error) std::rethrow_exception(job.error);
    return true;
  }

 private:
  void worker_loop(int self, uint64_t seen) {
    for (;;) {
      const uint64_t g = wait_for_job(seen);
      if (stop_) return;
      seen = g;
      active_.fetch_add(1);
      if (generation_.load() == g) slots_[g % 2].work(self);  // else: job g is over and a newer one is out
      active_.fetch_sub(1);
    }
  }

  // Spins for a while, then sleeps, until the generation moves past `seen`.
  uint64_t wait_for_job(uint64_t seen) {
    const auto start = SteadyClock::now();
    for (int spins = 0;; ++spins) {
      const uint64_t g = generation_.load();
      if (g != seen) return g;
      cpu_relax();
      if ((spins & 255) == 255 && SteadyClock::now() - start > std::chrono::microseconds(kSpinMicroseconds)) break;
    }
    std::unique_lock<std::mutex> lock(mutex_);
    sleepers_.fetch_add(1);
    wake_.wait(lock, [&] { return generation_.load() != seen; });
    sleepers_.fetch_sub(1);
    return generation_.load();
  }

  std::vector<std::thread> workers_;
  Job slots_[2];
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> active_{0};    // workers inside a job
  std::atomic<int> sleepers_{0};  // workers waiting on wake_
  std::mutex caller_mutex_;  // one caller at a time
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;  // written under mutex_ with a generation bump
};

std::mutex g_team_mutex;          // guards g_team's replacement
std::unique_ptr<Team> g_team;     // null until the first parallel loop or set_cpu_threads
std::atomic<int> g_threads{0};    // 0: not yet initialised

Team& team() {
  if (!g_team) {
    std::lock_guard<std::mutex> lock(g_team_mutex);
    if (!g_team) {
      if (g_threads.load() == 0) g_threads.store(available_cpus());
      openblas_set_num_threads(1);
      g_team = std::make_unique<Team>(g_threads.load());
    }
  }
  return *g_team;
}

}  // namespace

int available_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) return std::max(1, CPU_COUNT(&set));
  return std::max(1u, std::thread::hardware_concurrency());
}

int cpu_threads() { return team().size(); }

void set_cpu_threads(int threads) {
  if (threads < 0) throw std::invalid_argument("threads must be 0 (all CPUs) or more, got " + std::to_string(threads));
  const int wanted = threads == 0 ? available_cpus() : threads;
  std::lock_guard<std::mutex> lock(g_team_mutex);
  openblas_set_num_threads(1);
  g_threads.store(wanted);
  if (!g_team || g_team->size() != wanted) {
    g_team.reset();  // joins the old workers
    g_team = std::make_unique<Team>(wanted);
  }
}

void parallel_blocks(int64_t n, int64_t grain, BlockBody body, void* ctx) {
  if (n <= 0) return;
  if (grain < 1) grain = 1;
  const int64_t blocks = block_count(n, grain);
  if (blocks > 1 && !t_in_team_job && team().size() > 1 && team().run(n, grain, body, ctx)) return;
  // One block, one thread, a block of an outer loop, or the team busy with another caller: the same
  // blocks in order on this thread.
  for (int64_t b = 0; b < blocks; ++b) body(ctx, b * grain, std::min(n, (b + 1) * grain));
}

}  // namespace unipelt

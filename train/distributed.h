// Data-parallel training: N processes ("ranks", started by `mpirun -np N unipelt train ...`) train one
// model together. docs/cluster.md describes the usage and the costs; this file is the seam.
//
// Every rank holds the whole model and the whole (tokenized) data set, and walks the same shuffled
// order. Of each global batch of B examples, rank r takes the contiguous shard [b_r, e_r) (sizes differ
// by at most one). A step is then
//
//   loss_r = mean loss of the shard              forward on n_r = e_r - b_r examples
//   g_r    = d loss_r / d θ                      backward, trainable tensors only
//   g      = Σ_r (n_r / B) · g_r                 ONE all-reduce of a flat buffer of every trainable
//                                                gradient (the gradient of the whole batch's mean loss,
//                                                a last, smaller batch included)
//   θ      ← AdamW(θ, clip(g))                   the same step on every rank: the replicas stay equal
//
// So the all-reduce moves the trainable parameters only: 1.26M floats per step for UniPELT-APL on
// bert-mini against 11.2M for fine-tuning. Two things make the numbers independent of N:
//   - every shard is padded to the global batch's length T, so its tensors are rows of the global
//     batch's tensors, and
//   - dropout draws the mask bit of the GLOBAL element (ForwardContext::example_offset = b_r), so the
//     masks are those of the single-process run.
// Evaluation splits the length-sorted batches of train/evaluate.cpp round-robin over the ranks and sums
// the predictions back (exactly: each example comes from one rank), so the metrics are the same too.
//
// The Communicator is the seam: single_process() (N = 1, every reduction does nothing), MPI
// (train/distributed_mpi.cpp, built when CMake finds MPI), and, as docs/cluster.md sketches, NCCL for
// GPUs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "datasets/encoding.h"
#include "nn/module.h"

namespace unipelt {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // "single process", "MPI (Open MPI v4.1.4), 2 ranks on 2 hosts"
  virtual std::string describe() const = 0;
  // data[i] = Σ over ranks of data[i], on every rank (the same bits on every rank).
  virtual void all_reduce_sum(float* data, size_t n) = 0;
  virtual void all_reduce_sum(double* data, size_t n) = 0;
  // root's `bytes` bytes at data, on every rank.
  virtual void broadcast(void* data, size_t bytes, int root) = 0;
  virtual void barrier() = 0;
  // Ends every rank at once (an error on one rank must not leave the others waiting in a reduction).
  [[noreturn]] virtual void abort(int exit_code) = 0;
};

// One process: rank 0 of 1.
Communicator& single_process();

// The communicator `unipelt train` runs with: MPI's world when the process was started by an MPI
// launcher (mpirun, mpiexec, srun with PMI/PMIx) and the program was built with MPI, else
// single_process(). Throws std::runtime_error when started by a launcher with several ranks in a build
// without MPI (each rank would train alone, all of them in the same run directory).
Communicator& process_communicator();
// The ranks an MPI launcher announced in this process's environment: 0 when none started it, 1 when
// one did without saying how many (PMIx).
int launcher_world_size();
// Whether this build has MPI (CMake found it; UNIPELT_MPI=ON).
bool built_with_mpi();

// True on every rank when `flag` is true on any rank (Ctrl-C reached one of them, say).
bool any_rank(Communicator& comm, bool flag);

// Throws std::runtime_error on every rank when the 64-bit `value` is not the same on all of them;
// `what` names it ("the parameters", "the training state").
void require_same_on_every_rank(Communicator& comm, uint64_t value, const std::string& what);

// The examples [begin, end) of a global batch of n that `rank` of `size` takes.
struct Shard {
  size_t begin = 0, end = 0;
  size_t size() const { return end - begin; }
};
Shard batch_shard(size_t n, int rank, int size);

// One rank's part of a global batch (examples `indices` of `data`) ready for the forward pass.
struct ShardedBatch {
  std::vector<size_t> indices;  // this rank's examples (may be empty when B < N)
  size_t global_size = 0;       // B
  int64_t example_offset = 0;   // b_r: examples of the global batch before this shard
  int pad_to = 0;               // the padding make_batch applies (see shard_of)
};
// This rank's shard of `global`. pad_to is `pad_to` in a single process (nothing changes there) and the
// global batch's longest sequence (at least pad_to) with several ranks.
ShardedBatch shard_of(const Communicator& comm, const std::vector<EncodedExample>& data,
                      const std::vector<size_t>& global, int pad_to);

// The trainable gradients of every rank, packed into one flat buffer of the parameters' dtype and
// all-reduced into the gradient of the global batch's mean loss.
class GradientAllReduce {
 public:
  explicit GradientAllReduce(std::vector<NamedTensor> params);
  size_t values() const { return values_; }  // floats (or doubles) per step: the trainable parameters
  size_t bytes() const;
  // Each rank's gradients g_r (of its shard's mean loss over n_local examples) become Σ_r (n_r / n) g_r.
  // A rank with no examples adds zeros. Afterwards every parameter has a gradient, on every rank.
  // Does nothing in a single process.
  void reduce(Communicator& comm, size_t n_local, size_t n_global) const;
  // The global batch's mean loss, Σ_r loss_r · n_r / n (loss_local of an empty shard is ignored).
  static double mean_loss(Communicator& comm, double loss_local, size_t n_local, size_t n_global);
  // FNV-1a of every parameter's bytes: equal on every rank while the replicas agree.
  uint64_t parameters_hash() const;

 private:
  std::vector<NamedTensor> params_;
  size_t values_ = 0;
};

}  // namespace unipelt

// Data parallelism (distributed.h): the single-process communicator, which communicator a process gets,
// batch shards, and the flat gradient buffer. MPI itself is in distributed_mpi.cpp.
#include "train/distributed.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <type_traits>

#include "autograd/tape.h"

namespace unipelt {

#ifdef UNIPELT_WITH_MPI
Communicator* mpi_world_if_launched();  // distributed_mpi.cpp: null when no MPI launcher started us
#endif

namespace {

class SingleProcess final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string describe() const override { return "single process"; }
  void all_reduce_sum(float*, size_t) override {}
  void all_reduce_sum(double*, size_t) override {}
  void broadcast(void*, size_t, int) override {}
  void barrier() override {}
  [[noreturn]] void abort(int exit_code) override { std::_Exit(exit_code); }
};

}  // namespace

Communicator& single_process() {
  static SingleProcess one;
  return one;
}

int launcher_world_size() {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"})  // Open MPI; MPICH/Hydra and srun --mpi=pmi2
    if (const char* v = std::getenv(name); v && *v) return std::max(1, std::atoi(v));
  return std::getenv("PMIX_RANK") || std::getenv("PMI_RANK") ? 1 : 0;  // PMIx (srun --mpi=pmix): size unknown
}

bool built_with_mpi() {
#ifdef UNIPELT_WITH_MPI
  return true;
#else
  return false;
#endif
}

Communicator& process_communicator() {
#ifdef UNIPELT_WITH_MPI
  if (Communicator* world = mpi_world_if_launched()) return *world;
#endif
  if (launcher_world_size() > 1)
    throw std::runtime_error("started by an MPI launcher with " + std::to_string(launcher_world_size()) +
                             " ranks, but this unipelt was built without MPI, so every rank would train alone "
                             "in the same run directory. Install libopenmpi-dev (scripts/install-deps.sh) and "
                             "rebuild (cmake finds it; -DUNIPELT_MPI=ON), or run without mpirun");
  return single_process();
}

bool any_rank(Communicator& comm, bool flag) {
  if (comm.size() == 1) return flag;
  double v = flag ? 1.0 : 0.0;
  comm.all_reduce_sum(&v, 1);
  return v > 0.0;
}

void require_same_on_every_rank(Communicator& comm, uint64_t value, const std::string& what) {
  if (comm.size() == 1) return;
  uint64_t root_value = value;
  comm.broadcast(&root_value, sizeof root_value, 0);
  const bool differs = any_rank(comm, root_value != value);
  if (differs)
    throw std::runtime_error(what + " differ between the ranks" +
                             (root_value != value ? " (rank " + std::to_string(comm.rank()) + " differs from rank 0)"
                                                  : std::string()) +
                             "; data-parallel ranks must start from the same run directory, model and data "
                             "(is --out on a filesystem every rank sees?)");
}

Shard batch_shard(size_t n, int rank, int size) {
  if (size < 1 || rank < 0 || rank >= size)
    throw std::invalid_argument("batch_shard: rank " + std::to_string(rank) + " of " + std::to_string(size));
  const size_t r = static_cast<size_t>(rank), N = static_cast<size_t>(size);
  const size_t base = n / N, extra = n % N;  // the first `extra` ranks take one more
  const size_t begin = r * base + std::min(r, extra);
  return {begin, begin + base + (r < extra ? 1 : 0)};
}

ShardedBatch shard_of(const Communicator& comm, const std::vector<EncodedExample>& data,
                      const std::vector<size_t>& global, int pad_to) {
  const Shard part = batch_shard(global.size(), comm.rank(), comm.size());
  ShardedBatch b;
  b.indices.assign(global.begin() + static_cast<long>(part.begin), global.begin() + static_cast<long>(part.end));
  b.global_size = global.size();
  b.example_offset = static_cast<int64_t>(part.begin);
  b.pad_to = pad_to;
  if (comm.size() > 1)  // every shard as long as the global batch: its tensors are rows of the global ones
    for (size_t i : global) b.pad_to = std::max(b.pad_to, static_cast<int>(data[i].input_ids.size()));
  return b;
}

// ---------------------------------------------------------------------------------------------
// The flat gradient buffer
// ---------------------------------------------------------------------------------------------

GradientAllReduce::GradientAllReduce(std::vector<NamedTensor> params) : params_(std::move(params)) {
  for (const NamedTensor& p : params_) {
    if (p.tensor.dtype() != params_.front().tensor.dtype())
      throw std::invalid_argument("GradientAllReduce: " + p.name + " has another dtype than " + params_.front().name);
    values_ += static_cast<size_t>(p.tensor.numel());
  }
}

size_t GradientAllReduce::bytes() const {
  return params_.empty() ? 0 : values_ * dtype_size(params_.front().tensor.dtype());
}

namespace {

// Packs weight·grad of every parameter (zeros where there is none), all-reduces, unpacks.
template <class T>
void reduce_as(Communicator& comm, const std::vector<NamedTensor>& params, size_t values, double weight) {
  std::vector<T> flat(values, T(0));
  size_t at = 0;
  for (const NamedTensor& p : params) {
    const size_t n = static_cast<size_t>(p.tensor.numel());
    if (const Tensor g = p.tensor.grad(); g.defined()) {
      const Tensor host = g.to(Device::CPU);  // the same tensor on the CPU; a copy from a GPU
      const T* src = host.data_as<T>();
      for (size_t i = 0; i < n; ++i) flat[at + i] = static_cast<T>(weight * static_cast<double>(src[i]));
    }
    at += n;
  }
  comm.all_reduce_sum(flat.data(), flat.size());
  at = 0;
  for (const NamedTensor& p : params) {
    const size_t n = static_cast<size_t>(p.tensor.numel());
    Tensor reduced = Tensor::empty(p.tensor.shape(), p.tensor.dtype(), Device::CPU);
    std::memcpy(reduced.data(), flat.data() + at, n * sizeof(T));
    if (const Tensor g = p.tensor.grad(); g.defined()) g.copy_from(reduced);
    else accumulate_grad(p.tensor, reduced.to(p.tensor.device()));  // a rank whose shard was empty
    at += n;
  }
}

}  // namespace

void GradientAllReduce::reduce(Communicator& comm, size_t n_local, size_t n_global) const {
  if (comm.size() == 1 || params_.empty()) return;
  const double weight = static_cast<double>(n_local) / static_cast<double>(n_global);
  if (params_.front().tensor.dtype() == DType::F64) reduce_as<double>(comm, params_, values_, weight);
  else reduce_as<float>(comm, params_, values_, weight);
}

double GradientAllReduce::mean_loss(Communicator& comm, double loss_local, size_t n_local, size_t n_global) {
  if (comm.size() == 1) return loss_local;
  double v = n_local ? loss_local * static_cast<double>(n_local) / static_cast<double>(n_global) : 0.0;
  comm.all_reduce_sum(&v, 1);
  return v;
}

uint64_t GradientAllReduce::parameters_hash() const {
  uint64_t h = 1469598103934665603ull;
  for (const NamedTensor& p : params_) {
    const Tensor host = p.tensor.to(Device::CPU);
    const auto* bytes = static_cast<const unsigned char*>(host.data());
    for (size_t i = 0; i < host.nbytes(); ++i) h = (h ^ bytes[i]) * 1099511628211ull;
  }
  return h;
}

}  // namespace unipelt

// The MPI communicator (distributed.h), built only when CMake finds MPI (CMakeLists.txt: UNIPELT_MPI).
// MPI starts lazily: the first process_communicator() of a process that an MPI launcher started calls
// MPI_Init; MPI_Finalize runs at exit.
#include <mpi.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "train/distributed.h"

namespace unipelt {

namespace {

void check_mpi(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(rc, text, &length);
  throw std::runtime_error(std::string(what) + " failed: " + std::string(text, static_cast<size_t>(length)));
}

class MpiWorld final : public Communicator {
 public:
  MpiWorld() {
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (!initialized) check_mpi(MPI_Init(nullptr, nullptr), "MPI_Init");
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    // Errors come back as return codes (check_mpi throws), not as an abort inside MPI.
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    const int hosts = host_count();
    describe_ = "MPI (" + library_version() + "), " + std::to_string(size_) + " rank" + (size_ == 1 ? "" : "s") +
                " on " + std::to_string(hosts) + " host" + (hosts == 1 ? "" : "s");
  }
  ~MpiWorld() override {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Finalize();
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string describe() const override { return describe_; }
  void all_reduce_sum(float* data, size_t n) override { reduce(data, n, MPI_FLOAT); }
  void all_reduce_sum(double* data, size_t n) override { reduce(data, n, MPI_DOUBLE); }
  void broadcast(void* data, size_t bytes, int root) override {
    for (size_t at = 0; at < bytes;) {  // counts are ints: large buffers in pieces
      const int piece = static_cast<int>(std::min<size_t>(bytes - at, 1u << 30));
      check_mpi(MPI_Bcast(static_cast<char*>(data) + at, piece, MPI_BYTE, root, MPI_COMM_WORLD), "MPI_Bcast");
      at += static_cast<size_t>(piece);
    }
  }
  void barrier() override { check_mpi(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier"); }
  [[noreturn]] void abort(int exit_code) override {
    std::fflush(nullptr);
    MPI_Abort(MPI_COMM_WORLD, exit_code);
    std::_Exit(exit_code);  // MPI_Abort does not return; this keeps [[noreturn]] honest
  }

 private:
  template <class T>
  void reduce(T* data, size_t n, MPI_Datatype type) {
    for (size_t at = 0; at < n;) {
      const int piece = static_cast<int>(std::min<size_t>(n - at, 1u << 30));
      check_mpi(MPI_Allreduce(MPI_IN_PLACE, data + at, piece, type, MPI_SUM, MPI_COMM_WORLD), "MPI_Allreduce");
      at += static_cast<size_t>(piece);
    }
  }

  static std::string library_version() {
    char text[MPI_MAX_LIBRARY_VERSION_STRING];
    int length = 0;
    MPI_Get_library_version(text, &length);
    std::string v(text, static_cast<size_t>(length));
    v = v.substr(0, v.find_first_of(",\n"));  // "Open MPI v4.1.4, package: ..." -> "Open MPI v4.1.4"
    return v;
  }

  // The number of distinct host names among the ranks (for the run header).
  int host_count() const {
    char name[MPI_MAX_PROCESSOR_NAME] = {};
    int length = 0;
    MPI_Get_processor_name(name, &length);
    std::vector<char> all(static_cast<size_t>(size_) * MPI_MAX_PROCESSOR_NAME);
    MPI_Allgather(name, MPI_MAX_PROCESSOR_NAME, MPI_CHAR, all.data(), MPI_MAX_PROCESSOR_NAME, MPI_CHAR,
                  MPI_COMM_WORLD);
    std::set<std::string> hosts;
    for (int r = 0; r < size_; ++r) hosts.insert(std::string(all.data() + static_cast<size_t>(r) * MPI_MAX_PROCESSOR_NAME));
    return static_cast<int>(hosts.size());
  }

  int rank_ = 0, size_ = 1;
  std::string describe_;
};

}  // namespace

Communicator* mpi_world_if_launched() {
  if (launcher_world_size() == 0) return nullptr;  // a plain `unipelt train`: no MPI_Init at all
  static MpiWorld world;
  return &world;
}

}  // namespace unipelt

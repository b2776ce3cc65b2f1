// Embedding lookup and its gradient.
//
//   embedding_forward   out[n, dim] = table[ids[i], :]                     ids: int32 [n], table [vocab, dim]
//   embedding_backward  dtable[vocab, dim] = 0, then dtable[ids[i], :] += dout[i, :]
//
// One thread per output element. Backward scatter-adds with atomicAdd (repeated ids collide), so the
// order of the additions, and hence the last bits of a float sum, may vary from run to run.
// An id outside [0, vocab) is never dereferenced: the kernel records the smallest bad position in an
// IndexCheck slot, and the host reads it after the kernel and throws std::out_of_range, with the same
// message as the CPU backend. That read synchronises the device, once per call.
#include "cuda/common.cuh"

namespace unipelt::cuda {

namespace {

template <class T>
__global__ void embedding_forward_kernel(int64_t n, int64_t dim, const int32_t* ids, const T* table, int64_t vocab,
                                         T* out, unsigned long long* bad) {
  for (int64_t i = first_index(); i < n * dim; i += index_step()) {
    const int64_t row = i / dim, id = ids[row];
    if (id < 0 || id >= vocab) {
      atomicMin(bad, static_cast<unsigned long long>(row));
      out[i] = T(0);
    } else {
      out[i] = table[id * dim + i % dim];
    }
  }
}

template <class T>
__global__ void embedding_backward_kernel(int64_t n, int64_t dim, const int32_t* ids, const T* dout, int64_t vocab,
                                          T* dtable, unsigned long long* bad) {
  for (int64_t i = first_index(); i < n * dim; i += index_step()) {
    const int64_t row = i / dim, id = ids[row];
    if (id < 0 || id >= vocab)
      atomicMin(bad, static_cast<unsigned long long>(row));
    else
      atomicAdd(dtable + id * dim + i % dim, dout[i]);
  }
}

void throw_if_bad(const IndexCheck& check, const int32_t* ids, int64_t vocab) {
  const int64_t position = check.first_bad();
  if (position < 0) return;
  throw_bad_embedding_id(check.value_at(ids, position), position, vocab);
}

}  // namespace

void CudaBackend::embedding_forward(DType dtype, int64_t n, int64_t dim, const int32_t* ids, const void* table,
                                    int64_t vocab, void* out) {
  if (n <= 0 || dim <= 0) return;
  dispatch_float(dtype, "embedding_forward", [&](auto tag) {
    using T = decltype(tag);
    IndexCheck check;
    embedding_forward_kernel<T><<<blocks_for(n * dim), kBlock>>>(n, dim, ids, static_cast<const T*>(table), vocab,
                                                                 static_cast<T*>(out), check.slot());
    UNIPELT_CUDA_CHECK_LAUNCH();
    throw_if_bad(check, ids, vocab);
  });
}

void CudaBackend::embedding_backward(DType dtype, int64_t n, int64_t dim, const int32_t* ids, const void* dout,
                                     int64_t vocab, void* dtable) {
  if (vocab <= 0 || dim <= 0) return;
  fill(dtype, dtable, vocab * dim, 0.0);
  if (n <= 0) return;
  dispatch_float(dtype, "embedding_backward", [&](auto tag) {
    using T = decltype(tag);
    IndexCheck check;
    embedding_backward_kernel<T><<<blocks_for(n * dim), kBlock>>>(n, dim, ids, static_cast<const T*>(dout), vocab,
                                                                  static_cast<T*>(dtable), check.slot());
    UNIPELT_CUDA_CHECK_LAUNCH();
    throw_if_bad(check, ids, vocab);
  });
}

}  // namespace unipelt::cuda

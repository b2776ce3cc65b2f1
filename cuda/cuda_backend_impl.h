// Internal to cuda/: the CudaBackend class and the helpers its kernel files share.
//
// Like the CPU backend, the class is declared once here and its members are defined by kernel family,
// one .cu file each:
//   memory.cu       allocate/deallocate (caching allocator), copies, fill, convert, memory stats
//   gemm.cu         gemm, gemm_batched (cuBLAS)
//   elementwise.cu  binary, reduce_broadcast, expand, axpy, scale, dot
//   activation.cu   unary_forward, unary_backward
//   softmax.cu      softmax_forward, softmax_backward, normalize_rows
//   layernorm.cu    layernorm_forward, layernorm_backward
//   embedding.cu    embedding_forward, embedding_backward
//   dropout.cu      dropout
//   movement.cu     permute, copy_2d, copy_strided
//   loss.cu         cross_entropy_forward/backward, mse_forward/backward
//   optimizer.cu    adamw_update
//   cuda_backend.cpp  cuda_backend(), cuda_device_present()
//
// Every pointer a member receives is device memory from allocate(). All work goes to the legacy
// default stream, so kernels run in issue order and a block freed to the cache may be handed out
// again at once: its next user is queued behind every kernel that used it before.
#pragma once

#include <cstddef>
#include <cstdint>

#include "autograd/backend.h"
#include "cuda/cuda_backend.h"

namespace unipelt::cuda {

// ---- the caching allocator (memory.cu) --------------------------------------------------------
void* device_malloc(size_t bytes);            // from the cache, else cudaMalloc; never managed memory
void device_free(void* ptr, size_t bytes);    // back to the cache (bytes as passed to device_malloc)

// Temporary device memory for one kernel call (partial sums and the like), from the allocator.
class Scratch {
 public:
  explicit Scratch(size_t bytes) : bytes_(bytes), ptr_(bytes ? device_malloc(bytes) : nullptr) {}
  ~Scratch() { if (ptr_) device_free(ptr_, bytes_); }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  template <class T>
  T* as() const { return static_cast<T*>(ptr_); }

 private:
  size_t bytes_;
  void* ptr_;
};

// Reports an invalid index (an embedding id or a label) found by a kernel. The kernel records the
// smallest bad position with atomicMin into slot(); first_bad() copies it back (which waits for the
// kernel) and returns it, or -1 when every index was valid. One slot per process: single host thread.
class IndexCheck {
 public:
  IndexCheck();                                // resets the slot (asynchronously, in stream order)
  unsigned long long* slot() const { return slot_; }
  int64_t first_bad() const;                   // synchronises
  int32_t value_at(const int32_t* device_ids, int64_t position) const;  // one id, copied to the host

 private:
  unsigned long long* slot_;
};

// ---- the backend ----------------------------------------------------------------------------
class CudaBackend final : public Backend {
 public:
  Device device() const override { return Device::CUDA; }
  AllocatorStats memory_stats() const override;  // freed blocks are cached (cuda/memory.cu)
  void reset_peak() override;
  void release_cached() override;                 // cudaFree of every cached block

  void* allocate(size_t bytes) override;
  void deallocate(void* ptr, size_t bytes) override;
  void copy(void* dst, const void* src, size_t bytes) override;
  void upload(void* dst, const void* host_src, size_t bytes) override;
  void download(void* host_dst, const void* src, size_t bytes) override;
  void fill(DType dtype, void* dst, int64_t n, double value) override;
  void convert(DType src_dtype, const void* src, DType dst_dtype, void* dst, int64_t n) override;

  void gemm(DType dtype, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha, const void* a,
            int64_t lda, const void* b, int64_t ldb, double beta, void* c, int64_t ldc) override;
  void gemm_batched(DType dtype, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha,
                    const void* a, int64_t lda, int64_t stride_a, const void* b, int64_t ldb, int64_t stride_b,
                    double beta, void* c, int64_t ldc, int64_t stride_c, int64_t batch) override;

  void binary(Binary op, DType dtype, const Broadcast4& bc, const void* a, const void* b, void* out) override;
  void reduce_broadcast(DType dtype, const int64_t shape[4], const int64_t out_stride[4], const void* in, void* out,
                        int64_t out_numel) override;
  void expand(DType dtype, const int64_t shape[4], const int64_t in_stride[4], const void* in, void* out) override;
  void axpy(DType dtype, int64_t n, double alpha, const void* x, void* y) override;
  void scale(DType dtype, int64_t n, double alpha, const void* x, void* y) override;
  double dot(DType dtype, int64_t n, const void* x, const void* y) override;
  void unary_forward(Unary op, DType dtype, int64_t n, const void* x, void* y) override;
  void unary_backward(Unary op, DType dtype, int64_t n, const void* saved, const void* dy, void* dx) override;

  void softmax_forward(DType dtype, int64_t rows, int64_t cols, const void* x, const void* mask,
                       int64_t rows_per_mask, void* y) override;
  void softmax_backward(DType dtype, int64_t rows, int64_t cols, const void* y, const void* dy, void* dx) override;
  void layernorm_forward(DType dtype, int64_t rows, int64_t cols, double eps, const void* x, const void* gamma,
                         const void* beta, void* y, void* mean, void* rstd) override;
  void layernorm_backward(DType dtype, int64_t rows, int64_t cols, const void* x, const void* gamma, const void* mean,
                          const void* rstd, const void* dy, void* dx, void* dgamma, void* dbeta) override;
  void embedding_forward(DType dtype, int64_t n, int64_t dim, const int32_t* ids, const void* table, int64_t vocab,
                         void* out) override;
  void embedding_backward(DType dtype, int64_t n, int64_t dim, const int32_t* ids, const void* dout, int64_t vocab,
                          void* dtable) override;
  void dropout(DType dtype, int64_t n, double p, uint64_t seed, const void* x, void* y) override;
  void permute(DType dtype, const int64_t in_shape[4], const int perm[4], const void* in, void* out) override;
  void copy_2d(DType dtype, int64_t rows, int64_t cols, const void* src, int64_t src_ld, void* dst,
               int64_t dst_ld) override;
  void copy_strided(DType dtype, const int64_t shape[4], const void* src, const int64_t src_stride[4], void* dst,
                    const int64_t dst_stride[4]) override;
  void normalize_rows(DType dtype, int64_t rows, int64_t cols, const void* in, void* out) override;
  void cross_entropy_forward(DType dtype, int64_t n, int64_t c, const void* logits, const int32_t* labels,
                             void* probs, void* loss) override;
  void cross_entropy_backward(DType dtype, int64_t n, int64_t c, const void* probs, const int32_t* labels,
                              const void* dloss, void* dlogits) override;
  void mse_forward(DType dtype, int64_t n, const void* pred, const void* target, void* loss) override;
  void mse_backward(DType dtype, int64_t n, const void* pred, const void* target, const void* dloss,
                    void* dpred) override;
  void adamw_update(DType dtype, int64_t n, void* param, const void* grad, void* m, void* v,
                    const AdamWStep& step) override;
};

}  // namespace unipelt::cuda

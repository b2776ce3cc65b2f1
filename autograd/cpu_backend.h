// The CPU backend: OpenBLAS for every matrix product, plain loops for the rest.
//
// Implementation is split by kernel family:
//   cpu_backend.cpp              memory (caching_allocator.h), dtype conversion, GEMM
//   cpu_kernels_elementwise.cpp  elementwise ops, broadcasting, activations, dropout
//   cpu_kernels_nn.cpp           softmax, layer norm, embedding, data movement, losses, AdamW
// Float transcendentals come from cpu_vector_math.h, the dropout mask from dropout_hash.h.
#pragma once

#include <compare>
#include <stdexcept>
#include <vector>

#include "autograd/backend.h"
#include "autograd/dispatch.h"

namespace unipelt {

// One matrix product the CPU backend ran (gemm_batched's arguments; gemm is batch 1).
struct GemmCall {
  DType dtype;
  bool trans_a, trans_b;
  int64_t m, n, k, lda, stride_a, ldb, stride_b, ldc, stride_c, batch;
  double beta;
  auto operator<=>(const GemmCall&) const = default;
};

// How the CPU backend runs a product of these sizes (cpu_backend.cpp says why): a batch hands out whole
// matrices; one row or one column of C is one gemv call; otherwise C is cut into blocks along M or N,
// or, when neither is long enough, along K; small products are one block.
enum class CpuGemmPath { Batched, Gemv, CutM, CutN, SplitK, OneBlock };
CpuGemmPath cpu_gemm_path(int64_t m, int64_t n, int64_t k, int64_t batch);

class CpuBackend : public Backend {
 public:
  // While `log` is set, every product the backend runs is appended to it (bench train's GEMM bound
  // replays them); null turns the log off. Not thread-safe: set it from the thread that runs the ops.
  static void log_gemms(std::vector<GemmCall>* log);

  Device device() const override { return Device::CPU; }
  AllocatorStats memory_stats() const override;
  void reset_peak() override;
  void release_cached() override;

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

}  // namespace unipelt

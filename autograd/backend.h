// Backend: the one seam between the math and the hardware.
//
// Every kernel an op needs is a virtual function here, taking raw device pointers, a DType and sizes.
// autograd/ops_*.cpp call only these; the CPU backend (cpu_backend.cpp, OpenBLAS) and the CUDA backend
// (cuda/, cuBLAS + our kernels) implement them. Adding a device means implementing this class and
// registering it (register_backend, below) from the new backend's own library; the ops and nn/ stay as
// they are. (The Device enum in tensor.h names the devices, so a new kind of device adds one entry.)
//
// Conventions
// - All arrays are contiguous and row-major.
// - Kernels *write* their outputs (no hidden accumulation) unless the name says `accumulate`;
//   gradient accumulation is the tape's job (tape.cpp).
// - Scalars that live on the device (a loss, its gradient) are passed as pointers, so a GPU backend
//   never has to synchronise to read them.
// - `Broadcast4` describes numpy-style broadcasting padded to 4 dimensions: the output is contiguous
//   with `shape`, and operand k is read at sum_d index[d] * stride_k[d] (stride 0 on broadcast dims).
#pragma once

#include <cstdint>
#include <string>

#include "autograd/caching_allocator.h"
#include "autograd/tensor.h"

namespace unipelt {

enum class Unary { Gelu, Relu, Tanh, Sigmoid };
enum class Binary { Add, Sub, Mul };

struct Broadcast4 {
  int64_t shape[4] = {1, 1, 1, 1};
  int64_t a_stride[4] = {0, 0, 0, 0};
  int64_t b_stride[4] = {0, 0, 0, 0};
  int64_t numel() const { return shape[0] * shape[1] * shape[2] * shape[3]; }
};

// AdamW hyper-parameters for one update (bias corrections already folded in by the caller).
struct AdamWStep {
  double lr, beta1, beta2, eps, weight_decay;
  double bias_correction1, bias_correction2;  // 1 - beta^t
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual Device device() const = 0;
  // The allocator's accounting (autograd/caching_allocator.h): bytes_in_use and peak_bytes are live
  // tensor storage (the `peak memory` a training run reports); reserved and cached bytes include the
  // freed blocks the allocator keeps for reuse.
  virtual AllocatorStats memory_stats() const = 0;
  virtual void reset_peak() = 0;
  // Hands the allocator's cached free blocks back to the system; blocks in use are untouched.
  virtual void release_cached() = 0;

  // ---- memory --------------------------------------------------------------------------------
  virtual void* allocate(size_t bytes) = 0;
  virtual void deallocate(void* ptr, size_t bytes) = 0;
  virtual void copy(void* dst, const void* src, size_t bytes) = 0;             // within this device
  virtual void upload(void* dst, const void* host_src, size_t bytes) = 0;      // host -> this device
  virtual void download(void* host_dst, const void* src, size_t bytes) = 0;    // this device -> host
  virtual void fill(DType dtype, void* dst, int64_t n, double value) = 0;
  virtual void convert(DType src_dtype, const void* src, DType dst_dtype, void* dst, int64_t n) = 0;

  // ---- matrix products (row-major) --------------------------------------------------------------
  // C[m×n] = alpha · op(A) · op(B) + beta · C, op(A) is m×k, op(B) is k×n; op = transpose when t* set.
  virtual void gemm(DType dtype, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha,
                    const void* a, int64_t lda, const void* b, int64_t ldb, double beta, void* c,
                    int64_t ldc) = 0;
  // The same for `batch` independent products, operand i at base + i·stride (elements).
  virtual void gemm_batched(DType dtype, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
                            double alpha, const void* a, int64_t lda, int64_t stride_a, const void* b,
                            int64_t ldb, int64_t stride_b, double beta, void* c, int64_t ldc, int64_t stride_c,
                            int64_t batch) = 0;

  // ---- elementwise ---------------------------------------------------------------------------
  virtual void binary(Binary op, DType dtype, const Broadcast4& bc, const void* a, const void* b, void* out) = 0;
  // out (shape given by out_stride's non-zero dims) = sum of `in` (contiguous, `shape`) over the
  // dimensions where out_stride is 0: the adjoint of broadcasting. `out` is overwritten.
  virtual void reduce_broadcast(DType dtype, const int64_t shape[4], const int64_t out_stride[4], const void* in,
                                void* out, int64_t out_numel) = 0;
  // out (contiguous, `shape`) = in read at broadcast strides: the forward of broadcasting.
  virtual void expand(DType dtype, const int64_t shape[4], const int64_t in_stride[4], const void* in, void* out) = 0;
  virtual void axpy(DType dtype, int64_t n, double alpha, const void* x, void* y) = 0;   // y += alpha·x
  virtual void scale(DType dtype, int64_t n, double alpha, const void* x, void* y) = 0;  // y = alpha·x
  virtual double dot(DType dtype, int64_t n, const void* x, const void* y) = 0;           // result on host

  // ---- activations ---------------------------------------------------------------------------
  virtual void unary_forward(Unary op, DType dtype, int64_t n, const void* x, void* y) = 0;
  // dx = dy · f'(·). `saved` is x for Gelu and Relu, and y = f(x) for Tanh and Sigmoid.
  virtual void unary_backward(Unary op, DType dtype, int64_t n, const void* saved, const void* dy, void* dx) = 0;

  // ---- softmax over the last axis --------------------------------------------------------------
  // x, y: [rows, cols]. mask (nullable): additive, [rows / rows_per_mask, cols]; row r uses mask row
  // r / rows_per_mask (attention: scores [B, heads·Tq, Tk] with a mask [B, Tk]).
  virtual void softmax_forward(DType dtype, int64_t rows, int64_t cols, const void* x, const void* mask,
                               int64_t rows_per_mask, void* y) = 0;
  virtual void softmax_backward(DType dtype, int64_t rows, int64_t cols, const void* y, const void* dy, void* dx) = 0;

  // ---- layer norm over the last axis -----------------------------------------------------------
  // y = (x - mean) · rstd · gamma + beta; mean and rstd ([rows]) are saved for backward.
  virtual void layernorm_forward(DType dtype, int64_t rows, int64_t cols, double eps, const void* x,
                                 const void* gamma, const void* beta, void* y, void* mean, void* rstd) = 0;
  // Any of dx, dgamma, dbeta may be null: a frozen parameter or input costs nothing.
  virtual void layernorm_backward(DType dtype, int64_t rows, int64_t cols, const void* x, const void* gamma,
                                  const void* mean, const void* rstd, const void* dy, void* dx, void* dgamma,
                                  void* dbeta) = 0;

  // ---- embedding ---------------------------------------------------------------------------
  // out[i, :] = table[ids[i], :]; ids are checked against vocab (out-of-range throws).
  virtual void embedding_forward(DType dtype, int64_t n, int64_t dim, const int32_t* ids, const void* table,
                                 int64_t vocab, void* out) = 0;
  // dtable (vocab×dim) = 0, then dtable[ids[i], :] += dout[i, :].
  virtual void embedding_backward(DType dtype, int64_t n, int64_t dim, const int32_t* ids, const void* dout,
                                  int64_t vocab, void* dtable) = 0;

  // ---- dropout -----------------------------------------------------------------------------
  // y[i] = x[i] · mask_i, mask_i = 0 with probability p, else 1/(1-p). mask_i is a pure function of
  // (seed, i) (autograd/dropout_hash.h), so every backend draws the same mask for the same seed, and the
  // backward pass is the same call on dy: nothing is stored between forward and backward.
  virtual void dropout(DType dtype, int64_t n, double p, uint64_t seed, const void* x, void* y) = 0;

  // ---- data movement ---------------------------------------------------------------------------
  // out = in permuted: out.shape[d] = in_shape[perm[d]] (4-D; pad leading dims with 1).
  virtual void permute(DType dtype, const int64_t in_shape[4], const int perm[4], const void* in, void* out) = 0;
  // dst[r·dst_ld + c] = src[r·src_ld + c] for r < rows, c < cols (concat and slice are built on it).
  virtual void copy_2d(DType dtype, int64_t rows, int64_t cols, const void* src, int64_t src_ld, void* dst,
                       int64_t dst_ld) = 0;
  // dst[Σ_d i_d·dst_stride[d]] = src[Σ_d i_d·src_stride[d]] for every index i of the 4-D `shape`: a copy
  // between any two strided layouts (split_heads writes each head's gradient into its column block).
  virtual void copy_strided(DType dtype, const int64_t shape[4], const void* src, const int64_t src_stride[4],
                            void* dst, const int64_t dst_stride[4]) = 0;
  // out[r, :] = in[r, :] / sum(in[r, :]); a row summing to zero gives zeros (masked means).
  virtual void normalize_rows(DType dtype, int64_t rows, int64_t cols, const void* in, void* out) = 0;

  // ---- losses --------------------------------------------------------------------------------
  // Mean cross-entropy of logits [n, c] against labels [n]; probs [n, c] saved; loss is one element.
  virtual void cross_entropy_forward(DType dtype, int64_t n, int64_t c, const void* logits, const int32_t* labels,
                                     void* probs, void* loss) = 0;
  // dlogits = (probs - onehot(labels)) · dloss / n
  virtual void cross_entropy_backward(DType dtype, int64_t n, int64_t c, const void* probs, const int32_t* labels,
                                      const void* dloss, void* dlogits) = 0;
  // loss = mean((pred - target)^2); dpred = 2 (pred - target) · dloss / n
  virtual void mse_forward(DType dtype, int64_t n, const void* pred, const void* target, void* loss) = 0;
  virtual void mse_backward(DType dtype, int64_t n, const void* pred, const void* target, const void* dloss,
                            void* dpred) = 0;

  // ---- optimizer ---------------------------------------------------------------------------
  // Decoupled weight decay (Loshchilov & Hutter): p -= lr·(m̂/(sqrt(v̂)+eps) + wd·p).
  virtual void adamw_update(DType dtype, int64_t n, void* param, const void* grad, void* m, void* v,
                            const AdamWStep& step) = 0;
};

// ---- which backend runs a device -------------------------------------------------------------
// The CPU backend is built in. Any other backend registers itself at start-up: the cuda/ library does
// so from a static initialiser (cuda/cuda_backend.cpp), and the programs link it whole so that the
// initialiser runs. autograd/ never names cuda/; a build without it simply has no CUDA entry.
struct BackendEntry {
  Backend& (*instance)();  // the process-wide backend; called only when present() is true
  bool (*present)();       // a device of this kind is usable on this machine; never throws
};
// Returns true, so that a backend can register from a namespace-scope initialiser. A second
// registration for the same device replaces the first.
bool register_backend(Device device, BackendEntry entry);
// The backend of `device`. Throws std::runtime_error when this build has none for it, or when the
// machine has no such device.
Backend& backend(Device device);
bool backend_registered(Device device);  // this build has a backend for the device
bool backend_available(Device device);   // registered, and a device is present

// The CPU BLAS in use, e.g. "OpenBLAS 0.3.21 DYNAMIC_ARCH ... core SkylakeX, 2 threads".
std::string cpu_blas_info();
// When OpenBLAS did not recognise the processor and fell back to its generic SSE kernels (Prescott,
// Core2, Nehalem) although the CPU has AVX2, matrix products run several times slower; when it runs
// its AVX2 kernels (Haswell, Zen: OpenBLAS 0.3.21 on AMD Zen 4 and 5) on a CPU with AVX-512, about
// 1.7x slower. This returns a one-line hint naming the OPENBLAS_CORETYPE to set (Haswell or SkylakeX).
// Empty otherwise.
std::string cpu_blas_fallback_hint();
// The rule behind it, for an OpenBLAS core name and the CPU's features (tests/test_cpu_kernels.cpp).
std::string blas_core_hint(const std::string& core, bool cpu_has_avx2, bool cpu_has_avx512);
bool cuda_available();  // backend_available(Device::CUDA)

}  // namespace unipelt

// Tensor: a dense, contiguous, row-major array of up to 4 dimensions.
//
// A Tensor is a cheap handle (shared_ptr) to a TensorImpl. Several Tensors may share one Storage:
// reshape() returns a new TensorImpl over the same bytes. There are no strided views; every op that
// rearranges memory (permute, slice, concat) writes a fresh contiguous tensor. That keeps every kernel
// a simple loop over contiguous memory, which is what a reader wants to see.
//
// Autograd state lives on the TensorImpl: requires_grad, and the accumulated gradient `grad`.
// The tape (tape.h) records which op produced which tensor; the Tensor itself knows nothing of it.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace unipelt {

// F32 and F64 hold values; I32 holds token ids and labels (never differentiable).
enum class DType { F32, F64, I32 };
enum class Device { CPU, CUDA };

size_t dtype_size(DType dtype);
const char* dtype_name(DType dtype);
const char* device_name(Device device);
// The inverses of dtype_name and device_name: "f32", "f64", "i32"; "cpu", "cuda". Anything else throws
// std::invalid_argument listing the valid names (no silent fallback to a default).
DType parse_dtype(const std::string& name);
Device parse_device(const std::string& name);

using Shape = std::vector<int64_t>;
std::string shape_str(const Shape& shape);
int64_t shape_numel(const Shape& shape);

// All shape/dtype/device problems raise this, with the op's name and the shapes involved.
struct ShapeError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Raw bytes on one device. Allocation and release go through that device's backend.
struct Storage {
  void* data = nullptr;
  size_t bytes = 0;
  Device device = Device::CPU;
  Storage(size_t bytes, Device device);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
};

class Tensor;
struct TensorImpl;

// Where backward deposits a tensor's gradient. It is separate from the tensor's bytes on purpose: a
// backward closure holds the slot of each input it sends a gradient to, not the input itself, so an
// activation whose values backward never reads (the input of a frozen linear layer) is freed right
// after the forward pass.
struct GradSlot {
  std::shared_ptr<TensorImpl> grad;  // accumulated d(loss)/d(tensor); null until backward reaches it
  Shape shape;
  DType dtype = DType::F32;
  Device device = Device::CPU;
};

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  Shape shape;
  DType dtype = DType::F32;
  bool requires_grad = false;
  std::shared_ptr<GradSlot> slot;  // created when the tensor first requires a gradient
};

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // ---- construction ----------------------------------------------------------------------
  static Tensor empty(const Shape& shape, DType dtype = DType::F32, Device device = Device::CPU);
  static Tensor zeros(const Shape& shape, DType dtype = DType::F32, Device device = Device::CPU);
  static Tensor full(const Shape& shape, double value, DType dtype = DType::F32, Device device = Device::CPU);
  // Copies host values (converted to dtype) into a new tensor.
  static Tensor from_vector(const std::vector<double>& values, const Shape& shape, DType dtype = DType::F32,
                            Device device = Device::CPU);
  static Tensor from_ints(const std::vector<int32_t>& values, const Shape& shape, Device device = Device::CPU);

  // ---- inspection -----------------------------------------------------------------------
  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const { return impl().shape; }
  int64_t ndim() const { return static_cast<int64_t>(impl().shape.size()); }
  int64_t size(int64_t axis) const;  // negative axis counts from the end
  int64_t numel() const { return shape_numel(impl().shape); }
  DType dtype() const { return impl().dtype; }
  Device device() const { return impl().storage->device; }
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype()); }
  void* data() const { return impl().storage->data; }
  template <class T>
  T* data_as() const { return static_cast<T*>(data()); }
  const std::shared_ptr<Storage>& storage() const { return impl().storage; }
  TensorImpl& impl() const;
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  bool same(const Tensor& other) const { return impl_ == other.impl_; }

  // ---- autograd state -------------------------------------------------------------------
  bool requires_grad() const { return impl().requires_grad; }
  Tensor& set_requires_grad(bool flag);
  Tensor grad() const;  // undefined Tensor when no gradient has been accumulated
  void zero_grad() const {
    if (impl().slot) impl().slot->grad.reset();
  }
  const std::shared_ptr<GradSlot>& grad_slot() const { return impl().slot; }

  // ---- copies and conversions (never recorded on the tape) ------------------------------
  std::vector<double> to_vector() const;  // to host, as double
  std::vector<int32_t> to_ints() const;   // I32 tensors only
  double item() const;                    // single-element tensors only
  Tensor to(DType dtype) const;
  Tensor to(Device device) const;
  Tensor clone() const;
  // Same bytes, new shape (numel must match). Not differentiable: ops::reshape is.
  Tensor view(const Shape& shape) const;
  void copy_from(const Tensor& src) const;  // same shape and dtype; devices may differ

 private:
  std::shared_ptr<TensorImpl> impl_;
};

// Throws ShapeError("op: message") unless cond holds. A message that has to be built (shapes, numbers)
// is passed as a callable, [&] { return "got " + shape_str(s); }, and built only when the check fails:
// every op runs its checks on every call, and building their strings eagerly (shape_str, to_string)
// cost about 0.6 % of a unipelt-apl training step in allocations and stream set-up.
[[noreturn]] void throw_shape_error(std::string_view op, std::string_view message);
// (enable_if, not a requires clause: nvcc compiles this header for the CUDA backend as C++17.)
inline void check(bool cond, std::string_view op, std::string_view message) {
  if (!cond) throw_shape_error(op, message);
}
template <class MakeMessage, std::enable_if_t<std::is_invocable_r_v<std::string, MakeMessage&>, int> = 0>
inline void check(bool cond, std::string_view op, MakeMessage&& make_message) {
  if (!cond) throw_shape_error(op, make_message());
}
void check_same_shape(std::string_view op, const Tensor& a, const Tensor& b);
void check_same_dtype_device(std::string_view op, const Tensor& a, const Tensor& b);

}  // namespace unipelt

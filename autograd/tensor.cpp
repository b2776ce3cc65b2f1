#include "autograd/tensor.h"

#include <sstream>

#include "autograd/backend.h"

namespace unipelt {

size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::F32: return 4;
    case DType::F64: return 8;
    case DType::I32: return 4;
  }
  return 0;
}

const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::F32: return "f32";
    case DType::F64: return "f64";
    case DType::I32: return "i32";
  }
  return "?";
}

const char* device_name(Device device) { return device == Device::CPU ? "cpu" : "cuda"; }

DType parse_dtype(const std::string& name) {
  for (DType d : {DType::F32, DType::F64, DType::I32})
    if (name == dtype_name(d)) return d;
  throw std::invalid_argument("unknown dtype '" + name + "' (valid: f32, f64, i32)");
}

Device parse_device(const std::string& name) {
  for (Device d : {Device::CPU, Device::CUDA})
    if (name == device_name(d)) return d;
  throw std::invalid_argument("unknown device '" + name + "' (valid: cpu, cuda)");
}

std::string shape_str(const Shape& shape) {
  std::ostringstream out;
  out << "[";
  for (size_t i = 0; i < shape.size(); ++i) out << (i ? ", " : "") << shape[i];
  out << "]";
  return out.str();
}

int64_t shape_numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

void throw_shape_error(std::string_view op, std::string_view message) {
  throw ShapeError(std::string(op) + ": " + std::string(message));
}

void check_same_shape(std::string_view op, const Tensor& a, const Tensor& b) {
  check(a.shape() == b.shape(), op,
        [&] { return "shapes differ: " + shape_str(a.shape()) + " vs " + shape_str(b.shape()); });
}

void check_same_dtype_device(std::string_view op, const Tensor& a, const Tensor& b) {
  check(a.dtype() == b.dtype(), op,
        [&] { return std::string("dtypes differ: ") + dtype_name(a.dtype()) + " vs " + dtype_name(b.dtype()); });
  check(a.device() == b.device(), op,
        [&] { return std::string("devices differ: ") + device_name(a.device()) + " vs " + device_name(b.device()); });
}

// ---------------------------------------------------------------------------------------------
// Storage
// ---------------------------------------------------------------------------------------------

Storage::Storage(size_t nbytes, Device dev) : bytes(nbytes), device(dev) {
  data = nbytes ? backend(dev).allocate(nbytes) : nullptr;
}

Storage::~Storage() {
  if (data) backend(device).deallocate(data, bytes);
}

// ---------------------------------------------------------------------------------------------
// Tensor
// ---------------------------------------------------------------------------------------------

TensorImpl& Tensor::impl() const {
  if (!impl_) throw std::logic_error("use of an undefined Tensor");
  return *impl_;
}

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  check(shape.size() <= 4, "Tensor::empty", [&] { return "at most 4 dimensions, got " + shape_str(shape); });
  for (int64_t d : shape) check(d >= 0, "Tensor::empty", [&] { return "negative dimension in " + shape_str(shape); });
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::make_shared<Storage>(static_cast<size_t>(shape_numel(shape)) * dtype_size(dtype), device);
  impl->shape = shape;
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

Tensor Tensor::full(const Shape& shape, double value, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  backend(device).fill(dtype, t.data(), t.numel(), value);
  return t;
}

Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) { return full(shape, 0.0, dtype, device); }

Tensor Tensor::from_vector(const std::vector<double>& values, const Shape& shape, DType dtype, Device device) {
  check(static_cast<int64_t>(values.size()) == shape_numel(shape), "Tensor::from_vector",
        [&] { return std::to_string(values.size()) + " values for shape " + shape_str(shape); });
  Tensor host = empty(shape, DType::F64, Device::CPU);
  std::copy(values.begin(), values.end(), host.data_as<double>());
  return host.to(dtype).to(device);
}

Tensor Tensor::from_ints(const std::vector<int32_t>& values, const Shape& shape, Device device) {
  check(static_cast<int64_t>(values.size()) == shape_numel(shape), "Tensor::from_ints",
        [&] { return std::to_string(values.size()) + " values for shape " + shape_str(shape); });
  Tensor host = empty(shape, DType::I32, Device::CPU);
  std::copy(values.begin(), values.end(), host.data_as<int32_t>());
  return host.to(device);
}

int64_t Tensor::size(int64_t axis) const {
  int64_t n = ndim();
  if (axis < 0) axis += n;
  check(axis >= 0 && axis < n, "Tensor::size", [&] { return "axis out of range for shape " + shape_str(shape()); });
  return shape()[static_cast<size_t>(axis)];
}

Tensor& Tensor::set_requires_grad(bool flag) {
  check(!flag || dtype() != DType::I32, "Tensor::set_requires_grad", "integer tensors cannot require gradients");
  impl().requires_grad = flag;
  if (flag && !impl().slot) impl().slot = std::make_shared<GradSlot>(GradSlot{nullptr, shape(), dtype(), device()});
  return *this;
}

Tensor Tensor::grad() const { return Tensor(impl().slot ? impl().slot->grad : nullptr); }

std::vector<double> Tensor::to_vector() const {
  Tensor host = to(Device::CPU).to(DType::F64);
  const double* p = host.data_as<double>();
  return std::vector<double>(p, p + host.numel());
}

std::vector<int32_t> Tensor::to_ints() const {
  check(dtype() == DType::I32, "Tensor::to_ints",
        [&] { return std::string("expected i32, got ") + dtype_name(dtype()); });
  Tensor host = to(Device::CPU);
  const int32_t* p = host.data_as<int32_t>();
  return std::vector<int32_t>(p, p + host.numel());
}

double Tensor::item() const {
  check(numel() == 1, "Tensor::item", [&] { return "expected one element, shape is " + shape_str(shape()); });
  return to_vector()[0];
}

Tensor Tensor::to(DType target) const {
  if (target == dtype()) return *this;
  Tensor out = empty(shape(), target, device());
  backend(device()).convert(dtype(), data(), target, out.data(), numel());
  return out;
}

Tensor Tensor::to(Device target) const {
  if (target == device()) return *this;
  Tensor out = empty(shape(), dtype(), target);
  out.copy_from(*this);
  return out;
}

Tensor Tensor::clone() const {
  Tensor out = empty(shape(), dtype(), device());
  out.copy_from(*this);
  return out;
}

Tensor Tensor::view(const Shape& new_shape) const {
  check(shape_numel(new_shape) == numel(), "Tensor::view",
        [&] { return "cannot view " + shape_str(shape()) + " as " + shape_str(new_shape); });
  check(new_shape.size() <= 4, "Tensor::view", [&] { return "at most 4 dimensions, got " + shape_str(new_shape); });
  auto impl2 = std::make_shared<TensorImpl>();
  impl2->storage = impl().storage;
  impl2->shape = new_shape;
  impl2->dtype = dtype();
  return Tensor(std::move(impl2));
}

void Tensor::copy_from(const Tensor& src) const {
  check(src.shape() == shape() && src.dtype() == dtype(), "Tensor::copy_from", [&] {
    return "need the same shape and dtype: " + shape_str(src.shape()) + " " + dtype_name(src.dtype()) + " into " +
           shape_str(shape()) + " " + dtype_name(dtype());
  });
  if (nbytes() == 0) return;
  if (src.device() == device()) {
    backend(device()).copy(data(), src.data(), nbytes());
  } else if (src.device() == Device::CPU) {
    backend(device()).upload(data(), src.data(), nbytes());
  } else {
    backend(src.device()).download(data(), src.data(), nbytes());
  }
}

}  // namespace unipelt

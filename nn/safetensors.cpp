// Safetensors reading (memory-mapped, validated) and writing (atomic). See safetensors.h and
// docs/safetensors.md for the format and for the list of checks and why each exists.
#include "nn/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

namespace unipelt {

// The format is little-endian; we read it with plain memcpy, which is only right on a little-endian host.
static_assert(std::endian::native == std::endian::little, "safetensors I/O assumes a little-endian host");

namespace {

// The reference implementation refuses headers above 100 MB; so do we, so a corrupt length field can
// never make us parse hundreds of megabytes of garbage as JSON.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

template <class T>
T read_le(const std::byte* p) {
  T value;
  std::memcpy(&value, p, sizeof value);  // memcpy: tensor data in the buffer need not be aligned
  return value;
}

std::string system_error_text() { return std::strerror(errno); }

bool is_float_dtype(StDType d) {
  return d == StDType::F64 || d == StDType::F32 || d == StDType::F16 || d == StDType::BF16;
}

// numel × element size with overflow detection (a hostile shape like [2^62, 8] must not wrap around).
// The product of the non-zero dimensions must fit in an int64 too: [2^62, 3, 0] holds no bytes, but
// its element count, multiplied out left to right (numel(), shape_numel()), overflows on the way to 0.
bool checked_nbytes(const std::vector<int64_t>& shape, size_t elem_size, size_t* out) {
  size_t n = elem_size;
  bool empty = false;
  for (int64_t d : shape) {
    if (d < 0) return false;
    if (d == 0) empty = true;
    else if (__builtin_mul_overflow(n, static_cast<size_t>(d), &n)) return false;
  }
  if (n > static_cast<size_t>(std::numeric_limits<int64_t>::max())) return false;
  *out = empty ? 0 : n;
  return true;
}

std::string shape_text(const std::vector<int64_t>& shape) { return nlohmann::json(shape).dump(); }

// Name and element size of each dtype, in the enum's order.
struct DTypeRow {
  StDType dtype;
  const char* name;
  size_t size;
};
constexpr DTypeRow kDTypes[] = {{StDType::F64, "F64", 8}, {StDType::F32, "F32", 4}, {StDType::F16, "F16", 2},
                                {StDType::BF16, "BF16", 2}, {StDType::I64, "I64", 8}, {StDType::I32, "I32", 4},
                                {StDType::I16, "I16", 2},   {StDType::I8, "I8", 1},   {StDType::U8, "U8", 1},
                                {StDType::BOOL, "BOOL", 1}};
const DTypeRow& row(StDType d) { return kDTypes[static_cast<int>(d)]; }  // rows follow the enum's order

}  // namespace

// ---- dtypes ----------------------------------------------------------------------------------

size_t st_dtype_size(StDType d) { return row(d).size; }
const char* st_dtype_name(StDType d) { return row(d).name; }

bool parse_st_dtype(const std::string& name, StDType* out) {
  for (const DTypeRow& r : kDTypes) {
    if (name == r.name) {
      *out = r.dtype;
      return true;
    }
  }
  return false;
}

StDType st_dtype_of(DType dtype) {
  switch (dtype) {
    case DType::F32: return StDType::F32;
    case DType::F64: return StDType::F64;
    case DType::I32: return StDType::I32;
  }
  throw std::runtime_error("safetensors: unsupported tensor dtype");
}

// binary16: 1 sign bit, 5 exponent bits (bias 15), 10 mantissa bits. float: 8 exponent bits (bias 127),
// 23 mantissa bits. Normal numbers re-bias the exponent (+112) and shift the mantissa up by 13.
float f16_to_f32(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exponent = (h >> 10) & 0x1fu;
  uint32_t mantissa = h & 0x3ffu;
  uint32_t bits;
  if (exponent == 0x1f) {
    bits = sign | 0x7f800000u | (mantissa << 13);  // infinity (mantissa 0) or NaN (payload kept)
  } else if (exponent != 0) {
    bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
  } else if (mantissa == 0) {
    bits = sign;  // ±0
  } else {
    // Subnormal: value = mantissa · 2^-24. Float has the range to make it normal: shift the mantissa
    // until its leading 1 reaches the implicit-bit position, lowering the exponent once per shift.
    uint32_t e = 113;  // the exponent of 2^-14 (the smallest normal half), biased for float
    while ((mantissa & 0x400u) == 0) {
      mantissa <<= 1;
      --e;
    }
    bits = sign | (e << 23) | ((mantissa & 0x3ffu) << 13);
  }
  return std::bit_cast<float>(bits);
}

// bfloat16 is the top half of a float, so widening is a shift; every special case comes out right.
float bf16_to_f32(uint16_t h) { return std::bit_cast<float>(static_cast<uint32_t>(h) << 16); }

int64_t StTensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

// ---- reading -----------------------------------------------------------------------------------

void SafetensorsFile::fail(const std::string& what) const {
  throw std::runtime_error("safetensors file '" + path_.string() + "': " + what);
}

SafetensorsFile::SafetensorsFile(const std::filesystem::path& path) : path_(path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("cannot open: " + system_error_text());
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    fail("not a regular file");
  }
  size_t file_size = static_cast<size_t>(st.st_size);
  if (file_size < 8) {
    ::close(fd);
    fail("file is " + std::to_string(file_size) + " bytes; expected at least 8 (the header length field)");
  }
  void* map = ::mmap(nullptr, file_size, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);  // the mapping keeps the file alive
  if (map == MAP_FAILED) fail("mmap failed: " + system_error_text());
  map_ = map;
  map_size_ = file_size;

  // From here on, a throw from the constructor skips the destructor: unmap by hand.
  try {
    const auto* base = static_cast<const std::byte*>(map_);
    uint64_t header_len = read_le<uint64_t>(base);
    uint64_t available = file_size - 8;
    if (header_len > available)
      fail("header length field says " + std::to_string(header_len) + " bytes, but only " +
           std::to_string(available) + " bytes follow it (truncated or not a safetensors file)");
    if (header_len > kMaxHeaderBytes)
      fail("header length " + std::to_string(header_len) + " exceeds the 100 MB limit");
    buffer_ = base + 8 + header_len;
    parse_header(base + 8, header_len, available - header_len);
  } catch (...) {
    ::munmap(map_, map_size_);
    map_ = nullptr;
    throw;
  }
}

SafetensorsFile::~SafetensorsFile() {
  if (map_) ::munmap(map_, map_size_);
}

SafetensorsFile::SafetensorsFile(SafetensorsFile&& other) noexcept { *this = std::move(other); }

SafetensorsFile& SafetensorsFile::operator=(SafetensorsFile&& other) noexcept {
  if (this != &other) {
    if (map_) ::munmap(map_, map_size_);
    path_ = std::move(other.path_);
    map_ = std::exchange(other.map_, nullptr);
    map_size_ = std::exchange(other.map_size_, 0);
    buffer_ = std::exchange(other.buffer_, nullptr);
    tensors_ = std::move(other.tensors_);
    index_ = std::move(other.index_);
    metadata_ = std::move(other.metadata_);
  }
  return *this;
}

namespace {

// nlohmann::json keeps the last of two equal keys silently; a callback sees every key as it is parsed,
// so duplicate tensor names (depth 1) and duplicate fields inside one entry (depth 2) are caught.
// Returns the parsed header and, in *duplicate, the first duplicate found (empty when none).
nlohmann::json parse_without_duplicates(const char* text, size_t len, std::string* duplicate) {
  using nlohmann::json;
  std::set<std::string> top_keys, inner_keys;
  std::string current_entry;
  auto on_event = [&](int depth, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::key) {
      const std::string& key = parsed.get_ref<const std::string&>();
      if (depth == 1) {
        current_entry = key;
        inner_keys.clear();
        if (!top_keys.insert(key).second && duplicate->empty()) *duplicate = "duplicate tensor name '" + key + "'";
      } else if (depth == 2 && !inner_keys.insert(key).second && duplicate->empty()) {
        *duplicate = "duplicate key '" + key + "' inside header entry '" + current_entry + "'";
      }
    }
    return true;
  };
  return json::parse(text, text + len, on_event);
}

// The parser stores non-negative integers as unsigned and negative ones as signed, so "unsigned" is
// exactly "a non-negative integer that fits in 64 bits" (larger ones become floats and fail).
bool unsigned_value(const nlohmann::json& v, uint64_t* out) {
  if (!v.is_number_unsigned()) return false;
  *out = v.get<uint64_t>();
  return true;
}

}  // namespace

void SafetensorsFile::parse_header(const std::byte* header, size_t header_len, size_t buffer_len) {
  using nlohmann::json;
  json doc;
  std::string duplicate;
  try {
    doc = parse_without_duplicates(reinterpret_cast<const char*>(header), header_len, &duplicate);
  } catch (const json::exception& e) {
    fail(std::string("header is not valid JSON: ") + e.what());
  }
  if (!duplicate.empty()) fail("header has a " + duplicate);
  if (!doc.is_object()) fail(std::string("header must be a JSON object, found ") + doc.type_name());
  for (const auto& [name, entry] : doc.items()) {
    if (name == "__metadata__") parse_metadata(entry);
    else tensors_.push_back(parse_entry(name, entry, buffer_len));
  }
  check_coverage(buffer_len);
  std::sort(tensors_.begin(), tensors_.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  for (size_t i = 0; i < tensors_.size(); ++i) index_[tensors_[i].name] = i;
}

void SafetensorsFile::parse_metadata(const nlohmann::json& entry) {
  if (!entry.is_object()) fail("\"__metadata__\" must be an object of strings");
  for (const auto& [key, value] : entry.items()) {
    if (!value.is_string()) fail("\"__metadata__\" value for '" + key + "' must be a string, found " + value.type_name());
    metadata_[key] = value.get<std::string>();
  }
}

StTensorInfo SafetensorsFile::parse_entry(const std::string& name, const nlohmann::json& entry, size_t buffer_len) const {
  using nlohmann::json;
  const std::string where = "tensor '" + name + "': ";
  if (!entry.is_object()) fail(where + "entry must be an object with dtype, shape and data_offsets");
  for (const char* field : {"dtype", "shape", "data_offsets"})
    if (!entry.contains(field)) fail(where + "missing \"" + field + "\"");

  StTensorInfo info;
  info.name = name;
  const json& dtype = entry["dtype"];
  if (!dtype.is_string() || !parse_st_dtype(dtype.get<std::string>(), &info.dtype))
    fail(where + "unknown dtype " + dtype.dump() + "; expected one of F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL");

  const json& shape = entry["shape"];
  if (!shape.is_array()) fail(where + "\"shape\" must be an array of non-negative integers");
  for (const json& d : shape) {
    uint64_t v;
    if (!unsigned_value(d, &v) || v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      fail(where + "\"shape\" must be an array of non-negative integers, found " + shape.dump());
    info.shape.push_back(static_cast<int64_t>(v));
  }

  const json& offsets = entry["data_offsets"];
  uint64_t begin, end;
  if (!offsets.is_array() || offsets.size() != 2 || !unsigned_value(offsets[0], &begin) ||
      !unsigned_value(offsets[1], &end))
    fail(where + "\"data_offsets\" must be [begin, end] with non-negative integers, found " + offsets.dump());
  std::string range = "data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) + "]";
  if (begin > end) fail(where + range + " has begin > end");
  if (end > buffer_len)
    fail(where + range + " run past the data buffer, which holds " + std::to_string(buffer_len) + " bytes");
  info.begin = static_cast<size_t>(begin);
  info.end = static_cast<size_t>(end);

  size_t expected;
  if (!checked_nbytes(info.shape, st_dtype_size(info.dtype), &expected))
    fail(where + "shape " + shape_text(info.shape) + " is too large to address");
  if (expected != info.end - info.begin)
    fail(where + "shape " + shape_text(info.shape) + " of " + st_dtype_name(info.dtype) + " needs " +
         std::to_string(expected) + " bytes, but " + range + " cover " + std::to_string(info.end - info.begin));
  return info;
}

// The spec requires the buffer to be exactly covered: tensors laid end to end from offset 0, no overlap
// (two names aliasing the same bytes) and no hole (bytes no tensor owns). Walk the tensors in offset
// order and check that each starts where the previous one ended.
void SafetensorsFile::check_coverage(size_t buffer_len) const {
  std::vector<const StTensorInfo*> by_offset;
  for (const auto& t : tensors_) by_offset.push_back(&t);
  std::sort(by_offset.begin(), by_offset.end(), [](const StTensorInfo* a, const StTensorInfo* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  size_t covered = 0;
  const StTensorInfo* previous = nullptr;
  for (const StTensorInfo* t : by_offset) {
    if (t->begin < covered)
      fail("tensor '" + t->name + "': data_offsets [" + std::to_string(t->begin) + ", " + std::to_string(t->end) +
           "] overlap tensor '" + previous->name + "', which ends at " + std::to_string(covered));
    if (t->begin > covered)
      fail("tensor '" + t->name + "': data starts at " + std::to_string(t->begin) + ", expected " +
           std::to_string(covered) + " (bytes " + std::to_string(covered) + ".." + std::to_string(t->begin) +
           " belong to no tensor)");
    covered = t->end;
    previous = t;
  }
  if (covered != buffer_len)
    fail("tensors cover " + std::to_string(covered) + " bytes of the data buffer, but it holds " +
         std::to_string(buffer_len) + " (trailing bytes belong to no tensor)");
}

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> out;
  for (const auto& t : tensors_) out.push_back(t.name);
  return out;
}

const StTensorInfo& SafetensorsFile::info(const std::string& name) const {
  auto it = index_.find(name);
  if (it == index_.end()) fail("no tensor named '" + name + "'");
  return tensors_[it->second];
}

std::span<const std::byte> SafetensorsFile::raw(const std::string& name) const {
  const StTensorInfo& t = info(name);
  return {buffer_ + t.begin, t.end - t.begin};
}

namespace {

// Decodes n stored floats of type `src` into Dst (float or double).
template <class Dst>
void decode_floats(StDType src, const std::byte* in, int64_t n, Dst* out) {
  switch (src) {
    case StDType::F64: for (int64_t i = 0; i < n; ++i) out[i] = static_cast<Dst>(read_le<double>(in + 8 * i)); break;
    case StDType::F32: for (int64_t i = 0; i < n; ++i) out[i] = static_cast<Dst>(read_le<float>(in + 4 * i)); break;
    case StDType::F16: for (int64_t i = 0; i < n; ++i) out[i] = f16_to_f32(read_le<uint16_t>(in + 2 * i)); break;
    case StDType::BF16: for (int64_t i = 0; i < n; ++i) out[i] = bf16_to_f32(read_le<uint16_t>(in + 2 * i)); break;
    default: break;  // callers pass float dtypes only
  }
}

// Reads element i of a stored integer tensor as int64 (BOOL as 0/1).
int64_t read_integer(StDType src, const std::byte* in, int64_t i) {
  switch (src) {
    case StDType::I64: return read_le<int64_t>(in + 8 * i);
    case StDType::I32: return read_le<int32_t>(in + 4 * i);
    case StDType::I16: return read_le<int16_t>(in + 2 * i);
    case StDType::I8: return read_le<int8_t>(in + i);
    case StDType::U8: return read_le<uint8_t>(in + i);
    case StDType::BOOL: return read_le<uint8_t>(in + i) != 0;
    default: return 0;
  }
}

}  // namespace

Tensor decode_tensor(StDType stored, const std::vector<int64_t>& stored_shape, const std::byte* in, DType dtype,
                     Device device, const std::string& where) {
  auto fail = [&](const std::string& what) { throw std::runtime_error(where + what); };
  if (stored_shape.size() > 4) fail("shape " + shape_text(stored_shape) + " has more than 4 dimensions");
  Shape shape = stored_shape.empty() ? Shape{1} : Shape(stored_shape.begin(), stored_shape.end());
  int64_t n = 1;
  for (int64_t d : stored_shape) n *= d;

  const bool float_source = is_float_dtype(stored);
  const bool float_target = dtype != DType::I32;
  if (float_source != float_target)
    fail(std::string("holds ") + st_dtype_name(stored) + " data, which loads as " + (float_source ? "F32 or F64" : "I32") +
         ", not " + dtype_name(dtype));

  Tensor out = Tensor::empty(shape, dtype, Device::CPU);
  if (dtype == DType::F32) {
    decode_floats(stored, in, n, out.data_as<float>());
  } else if (dtype == DType::F64) {
    decode_floats(stored, in, n, out.data_as<double>());
  } else {
    int32_t* dst = out.data_as<int32_t>();
    for (int64_t i = 0; i < n; ++i) {
      int64_t v = read_integer(stored, in, i);
      if (v < std::numeric_limits<int32_t>::min() || v > std::numeric_limits<int32_t>::max())
        fail("element " + std::to_string(i) + " = " + std::to_string(v) + " does not fit in int32");
      dst[i] = static_cast<int32_t>(v);
    }
  }
  return device == Device::CPU ? out : out.to(device);
}

Tensor SafetensorsFile::load(const std::string& name, DType dtype, Device device) const {
  const StTensorInfo& t = info(name);
  return decode_tensor(t.dtype, t.shape, buffer_ + t.begin, dtype, device,
                       "safetensors file '" + path_.string() + "': tensor '" + name + "': ");
}

// ---- writing -----------------------------------------------------------------------------------

void write_safetensors_raw(const std::filesystem::path& path, const std::vector<StWriteEntry>& entries,
                           const std::map<std::string, std::string>& metadata) {
  auto fail = [&](const std::string& what) {
    throw std::runtime_error("writing safetensors file '" + path.string() + "': " + what);
  };
  std::set<std::string> seen;
  for (const auto& e : entries) {
    if (e.name.empty() || e.name == "__metadata__") fail("invalid tensor name '" + e.name + "'");
    if (!seen.insert(e.name).second) fail("tensor name '" + e.name + "' given twice");
    size_t expected = 0;
    if (!checked_nbytes(e.shape, st_dtype_size(e.dtype), &expected))
      fail("tensor '" + e.name + "': shape " + shape_text(e.shape) + " is too large to address");
    if (expected != e.bytes.size())
      fail("tensor '" + e.name + "': shape " + shape_text(e.shape) + " of " + st_dtype_name(e.dtype) + " needs " +
           std::to_string(expected) + " bytes, got " + std::to_string(e.bytes.size()));
  }

  std::vector<const StWriteEntry*> order;
  for (const auto& e : entries) order.push_back(&e);
  std::sort(order.begin(), order.end(), [](const StWriteEntry* a, const StWriteEntry* b) {
    size_t sa = st_dtype_size(a->dtype), sb = st_dtype_size(b->dtype);
    return sa != sb ? sa > sb : a->name < b->name;
  });

  // ordered_json keeps insertion order, so the header lists "__metadata__" first, then the buffer order.
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  size_t offset = 0;
  for (const StWriteEntry* e : order) {
    header[e->name] = {{"dtype", st_dtype_name(e->dtype)}, {"shape", e->shape},
                       {"data_offsets", {offset, offset + e->bytes.size()}}};
    offset += e->bytes.size();
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // the buffer then starts 8-byte aligned in the file
  uint64_t header_len = text.size();

  AtomicFileWriter out(path);
  out.write(&header_len, sizeof header_len);
  out.write(text.data(), text.size());
  for (const StWriteEntry* e : order) out.write(e->bytes.data(), e->bytes.size());
  out.commit();
}

void write_safetensors(const std::filesystem::path& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  std::vector<Tensor> host;  // keeps host copies alive while their bytes are written
  std::vector<StWriteEntry> entries;
  host.reserve(tensors.size());
  for (const auto& [name, tensor] : tensors) {
    if (!tensor.defined())
      throw std::runtime_error("writing safetensors file '" + path.string() + "': tensor '" + name + "' is undefined");
    host.push_back(tensor.device() == Device::CPU ? tensor : tensor.to(Device::CPU));
    const Tensor& h = host.back();
    entries.push_back({name, st_dtype_of(h.dtype()), h.shape(),
                       std::span<const std::byte>(static_cast<const std::byte*>(h.data()), h.nbytes())});
  }
  write_safetensors_raw(path, entries, metadata);
}

}  // namespace unipelt

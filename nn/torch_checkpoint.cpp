// PyTorch checkpoints: the two torch.save containers, the state_dict's tensors as checked strided views
// of their storages, and conversion to safetensors. See torch_checkpoint.h and docs/checkpoints.md.
#include "nn/torch_checkpoint.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <stdexcept>

#include "nn/pickle.h"
#include "nn/torch_pickle_rules.h"
#include "nn/zip_reader.h"

namespace unipelt {

namespace {

using Kind = PickleValue::Kind;

// The legacy format's first pickle: torch's magic number 0x1950a86a20f9469cfc6c as LONG1 bytes.
constexpr unsigned char kLegacyMagic[] = {0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};
constexpr int64_t kLegacyProtocolVersion = 1001;

// The last element a strided view touches: offset + sum((size_i - 1) * stride_i). False on overflow.
bool last_element(const std::vector<int64_t>& shape, const std::vector<int64_t>& stride, int64_t offset,
                  int64_t* last) {
  int64_t end = offset;
  for (size_t i = 0; i < shape.size(); ++i) {
    int64_t step;
    if (__builtin_mul_overflow(shape[i] - 1, stride[i], &step) || __builtin_add_overflow(end, step, &end)) return false;
  }
  *last = end;
  return true;
}

std::string text_of(const std::vector<std::byte>& bytes) {
  return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

}  // namespace

// Fills a TorchCheckpoint from the bytes of a file in either container format.
class TorchCheckpointReader {
 public:
  TorchCheckpointReader(TorchCheckpoint& out, std::span<const std::byte> bytes) : c_(out), bytes_(bytes) {}

  void read() {
    const auto starts_with = [&](std::initializer_list<unsigned char> magic) {
      if (bytes_.size() < magic.size()) return false;
      size_t i = 0;
      for (unsigned char m : magic)
        if (bytes_[i++] != std::byte{m}) return false;
      return true;
    };
    if (starts_with({'P', 'K', 3, 4}) || starts_with({'P', 'K', 5, 6})) {
      c_.format_ = "zip";
      read_zip();
    } else if (starts_with({0x80})) {
      c_.format_ = "legacy";
      state_.legacy = true;
      read_legacy();
    } else {
      c_.fail("not a PyTorch checkpoint: expected a zip archive (torch.save since PyTorch 1.6) or a pickle (the "
              "legacy format), found " + (bytes_.empty() ? std::string("an empty file") : "other data"));
    }
  }

 private:
  std::string where(const std::string& part) const { return "PyTorch checkpoint '" + c_.path_.string() + "' (" + part + ")"; }

  void read_zip() {
    const ZipReader zip(bytes_, "PyTorch checkpoint '" + c_.path_.string() + "'");
    // Every record sits in one folder, named after the file torch.save wrote ("archive" in torch 2).
    std::string prefix;
    for (const std::string& name : zip.names())
      if (name.ends_with("/data.pkl") && name.find('/') == name.size() - 9) {
        if (!prefix.empty()) c_.fail("the archive holds two state_dicts (" + prefix + "data.pkl and " + name + ")");
        prefix = name.substr(0, name.size() - 8);
      }
    if (prefix.empty()) c_.fail("the archive has no ARCHIVE/data.pkl: not a torch.save checkpoint");
    check_zip_version(zip, prefix);
    if (zip.has(prefix + "byteorder")) {
      const std::string order = trimmed(text_of(zip.read(prefix + "byteorder", -1)));
      if (order != "little")
        c_.fail("byteorder record says '" + order + "': the tensors were saved on a big-endian machine, and unipelt "
                "reads little-endian data only (load and re-save the file on a little-endian machine)");
    }
    const std::vector<std::byte> pickle = zip.read(prefix + "data.pkl");
    PickleRef root = unpickle(pickle, 0, torch_state_dict_rules(state_), where(prefix + "data.pkl"));
    adopt_state_dict(*root);
    for (const auto& [key, declared] : state_.declared) {
      const auto [dtype, numel] = declared;
      int64_t nbytes;
      if (__builtin_mul_overflow(numel, static_cast<int64_t>(st_dtype_size(dtype)), &nbytes))
        c_.fail("storage '" + key + "'" + users(key) + " declares " + std::to_string(numel) + " elements, too many");
      TorchCheckpoint::Storage& s = c_.storages_[key];
      s.dtype = dtype;
      s.numel = numel;
      s.bytes = zip.read(prefix + "data/" + key, nbytes,
                         " (storage of " + std::to_string(numel) + " " + st_dtype_name(dtype) + " elements" + users(key) + ")");
    }
  }

  void check_zip_version(const ZipReader& zip, const std::string& prefix) {
    const std::string name = zip.has(prefix + ".data/version") ? prefix + ".data/version" : prefix + "version";
    if (!zip.has(name)) c_.fail("the archive has no version record: not a torch.save checkpoint");
    const std::string text = trimmed(text_of(zip.read(name, -1)));
    // PyTorch's reader supports file format versions up to 10; torch.save writes 3.
    if (text.empty() || text.size() > 3 || text.find_first_not_of("0123456789") != std::string::npos ||
        std::stoi(text) < 1 || std::stoi(text) > 10)
      c_.fail("record " + name + " says '" + text.substr(0, 20) + "'; expected a format version from 1 to 10");
  }

  void read_legacy() {
    UnpickleRules plain;  // the header pickles hold only ints and dicts
    size_t pos = 0;
    PickleRef magic = unpickle(bytes_, pos, plain, where("magic number"), &pos);
    if (!magic->is(Kind::BigInt) || magic->text != std::string(std::begin(kLegacyMagic), std::end(kLegacyMagic)))
      c_.fail("a pickle, but not a PyTorch checkpoint (no torch magic number)");
    PickleRef version = unpickle(bytes_, pos, plain, where("protocol version"), &pos);
    if (!version->is(Kind::Int) || version->integer != kLegacyProtocolVersion)
      c_.fail("legacy protocol version is not " + std::to_string(kLegacyProtocolVersion));
    PickleRef sys_info = unpickle(bytes_, pos, plain, where("sys_info"), &pos);
    const PickleValue* little = nullptr;
    if (sys_info->is(Kind::Dict))
      for (const auto& [key, value] : sys_info->entries)
        if (key->is(Kind::String) && key->text == "little_endian") little = value.get();
    if (!little || !little->is(Kind::Bool)) c_.fail("sys_info has no little_endian flag");
    if (!little->boolean)
      c_.fail("sys_info says the file was written on a big-endian machine; unipelt reads little-endian data only");
    PickleRef root = unpickle(bytes_, pos, torch_state_dict_rules(state_), where("state_dict"), &pos);
    adopt_state_dict(*root);
    PickleRef keys = unpickle(bytes_, pos, plain, where("storage keys"), &pos);
    if (!keys->is(Kind::List)) c_.fail("the storage key list is a " + std::string(keys->kind_name()) + ", not a list");
    for (const PickleRef& key : keys->items) {
      if (!key->is(Kind::String) || !state_.declared.count(key->text))
        c_.fail("the storage key list names a storage the state_dict does not use");
      read_legacy_storage(key->text, &pos);
    }
    for (const auto& [key, declared] : state_.declared)
      if (!c_.storages_.count(key)) c_.fail("storage '" + key + "'" + users(key) + " has no data in the file");
  }

  // int64 element count, then the elements.
  void read_legacy_storage(const std::string& key, size_t* pos) {
    const auto [dtype, numel] = state_.declared.at(key);
    const std::string what = "storage '" + key + "'" + users(key);
    if (c_.storages_.count(key)) c_.fail(what + " appears twice in the storage key list");
    if (bytes_.size() - *pos < 8) c_.fail(what + ": the file ends before its element count (truncated)");
    int64_t count;
    std::memcpy(&count, bytes_.data() + *pos, 8);
    *pos += 8;
    if (count != numel)
      c_.fail(what + ": the file says " + std::to_string(count) + " elements, the state_dict " + std::to_string(numel));
    const uint64_t nbytes = static_cast<uint64_t>(numel) * st_dtype_size(dtype);
    if (static_cast<uint64_t>(numel) > (bytes_.size() - *pos) / st_dtype_size(dtype))
      c_.fail(what + ": needs " + std::to_string(nbytes) + " bytes, but the file ends after " +
              std::to_string(bytes_.size() - *pos) + " (truncated)");
    TorchCheckpoint::Storage& s = c_.storages_[key];
    s.dtype = dtype;
    s.numel = numel;
    s.bytes.assign(bytes_.begin() + static_cast<std::ptrdiff_t>(*pos), bytes_.begin() + static_cast<std::ptrdiff_t>(*pos + nbytes));
    *pos += nbytes;
  }

  // " (used by tensor 'x')" for the first tensor of the state_dict viewing storage `key`.
  std::string users(const std::string& key) const {
    for (const auto& [name, t] : c_.tensors_)
      if (t.storage == key) return " (used by tensor '" + name + "')";
    return "";
  }

  // The root must map names to tensors; each tensor's view must lie inside its storage.
  void adopt_state_dict(const PickleValue& root) {
    if (!root.is(Kind::Dict))
      c_.fail(std::string("the pickle holds a ") + root.kind_name() + ", not a state_dict (a dict of tensors)");
    for (const auto& [key, value] : root.entries) {
      if (!key->is(Kind::String)) c_.fail(std::string("a state_dict key is a ") + key->kind_name() + ", not a str");
      if (!value->is(Kind::Object) || value->text != "tensor")
        c_.fail("entry '" + key->text + "' is a " + value->kind_name() +
                ", not a tensor (unipelt reads flat state_dicts such as transformers' pytorch_model.bin, not training "
                "checkpoints that nest one)");
      const TorchTensorRecord& r = state_.tensors[static_cast<size_t>(value->integer)];
      const TorchStorageRef& ref = state_.storages[r.storage];
      const std::string& name = key->text;
      int64_t numel = 1;
      for (int64_t d : r.shape)
        if (__builtin_mul_overflow(numel, d, &numel)) c_.fail("tensor '" + name + "': size " + shape_str(r.shape) + " is too large");
      // offset <= numel always (an empty view may sit at the very end), so offset + the view's start is safe.
      int64_t last = 0;
      if (r.offset > ref.numel || (numel > 0 && (!last_element(r.shape, r.stride, r.offset, &last) || last >= ref.numel)))
        c_.fail("tensor '" + name + "': its view (offset " + std::to_string(r.offset) + ", size " +
                shape_str(r.shape) + ", stride " + shape_str(r.stride) + ") runs past the " +
                std::to_string(ref.numel) + " elements of storage '" + ref.key + "'");
      const TorchTensorInfo t{name, ref.key, ref.dtype, r.shape, r.stride, ref.offset + r.offset};
      if (!c_.tensors_.emplace(name, t).second) c_.fail("tensor '" + name + "' appears twice");
    }
  }

  TorchCheckpoint& c_;
  std::span<const std::byte> bytes_;
  TorchPickleState state_;
};

// ---- TorchCheckpoint ----------------------------------------------------------------------------

int64_t TorchTensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;  // checked against overflow when the file was read
  return n;
}

void TorchCheckpoint::fail(const std::string& what) const {
  throw std::runtime_error("PyTorch checkpoint '" + path_.string() + "': " + what);
}

TorchCheckpoint::TorchCheckpoint(std::span<const std::byte> bytes, const std::filesystem::path& name) : path_(name) {
  TorchCheckpointReader(*this, bytes).read();
}

TorchCheckpoint::TorchCheckpoint(const std::filesystem::path& path) : path_(path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) fail("not a regular file (or missing)");
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(std::string("cannot open: ") + std::strerror(errno));
  std::vector<std::byte> bytes(static_cast<size_t>(std::filesystem::file_size(path)));
  if (!in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(bytes.size())))
    fail("cannot read " + std::to_string(bytes.size()) + " bytes");
  TorchCheckpointReader(*this, bytes).read();  // storages are copied out; `bytes` is freed on return
}

std::vector<std::string> TorchCheckpoint::names() const {
  std::vector<std::string> out;
  for (const auto& [name, t] : tensors_) out.push_back(name);
  return out;
}

const TorchTensorInfo& TorchCheckpoint::info(const std::string& name) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end()) fail("no tensor named '" + name + "'");
  return it->second;
}

std::vector<std::byte> TorchCheckpoint::contiguous_bytes(const std::string& name) const {
  const TorchTensorInfo& t = info(name);
  const Storage& s = storages_.at(t.storage);
  const size_t elem = st_dtype_size(t.dtype);
  const int64_t n = t.numel();
  std::vector<std::byte> out(static_cast<size_t>(n) * elem);
  if (n == 0) return out;
  // A row-major contiguous view (stride of the last dimension 1, each one before it the product of
  // the sizes after it) is one block of the storage.
  bool contiguous = true;
  for (int64_t d = static_cast<int64_t>(t.shape.size()) - 1, expected = 1; d >= 0; expected *= t.shape[d], --d)
    if (t.shape[d] != 1 && t.stride[d] != expected) contiguous = false;
  if (contiguous) {
    std::memcpy(out.data(), s.bytes.data() + static_cast<size_t>(t.offset) * elem, out.size());
    return out;
  }
  // Walk the indices in row-major order (an odometer over the dimensions), copying one element each;
  // `at` is the element's position in the storage. Views were checked to lie inside it.
  std::vector<int64_t> index(t.shape.size(), 0);
  int64_t at = t.offset;
  for (int64_t i = 0; i < n; ++i) {
    std::memcpy(out.data() + static_cast<size_t>(i) * elem, s.bytes.data() + static_cast<size_t>(at) * elem, elem);
    for (size_t d = t.shape.size(); d-- > 0;) {
      if (++index[d] < t.shape[d]) {
        at += t.stride[d];
        break;
      }
      at -= (t.shape[d] - 1) * t.stride[d];
      index[d] = 0;
    }
  }
  return out;
}

Tensor TorchCheckpoint::load(const std::string& name, DType dtype, Device device) const {
  const TorchTensorInfo& t = info(name);
  const std::vector<std::byte> bytes = contiguous_bytes(name);
  return decode_tensor(t.dtype, t.shape, bytes.data(), dtype, device,
                       "PyTorch checkpoint '" + path_.string() + "': tensor '" + name + "': ");
}

void write_checkpoint_as_safetensors(const TorchCheckpoint& checkpoint, const std::filesystem::path& out) {
  std::vector<std::vector<std::byte>> data;  // keeps each tensor's bytes alive while the file is written
  std::vector<StWriteEntry> entries;
  const std::vector<std::string> names = checkpoint.names();
  data.reserve(names.size());
  for (const std::string& name : names) {
    const TorchTensorInfo& t = checkpoint.info(name);
    data.push_back(checkpoint.contiguous_bytes(name));
    entries.push_back({name, t.dtype, t.shape, std::span<const std::byte>(data.back())});
  }
  // transformers marks the safetensors files it writes for PyTorch this way.
  write_safetensors_raw(out, entries, {{"format", "pt"}});
}

}  // namespace unipelt

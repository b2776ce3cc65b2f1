#include "nn/zip_reader.h"

#include <zip.h>

#include <stdexcept>

namespace unipelt {

namespace {
// Deflate cannot expand data more than ~1032-fold: a record claiming more is corrupt (or a zip bomb).
constexpr uint64_t kMaxDeflateRatio = 1032;
}  // namespace

void ZipReader::fail(const std::string& what) const { throw std::runtime_error(where_ + ": " + what); }

ZipReader::ZipReader(std::span<const std::byte> bytes, const std::string& where) : where_(where) {
  zip_error_t error;
  zip_error_init(&error);
  zip_source_t* source = zip_source_buffer_create(bytes.data(), bytes.size(), 0, &error);
  if (source) zip_ = zip_open_from_source(source, ZIP_RDONLY | ZIP_CHECKCONS, &error);
  if (!zip_) {
    if (source) zip_source_free(source);  // zip_open_from_source owns it only on success
    const std::string reason = zip_error_strerror(&error);
    zip_error_fini(&error);
    fail("not a readable zip archive (" + reason + "; truncated or corrupt?)");
  }
  zip_error_fini(&error);
}

ZipReader::~ZipReader() { zip_discard(zip_); }

std::vector<std::string> ZipReader::names() const {
  std::vector<std::string> out;
  const zip_int64_t n = zip_get_num_entries(zip_, 0);
  for (zip_int64_t i = 0; i < n; ++i)
    if (const char* name = zip_get_name(zip_, static_cast<zip_uint64_t>(i), ZIP_FL_ENC_RAW)) out.push_back(name);
  return out;
}

bool ZipReader::has(const std::string& name) const { return zip_name_locate(zip_, name.c_str(), ZIP_FL_ENC_RAW) >= 0; }

std::vector<std::byte> ZipReader::read(const std::string& name, int64_t expected, const std::string& what) const {
  const zip_int64_t index = zip_name_locate(zip_, name.c_str(), ZIP_FL_ENC_RAW);
  if (index < 0) fail("the archive has no record " + name + what);
  zip_stat_t st;
  zip_stat_init(&st);
  const zip_uint64_t needed = ZIP_STAT_SIZE | ZIP_STAT_COMP_SIZE | ZIP_STAT_COMP_METHOD;
  if (zip_stat_index(zip_, static_cast<zip_uint64_t>(index), 0, &st) != 0 || (st.valid & needed) != needed)
    fail("record " + name + ": cannot read its directory entry (" + zip_strerror(zip_) + ")");
  if (expected >= 0 && st.size != static_cast<uint64_t>(expected))
    fail("record " + name + what + " holds " + std::to_string(st.size) + " bytes, expected " + std::to_string(expected));
  const bool stored = st.comp_method == ZIP_CM_STORE;
  if ((stored && st.size != st.comp_size) || (!stored && st.size / kMaxDeflateRatio > st.comp_size))
    fail("record " + name + ": its size (" + std::to_string(st.size) + " bytes from " + std::to_string(st.comp_size) +
         " compressed) is impossible: corrupt archive");
  zip_file_t* file = zip_fopen_index(zip_, static_cast<zip_uint64_t>(index), 0);
  if (!file) fail("record " + name + ": cannot open (" + zip_strerror(zip_) + ")");
  std::vector<std::byte> data(static_cast<size_t>(st.size));
  const zip_int64_t got = st.size ? zip_fread(file, data.data(), st.size) : 0;
  char extra;  // reading past the end makes libzip compare the record's CRC
  const zip_int64_t more = got == static_cast<zip_int64_t>(st.size) ? zip_fread(file, &extra, 1) : -1;
  const std::string reason = zip_file_strerror(file);
  zip_fclose(file);
  if (got != static_cast<zip_int64_t>(st.size) || more != 0)
    fail("record " + name + ": reading failed (" + reason + "; truncated or corrupt archive)");
  return data;
}

}  // namespace unipelt

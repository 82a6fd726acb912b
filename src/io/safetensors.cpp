#include "xgrad/io/safetensors.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <vector>

#include "xgrad/io/atomic_file.hpp"

static_assert(std::endian::native == std::endian::little,
              "safetensors: xgrad writes tensor bytes as they are in memory (little-endian)");

namespace xgrad::io {

namespace {

using json = nlohmann::json;

constexpr const char* kMetadataKey = "__metadata__";

const char* safetensors_dtype(Dtype d) {
  switch (d) {
    case Dtype::float32:
      return "F32";
    case Dtype::float64:
      return "F64";
    case Dtype::int64:
      return "I64";
    case Dtype::boolean:
      return "BOOL";
  }
  return "?";
}

bool parse_dtype(const std::string& s, Dtype& d) {
  if (s == "F32") return d = Dtype::float32, true;
  if (s == "F64") return d = Dtype::float64, true;
  if (s == "I64") return d = Dtype::int64, true;
  if (s == "BOOL") return d = Dtype::boolean, true;
  return false;
}

// Reads up to `count` bytes at the current position into `out` (fewer when the file ends).
void read_some(int fd, std::string& out, std::size_t count, const std::string& path) {
  const std::size_t at = out.size();
  out.resize(at + count);
  std::size_t got = 0;
  while (got < count) {
    const ssize_t r = ::read(fd, out.data() + at + got, count - got);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      const int e = errno;
      ::close(fd);
      fail("load_safetensors: reading '", path, "' failed: ", std::strerror(e));
    }
    if (r == 0) break;  // the file is shorter than it was when we asked for its size
    got += static_cast<std::size_t>(r);
  }
  out.resize(at + got);
}

// The file's bytes — with header_only, just the 8-byte length and the header it announces — and
// the file's size.
std::string read_file(const std::string& path, bool header_only, std::uint64_t& file_size) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("load_safetensors: cannot open '", path, "': ", std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int e = errno;
    ::close(fd);
    fail("load_safetensors: cannot read '", path, "': ", std::strerror(e));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    fail("load_safetensors: '", path, "' is not a regular file",
         S_ISDIR(st.st_mode) ? " (it is a folder)" : "");
  }
  file_size = static_cast<std::uint64_t>(st.st_size);
  std::string bytes;
  if (!header_only) {
    read_some(fd, bytes, static_cast<std::size_t>(file_size), path);
  } else {
    read_some(fd, bytes, 8, path);
    if (bytes.size() == 8) {
      std::uint64_t n = 0;
      for (int i = 0; i < 8; ++i)
        n |= static_cast<std::uint64_t>(static_cast<unsigned char>(bytes[i])) << (8 * i);
      if (n <= file_size - 8) read_some(fd, bytes, static_cast<std::size_t>(n), path);
    }
  }
  ::close(fd);
  if (!header_only) file_size = bytes.size();
  return bytes;
}

// A non-negative JSON integer, or fails with `what` (e.g. "tensor 'w': shape").
std::uint64_t json_uint(const json& v, const std::string& file, const std::string& what) {
  if (!v.is_number_unsigned())
    fail("load_safetensors: '", file, "': ", what, " must hold non-negative integers, got ",
         v.dump());
  return v.get<std::uint64_t>();
}

}  // namespace

std::string to_safetensors_bytes(const std::map<std::string, Tensor>& tensors,
                                 const std::map<std::string, std::string>& metadata,
                                 const std::string& what) {
  json header = json::object();
  std::vector<Tensor> contiguous;
  std::uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    check(name != kMetadataKey, "save_safetensors: '", what, "': a tensor cannot be called '",
          kMetadataKey, "' (the name is reserved for the metadata)");
    check(t.defined(), "save_safetensors: '", what, "': tensor '", name, "' is undefined");
    Tensor c = t.detach().contiguous();
    const std::uint64_t nbytes = static_cast<std::uint64_t>(c.numel()) * element_size(c.dtype());
    header[name] = {{"dtype", safetensors_dtype(c.dtype())},
                    {"shape", c.shape()},
                    {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
    contiguous.push_back(std::move(c));
  }
  if (!metadata.empty()) header[kMetadataKey] = metadata;
  std::string text;
  try {
    text = header.dump();
  } catch (const json::exception& e) {
    fail("save_safetensors: '", what,
         "': cannot encode the header (metadata must be UTF-8): ", e.what());
  }
  // Pad with spaces so that the data section starts 8-byte aligned (as safetensors does).
  text.append((8 - text.size() % 8) % 8, ' ');
  std::string out;
  out.reserve(8 + text.size() + offset);
  const std::uint64_t n = text.size();
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  out += text;
  for (const Tensor& c : contiguous) {
    const auto* p = static_cast<const char*>(c.raw_data());
    out.append(p, static_cast<std::size_t>(c.numel()) * element_size(c.dtype()));
  }
  return out;
}

void save_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  write_file_atomically(path, to_safetensors_bytes(tensors, metadata, path));
}

namespace {

// Parses a file of `file_size` bytes. With tensors = false only the header is looked at, and
// `bytes` may end with it; otherwise `bytes` is the whole file.
SafetensorsFile parse_file(std::string_view bytes, const std::string& f, bool tensors,
                           std::uint64_t file_size) {
  if (bytes.size() < 8)
    fail("load_safetensors: '", f, "' is truncated: ", bytes.size(),
         " bytes, but a safetensors file starts with an 8-byte header length");
  std::uint64_t n = 0;
  for (int i = 0; i < 8; ++i)
    n |= static_cast<std::uint64_t>(static_cast<unsigned char>(bytes[i])) << (8 * i);
  if (n > file_size - 8 || n > bytes.size() - 8)
    fail("load_safetensors: '", f, "': the header length ", n, " goes beyond the end of the file (",
         file_size, " bytes; truncated or not a ", "safetensors file)");
  const std::string_view text = bytes.substr(8, n);
  const std::string_view data = tensors ? bytes.substr(8 + n) : std::string_view();

  json header;
  try {
    header = json::parse(text.begin(), text.end());
  } catch (const json::exception& e) {
    fail("load_safetensors: '", f, "': bad JSON header: ", e.what());
  }
  if (!header.is_object())
    fail("load_safetensors: '", f, "': the header must be a JSON object, got ", header.type_name());

  SafetensorsFile out;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const json& entry = it.value();
    if (name == kMetadataKey) {
      if (!entry.is_object())
        fail("load_safetensors: '", f, "': ", kMetadataKey, " must be an object of strings");
      for (auto m = entry.begin(); m != entry.end(); ++m) {
        if (!m.value().is_string())
          fail("load_safetensors: '", f, "': metadata '", m.key(), "' must be a string, got ",
               m.value().dump());
        out.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    if (!tensors) continue;
    const std::string t = "tensor '" + name + "'";
    if (!entry.is_object() || !entry.contains("dtype") || !entry.contains("shape") ||
        !entry.contains("data_offsets"))
      fail("load_safetensors: '", f, "': ", t,
           " must be an object with dtype, shape and data_offsets");
    const json& jd = entry["dtype"];
    const json& js = entry["shape"];
    const json& jo = entry["data_offsets"];
    Dtype dtype{};
    if (!jd.is_string() || !parse_dtype(jd.get<std::string>(), dtype))
      fail("load_safetensors: '", f, "': ", t, " has unknown dtype ", jd.dump(),
           " (xgrad reads F32, F64, I64 and BOOL)");
    if (!js.is_array()) fail("load_safetensors: '", f, "': ", t, ": shape must be an array");
    if (!jo.is_array() || jo.size() != 2)
      fail("load_safetensors: '", f, "': ", t, ": data_offsets must be [begin, end]");
    Shape shape;
    std::uint64_t count = 1;
    bool overflow = false;
    for (const json& d : js) {
      const std::uint64_t v = json_uint(d, f, t + ": shape");
      if (v > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
        fail("load_safetensors: '", f, "': ", t, ": dimension ", v, " is too large");
      shape.push_back(static_cast<std::int64_t>(v));
      if (v != 0 && count > std::numeric_limits<std::uint64_t>::max() / v) overflow = true;
      count *= v;
    }
    const std::uint64_t begin = json_uint(jo[0], f, t + ": data_offsets");
    const std::uint64_t end = json_uint(jo[1], f, t + ": data_offsets");
    if (begin > end || end > data.size())
      fail("load_safetensors: '", f, "': ", t, ": data_offsets [", begin, ", ", end,
           "] are out of range (the data section holds ", data.size(), " bytes)");
    const std::uint64_t esize = element_size(dtype);
    if (overflow || (count != 0 && count > (end - begin) / esize) || count * esize != end - begin)
      fail("load_safetensors: '", f, "': ", t, ": data_offsets [", begin, ", ", end, "] hold ",
           end - begin, " bytes, but shape ", shape, " of ", jd.get<std::string>(), " needs ",
           overflow ? std::string("more") : std::to_string(count * esize));
    Tensor tensor = empty(shape, dtype);
    const char* src = data.data() + begin;
    if (dtype == Dtype::boolean) {
      bool* dst = tensor.data_ptr<bool>();  // normalise: any non-zero byte is true
      for (std::uint64_t i = 0; i < count; ++i) dst[i] = src[i] != 0;
    } else if (count > 0) {
      std::memcpy(tensor.raw_data(), src, count * esize);
    }
    out.tensors.emplace(name, std::move(tensor));
  }
  return out;
}

}  // namespace

SafetensorsFile from_safetensors_bytes(std::string_view bytes, const std::string& what) {
  return parse_file(bytes, what, true, bytes.size());
}

SafetensorsFile load_safetensors(const std::string& path) {
  std::uint64_t size = 0;
  const std::string bytes = read_file(path, false, size);
  return parse_file(bytes, path, true, size);
}

std::map<std::string, std::string> load_safetensors_metadata(const std::string& path) {
  std::uint64_t size = 0;
  const std::string bytes = read_file(path, true, size);
  return parse_file(bytes, path, false, size).metadata;
}

}  // namespace xgrad::io

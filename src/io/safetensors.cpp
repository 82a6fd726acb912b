#include "xgrad/io/safetensors.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
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

// One tensor of the header, checked against the data section but not yet read.
struct Entry {
  std::string name;
  Dtype dtype;
  Shape shape;
  std::uint64_t begin, end;
};

// Parses the JSON header, refusing a key that appears twice in one object: nlohmann::json
// would silently keep one of them (a tensor name twice would load the last one's data).
json parse_header(std::string_view text, const std::string& f) {
  std::vector<std::set<std::string>> seen;  // the keys of each open object, innermost last
  std::string entry;                        // the current top-level key
  struct {
    bool found = false, top = false;  // top: in the header object itself
    std::string key, in;              // the first key seen twice, and the entry it is in
  } duplicate;
  auto on_event = [&](int, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start:
        seen.emplace_back();
        break;
      case json::parse_event_t::object_end:
        if (!seen.empty()) seen.pop_back();
        break;
      case json::parse_event_t::key: {
        const std::string& key = parsed.get_ref<const std::string&>();
        if (!seen.empty() && !seen.back().insert(key).second && !duplicate.found)
          duplicate = {true, seen.size() == 1, key, entry};
        if (seen.size() == 1) entry = key;
        break;
      }
      default:
        break;
    }
    return true;
  };
  json header;
  try {
    header = json::parse(text.begin(), text.end(), on_event);
  } catch (const json::exception& e) {
    fail("load_safetensors: '", f, "': bad JSON header: ", e.what());
  }
  if (duplicate.found) {
    if (duplicate.top && duplicate.key == kMetadataKey)
      fail("load_safetensors: '", f, "': the header holds '", kMetadataKey, "' twice");
    if (duplicate.top)
      fail("load_safetensors: '", f, "': the header holds two tensors named '", duplicate.key,
           "' (duplicate name; tensor names must be unique)");
    fail("load_safetensors: '", f, "': the header entry '", duplicate.in, "' holds the key '",
         duplicate.key, "' twice (duplicate key)");
  }
  return header;
}

// The format requires the tensors' data_offsets to tile the data section exactly: sorted by
// offset, each tensor starts where the previous one ends, the first at 0, the last at the end.
void check_coverage(std::vector<Entry> entries, std::uint64_t data_size, const std::string& f) {
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  std::uint64_t at = 0;
  const Entry* previous = nullptr;
  for (const Entry& e : entries) {
    if (e.begin < at)
      fail("load_safetensors: '", f, "': tensors '", previous->name, "' [", previous->begin, ", ",
           previous->end, ") and '", e.name, "' [", e.begin, ", ", e.end,
           ") overlap in the data section (data_offsets must not overlap)");
    if (e.begin > at)
      fail("load_safetensors: '", f, "': bytes [", at, ", ", e.begin,
           ") of the data section belong to no tensor (a hole ",
           previous ? "between '" + previous->name + "' and '" + e.name + "'"
                    : "before '" + e.name + "'",
           "; data_offsets must cover the data section exactly)");
    at = e.end;
    previous = &e;
  }
  if (at != data_size)
    fail("load_safetensors: '", f, "': bytes [", at, ", ", data_size,
         ") of the data section belong to no tensor (a hole ",
         previous ? "after '" + previous->name + "'" : "in a file without tensors",
         "; data_offsets must cover the data section exactly)");
}

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

  json header = parse_header(text, f);
  if (!header.is_object())
    fail("load_safetensors: '", f, "': the header must be a JSON object, got ", header.type_name());

  SafetensorsFile out;
  std::vector<Entry> entries;
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
    entries.push_back({name, dtype, std::move(shape), begin, end});
  }
  if (!tensors) return out;
  check_coverage(entries, data.size(), f);

  // Everything checked: now the tensors are made.
  for (const Entry& e : entries) {
    Tensor tensor = empty(e.shape, e.dtype);
    const char* src = data.data() + e.begin;
    const std::uint64_t n = e.end - e.begin;
    if (e.dtype == Dtype::boolean) {
      bool* dst = tensor.data_ptr<bool>();  // normalise: any non-zero byte is true
      for (std::uint64_t i = 0; i < n; ++i) dst[i] = src[i] != 0;
    } else if (n > 0) {
      std::memcpy(tensor.raw_data(), src, n);
    }
    out.tensors.emplace(e.name, std::move(tensor));
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

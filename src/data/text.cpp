#include "xgrad/data/text.hpp"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <set>

#include "xgrad/error.hpp"
#include "xgrad/ops/shape.hpp"
#include "xgrad/random.hpp"

namespace xgrad::data {
namespace fs = std::filesystem;

namespace {

std::string read_file(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  check(in.good(), "read_text: cannot open '", file.string(), "'");
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  check(!in.bad(), "read_text: cannot read '", file.string(), "'");
  return s;
}

}  // namespace

Vocabulary Vocabulary::from_text(std::string_view text) {
  check(!text.empty(), "Vocabulary::from_text: the text is empty");
  bool seen[256] = {};
  for (char c : text) seen[static_cast<unsigned char>(c)] = true;
  Vocabulary v;
  std::fill(std::begin(v.ids_), std::end(v.ids_), -1);
  for (int b = 0; b < 256; ++b)
    if (seen[b]) {
      v.ids_[b] = static_cast<std::int64_t>(v.bytes_.size());
      v.bytes_.push_back(static_cast<unsigned char>(b));
    }
  return v;
}

Vocabulary Vocabulary::from_string(std::string_view hex) {
  check(!hex.empty(), "Vocabulary::from_string: the string is empty");
  check(hex.size() % 2 == 0, "Vocabulary::from_string: odd length ", hex.size(),
        " (expected two hex digits per byte)");
  auto digit = [&](std::size_t i) {
    const char c = hex[i];
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    fail("Vocabulary::from_string: '", std::string(1, c), "' at position ", i,
         " is not a hex digit");
  };
  Vocabulary v;
  std::fill(std::begin(v.ids_), std::end(v.ids_), -1);
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    const auto b = static_cast<unsigned char>(digit(i) * 16 + digit(i + 1));
    check(v.bytes_.empty() || b > v.bytes_.back(), "Vocabulary::from_string: byte ",
          static_cast<int>(b), " at position ", i,
          " does not come after the one before it (bytes must be strictly increasing)");
    v.ids_[b] = static_cast<std::int64_t>(v.bytes_.size());
    v.bytes_.push_back(b);
  }
  return v;
}

std::string Vocabulary::to_string() const {
  static const char* digits = "0123456789abcdef";
  std::string hex;
  for (unsigned char b : bytes_) {
    hex += digits[b >> 4];
    hex += digits[b & 15];
  }
  return hex;
}

char Vocabulary::byte(std::int64_t id) const {
  check(id >= 0 && id < size(), "Vocabulary: token id ", id, " is outside [0, ", size(), ")");
  return static_cast<char>(bytes_[static_cast<std::size_t>(id)]);
}

Tensor Vocabulary::encode(std::string_view text) const {
  check(!bytes_.empty(), "Vocabulary::encode: the vocabulary is empty");
  Tensor out = empty({static_cast<std::int64_t>(text.size())}, int64);
  std::int64_t* p = out.data_ptr<std::int64_t>();
  for (std::size_t i = 0; i < text.size(); ++i) {
    const std::int64_t id = ids_[static_cast<unsigned char>(text[i])];
    if (id < 0)
      fail("Vocabulary::encode: byte ", static_cast<int>(static_cast<unsigned char>(text[i])),
           " at position ", i, " is not in the vocabulary of ", size(), " bytes");
    p[i] = id;
  }
  return out;
}

std::string Vocabulary::decode(std::span<const std::int64_t> ids) const {
  std::string s;
  s.reserve(ids.size());
  for (std::int64_t id : ids) s += byte(id);
  return s;
}

std::string Vocabulary::decode(const Tensor& ids) const {
  check(ids.defined() && ids.dtype() == int64, "Vocabulary::decode: expected int64 token ids");
  const Tensor c = ids.contiguous();
  return decode(std::span<const std::int64_t>(c.data_ptr<std::int64_t>(),
                                              static_cast<std::size_t>(c.numel())));
}

std::string read_text(const fs::path& path) {
  std::error_code ec;
  check(fs::exists(path, ec), "read_text: '", path.string(), "' does not exist");
  if (!fs::is_directory(path, ec)) {
    std::string s = read_file(path);
    check(!s.empty(), "read_text: '", path.string(), "' is empty");
    return s;
  }
  std::vector<fs::path> files;
  for (const auto& entry :
       fs::recursive_directory_iterator(path, fs::directory_options::follow_directory_symlink))
    if (entry.is_regular_file()) files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  std::set<fs::path> seen;
  std::string text;
  for (const auto& f : files) {
    if (!seen.insert(fs::canonical(f)).second) continue;  // fortunes' "art.u8 -> art"
    std::string s = read_file(f);
    if (s.find('\0') != std::string::npos) continue;  // binary (fortunes' .dat index files)
    text += s;
  }
  check(!text.empty(), "read_text: no text in the folder '", path.string(), "'");
  return text;
}

TextDataset::TextDataset(std::string text, Vocabulary vocab, double val_fraction,
                         std::string origin)
    : vocab_(std::move(vocab)) {
  check(val_fraction >= 0 && val_fraction < 1, "TextDataset: val_fraction must be in [0, 1), got ",
        val_fraction);
  const auto n = static_cast<std::int64_t>(text.size());
  const auto n_train = static_cast<std::int64_t>(static_cast<double>(n) * (1 - val_fraction));
  check(n_train >= 2 && (val_fraction == 0 || n - n_train >= 2), "TextDataset: ", origin, " has ",
        n, " characters: too few for a training text and a validation text (", n_train, " and ",
        n - n_train, "; each needs at least 2)");
  Tensor all = vocab_.encode(text);
  train_ = slice(all, 0, 0, n_train).contiguous();
  val_ = slice(all, 0, n_train, n).contiguous();
}

TextDataset::TextDataset(const fs::path& path, double val_fraction)
    : TextDataset(path, Vocabulary::from_text(read_text(path)), val_fraction) {}

TextDataset::TextDataset(const fs::path& path, Vocabulary vocab, double val_fraction)
    : TextDataset(read_text(path), std::move(vocab), val_fraction, "'" + path.string() + "'") {}

TextDataset TextDataset::from_text(std::string text, double val_fraction) {
  Vocabulary v = Vocabulary::from_text(text);
  return TextDataset(std::move(text), std::move(v), val_fraction, "the text");
}

Batch TextDataset::batch_at(Split split, std::span<const std::int64_t> offsets,
                            std::int64_t block_size) const {
  const Tensor& toks = tokens(split);
  const std::int64_t n = toks.numel();
  check(block_size >= 1 && block_size + 1 <= n, "TextDataset: block size ", block_size,
        " does not fit the ", split == Split::train ? "training" : "validation", " text of ", n,
        " characters (needs block size + 1 <= ", n, ")");
  const auto b = static_cast<std::int64_t>(offsets.size());
  Batch out{empty({b, block_size}, int64), empty({b, block_size}, int64)};
  const std::int64_t* src = toks.data_ptr<std::int64_t>();
  std::int64_t* in = out.inputs.data_ptr<std::int64_t>();
  std::int64_t* lab = out.labels.data_ptr<std::int64_t>();
  for (std::int64_t i = 0; i < b; ++i) {
    const std::int64_t o = offsets[static_cast<std::size_t>(i)];
    check(o >= 0 && o + block_size + 1 <= n, "TextDataset: offset ", o, " is outside [0, ",
          n - block_size - 1, "] for blocks of ", block_size);
    std::memcpy(in + i * block_size, src + o, static_cast<std::size_t>(block_size) * 8);
    std::memcpy(lab + i * block_size, src + o + 1, static_cast<std::size_t>(block_size) * 8);
  }
  return out;
}

Batch TextDataset::sample_batch(Split split, std::int64_t batch_size,
                                std::int64_t block_size) const {
  check(batch_size >= 1, "TextDataset::sample_batch: batch size must be >= 1, got ", batch_size);
  const std::int64_t n = size(split);
  check(block_size >= 1 && block_size + 1 <= n, "TextDataset: block size ", block_size,
        " does not fit the ", split == Split::train ? "training" : "validation", " text of ", n,
        " characters (needs block size + 1 <= ", n, ")");
  std::uniform_int_distribution<std::int64_t> pick(0, n - block_size - 1);
  std::vector<std::int64_t> offsets(static_cast<std::size_t>(batch_size));
  for (auto& o : offsets) o = pick(default_generator());
  return batch_at(split, offsets, block_size);
}

}  // namespace xgrad::data

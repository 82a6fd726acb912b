// Text data for character-level language models: a byte vocabulary built from a corpus, the
// corpus as token ids split into training and validation text, and random contiguous blocks.
//
//   data::TextDataset text("/usr/share/games/fortunes");       // a file or a folder
//   data::Batch b = text.sample_batch(data::Split::train, 32, 64);
//   // b.inputs int64 [32, 64], b.labels int64 [32, 64]: the same blocks shifted by one
//   std::string s = text.vocab().decode(b.inputs[0]);
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "xgrad/data/dataset.hpp"
#include "xgrad/tensor.hpp"

namespace xgrad::data {

/// A byte-level vocabulary: the distinct bytes of a corpus in increasing order, token id i
/// standing for the i-th of them (so a corpus of plain English has ~90 tokens, and UTF-8 text
/// is modelled byte by byte). It is saved with a model as a string (to_string(), hex digits)
/// in a checkpoint's metadata, so that text sampled from the checkpoint decodes to the same
/// characters (see tools/train/gpt.hpp).
class Vocabulary {
 public:
  Vocabulary() {
    for (auto& i : ids_) i = -1;
  }
  /// The distinct bytes of `text`, sorted. Throws xgrad::Error for an empty text.
  static Vocabulary from_text(std::string_view text);
  /// Reads what to_string() wrote: two lowercase or uppercase hex digits per byte, strictly
  /// increasing bytes. Throws xgrad::Error naming the position of a bad digit, an odd length, an
  /// empty string or bytes out of order.
  static Vocabulary from_string(std::string_view hex);
  /// The bytes as hex digits ("0a2021..."), safe in JSON metadata.
  std::string to_string() const;

  /// Number of tokens V (1..256).
  std::int64_t size() const { return static_cast<std::int64_t>(bytes_.size()); }
  /// The byte of token `id`. Throws xgrad::Error for an id outside [0, size()).
  char byte(std::int64_t id) const;
  /// The token id of byte `c`, or -1 when the vocabulary lacks it.
  std::int64_t id(char c) const { return ids_[static_cast<unsigned char>(c)]; }
  /// The ids of `text`: int64 [text.size()]. Throws xgrad::Error naming the first byte (and
  /// its position) that the vocabulary lacks.
  Tensor encode(std::string_view text) const;
  /// The text of int64 ids of any shape (read in row-major order). Throws xgrad::Error for a
  /// non-int64 tensor or an id outside [0, size()).
  std::string decode(const Tensor& ids) const;
  std::string decode(std::span<const std::int64_t> ids) const;
  const std::vector<unsigned char>& bytes() const { return bytes_; }
  bool operator==(const Vocabulary& other) const { return bytes_ == other.bytes_; }

 private:
  std::vector<unsigned char> bytes_;
  std::int64_t ids_[256] = {};
};

/// The text of `path`: the file itself, or for a folder every regular file below it (symbolic
/// links followed, each file read once however many links lead to it), in order of their
/// paths, concatenated. Files holding a NUL byte are binary and skipped (the ".dat" index
/// files beside Debian's fortunes). Throws xgrad::Error when the path does not exist, a file
/// cannot be read, or no text is found.
std::string read_text(const std::filesystem::path& path);

/// The corpus the GPT of xgrad-train reads by default: the text of Debian's `fortunes`
/// package (43 files, 2.6 MB of English; `tools/dev setup` installs it).
inline constexpr const char* kDefaultTextCorpus = "/usr/share/games/fortunes";

/// A character-level language-modelling dataset (as the data of Karpathy's nanoGPT
/// shakespeare_char): the whole corpus as token ids, the first (1 - val_fraction) of it the
/// training text and the rest the validation text, and batches of random contiguous blocks.
/// Memory: 8 bytes per character (int64 ids). Read-only after construction.
class TextDataset {
 public:
  /// Reads `path` (a file or a folder, see read_text) and builds its vocabulary.
  /// Throws xgrad::Error as read_text, for val_fraction outside [0, 1), or when either split
  /// is shorter than 2 characters (one input and one label).
  explicit TextDataset(const std::filesystem::path& path, double val_fraction = 0.1);
  /// The same over a text in memory.
  static TextDataset from_text(std::string text, double val_fraction = 0.1);
  /// With a given vocabulary (the one stored with a model): throws xgrad::Error when the
  /// corpus holds a byte the vocabulary lacks.
  TextDataset(const std::filesystem::path& path, Vocabulary vocab, double val_fraction = 0.1);

  const Vocabulary& vocab() const { return vocab_; }
  /// The token ids of a split (Split::test is the validation text): int64 [N] (training: the
  /// first ⌊(1 - val_fraction)·n⌋ of the n characters, validation the rest).
  const Tensor& tokens(Split split) const { return split == Split::train ? train_ : val_; }
  /// Number of characters of a split.
  std::int64_t size(Split split) const { return tokens(split).numel(); }

  /// B blocks of T characters starting at uniformly random offsets in [0, N - T - 1], drawn from
  /// the default generator (manual_seed makes them reproducible): inputs int64 [B, T] are the
  /// characters at offset..offset+T-1, labels int64 [B, T] the ones after them
  /// (offset+1..offset+T). Throws xgrad::Error for B < 1, T < 1, or T + 1 above the split's size.
  Batch sample_batch(Split split, std::int64_t batch_size, std::int64_t block_size) const;
  /// The blocks at the given offsets (as sample_batch; each offset in [0, N - T - 1]).
  Batch batch_at(Split split, std::span<const std::int64_t> offsets, std::int64_t block_size) const;

 private:
  TextDataset(std::string text, Vocabulary vocab, double val_fraction, std::string origin);
  Vocabulary vocab_;
  Tensor train_, val_;
};

}  // namespace xgrad::data

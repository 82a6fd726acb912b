// Reading and writing tensors in the safetensors format (Hugging Face's; what
// `safetensors.torch.save_file` writes and `load_file` reads).
//
// Layout of a file:
//   8 bytes      N, the header length, unsigned little-endian
//   N bytes      a UTF-8 JSON object (padded at the end with spaces to a multiple of 8 bytes):
//                  {"fc1.weight": {"dtype": "F32", "shape": [256, 784],
//                                  "data_offsets": [0, 802816]},
//                   ...,
//                   "__metadata__": {"key": "value", ...}}
//   the rest     the data section: each tensor's elements, row-major, little-endian, at
//                [begin, end) relative to the start of the data section.
// dtypes: "F32" (float32), "F64" (float64), "I64" (int64), "BOOL" (bool, one byte 0/1).
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "xgrad/tensor.hpp"

namespace xgrad::io {

/// What load_safetensors returns: the tensors by name and the "__metadata__" map (empty when
/// the file has none). `auto [tensors, metadata] = load_safetensors(path);` works.
struct SafetensorsFile {
  std::map<std::string, Tensor> tensors;
  std::map<std::string, std::string> metadata;
};

/// Writes `tensors` and `metadata` to `path` atomically (a temporary file in the same folder,
/// fsync'd, then renamed over `path`: a crash leaves either the old file or the new one).
/// Any tensor (view or not) is written as its row-major values; requires_grad is not saved.
/// Throws xgrad::Error naming the file for an undefined tensor, the reserved name
/// "__metadata__", a metadata string that is not valid UTF-8, or a failed write.
void save_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

/// Reads a safetensors file into new contiguous tensors (that do not require grad). Throws
/// xgrad::Error naming the file when it is missing or unreadable, shorter than 8 bytes, when
/// the header length goes beyond the end of the file, the header is not a JSON object of the
/// layout above, a dtype is not one of F32/F64/I64/BOOL, or a tensor's data_offsets lie outside
/// the data section or do not match its shape and dtype; and, as the format requires, when
/// the header holds a key twice (two tensors of one name: "two tensors named 'w'"; a key twice
/// in one entry or in the metadata: "holds the key 'dtype' twice"), or the tensors' data_offsets
/// do not tile the data section exactly: two tensors overlap ("tensors 'a' [0, 8) and 'b'
/// [4, 12) overlap") or bytes belong to no tensor ("bytes [8, 16) ... belong to no tensor (a
/// hole ...)"). Everything is checked before any tensor is allocated. Memory: the file's size
/// plus the tensors' (at most the file's size again).
SafetensorsFile load_safetensors(const std::string& path);

/// Only the "__metadata__" map of a safetensors file, reading just its header (cheap for a big
/// file). Throws as load_safetensors for a missing file or a broken header.
std::map<std::string, std::string> load_safetensors_metadata(const std::string& path);

/// The bytes save_safetensors writes (`what` names the file or buffer in error messages).
std::string to_safetensors_bytes(const std::map<std::string, Tensor>& tensors,
                                 const std::map<std::string, std::string>& metadata = {},
                                 const std::string& what = "<buffer>");
/// Parses the bytes of a safetensors file, as load_safetensors does.
SafetensorsFile from_safetensors_bytes(std::string_view bytes,
                                       const std::string& what = "<buffer>");

}  // namespace xgrad::io

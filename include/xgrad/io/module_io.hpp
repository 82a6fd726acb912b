// Saving and loading a module's state_dict as a safetensors file: the file torch's
// safetensors.torch.save_file writes for model.state_dict() and load_file reads (see
// docs/modules.md for moving weights to and from PyTorch).
//
//   io::save(model, "model.safetensors");
//   io::load(other, "model.safetensors");  // same architecture: same names, shapes, dtypes
#pragma once

#include <string>

#include "xgrad/nn/module.hpp"

namespace xgrad::io {

/// Writes module.state_dict() (parameters and persistent buffers under their torch names,
/// e.g. "fc1.weight" [256, 784] F32, "bn.num_batches_tracked" [] I64) to `path` as safetensors,
/// atomically (a temporary file, fsync'd, renamed over `path`). No metadata is written.
/// Throws xgrad::Error naming the file when it cannot be written.
void save(const nn::Module& module, const std::string& path);

/// Reads a safetensors file (written by io::save, by torch's safetensors.torch.save_file or by
/// tools/torch_state.py) and copies it into `module` with module.load_state_dict(tensors,
/// strict): values only, in place, under no_grad, after checking every key. Returns the
/// missing and unexpected keys (both empty when strict). Throws xgrad::Error naming the file
/// when it is missing or not valid safetensors, or with load_state_dict's message (a missing
/// or unexpected key with strict, a shape or dtype mismatch) prefixed by "io::load: '<path>': ".
nn::IncompatibleKeys load(nn::Module& module, const std::string& path, bool strict = true);

}  // namespace xgrad::io

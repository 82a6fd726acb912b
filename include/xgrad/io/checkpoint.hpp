// Training checkpoints: everything needed to continue a run exactly where it stopped, in one
// safetensors file (see safetensors.hpp and docs/checkpoints.md).
//
//   io::save_checkpoint("ckpt.safetensors", model, opt,
//                       {.scheduler = &sched, .loader = &loader, .metadata = {{"epoch", "3"}}});
//   ...
//   auto meta = io::load_checkpoint("ckpt.safetensors", model, opt,
//                                   {.scheduler = &sched, .loader = &loader});
//
// Layout. Tensors: the model's state_dict() — parameters and persistent buffers (BatchNorm's
// running statistics) — under their torch names ("fc1.weight", "fc1.bias",
// "bn.running_mean", ...) and the optimizer's state tensors under "optimizer." + their
// Optimizer::state_dict() names ("optimizer.state.0.exp_avg", ...). "__metadata__" (strings;
// numbers in shortest round-trip form, so doubles come back bit for bit):
//   "xgrad.checkpoint"           "1" (the format version)
//   "optimizer.type"             "SGD", "RMSprop", "Adam", "AdamW" or "Optimizer" (others)
//   "optimizer.<key>"            each StateDict scalar: "optimizer.state.0.step",
//                                "optimizer.param_groups.0.lr", ...
//   "rng.default_generator"      the state of xgrad::default_generator() (operator<<)
//   "loader.seed", "loader.epoch", "loader.batch"   DataLoader::state()
//   "scheduler.type"             Scheduler::name(); "scheduler.<key>" its state_dict()
//   any other key                the caller's own metadata (e.g. "epoch")
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "xgrad/tensor.hpp"

namespace xgrad {
namespace nn {
class Module;
}
namespace optim {
class Optimizer;
class Scheduler;
}  // namespace optim
namespace data {
class DataLoader;
}
}  // namespace xgrad

namespace xgrad::io {

/// Parameters by name, as Module::named_parameters() returns them.
using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

/// What save_checkpoint writes besides parameters and optimizer state. Null parts are left out.
struct CheckpointSaveOptions {
  const optim::Scheduler* scheduler = nullptr;
  const data::DataLoader* loader = nullptr;
  /// Save the state of xgrad::default_generator().
  bool rng = true;
  /// The caller's own keys. Names starting with "xgrad.", "optimizer.", "scheduler.",
  /// "loader." or "rng." are reserved.
  std::map<std::string, std::string> metadata = {};
};

/// What load_checkpoint restores besides parameters and optimizer state. A part asked for must
/// be in the file; a part in the file that is not asked for is ignored.
struct CheckpointLoadOptions {
  /// Must be of the saved scheduler's class (same name()), over the same optimizer.
  optim::Scheduler* scheduler = nullptr;
  /// Must iterate the same dataset with the same batch size as the saved one.
  data::DataLoader* loader = nullptr;
  /// Restore xgrad::default_generator().
  bool rng = true;
};

/// Writes a checkpoint of `params` (by name), `optimizer` (built over those parameters) and the
/// parts in `options` to `path`, atomically (temporary file + rename). Throws xgrad::Error for a
/// duplicate or reserved name, or when the file cannot be written.
void save_checkpoint(const std::string& path, const NamedTensors& params,
                     const optim::Optimizer& optimizer, const CheckpointSaveOptions& options = {});
/// The same for a module: its state_dict(), parameters and persistent buffers.
void save_checkpoint(const std::string& path, const nn::Module& model,
                     const optim::Optimizer& optimizer, const CheckpointSaveOptions& options = {});

/// Restores a checkpoint written by save_checkpoint: copies the saved values into `params`
/// (in place, so an optimizer built over them stays valid), loads the optimizer's state and
/// hyperparameters, and the parts in `options`. Returns the file's whole metadata (the
/// caller's own keys among it). Throws xgrad::Error naming the file when it is missing or not a
/// valid checkpoint, when a parameter is missing from it, extra in it, or differs in shape or
/// dtype, when the optimizer or scheduler is of another type or shape, or a part asked for is
/// absent; everything is checked before anything is changed.
std::map<std::string, std::string> load_checkpoint(const std::string& path,
                                                   const NamedTensors& params,
                                                   optim::Optimizer& optimizer,
                                                   const CheckpointLoadOptions& options = {});
/// The same for a module: its state_dict() (parameters and persistent buffers, copied into the
/// module's own tensors).
std::map<std::string, std::string> load_checkpoint(const std::string& path, nn::Module& model,
                                                   optim::Optimizer& optimizer,
                                                   const CheckpointLoadOptions& options = {});

/// The name a checkpoint records for an optimizer's class: "SGD", "RMSprop", "Adam", "AdamW",
/// or "Optimizer" for a class xgrad does not ship.
std::string optimizer_type_name(const optim::Optimizer& optimizer);

}  // namespace xgrad::io

#include "xgrad/io/checkpoint.hpp"

#include <charconv>
#include <random>
#include <set>
#include <sstream>

#include "xgrad/autograd/grad_mode.hpp"
#include "xgrad/data/dataloader.hpp"
#include "xgrad/io/safetensors.hpp"
#include "xgrad/nn/module.hpp"
#include "xgrad/optim/adam.hpp"
#include "xgrad/optim/adamw.hpp"
#include "xgrad/optim/lr_scheduler.hpp"
#include "xgrad/optim/rmsprop.hpp"
#include "xgrad/optim/sgd.hpp"
#include "xgrad/random.hpp"

namespace xgrad::io {

namespace {

constexpr const char* kVersionKey = "xgrad.checkpoint";
constexpr const char* kVersion = "1";
const std::string kOptimizerPrefix = "optimizer.";
const std::string kSchedulerPrefix = "scheduler.";
constexpr const char* kOptimizerType = "optimizer.type";
constexpr const char* kSchedulerType = "scheduler.type";
constexpr const char* kRng = "rng.default_generator";
const char* const kReserved[] = {"xgrad.", "optimizer.", "scheduler.", "loader.", "rng."};

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.rfind(prefix, 0) == 0;
}

// Shortest text that reads back as the same double (std::to_chars), "inf"/"nan" included.
std::string number_text(double v) {
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

template <class T>
T parse_number(const std::string& text, const std::string& path, const std::string& key) {
  T v{};
  const char* end = text.data() + text.size();
  auto r = std::from_chars(text.data(), end, v);
  if (text.empty() || r.ec != std::errc() || r.ptr != end)
    fail("load_checkpoint: '", path, "': metadata '", key, "' = '", text,
         "' is not a valid number");
  return v;
}

const std::string& required(const std::map<std::string, std::string>& meta, const std::string& key,
                            const std::string& path, const std::string& what) {
  auto it = meta.find(key);
  if (it == meta.end())
    fail("load_checkpoint: '", path, "' has no ", what, " (metadata '", key, "' is missing)");
  return it->second;
}

}  // namespace

std::string optimizer_type_name(const optim::Optimizer& optimizer) {
  if (dynamic_cast<const optim::AdamW*>(&optimizer)) return "AdamW";
  if (dynamic_cast<const optim::Adam*>(&optimizer)) return "Adam";
  if (dynamic_cast<const optim::SGD*>(&optimizer)) return "SGD";
  if (dynamic_cast<const optim::RMSprop*>(&optimizer)) return "RMSprop";
  return "Optimizer";
}

void save_checkpoint(const std::string& path, const NamedTensors& params,
                     const optim::Optimizer& optimizer, const CheckpointSaveOptions& options) {
  std::map<std::string, Tensor> tensors;
  std::map<std::string, std::string> meta;
  for (const auto& [name, t] : params) {
    check(!starts_with(name, kOptimizerPrefix), "save_checkpoint: '", path, "': parameter name '",
          name, "' is reserved (it starts with 'optimizer.')");
    check(t.defined(), "save_checkpoint: '", path, "': parameter '", name, "' is undefined");
    check(tensors.emplace(name, t.detach()).second, "save_checkpoint: '", path,
          "': two parameters are called '", name, "'");
  }
  const optim::StateDict sd = optimizer.state_dict();
  for (const auto& [k, t] : sd.tensors) tensors.emplace(kOptimizerPrefix + k, t);
  for (const auto& [k, v] : sd.scalars) meta[kOptimizerPrefix + k] = number_text(v);
  meta[kOptimizerType] = optimizer_type_name(optimizer);
  meta[kVersionKey] = kVersion;
  if (options.rng) {
    std::ostringstream os;
    os << default_generator();
    meta[kRng] = os.str();
  }
  if (options.loader) {
    const data::DataLoaderState st = options.loader->state();
    meta["loader.seed"] = std::to_string(st.seed);
    meta["loader.epoch"] = std::to_string(st.epoch);
    meta["loader.batch"] = std::to_string(st.batch);
  }
  if (options.scheduler) {
    meta[kSchedulerType] = options.scheduler->name();
    for (const auto& [k, v] : options.scheduler->state_dict())
      meta[kSchedulerPrefix + k] = number_text(v);
  }
  for (const auto& [k, v] : options.metadata) {
    for (const char* r : kReserved)
      check(!starts_with(k, r), "save_checkpoint: '", path, "': metadata key '", k,
            "' is reserved (keys starting with '", r, "' are the checkpoint's own)");
    meta[k] = v;
  }
  save_safetensors(path, tensors, meta);
}

void save_checkpoint(const std::string& path, const nn::Module& model,
                     const optim::Optimizer& optimizer, const CheckpointSaveOptions& options) {
  save_checkpoint(path, model.state_dict(), optimizer, options);  // parameters and buffers
}

std::map<std::string, std::string> load_checkpoint(const std::string& path,
                                                   const NamedTensors& params,
                                                   optim::Optimizer& optimizer,
                                                   const CheckpointLoadOptions& options) {
  SafetensorsFile file = load_safetensors(path);
  const auto& meta = file.metadata;
  const std::string where = "load_checkpoint: '" + path + "'";

  // ---- check everything first ----------------------------------------------------------
  auto version = meta.find(kVersionKey);
  if (version == meta.end())
    fail(where, " is not an xgrad checkpoint (its metadata has no '", kVersionKey, "')");
  if (version->second != kVersion)
    fail(where, " has checkpoint format version ", version->second, "; this xgrad reads ",
         kVersion);
  const std::string type = optimizer_type_name(optimizer);
  auto saved_type = meta.find(kOptimizerType);
  if (saved_type != meta.end() && saved_type->second != type)
    fail(where, " holds the state of a ", saved_type->second, " optimizer, not of a ", type);

  std::set<std::string> names;
  for (const auto& [name, p] : params) {
    check(names.insert(name).second, where, ": two parameters are called '", name, "'");
    auto it = file.tensors.find(name);
    if (it == file.tensors.end()) fail(where, " has no parameter '", name, "'");
    const Tensor& t = it->second;
    if (t.shape() != p.shape() || t.dtype() != p.dtype())
      fail(where, ": parameter '", name, "' has shape ", t.shape(), " (", dtype_name(t.dtype()),
           ") in the file but ", p.shape(), " (", dtype_name(p.dtype()), ") in the model");
  }
  optim::StateDict sd;
  for (const auto& [k, t] : file.tensors) {
    if (starts_with(k, kOptimizerPrefix)) {
      sd.tensors[k.substr(kOptimizerPrefix.size())] = t;
    } else if (!names.count(k)) {
      fail(where, " has a parameter '", k, "' that the model does not have");
    }
  }
  for (const auto& [k, v] : meta)
    if (starts_with(k, kOptimizerPrefix) && k != kOptimizerType)
      sd.scalars[k.substr(kOptimizerPrefix.size())] = parse_number<double>(v, path, k);

  std::mt19937_64 rng;
  if (options.rng) {
    std::istringstream is(required(meta, kRng, path, "random generator state"));
    is >> rng;
    if (is.fail() || !(is >> std::ws).eof())
      fail(where, ": metadata '", kRng, "' is not a valid std::mt19937_64 state");
  }

  data::DataLoaderState loader_state;
  if (options.loader) {
    auto get = [&](const char* key) { return required(meta, key, path, "data loader position"); };
    loader_state.seed = parse_number<std::uint64_t>(get("loader.seed"), path, "loader.seed");
    loader_state.epoch = parse_number<std::int64_t>(get("loader.epoch"), path, "loader.epoch");
    loader_state.batch = parse_number<std::int64_t>(get("loader.batch"), path, "loader.batch");
    const std::int64_t batches = options.loader->size();
    if (loader_state.epoch < 0 || loader_state.batch < 0 ||
        (loader_state.batch >= batches && loader_state.batch != 0))
      fail(where, ": the data loader position (epoch ", loader_state.epoch, ", batch ",
           loader_state.batch, ") does not fit a loader of ", batches,
           " batches per epoch (another dataset or batch size?)");
  }

  optim::SchedulerState sched_state;
  if (options.scheduler) {
    const std::string& saved = required(meta, kSchedulerType, path, "scheduler state");
    if (saved != options.scheduler->name())
      fail(where, " holds the state of a ", saved, " scheduler, not of a ",
           options.scheduler->name());
    for (const auto& [k, v] : meta)
      if (starts_with(k, kSchedulerPrefix) && k != kSchedulerType)
        sched_state[k.substr(kSchedulerPrefix.size())] = parse_number<double>(v, path, k);
  }

  // ---- then change things: the optimizer and the scheduler check their state themselves and
  // throw before changing anything; undo the optimizer when the scheduler refuses. -----------
  const optim::StateDict previous = optimizer.state_dict();
  try {
    optimizer.load_state_dict(sd);
  } catch (const Error& e) {
    fail(where, ": the optimizer state does not fit: ", e.what());
  }
  if (options.scheduler) {
    try {
      options.scheduler->load_state_dict(sched_state);
    } catch (const Error& e) {
      optimizer.load_state_dict(previous);
      fail(where, ": the scheduler state does not fit: ", e.what());
    }
  }
  if (options.loader) options.loader->set_state(loader_state);
  {
    no_grad guard;
    for (const auto& [name, p] : params) {
      Tensor dst = p;
      dst.copy_(file.tensors.at(name));
    }
  }
  if (options.rng) default_generator() = rng;
  return file.metadata;
}

std::map<std::string, std::string> load_checkpoint(const std::string& path, nn::Module& model,
                                                   optim::Optimizer& optimizer,
                                                   const CheckpointLoadOptions& options) {
  return load_checkpoint(path, model.state_dict(), optimizer, options);  // parameters and buffers
}

}  // namespace xgrad::io

#include "xgrad/io/module_io.hpp"

#include <map>

#include "xgrad/io/safetensors.hpp"

namespace xgrad::io {

void save(const nn::Module& module, const std::string& path) {
  const nn::NamedTensors sd = module.state_dict();
  std::map<std::string, Tensor> tensors;
  for (const auto& [name, t] : sd)
    check(tensors.emplace(name, t).second, "io::save: '", path, "': two tensors are called '", name,
          "'");
  save_safetensors(path, tensors);
}

nn::IncompatibleKeys load(nn::Module& module, const std::string& path, bool strict) {
  SafetensorsFile file = load_safetensors(path);
  try {
    return module.load_state_dict(file.tensors, strict);
  } catch (const Error& e) {
    fail("io::load: '", path, "': ", e.what());
  }
}

}  // namespace xgrad::io

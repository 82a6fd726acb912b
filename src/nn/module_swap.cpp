// Module::swap_tensors and the registrations that bind a parameter's or buffer's field: what
// func::functional_call needs to run a module with other tensors as its state.
//
// Why fields and not TensorImpl contents: a subclass reads its parameters through its own
// Tensor fields (Linear::weight), which share the TensorImpl of the module's table. Swapping
// the impl's contents in place would also change every graph node that saved the parameter
// during the call, so a backward run after the call (vjp_fn, jacrev) would see the restored
// parameter instead of the substitute. Re-pointing the handles leaves those nodes with the
// substitute.
#include <set>

#include "xgrad/nn/module.hpp"

namespace xgrad::nn {

Tensor& Module::register_parameter(const std::string& name, Tensor& member, Tensor t) {
  Tensor& p = register_parameter(name, std::move(t));
  member = p;
  members_[name] = &member;
  return p;
}

Tensor& Module::register_buffer(const std::string& name, Tensor& member, Tensor t,
                                bool persistent) {
  Tensor& b = register_buffer(name, std::move(t), persistent);
  member = b;
  members_[name] = &member;
  return b;
}

NamedTensors Module::swap_tensors(const std::map<std::string, Tensor>& tensors) {
  // Each qualified name's table entry and bound field, found before anything is changed.
  struct Target {
    Tensor* entry;
    Tensor* member;
  };
  std::map<std::string, Target> targets;
  std::map<std::string, std::string> owner_type;
  for (const auto& [prefix, cm] : walk()) {
    auto* m = const_cast<Module*>(cm);  // walk() is const; this function owns the tree
    auto member_of = [&](const std::string& name) -> Tensor* {
      auto it = m->members_.find(name);
      return it == m->members_.end() ? nullptr : it->second;
    };
    for (auto& [name, p] : m->params_) {
      targets[prefix + name] = {&p, member_of(name)};
      owner_type[prefix + name] = m->type_name();
    }
    for (auto& b : m->buffers_) {
      targets[prefix + b.name] = {&b.tensor, member_of(b.name)};
      owner_type[prefix + b.name] = m->type_name();
    }
  }
  for (const auto& [name, t] : tensors) {
    auto it = targets.find(name);
    if (it == targets.end())
      fail("swap_tensors: ", type_name(), " has no parameter or buffer named '", name, "'");
    check(t.defined(), "swap_tensors: the tensor for '", name, "' is undefined");
    check(it->second.member != nullptr, "swap_tensors: ", owner_type[name], "'s '", name,
          "' was registered without its field (register_parameter(name, member, tensor) binds "
          "it), so the tensor its forward reads cannot be replaced");
  }
  NamedTensors previous;
  for (const auto& [name, t] : tensors) {
    Target& tg = targets.at(name);
    previous.emplace_back(name, *tg.entry);
    *tg.entry = t;
    *tg.member = t;
  }
  return previous;
}

}  // namespace xgrad::nn

#include "xgrad/nn/module.hpp"

#include <set>
#include <sstream>

#include "xgrad/autograd/grad_mode.hpp"

namespace xgrad::nn {

Tensor Module::operator()(const Tensor& x) {
  // Nodes recorded inside forward() get this module's path (one thread-local store and load
  // per call; see ScopeGuard).
  ScopeGuard scope(scope_);
  if (hooks_) return call_with_hooks(x);  // module_hooks.cpp
  return forward(x);
}

std::string Module::path() const {
  return prefix_.empty() ? prefix_ : prefix_.substr(0, prefix_.size() - 1);  // drop the '.'
}

std::vector<std::pair<std::string, const Module*>> Module::walk() const {
  // Iterative pre-order walk: a module, then its children in order (deep trees need no stack).
  std::vector<std::pair<std::string, const Module*>> out;
  std::vector<std::pair<std::string, const Module*>> stack{{"", this}};
  while (!stack.empty()) {
    auto [prefix, m] = stack.back();
    stack.pop_back();
    out.emplace_back(prefix, m);
    for (auto it = m->children_.rbegin(); it != m->children_.rend(); ++it)
      stack.emplace_back(prefix + it->first + ".", it->second.get());
  }
  return out;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (auto& [name, p] : named_parameters()) out.push_back(p);
  return out;
}

NamedTensors Module::named_parameters() const {
  NamedTensors out;
  for (const auto& [prefix, m] : walk())
    for (const auto& [name, p] : m->params_) out.emplace_back(prefix + name, p);
  return out;
}

std::vector<Tensor> Module::buffers() const {
  std::vector<Tensor> out;
  for (auto& [name, b] : named_buffers()) out.push_back(b);
  return out;
}

NamedTensors Module::named_buffers() const {
  NamedTensors out;
  for (const auto& [prefix, m] : walk())
    for (const auto& b : m->buffers_) out.emplace_back(prefix + b.name, b.tensor);
  return out;
}

NamedTensors Module::state_dict() const {
  NamedTensors out;
  for (const auto& [prefix, m] : walk()) {
    for (const auto& [name, p] : m->params_) out.emplace_back(prefix + name, p.detach());
    for (const auto& b : m->buffers_)
      if (b.persistent) out.emplace_back(prefix + b.name, b.tensor.detach());
  }
  return out;
}

namespace {

void append_keys(std::ostringstream& os, const std::vector<std::string>& keys) {
  for (std::size_t i = 0; i < keys.size(); ++i) os << (i ? ", '" : " '") << keys[i] << "'";
}

}  // namespace

IncompatibleKeys Module::load_state_dict(const NamedTensors& dict, bool strict) {
  // The model's slots, by name, in state_dict order: the module's own tensors, not detached
  // copies, so that copy_ writes where forward reads.
  NamedTensors slots;
  for (const auto& [prefix, m] : walk()) {
    for (const auto& [name, p] : m->params_) slots.emplace_back(prefix + name, p);
    for (const auto& b : m->buffers_)
      if (b.persistent) slots.emplace_back(prefix + b.name, b.tensor);
  }
  std::map<std::string, const Tensor*> given;
  for (const auto& [name, t] : dict) {
    check(t.defined(), "load_state_dict: the state_dict's tensor '", name, "' is undefined");
    check(given.emplace(name, &t).second, "load_state_dict: the state_dict has the key '", name,
          "' twice");
  }

  IncompatibleKeys keys;
  std::set<std::string> known;
  std::vector<std::string> mismatches;
  for (const auto& [name, t] : slots) {
    known.insert(name);
    auto it = given.find(name);
    if (it == given.end()) {
      keys.missing_keys.push_back(name);
      continue;
    }
    const Tensor& src = *it->second;
    std::ostringstream os;
    if (src.shape() != t.shape()) {
      os << "shape mismatch for '" << name << "': " << format_shape(src.shape())
         << " in the state_dict, " << format_shape(t.shape()) << " in the model";
      mismatches.push_back(os.str());
    } else if (src.dtype() != t.dtype()) {
      os << "dtype mismatch for '" << name << "': " << dtype_name(src.dtype())
         << " in the state_dict, " << dtype_name(t.dtype()) << " in the model";
      mismatches.push_back(os.str());
    }
  }
  for (const auto& [name, t] : dict)
    if (!known.count(name)) keys.unexpected_keys.push_back(name);

  if (!mismatches.empty() || (strict && !keys.empty())) {
    std::ostringstream os;
    os << "load_state_dict: cannot load a state_dict into " << type_name() << ":";
    const char* sep = "";
    if (strict && !keys.missing_keys.empty()) {
      os << " missing key(s)";
      append_keys(os, keys.missing_keys);
      sep = ";";
    }
    if (strict && !keys.unexpected_keys.empty()) {
      os << sep << " unexpected key(s)";
      append_keys(os, keys.unexpected_keys);
      sep = ";";
    }
    for (const auto& m : mismatches) {
      os << sep << " " << m;
      sep = ";";
    }
    fail(os.str());
  }

  no_grad guard;
  for (auto& [name, t] : slots) {
    auto it = given.find(name);
    if (it != given.end()) t.copy_(*it->second);
  }
  return keys;
}

IncompatibleKeys Module::load_state_dict(const std::map<std::string, Tensor>& dict, bool strict) {
  return load_state_dict(NamedTensors(dict.begin(), dict.end()), strict);
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [name, c] : children_) c->train(on);
}

void Module::zero_grad(bool set_to_none) {
  for (auto& p : parameters()) p.zero_grad(set_to_none);
}

void Module::check_new_name(const char* what, const std::string& name) const {
  check(!name.empty() && name.find('.') == std::string::npos, what, ": the name '", name,
        "' must be non-empty and contain no '.'");
  for (auto& [n, p] : params_)
    check(n != name, what, ": a parameter named '", name, "' already exists");
  for (auto& b : buffers_)
    check(b.name != name, what, ": a buffer named '", name, "' already exists");
  for (auto& [n, c] : children_)
    check(n != name, what, ": a child named '", name, "' already exists");
}

Tensor& Module::register_parameter(const std::string& name, Tensor t) {
  check_new_name("register_parameter", name);
  check(t.defined() && is_floating(t.dtype()), "register_parameter: parameter '", name,
        "' must be a float32 or float64 tensor");
  if (!t.requires_grad()) t.requires_grad_();
  t.set_name(prefix_ + name);
  params_.emplace_back(name, t);
  return params_.back().second;
}

Tensor& Module::register_buffer(const std::string& name, Tensor t, bool persistent) {
  check_new_name("register_buffer", name);
  check(t.defined(), "register_buffer: buffer '", name, "' is undefined");
  check(!t.requires_grad(), "register_buffer: buffer '", name,
        "' requires grad (a buffer is not learned; register it as a parameter)");
  t.set_name(prefix_ + name);
  buffers_.push_back({name, t, persistent});
  return buffers_.back().tensor;
}

void Module::add_child(const std::string& name, std::shared_ptr<Module> child) {
  check(child != nullptr, "register_module: child '", name, "' is null");
  check_new_name("register_module", name);
  child->prefix_names(prefix_ + name + ".", scope_);
  children_.emplace_back(name, std::move(child));
}

void Module::prefix_names(const std::string& prefix, const ModuleScope* parent) {
  prefix_ = prefix + prefix_;
  // Registered, hence fully constructed: type_name() is the subclass's. Children are renamed
  // below with this new scope as their parent.
  scope_ = intern_scope(path(), type_name(), parent);
  for (auto& [name, p] : params_) p.set_name(prefix + p.name());
  for (auto& b : buffers_) b.tensor.set_name(prefix + b.tensor.name());
  for (auto& [name, c] : children_) c->prefix_names(prefix, scope_);
}

}  // namespace xgrad::nn

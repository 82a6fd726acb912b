#include "xgrad/nn/module.hpp"

namespace xgrad::nn {

Tensor Module::operator()(const Tensor& x) {
  // Nodes recorded inside forward() get this module's path (one thread-local store and load
  // per call; see autograd::ScopeGuard).
  autograd::ScopeGuard scope(scope_);
  return forward(x);
}

std::string Module::path() const {
  return prefix_.empty() ? prefix_ : prefix_.substr(0, prefix_.size() - 1);  // drop the '.'
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (auto& [name, p] : named_parameters()) out.push_back(p);
  return out;
}

std::vector<std::pair<std::string, Tensor>> Module::named_parameters() const {
  // Iterative pre-order walk: own parameters first, then children in order.
  std::vector<std::pair<std::string, Tensor>> out;
  std::vector<std::pair<std::string, const Module*>> stack{{"", this}};
  while (!stack.empty()) {
    auto [prefix, m] = stack.back();
    stack.pop_back();
    for (auto& [name, p] : m->params_) out.emplace_back(prefix + name, p);
    for (auto it = m->children_.rbegin(); it != m->children_.rend(); ++it)
      stack.emplace_back(prefix + it->first + ".", it->second.get());
  }
  return out;
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [name, c] : children_) c->train(on);
}

void Module::zero_grad(bool set_to_none) {
  for (auto& p : parameters()) p.zero_grad(set_to_none);
}

Tensor& Module::register_parameter(const std::string& name, Tensor t) {
  check(t.defined() && is_floating(t.dtype()), "register_parameter: parameter '", name,
        "' must be a float32 or float64 tensor");
  for (auto& [n, p] : params_)
    check(n != name, "register_parameter: a parameter named '", name, "' already exists");
  if (!t.requires_grad()) t.requires_grad_();
  t.set_name(prefix_ + name);
  params_.emplace_back(name, t);
  return params_.back().second;
}

void Module::add_child(const std::string& name, std::shared_ptr<Module> child) {
  check(child != nullptr, "register_module: child '", name, "' is null");
  for (auto& [n, c] : children_)
    check(n != name, "register_module: a child named '", name, "' already exists");
  child->prefix_names(prefix_ + name + ".", scope_);
  children_.emplace_back(name, std::move(child));
}

void Module::prefix_names(const std::string& prefix, const autograd::ModuleScope* parent) {
  prefix_ = prefix + prefix_;
  // Registered, hence fully constructed: type_name() is the subclass's. Children are renamed
  // below with this new scope as their parent.
  scope_ = autograd::intern_scope(path(), type_name(), parent);
  for (auto& [name, p] : params_) p.set_name(prefix + p.name());
  for (auto& [name, c] : children_) c->prefix_names(prefix, scope_);
}

}  // namespace xgrad::nn

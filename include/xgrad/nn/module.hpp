// Module: the base of every layer and model — named parameters, named children, train/eval.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "xgrad/autograd/node.hpp"
#include "xgrad/tensor.hpp"

namespace xgrad::nn {

/// Base class of layers and models, as torch.nn.Module. A subclass registers its parameters
/// and children in its constructor and implements forward(); users call it through
/// operator(), the one non-virtual entry point, which tags every graph node recorded inside
/// forward() with the module's path (Node::scope(), used by viz::to_dot to draw one cluster
/// per module). Parameters are named as torch names them: a child registered as "fc1" owning
/// "weight" gives "fc1.weight".
class Module {
 public:
  Module() = default;
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  /// Runs forward(x) inside this module's scope. x's shape is the subclass's to document.
  Tensor operator()(const Tensor& x);

  /// This module's path in the model it was registered into: "fc1", "encoder.conv2"; "" for
  /// a root (or a module never registered as a child).
  std::string path() const;

  /// All parameters, recursively, in registration order (children after own parameters).
  std::vector<Tensor> parameters() const;
  /// (qualified name, parameter) pairs: "fc1.weight", "fc1.bias", "fc2.weight", ...
  std::vector<std::pair<std::string, Tensor>> named_parameters() const;
  /// Direct children with their names.
  const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& children() const {
    return children_;
  }

  /// Training mode (the default) or evaluation mode, recursively (matters for dropout and
  /// batch norm).
  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }

  /// Drops (set_to_none) or zeroes every parameter's gradient.
  void zero_grad(bool set_to_none = true);

  /// The module's type name for printing and graph dumps ("Linear", "Sequential", ...).
  virtual std::string type_name() const { return "Module"; }

 protected:
  virtual Tensor forward(const Tensor& x) = 0;

  /// For entry points other than operator() (an RNN's forward(x, state)): graph nodes recorded
  /// while the returned guard lives are tagged with this module's path, as operator() does.
  /// `auto scope = enter_scope();`
  [[nodiscard]] autograd::ScopeGuard enter_scope() const { return autograd::ScopeGuard(scope_); }

  /// Registers `t` as a parameter called `name`: marks it requires_grad and names it.
  /// Throws xgrad::Error for a duplicate name or a non-float tensor.
  Tensor& register_parameter(const std::string& name, Tensor t);
  /// Registers a child module; its parameters' names get the prefix "name.".
  template <class M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> child) {
    add_child(name, child);
    return child;
  }

 private:
  void add_child(const std::string& name, std::shared_ptr<Module> child);
  void prefix_names(const std::string& prefix, const autograd::ModuleScope* parent);

  std::vector<std::pair<std::string, Tensor>> params_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
  /// This module's path in the modules it was registered into ("" for a root, "0.fc1." for
  /// fc1 of a Sequential's first child), so that parameters and children added after
  /// registration (Sequential::push_back) are named in full too.
  std::string prefix_;
  /// The interned (path, type) that operator() puts graph nodes in; null for a root, which
  /// then leaves its nodes in the enclosing scope (top level). Set when registered.
  const autograd::ModuleScope* scope_ = nullptr;
};

}  // namespace xgrad::nn

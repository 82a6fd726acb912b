// Module: the base of every layer and model — named parameters, buffers and children,
// train/eval, the state_dict, and forward/backward hooks.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "xgrad/autograd/node.hpp"
#include "xgrad/nn/module_scope.hpp"
#include "xgrad/tensor.hpp"

namespace xgrad::nn {

class Module;

/// (name, tensor) pairs in a fixed order: what named_parameters(), named_buffers() and
/// state_dict() return (torch's OrderedDict).
using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

/// What load_state_dict(dict, strict = false) returns (torch's _IncompatibleKeys): the model's
/// keys the dict lacks and the dict's keys the model does not have, each in order (the model's
/// state_dict order; the dict's order, sorted by name for a std::map).
struct IncompatibleKeys {
  std::vector<std::string> missing_keys;
  std::vector<std::string> unexpected_keys;
  bool empty() const { return missing_keys.empty() && unexpected_keys.empty(); }
};

/// Called before forward with the module and its input; returns a replacement input, or an
/// undefined Tensor to keep it (torch's forward pre-hook).
using ForwardPreHook = std::function<Tensor(Module&, const Tensor& input)>;
/// Called after forward with the module, its input and its output; returns a replacement
/// output, or an undefined Tensor to keep it (torch's forward hook).
using ForwardHook = std::function<Tensor(Module&, const Tensor& input, const Tensor& output)>;
/// Called during backward with the module, the gradient w.r.t. its input (undefined when the
/// input needs no gradient) and the gradient w.r.t. its output; returns a replacement
/// grad_input of the input's shape and dtype, or an undefined Tensor to keep it (torch's
/// register_full_backward_hook, with one input and one output instead of tuples).
using BackwardHook =
    std::function<Tensor(Module&, const Tensor& grad_input, const Tensor& grad_output)>;

namespace detail {
struct HookTable;
}

/// What the register_*_hook functions return (torch's RemovableHandle). remove() detaches the
/// hook; it is safe to call twice, after the module is gone, or on a default-constructed
/// handle. Dropping the handle does not remove the hook.
class HookHandle {
 public:
  HookHandle() = default;
  /// Detaches the hook: later calls of the module no longer run it.
  void remove();
  /// True while the hook is attached (registered and neither removed nor its module gone).
  bool active() const;

 private:
  friend class Module;
  HookHandle(std::weak_ptr<detail::HookTable> table, std::uint64_t id)
      : table_(std::move(table)), id_(id) {}
  std::weak_ptr<detail::HookTable> table_;
  std::uint64_t id_ = 0;
};

/// Base class of layers and models, as torch.nn.Module. A subclass registers its parameters,
/// buffers and children in its constructor and implements forward(); users call it through
/// operator(), the one non-virtual entry point, which runs the hooks and tags every graph node
/// recorded inside forward() with the module's path (nn::scope_path(node), used by viz::to_dot to
/// draw one cluster per module). Names are torch's: a child registered as "fc1" owning "weight"
/// gives "fc1.weight". See docs/modules.md.
class Module {
 public:
  Module() = default;
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  /// Runs the forward pre-hooks, forward(x) inside this module's scope, then the forward hooks
  /// (and sets up the backward hooks), in torch's order. x's shape is the subclass's to
  /// document. Other entry points (LSTM::forward(x, h0, c0)) run no hooks.
  Tensor operator()(const Tensor& x);

  /// True once a hook has been registered on this module (even if removed since): callers
  /// that would fuse this module's forward with the next op call it through operator() then.
  bool has_hooks() const { return hooks_ != nullptr; }

  /// This module's path in the model it was registered into: "fc1", "encoder.conv2"; "" for
  /// a root (or a module never registered as a child).
  std::string path() const;

  /// All parameters, recursively, in registration order (children after own parameters).
  std::vector<Tensor> parameters() const;
  /// (qualified name, parameter) pairs: "fc1.weight", "fc1.bias", "fc2.weight", ...
  NamedTensors named_parameters() const;
  /// All buffers (persistent or not), recursively, in the order of named_buffers().
  std::vector<Tensor> buffers() const;
  /// (qualified name, buffer) pairs, own buffers before the children's, in registration order:
  /// "bn.running_mean", "bn.running_var", "bn.num_batches_tracked", ...
  NamedTensors named_buffers() const;
  /// Direct children with their names.
  const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& children() const {
    return children_;
  }

  /// The parameters and persistent buffers by qualified name, in torch's state_dict order: per
  /// module its own parameters, then its own buffers, then each child's entries in
  /// registration order. The tensors share storage with the module's (writing into one writes
  /// into the model) but carry no autograd history (torch's keep_vars=False).
  NamedTensors state_dict() const;

  /// Copies the values of `dict` into the parameters and persistent buffers of the same names,
  /// in place and without recording (an optimizer built over the parameters stays valid), as
  /// torch.nn.Module.load_state_dict. Every key is checked before anything is copied: a dict
  /// tensor of another shape or dtype than the model's always throws; with strict (the
  /// default) a model key the dict lacks or a dict key the model does not have throws too,
  /// else they are returned. The error names the module type and every offending key, e.g.
  ///   load_state_dict: cannot load a state_dict into MLP: missing key(s) 'fc3.weight',
  ///   'fc3.bias'; unexpected key(s) 'fc4.bias'; shape mismatch for 'fc1.weight': [128,784]
  ///   in the state_dict, [256,784] in the model
  /// (one line). Also throws for an undefined tensor or a key given twice.
  IncompatibleKeys load_state_dict(const NamedTensors& dict, bool strict = true);
  /// The same for a dict by name (what io::load_safetensors returns).
  IncompatibleKeys load_state_dict(const std::map<std::string, Tensor>& dict, bool strict = true);

  /// Training mode (the default) or evaluation mode, recursively (matters for dropout and
  /// batch norm).
  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }

  /// Puts `tensors` in place of the parameters and buffers of the same qualified names (as
  /// named_parameters() / named_buffers() spell them) — in the module's tables and in the
  /// fields forward() reads — and returns the tensors that were there, so that
  /// swap_tensors(returned) undoes it. The tensors are used as they are, not copied (the
  /// machinery of func::functional_call, which scopes it to one call). Every name is checked
  /// before anything changes: throws xgrad::Error naming the key for an unknown name, an
  /// undefined tensor, or a parameter or buffer registered without its member (see
  /// register_parameter(name, member, t)).
  NamedTensors swap_tensors(const std::map<std::string, Tensor>& tensors);

  /// Drops (set_to_none) or zeroes every parameter's gradient.
  void zero_grad(bool set_to_none = true);

  /// The module's type name for printing and graph dumps ("Linear", "Sequential", ...).
  virtual std::string type_name() const { return "Module"; }

  // ---- hooks (torch.nn.Module's; missing from libtorch's C++ frontend) ----------------------
  // Hooks run in registration order, on calls through operator() only; each function returns
  // a handle whose remove() detaches the hook. A hook may be a callable returning Tensor (an
  // undefined Tensor keeps the value) or returning void (observes only).

  /// hook(module, input) runs before forward and may replace the input.
  template <class F>
  HookHandle register_forward_pre_hook(F hook) {
    if constexpr (std::is_void_v<std::invoke_result_t<F&, Module&, const Tensor&>>) {
      return add_forward_pre_hook([h = std::move(hook)](Module& m, const Tensor& x) mutable {
        h(m, x);
        return Tensor();
      });
    } else {
      return add_forward_pre_hook(ForwardPreHook(std::move(hook)));
    }
  }
  /// hook(module, input, output) runs after forward and may replace the output.
  template <class F>
  HookHandle register_forward_hook(F hook) {
    if constexpr (std::is_void_v<std::invoke_result_t<F&, Module&, const Tensor&, const Tensor&>>) {
      return add_forward_hook(
          [h = std::move(hook)](Module& m, const Tensor& x, const Tensor& y) mutable {
            h(m, x, y);
            return Tensor();
          });
    } else {
      return add_forward_hook(ForwardHook(std::move(hook)));
    }
  }
  /// hook(module, grad_input, grad_output) runs when the gradient w.r.t. the module's input
  /// has been computed (as torch's register_full_backward_hook: the module's whole forward is
  /// wrapped by identity nodes on its input and output) and may replace grad_input. When the
  /// input needs no gradient it runs once grad_output is known, with an undefined grad_input,
  /// and may not return one. Only calls made with grad mode on are hooked; the hooks attached
  /// at the time of the forward call are the ones that run (none once the module is destroyed). A
  /// replacement of the wrong shape or dtype makes backward throw xgrad::Error naming the module.
  template <class F>
  HookHandle register_full_backward_hook(F hook) {
    if constexpr (std::is_void_v<std::invoke_result_t<F&, Module&, const Tensor&, const Tensor&>>) {
      return add_full_backward_hook(
          [h = std::move(hook)](Module& m, const Tensor& gi, const Tensor& go) mutable {
            h(m, gi, go);
            return Tensor();
          });
    } else {
      return add_full_backward_hook(BackwardHook(std::move(hook)));
    }
  }

 protected:
  virtual Tensor forward(const Tensor& x) = 0;

  /// For entry points other than operator() (an RNN's forward(x, state)): graph nodes recorded
  /// while the returned guard lives are tagged with this module's path, as operator() does.
  /// `auto scope = enter_scope();`
  [[nodiscard]] ScopeGuard enter_scope() const { return ScopeGuard(scope_); }

  /// Registers `t` as a parameter called `name`: marks it requires_grad and names it.
  /// Throws xgrad::Error for a name already taken (by a parameter, buffer or child), a name
  /// that is empty or contains '.', or a non-float tensor.
  Tensor& register_parameter(const std::string& name, Tensor t);
  /// Registers `t` as a buffer called `name` (torch's register_buffer): state that is not
  /// learned, of any dtype (BatchNorm's running_mean, running_var and int64
  /// num_batches_tracked). Buffers are not in parameters() and are listed by named_buffers();
  /// persistent ones are in state_dict() too. Throws xgrad::Error for an undefined tensor, one
  /// that requires grad, or a bad or taken name (as register_parameter).
  Tensor& register_buffer(const std::string& name, Tensor t, bool persistent = true);
  /// As register_parameter(name, t), and also stores the parameter into `member` — the field
  /// forward() reads, `weight` of a Linear — and remembers where it is, so that swap_tensors
  /// (func::functional_call) can point that field at another tensor for the length of a call.
  /// `member` must live as long as the module (a field of it). The built-in modules register
  /// this way; a parameter registered without its member cannot be swapped.
  Tensor& register_parameter(const std::string& name, Tensor& member, Tensor t);
  /// As register_buffer(name, t, persistent), binding `member` as register_parameter does.
  Tensor& register_buffer(const std::string& name, Tensor& member, Tensor t,
                          bool persistent = true);
  /// Registers a child module; its parameters' names get the prefix "name.". Throws for a null
  /// child or a bad or taken name (as register_parameter).
  template <class M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> child) {
    add_child(name, child);
    return child;
  }

 private:
  struct Buffer {
    std::string name;
    Tensor tensor;
    bool persistent;
  };

  void add_child(const std::string& name, std::shared_ptr<Module> child);
  void prefix_names(const std::string& prefix, const ModuleScope* parent);
  void check_new_name(const char* what, const std::string& name) const;
  /// Every module of the tree, pre-order, with its prefix ("" for this one, "fc1." ...).
  std::vector<std::pair<std::string, const Module*>> walk() const;
  Tensor call_with_hooks(const Tensor& x);
  detail::HookTable& hook_table();
  HookHandle add_forward_pre_hook(ForwardPreHook hook);
  HookHandle add_forward_hook(ForwardHook hook);
  HookHandle add_full_backward_hook(BackwardHook hook);

  std::vector<std::pair<std::string, Tensor>> params_;
  std::vector<Buffer> buffers_;
  /// The subclass fields bound by register_parameter/register_buffer(name, member, t), by
  /// the parameter's or buffer's own name: what swap_tensors re-points.
  std::map<std::string, Tensor*> members_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
  /// This module's path in the modules it was registered into ("" for a root, "0.fc1." for
  /// fc1 of a Sequential's first child), so that parameters and children added after
  /// registration (Sequential::push_back) are named in full too.
  std::string prefix_;
  /// The interned (path, type) that operator() puts graph nodes in; null for a root, which
  /// then leaves its nodes in the enclosing scope (top level). Set when registered.
  const ModuleScope* scope_ = nullptr;
  /// The hooks; null (one pointer test per call) until the first one is registered.
  std::shared_ptr<detail::HookTable> hooks_;
};

}  // namespace xgrad::nn

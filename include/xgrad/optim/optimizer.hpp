// Optimizer: the small interface every optimizer implements (torch.optim.Optimizer).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "xgrad/tensor.hpp"

namespace xgrad::optim {

/// A set of parameters sharing hyperparameters. `options` holds them by torch's names
/// ("lr", "momentum", "betas" as "beta1"/"beta2", "eps", "weight_decay", ...).
struct ParamGroup {
  std::vector<Tensor> params;
  std::map<std::string, double> options;

  ParamGroup() = default;
  ParamGroup(std::vector<Tensor> p, std::map<std::string, double> o = {})
      : params(std::move(p)), options(std::move(o)) {}
  double lr() const { return option("lr"); }
  void set_lr(double lr) { options["lr"] = lr; }
  /// The value of hyperparameter `key`; throws xgrad::Error when the group lacks it.
  double option(const std::string& key) const;
};

/// What state_dict() returns and load_state_dict() takes: per-parameter state tensors named
/// "state.<param index>.<key>" (parameters numbered across groups in order, as torch does),
/// per-parameter step counts "state.<i>.step", each group's hyperparameters
/// "param_groups.<g>.<key>" and its number of parameters "param_groups.<g>.params".
struct StateDict {
  std::map<std::string, Tensor> tensors;
  std::map<std::string, double> scalars;
};

/// Base class of optimizers. A subclass implements step(): for each group and each parameter
/// with a gradient, update the parameter in place under no_grad, keeping its running state
/// in state(). docs/optimizers.md writes Adagrad on it in under 40 lines.
class Optimizer {
 public:
  /// `defaults` fill the options a group does not set. Throws xgrad::Error when a parameter
  /// does not require grad, appears twice, or is not contiguous (the update loops assume
  /// row-major storage).
  Optimizer(std::vector<ParamGroup> groups, std::map<std::string, double> defaults);
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  /// One update of every parameter that has a gradient.
  virtual void step() = 0;
  /// Drops (set_to_none, torch 2's default) or zeroes the gradients of all parameters.
  void zero_grad(bool set_to_none = true);

  std::vector<ParamGroup>& param_groups() { return groups_; }
  const std::vector<ParamGroup>& param_groups() const { return groups_; }
  /// Adds a group; missing options come from the defaults.
  void add_param_group(ParamGroup group);

  StateDict state_dict() const;
  /// Restores state and hyperparameters saved by state_dict() from an optimizer built over
  /// parameters of the same shapes. Throws xgrad::Error on a shape mismatch, a different number
  /// of groups or of parameters in a group, or a malformed key; the optimizer is then unchanged.
  void load_state_dict(const StateDict& dict);

 protected:
  /// The per-parameter state tensor `key`, created by `init` on first use.
  Tensor& state(const Tensor& param, const std::string& key, const std::function<Tensor()>& init);
  /// The per-parameter state tensor `key`, created as zeros_like(param) on first use.
  Tensor& zero_state(const Tensor& param, const std::string& key);
  /// True when `param` already has state `key`.
  bool has_state(const Tensor& param, const std::string& key) const;
  /// The per-parameter step counter (torch's state['step']), starting at 0.
  double& step_count(const Tensor& param);

 private:
  struct ParamState {
    std::map<std::string, Tensor> tensors;
    double step = 0;
    bool has_step = false;
  };
  std::vector<ParamGroup> groups_;
  std::map<std::string, double> defaults_;
  std::unordered_map<const TensorImpl*, ParamState> state_;
};

namespace detail {
/// Checks a hyperparameter is finite and >= 0 (or > 0 when strictly), throwing
/// "Adam: invalid lr -0.1 (must be >= 0)".
void check_nonnegative(const char* opt, const char* name, double v, bool strictly = false);
}  // namespace detail

}  // namespace xgrad::optim

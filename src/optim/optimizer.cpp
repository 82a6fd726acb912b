#include "xgrad/optim/optimizer.hpp"

#include <cmath>
#include <unordered_set>

#include "xgrad/autograd/grad_mode.hpp"

namespace xgrad::optim {

double ParamGroup::option(const std::string& key) const {
  auto it = options.find(key);
  if (it == options.end()) fail("optimizer: parameter group has no option '", key, "'");
  return it->second;
}

Optimizer::Optimizer(std::vector<ParamGroup> groups, std::map<std::string, double> defaults)
    : defaults_(std::move(defaults)) {
  for (auto& g : groups) add_param_group(std::move(g));
}

void Optimizer::add_param_group(ParamGroup group) {
  std::unordered_set<const TensorImpl*> seen;
  for (auto& g : groups_)
    for (auto& p : g.params) seen.insert(p.impl().get());
  for (auto& p : group.params) {
    check(p.defined() && p.requires_grad() && p.is_leaf(),
          "optimizer: every parameter must be a leaf tensor that requires grad");
    check(seen.insert(p.impl().get()).second,
          "optimizer: a parameter appears in more than one place (shape ", p.shape(), ")");
  }
  for (auto& [k, v] : defaults_) group.options.emplace(k, v);
  groups_.push_back(std::move(group));
}

void Optimizer::zero_grad(bool set_to_none) {
  for (auto& g : groups_)
    for (auto& p : g.params) p.zero_grad(set_to_none);
}

Tensor& Optimizer::state(const Tensor& param, const std::string& key,
                         const std::function<Tensor()>& init) {
  auto& st = state_[param.impl().get()].tensors;
  auto it = st.find(key);
  if (it == st.end()) it = st.emplace(key, init()).first;
  return it->second;
}

bool Optimizer::has_state(const Tensor& param, const std::string& key) const {
  auto it = state_.find(param.impl().get());
  return it != state_.end() && it->second.tensors.count(key) > 0;
}

double& Optimizer::step_count(const Tensor& param) {
  auto& st = state_[param.impl().get()];
  st.has_step = true;
  return st.step;
}

StateDict Optimizer::state_dict() const {
  StateDict d;
  std::size_t index = 0;
  for (std::size_t g = 0; g < groups_.size(); ++g) {
    for (auto& [k, v] : groups_[g].options)
      d.scalars["param_groups." + std::to_string(g) + "." + k] = v;
    for (auto& p : groups_[g].params) {
      auto it = state_.find(p.impl().get());
      const std::string prefix = "state." + std::to_string(index++) + ".";
      if (it == state_.end()) continue;
      for (auto& [k, t] : it->second.tensors) d.tensors[prefix + k] = t.detach().clone();
      if (it->second.has_step) d.scalars[prefix + "step"] = it->second.step;
    }
  }
  return d;
}

void Optimizer::load_state_dict(const StateDict& d) {
  no_grad guard;
  std::size_t index = 0;
  for (std::size_t g = 0; g < groups_.size(); ++g) {
    const std::string gp = "param_groups." + std::to_string(g) + ".";
    for (auto& [k, v] : d.scalars)
      if (k.rfind(gp, 0) == 0) groups_[g].options[k.substr(gp.size())] = v;
    for (auto& p : groups_[g].params) {
      const std::string prefix = "state." + std::to_string(index++) + ".";
      ParamState st;
      for (auto& [k, t] : d.tensors) {
        if (k.rfind(prefix, 0) != 0) continue;
        if (t.shape() != p.shape())
          fail("load_state_dict: state '", k, "' has shape ", t.shape(), " but parameter ",
               index - 1, " has shape ", p.shape());
        st.tensors[k.substr(prefix.size())] = t.detach().to(p.dtype()).clone();
      }
      auto s = d.scalars.find(prefix + "step");
      if (s != d.scalars.end()) {
        st.step = s->second;
        st.has_step = true;
      }
      state_[p.impl().get()] = std::move(st);
    }
  }
}

namespace detail {
void check_nonnegative(const char* opt, const char* name, double v, bool strictly) {
  if (!std::isfinite(v) || v < 0 || (strictly && v == 0))
    fail(opt, ": invalid ", name, " ", v, strictly ? " (must be > 0)" : " (must be >= 0)");
}
}  // namespace detail

}  // namespace xgrad::optim

#include "xgrad/optim/optimizer.hpp"

#include <cmath>
#include <map>
#include <set>
#include <stdexcept>
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
    // The fused update loops walk p.data_ptr() for numel() elements in row-major order.
    check(p.is_contiguous(), "optimizer: parameters must be contiguous; got a view of shape ",
          p.shape(), " with strides ", p.strides(), " (pass a contiguous copy)");
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

Tensor& Optimizer::zero_state(const Tensor& param, const std::string& key) {
  return state(param, key, [&] { return zeros_like(param); });
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
    const std::string gp = "param_groups." + std::to_string(g) + ".";
    for (auto& [k, v] : groups_[g].options) d.scalars[gp + k] = v;
    d.scalars[gp + "params"] = static_cast<double>(groups_[g].params.size());
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

namespace {
// The <n> of a key "<family>.<n>.<name>", or fails naming the key.
std::size_t key_index(const std::string& key, std::size_t family_length) {
  const std::size_t dot = key.find('.', family_length);
  std::size_t n = 0, used = 0;
  if (dot != std::string::npos && dot > family_length && dot + 1 < key.size()) {
    try {
      n = std::stoul(key.substr(family_length, dot - family_length), &used);
    } catch (const std::exception&) {
      used = 0;
    }
  }
  if (used == 0 || used != dot - family_length) fail("load_state_dict: malformed key '", key, "'");
  return n;
}
}  // namespace

void Optimizer::load_state_dict(const StateDict& d) {
  no_grad guard;
  // Check the whole dict before changing anything, so that one that does not fit leaves the
  // optimizer as it was.
  const std::string sp = "state.", gp = "param_groups.";
  std::vector<const Tensor*> params;
  for (auto& g : groups_)
    for (auto& p : g.params) params.push_back(&p);
  std::set<std::size_t> dict_groups;
  std::map<std::size_t, double> dict_group_sizes;
  for (auto& [k, v] : d.scalars) {
    if (k.rfind(sp, 0) == 0) {
      key_index(k, sp.size());
    } else if (k.rfind(gp, 0) == 0) {
      const std::size_t g = key_index(k, gp.size());
      dict_groups.insert(g);
      if (k == gp + std::to_string(g) + ".params") dict_group_sizes[g] = v;
    } else {
      fail("load_state_dict: unexpected key '", k, "'");
    }
  }
  if (dict_groups.size() != groups_.size() ||
      (!dict_groups.empty() && *dict_groups.rbegin() >= groups_.size()))
    fail("load_state_dict: the dict has ", dict_groups.size(),
         " parameter groups but the optimizer has ", groups_.size());
  for (auto& [g, n] : dict_group_sizes)
    if (n != static_cast<double>(groups_[g].params.size()))
      fail("load_state_dict: parameter group ", g, " has ", n, " parameters in the dict but ",
           groups_[g].params.size(), " in the optimizer");
  auto check_state_index = [&](const std::string& k) {
    const std::size_t i = key_index(k, sp.size());
    if (i >= params.size())
      fail("load_state_dict: the dict holds state for parameter ", i, " but the optimizer has ",
           params.size(), " parameters");
    return i;
  };
  for (auto& [k, v] : d.scalars)
    if (k.rfind(sp, 0) == 0) check_state_index(k);
  for (auto& [k, t] : d.tensors) {
    if (k.rfind(sp, 0) != 0) fail("load_state_dict: unexpected key '", k, "'");
    const std::size_t i = check_state_index(k);
    if (t.shape() != params[i]->shape())
      fail("load_state_dict: state '", k, "' has shape ", t.shape(), " but parameter ", i,
           " has shape ", params[i]->shape());
  }

  std::size_t index = 0;
  for (std::size_t g = 0; g < groups_.size(); ++g) {
    const std::string group_prefix = gp + std::to_string(g) + ".";
    for (auto& [k, v] : d.scalars)
      if (k.rfind(group_prefix, 0) == 0 && k != group_prefix + "params")
        groups_[g].options[k.substr(group_prefix.size())] = v;
    for (auto& p : groups_[g].params) {
      const std::string prefix = sp + std::to_string(index++) + ".";
      ParamState st;
      for (auto& [k, t] : d.tensors)
        if (k.rfind(prefix, 0) == 0)
          st.tensors[k.substr(prefix.size())] = t.detach().to(p.dtype()).clone();
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

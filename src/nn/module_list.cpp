#include "xgrad/nn/module_list.hpp"

namespace xgrad::nn {

ModuleList::ModuleList(std::vector<std::shared_ptr<Module>> modules) {
  for (auto& m : modules) push_back(std::move(m));
}

ModuleList& ModuleList::push_back(std::shared_ptr<Module> m) {
  check(m != nullptr, "ModuleList::push_back: null module");
  register_module(std::to_string(size()), std::move(m));
  return *this;
}

Module& ModuleList::operator[](std::size_t i) const {
  check(i < size(), "ModuleList: index ", i, " is out of range for a list of ", size(),
        " module(s)");
  return *children()[i].second;
}

Tensor ModuleList::forward(const Tensor&) {
  fail("ModuleList has no forward: call its modules (list[i]) instead");
}

}  // namespace xgrad::nn

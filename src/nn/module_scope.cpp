#include "xgrad/nn/module_scope.hpp"

#include <mutex>
#include <set>
#include <tuple>

namespace xgrad::nn {

const ModuleScope* intern_scope(const std::string& path, const std::string& type,
                                const ModuleScope* parent) {
  struct Less {
    bool operator()(const ModuleScope& a, const ModuleScope& b) const {
      return std::tie(a.path, a.type, a.parent) < std::tie(b.path, b.type, b.parent);
    }
  };
  static std::mutex mutex;
  static std::set<ModuleScope, Less> scopes;  // never shrinks: nodes may outlive their modules
  std::lock_guard<std::mutex> lock(mutex);
  return &*scopes.insert(ModuleScope{path, type, parent}).first;
}

const ModuleScope* current_scope() {
  return static_cast<const ModuleScope*>(autograd::detail::scope_tag());
}

ScopeGuard::ScopeGuard(const ModuleScope* scope) : prev_(autograd::detail::scope_tag()) {
  if (scope) autograd::detail::set_scope_tag(scope);
}

ScopeGuard::~ScopeGuard() {
  autograd::detail::set_scope_tag(prev_);
}

}  // namespace xgrad::nn

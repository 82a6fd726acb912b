// The module a graph node was recorded in: what graph inspection (viz/dot.hpp) draws as
// clusters. Module::operator() sets it around forward(); autograd keeps it on each node as an
// opaque tag (autograd::Node::scope_tag) and never looks inside.
#pragma once

#include <string>
#include <string_view>

#include "xgrad/autograd/node.hpp"

namespace xgrad::nn {

/// A module's place in a model: its path ("fc1", "encoder.conv2"), its type name ("Linear")
/// and the scope of the module it is registered in (null for a child of a root). Interned by
/// intern_scope(): one object per distinct triple for the life of the process, so a node
/// refers to it with a plain pointer — recording copies nothing.
struct ModuleScope {
  std::string path;
  std::string type;
  const ModuleScope* parent = nullptr;
};

/// The interned scope for (path, type, parent). Thread-safe; modules call it when they are
/// registered, never per op.
const ModuleScope* intern_scope(const std::string& path, const std::string& type,
                                const ModuleScope* parent = nullptr);
/// The scope nodes recorded on this thread get now (null outside every module).
const ModuleScope* current_scope();

/// RAII: nodes recorded on this thread while it lives get `scope` (Module::operator() makes
/// one around forward()). A null scope keeps the enclosing one. Restores it on destruction.
class ScopeGuard {
 public:
  explicit ScopeGuard(const ModuleScope* scope);
  ~ScopeGuard();
  ScopeGuard(const ScopeGuard&) = delete;
  ScopeGuard& operator=(const ScopeGuard&) = delete;

 private:
  const void* prev_;
};

/// The scope `node` was recorded in (null outside every module).
inline const ModuleScope* module_scope(const autograd::Node& node) {
  return static_cast<const ModuleScope*>(node.scope_tag());
}
/// Its path ("fc1", "encoder.conv2"; "" outside any module).
inline std::string_view scope_path(const autograd::Node& node) {
  const ModuleScope* s = module_scope(node);
  return s ? std::string_view(s->path) : std::string_view();
}

}  // namespace xgrad::nn

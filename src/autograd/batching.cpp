// Batched tensors, the boundary nodes between batched and physical tensors, and the generic
// parts of batching rules (see batching.hpp).
#include "xgrad/autograd/batching.hpp"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <mutex>
#include <set>
#include <string>

#include "xgrad/autograd/forward_ad.hpp"
#include "xgrad/autograd/node.hpp"
#include "xgrad/ops/reduction.hpp"
#include "xgrad/ops/shape.hpp"
#include "xgrad/ops/tensor_index.hpp"

namespace xgrad::autograd {

namespace {

std::atomic<std::uint64_t> g_next_level{1};
thread_local std::vector<std::uint64_t> g_levels;

bool carries_derivative(const Tensor& t) {
  return t.requires_grad() || has_tangent(t);
}

bool batched_at(const TensorImpl& impl, std::uint64_t level) {
  return impl.batch && impl.batch->dims.back().level == level;
}

// A TensorImpl on `like`'s storage with the given geometry and batch dimensions.
Tensor view_of(const TensorImpl& like, Shape shape, Shape strides, std::int64_t offset,
               std::vector<BatchInfo::Dim> dims) {
  auto impl = std::make_shared<TensorImpl>(like.storage, std::move(shape), std::move(strides),
                                           offset, like.dtype);
  if (!dims.empty()) {
    auto info = std::make_shared<BatchInfo>();
    info->dims = std::move(dims);
    impl->batch = std::move(info);
  }
  return Tensor(std::move(impl));
}

// make_batched's vjp: the gradient of a batched tensor, back to the physical one.
struct ToBatchedBackward final : Node {
  std::uint64_t level = 0;
  std::int64_t size = 0;
  std::string_view name() const override { return "make_batched"; }
  tensor_list apply(tensor_list&& g) override { return {to_physical(g[0], level, size)}; }
};

// to_physical's vjp. For an input that was batched: the physical gradient batched again. For
// an input expanded over the batch (not batched itself, e.g. a parameter): per sample while
// the vmap level runs (vmap(grad(f)) asks for exactly that), summed over the batch after it
// returned (the usual gradient of a loss computed with vmap).
struct ToPhysicalBackward final : Node {
  std::uint64_t level = 0;
  bool was_batched = false;
  std::string_view name() const override { return "to_physical"; }
  tensor_list apply(tensor_list&& g) override {
    if (was_batched || detail::vmap_level_running(level)) return {make_batched(g[0], level)};
    return {sum(g[0], 0)};
  }
};

}  // namespace

bool any_batched(const std::vector<Tensor>& ts) {
  for (const Tensor& t : ts)
    if (is_batched(t)) return true;
  return false;
}

std::uint64_t batch_level(const Tensor& t) {
  return is_batched(t) ? t.impl()->batch->dims.back().level : 0;
}

std::int64_t wrap_dim(std::int64_t dim, std::int64_t rank, std::string_view op) {
  const std::int64_t r = std::max<std::int64_t>(rank, 1);
  if (dim < -r || dim >= r)
    fail(op, ": dimension ", dim, " is out of range for a tensor of ", rank,
         " dimension(s) (inside vmap: one sample's dimensions)");
  return dim < 0 ? dim + r : dim;
}

Tensor make_batched(const Tensor& physical, std::uint64_t level) {
  check(physical.defined(), "make_batched: the tensor is undefined");
  const TensorImpl& p = *physical.impl();
  check(!p.shape.empty(), "make_batched: a batching rule returned a scalar; expected the batch ",
        "dimension in front");
  check(batch_level(physical) < level, "make_batched: the tensor is already batched at level ",
        batch_level(physical), " >= ", level);
  std::vector<BatchInfo::Dim> dims;
  if (p.batch) dims = p.batch->dims;
  dims.push_back({level, p.shape[0], p.strides[0]});
  Tensor out = view_of(p, Shape(p.shape.begin() + 1, p.shape.end()),
                       Shape(p.strides.begin() + 1, p.strides.end()), p.offset, std::move(dims));
  const std::int64_t size = p.shape[0];
  record_op<ToBatchedBackward>({&physical}, {&out}, [&](ToBatchedBackward& n) {
    n.level = level;
    n.size = size;
  });
  jvp_op("make_batched", {&physical}, out, [&] { return make_batched(tangent(physical), level); });
  // Remember the physical tensor when the two carry the same derivatives (both recorded and
  // dual, or neither): the next op then works on it directly, and the physical graph has no
  // boundary nodes in its middle.
  if (carries_derivative(out) == carries_derivative(physical) &&
      has_tangent(out) == has_tangent(physical)) {
    // The BatchInfo was made by view_of above and nobody else holds it yet: fill it in place
    // rather than copying it (one allocation and one vector copy fewer per batched op).
    std::const_pointer_cast<BatchInfo>(out.impl()->batch)->source = physical;
  }
  return out;
}

Tensor to_physical(const Tensor& t, std::uint64_t level, std::int64_t batch_size) {
  const TensorImpl& ti = *t.impl();
  std::vector<BatchInfo::Dim> dims;
  if (ti.batch) dims = ti.batch->dims;
  const bool here = batched_at(ti, level);
  Shape shape = ti.shape, strides = ti.strides;
  if (here) {
    const BatchInfo::Dim d = dims.back();
    check(d.size == batch_size, "vmap: a tensor batched with size ", d.size,
          " met one batched with size ", batch_size, " at the same level");
    // The physical tensor this one was made from, while nothing diverged since.
    const Tensor& src = ti.batch->source;
    if (src.defined()) {
      const bool t_carries = carries_derivative(t), s_carries = carries_derivative(src);
      const bool same_graph =
          !t_carries ? !s_carries
                     : (ti.grad_fn && dynamic_cast<ToBatchedBackward*>(ti.grad_fn.get()) &&
                        has_tangent(t) == has_tangent(src));
      if (same_graph) return src;
    }
    dims.pop_back();
    shape.insert(shape.begin(), d.size);
    strides.insert(strides.begin(), d.stride);
  } else {
    shape.insert(shape.begin(), batch_size);
    strides.insert(strides.begin(), 0);
  }
  Tensor out = view_of(ti, std::move(shape), std::move(strides), ti.offset, std::move(dims));
  record_op<ToPhysicalBackward>({&t}, {&out}, [&](ToPhysicalBackward& n) {
    n.level = level;
    n.was_batched = here;
  });
  jvp_op("to_physical", {&t}, out, [&] { return to_physical(tangent(t), level, batch_size); });
  return out;
}

// ---- BatchedArgs ----------------------------------------------------------------------------

std::int64_t BatchedArgs::logical_dim(std::size_t i) const {
  return t_[i].dim() - (batched_[i] ? 1 : 0);
}

std::int64_t BatchedArgs::max_logical_dim() const {
  std::int64_t r = 0;
  for (std::size_t i = 0; i < t_.size(); ++i)
    if (t_[i].defined()) r = std::max(r, logical_dim(i));
  return r;
}

Tensor BatchedArgs::expanded(std::size_t i) const {
  if (batched_[i] || !t_[i].defined()) return t_[i];
  Shape s = t_[i].shape();
  s.insert(s.begin(), size_);
  return expand(unsqueeze(t_[i], 0), s);
}

Tensor BatchedArgs::aligned(std::size_t i, std::int64_t rank) const {
  Tensor t = t_[i];
  if (!batched_[i] || !t.defined()) return t;
  for (std::int64_t r = logical_dim(i); r < rank; ++r) t = unsqueeze(t, 1);
  return t;
}

Shape physical_dims(const BatchedArgs& x, std::size_t i, const Shape& dims, std::string_view op) {
  Shape out;
  const std::int64_t shift = x.batched(i) ? 1 : 0;
  if (dims.empty()) {
    for (std::int64_t d = 0; d < x.logical_dim(i); ++d) out.push_back(d + shift);
    return out;
  }
  for (std::int64_t d : dims) out.push_back(wrap_dim(d, x.logical_dim(i), op) + shift);
  return out;
}

// ---- the generic parts of a rule ------------------------------------------------------------

namespace detail {

BatchedArgs unwrap_batched(std::string_view op, const std::vector<Tensor>& inputs) {
  std::uint64_t level = 0;
  for (const Tensor& t : inputs) level = std::max(level, batch_level(t));
  check(level != 0, op, ": vmap_op called without a batched input");
  std::int64_t size = -1;
  for (const Tensor& t : inputs) {
    if (!t.defined() || !batched_at(*t.impl(), level)) continue;
    const std::int64_t b = t.impl()->batch->dims.back().size;
    if (size >= 0 && b != size)
      fail("vmap: ", op, ": the inputs are mapped over batches of different sizes (", size, " and ",
           b, "); every batched input must have the same size in its mapped dimension");
    size = b;
  }
  std::vector<Tensor> phys(inputs.size());
  std::vector<bool> batched(inputs.size(), false);
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& t = inputs[i];
    if (!t.defined()) continue;
    if (batched_at(*t.impl(), level) || carries_derivative(t)) {
      phys[i] = to_physical(t, level, size);
      batched[i] = true;
    } else {
      phys[i] = t;
    }
  }
  return BatchedArgs(level, size, std::move(phys), std::move(batched));
}

Tensor wrap_batched(std::string_view op, const Tensor& physical, const BatchedArgs& args) {
  if (!physical.defined()) return physical;
  if (physical.dim() < 1 || physical.size(0) != args.batch_size())
    fail("vmap: the batching rule of ", op, " returned shape ", physical.shape(),
         ", which does not start with the batch size ", args.batch_size(), " (a bug in the rule)");
  return make_batched(physical, args.level());
}

void warn_fallback_once(std::string_view op) {
  static std::mutex m;
  static std::set<std::string, std::less<>> warned;
  std::lock_guard<std::mutex> lock(m);
  if (warned.find(op) != warned.end()) return;
  warned.emplace(op);
  std::fprintf(stderr,
               "xgrad::func::vmap: %.*s has no batching rule; it runs once per sample and the "
               "results are stacked (correct, slower)\n",
               static_cast<int>(op.size()), op.data());
}

std::shared_ptr<const BatchInfo> detached_batch(const BatchInfo& b) {
  auto info = std::make_shared<BatchInfo>();
  info->dims = b.dims;
  return info;
}

std::uint64_t push_vmap_level() {
  const std::uint64_t level = g_next_level.fetch_add(1);
  g_levels.push_back(level);
  return level;
}

void pop_vmap_level(std::uint64_t level) {
  auto it = std::find(g_levels.begin(), g_levels.end(), level);
  if (it != g_levels.end()) g_levels.erase(it);
}

bool vmap_level_running(std::uint64_t level) {
  return std::find(g_levels.begin(), g_levels.end(), level) != g_levels.end();
}

}  // namespace detail

Tensor map_samples(const BatchedArgs& args,
                   const std::function<Tensor(const std::vector<Tensor>&)>& f) {
  std::vector<Tensor> outs;
  outs.reserve(static_cast<std::size_t>(args.batch_size()));
  std::vector<Tensor> sample(args.size());
  for (std::int64_t b = 0; b < args.batch_size(); ++b) {
    for (std::size_t i = 0; i < args.size(); ++i)
      sample[i] = args.batched(i) ? select(args[i], 0, b) : args[i];
    outs.push_back(f(sample));
  }
  return stack(outs, 0);
}

Tensor fold_images(const Tensor& physical, const std::function<Tensor(const Tensor&)>& f) {
  if (physical.dim() != 5) return f(physical);  // [B, C, H, W]: B is the image batch
  const Shape& s = physical.shape();
  Tensor y = f(reshape(physical, {s[0] * s[1], s[2], s[3], s[4]}));
  Shape out = y.shape();
  out[0] = s[1];
  out.insert(out.begin(), s[0]);
  return reshape(y, out);
}

Tensor vmap_fallback(std::string_view op, std::vector<Tensor> inputs,
                     const std::function<Tensor(const std::vector<Tensor>&)>& f) {
  detail::warn_fallback_once(op);
  BatchedArgs args = detail::unwrap_batched(op, inputs);
  return detail::wrap_batched(op, map_samples(args, f), args);
}

}  // namespace xgrad::autograd

// Batched tensors for func::vmap, and the one line an op adds to take part.
//
// How vmap works here (the functorch design, in xgrad's terms). Inside vmap(f), f sees
// *batched* tensors: a batched tensor has the shape of one sample (its logical shape) and
// carries, beside it, the batch dimension it is mapped over (size and stride, at a vmap level;
// nested vmaps stack levels). Its data is the whole batch, so nothing is copied.
//
// Every public op starts with one line: if an input is batched, the op hands itself to a
// *batching rule* — a function that computes the same thing on the physical tensors (batch
// dimension in front, shape [B, ...]) with ordinary ops:
//
//   Tensor exp(const Tensor& a) {
//     if (autograd::any_batched(a)) return autograd::vmap_op("exp", {a}, [](BatchedArgs& x) {
//       return exp(x[0]); });
//     ...
//
// An op with no rule of its own calls vmap_fallback instead, which runs the op once per
// sample and stacks the results (correct, slower), and says so once per op on stderr, as
// torch.func does. Code that reads a batched tensor's data without going through either throws
// xgrad::Error: a missing rule is never a silent wrong answer.
//
// Derivatives: the rule's ops record an ordinary graph on the physical tensors (so backward
// runs plain kernels, and every derivative of the library works under vmap). Two boundary
// nodes connect it to the batched tensors: to_physical (batched → physical) and make_batched
// (physical → batched). A tensor that is not batched but requires grad (a parameter) enters a
// rule as a stride-0 expansion; the gradient it gets back is per sample (batched) while its
// vmap level is running — vmap(grad(f)) gives per-sample gradients — and summed over the batch
// once that vmap has returned — backward of a loss computed with vmap gives the usual .grad().
//
// Source: Horace He, Richard Zou et al., functorch (torch.func.vmap) — batching rules and
// vmap levels; JAX's vmap (Bradbury et al. 2018).
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <string_view>
#include <type_traits>
#include <vector>

#include "xgrad/tensor.hpp"

namespace xgrad::autograd {

/// What makes a TensorImpl batched: its batch dimensions, innermost vmap level last, and
/// (for results of batched ops) the physical tensor it views, with that tensor's graph.
struct BatchInfo {
  struct Dim {
    std::uint64_t level;  // the vmap call that made it (unique, increasing)
    std::int64_t size;    // B
    std::int64_t stride;  // in elements; 0 for a broadcast (expanded) batch
  };
  std::vector<Dim> dims;
  Tensor source;  // the physical tensor [B, logical...] it was made from, or undefined
};

/// Normalizes a (possibly negative) dimension of a rank-`rank` tensor, or throws naming op.
std::int64_t wrap_dim(std::int64_t dim, std::int64_t rank, std::string_view op);

/// True when t is batched (inside a vmap). One pointer test.
inline bool is_batched(const Tensor& t) { return t.defined() && t.impl()->batch != nullptr; }
template <class... Ts>
bool any_batched(const Ts&... ts) {
  return (is_batched(ts) || ...);
}
bool any_batched(const std::vector<Tensor>& ts);

/// The innermost vmap level of t, 0 when t is not batched.
std::uint64_t batch_level(const Tensor& t);

/// A batched view of `physical` [B, s...]: logical shape [s...], batched at `level` over
/// physical's dimension 0. Differentiable (its vjp is to_physical, its jvp make_batched of the
/// tangent). Throws if physical is a scalar or already batched at `level` or deeper.
Tensor make_batched(const Tensor& physical, std::uint64_t level);

/// The physical tensor [B, logical...] of t at `level`: a view of t's batch when t is batched
/// at that level, else t expanded over a new dimension of size B (stride 0). Differentiable:
/// the gradient returned to an expanded t is per sample while `level` is running and summed
/// over the batch afterwards.
Tensor to_physical(const Tensor& t, std::uint64_t level, std::int64_t batch_size);

/// The inputs of a batching rule: each input as a physical tensor, batch dimension first, or
/// unchanged when it is not batched at this level (and carries no derivative) — `batched(i)`
/// tells which. `logical_dim(i)` is the rank the op sees.
class BatchedArgs {
 public:
  BatchedArgs(std::uint64_t level, std::int64_t batch_size, std::vector<Tensor> tensors,
              std::vector<bool> batched)
      : level_(level), size_(batch_size), t_(std::move(tensors)), batched_(std::move(batched)) {}
  const Tensor& operator[](std::size_t i) const { return t_[i]; }
  std::size_t size() const { return t_.size(); }
  std::int64_t batch_size() const { return size_; }
  std::uint64_t level() const { return level_; }
  bool batched(std::size_t i) const { return batched_[i]; }
  /// The rank of input i as the op sees it (without the batch dimension).
  std::int64_t logical_dim(std::size_t i) const;
  /// Input i with the batch dimension in front, expanded (stride 0) if it is not batched.
  Tensor expanded(std::size_t i) const;
  /// Input i prepared for broadcasting against logical rank `rank`: a batched input
  /// [B, s...] becomes [B, 1..., s...] with rank+1 dimensions; an unbatched one is unchanged
  /// (broadcasting aligns it from the right).
  Tensor aligned(std::size_t i, std::int64_t rank) const;
  /// The largest logical rank among the inputs.
  std::int64_t max_logical_dim() const;

 private:
  std::uint64_t level_;
  std::int64_t size_;
  std::vector<Tensor> t_;
  std::vector<bool> batched_;
};

namespace detail {
BatchedArgs unwrap_batched(std::string_view op, const std::vector<Tensor>& inputs);
Tensor wrap_batched(std::string_view op, const Tensor& physical, const BatchedArgs& args);
void warn_fallback_once(std::string_view op);
/// The batch of a detached alias: the same dimensions, no source (no graph).
std::shared_ptr<const BatchInfo> detached_batch(const BatchInfo& b);
}  // namespace detail

/// Runs `rule(BatchedArgs&) -> Tensor` (physical result, batch dimension first) for an op whose
/// inputs include a batched tensor, and returns the result batched again. An undefined input
/// stays undefined.
template <class Rule>
Tensor vmap_op(std::string_view op, std::vector<Tensor> inputs, Rule&& rule) {
  BatchedArgs args = detail::unwrap_batched(op, inputs);
  return detail::wrap_batched(op, rule(args), args);
}

/// The same for a rule with several results.
template <class Rule>
std::vector<Tensor> vmap_op_multi(std::string_view op, std::vector<Tensor> inputs, Rule&& rule) {
  BatchedArgs args = detail::unwrap_batched(op, inputs);
  std::vector<Tensor> outs = rule(args);
  for (Tensor& o : outs) o = detail::wrap_batched(op, o, args);
  return outs;
}

/// Inside a rule: f run once per sample on the physical inputs (a batched one replaced by its
/// sample, the others as they are), the results stacked into [B, ...].
Tensor map_samples(const BatchedArgs& args,
                   const std::function<Tensor(const std::vector<Tensor>&)>& f);

/// Inside a rule for an op on images ([N, C, H, W] or [C, H, W] per sample): f run on the
/// samples' images folded into one batch [B·N, C, H, W], the result unfolded to [B, N, ...]
/// (or [B, ...] for [C, H, W] samples).
Tensor fold_images(const Tensor& physical, const std::function<Tensor(const Tensor&)>& f);

/// An op without a batching rule: runs `f(std::vector<Tensor>) -> Tensor` once per sample
/// (each batched input replaced by its sample, the others as given) and stacks the results.
/// Correct, slower; prints one notice per op on stderr.
Tensor vmap_fallback(std::string_view op, std::vector<Tensor> inputs,
                     const std::function<Tensor(const std::vector<Tensor>&)>& f);

/// The batching rule of an elementwise op with broadcasting: f applied to the inputs aligned
/// to their common logical rank (a batched [B, s...] as [B, 1..., s...]), so that broadcasting
/// pairs samples with samples and shares the unbatched inputs.
///   if (autograd::any_batched(a, b)) return autograd::vmap_op("add", {a, b},
///       autograd::elementwise_rule([](const Tensor& x, const Tensor& y) { return add(x, y); }));
template <class F>
auto elementwise_rule(F f) {
  return [f](const BatchedArgs& x) -> Tensor {
    const std::int64_t r = x.max_logical_dim();
    if constexpr (std::is_invocable_v<F, const Tensor&, const Tensor&, const Tensor&>)
      return f(x.aligned(0, r), x.aligned(1, r), x.aligned(2, r));
    else
      return f(x.aligned(0, r), x.aligned(1, r));
  };
}

/// A logical dimension of input i as the physical one (shifted past the batch dimension).
inline std::int64_t physical_dim(const BatchedArgs& x, std::size_t i, std::int64_t dim,
                                 std::string_view op) {
  return wrap_dim(dim, x.logical_dim(i), op) + (x.batched(i) ? 1 : 0);
}
/// The same for a list of dimensions; an empty list (every dimension) becomes all the logical
/// dimensions.
Shape physical_dims(const BatchedArgs& x, std::size_t i, const Shape& dims, std::string_view op);

namespace detail {
/// vmap's level stack on this thread (func::vmap pushes one per call).
std::uint64_t push_vmap_level();
void pop_vmap_level(std::uint64_t level);
bool vmap_level_running(std::uint64_t level);
}  // namespace detail


}  // namespace xgrad::autograd

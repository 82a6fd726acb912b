// Tensor: a cheap, shared handle to a TensorImpl (storage, shape, strides, dtype, autograd
// state). Copying a Tensor copies the handle, never the data, as in torch.
#pragma once

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "xgrad/dtype.hpp"
#include "xgrad/error.hpp"
#include "xgrad/indexing.hpp"
#include "xgrad/shape.hpp"
#include "xgrad/storage.hpp"

namespace xgrad {

namespace autograd {
class Node;
struct BatchInfo;
}  // namespace autograd

class Tensor;
class TensorImpl;

/// A gradient hook: sees the gradient flowing into a tensor and returns either an undefined
/// Tensor (keep it) or a replacement of the same shape.
using Hook = std::function<Tensor(const Tensor&)>;

/// Options for factory functions: dtype (default: default_dtype(), float32) and requires_grad.
/// Implicit from a Dtype, so `zeros({2, 3}, xgrad::float64)` works.
struct TensorOptions {
  Dtype dtype_ = default_dtype();
  bool requires_grad_ = false;
  TensorOptions() = default;
  TensorOptions(Dtype d) : dtype_(d) {}  // NOLINT(google-explicit-constructor)
  TensorOptions& dtype(Dtype d) {
    dtype_ = d;
    return *this;
  }
  TensorOptions& requires_grad(bool r = true) {
    requires_grad_ = r;
    return *this;
  }
};

/// Reduction mode of the losses: mean (default), sum, or none (per-element loss).
enum class Reduction { none, mean, sum };

/// The handle users work with. A default-constructed Tensor is *undefined* (no data): that is
/// how an absent gradient is represented. All shape-changing ops that can be views are views
/// (reshape of a contiguous tensor, transpose, permute, slice, squeeze, unsqueeze, detach).
class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // ---- metadata -------------------------------------------------------------------------
  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const;
  const Shape& strides() const;
  std::int64_t offset() const;
  std::int64_t dim() const;
  /// Size of dimension `axis` (negative counts from the end). Throws on an axis out of range.
  std::int64_t size(std::int64_t axis) const;
  std::int64_t numel() const;
  Dtype dtype() const;
  bool is_contiguous() const;
  /// Pointer to the first element (data of storage + offset). T must match dtype().
  template <class T>
  T* data_ptr() const;
  void* raw_data() const;
  const std::shared_ptr<Storage>& storage() const;
  /// The version counter shared with all views of the same storage.
  std::uint64_t version() const;

  // ---- values ----------------------------------------------------------------------------
  /// The value of a one-element tensor as double. Throws when numel() != 1.
  double item() const;
  template <class T>
  T item() const {
    return static_cast<T>(item());
  }

  // ---- autograd --------------------------------------------------------------------------
  bool requires_grad() const;
  /// Marks a leaf as requiring grad (float dtypes only). Returns *this for chaining.
  Tensor& requires_grad_(bool r = true);
  /// The accumulated gradient of a leaf (or of a non-leaf after retain_grad()); undefined
  /// when none has been computed.
  Tensor grad() const;
  void set_grad(const Tensor& g) const;
  /// Drops the gradient (set_to_none = true, torch 2's default) or fills it with zeros.
  void zero_grad(bool set_to_none = true) const;
  /// The node that produced this tensor; null for leaves.
  const std::shared_ptr<autograd::Node>& grad_fn() const;
  std::uint32_t output_nr() const;
  bool is_leaf() const;
  /// Computes gradients of this tensor w.r.t. every leaf that requires grad and accumulates them
  /// into their .grad(). `seed` (the gradient of some scalar w.r.t. this tensor, same shape) may
  /// be omitted only for one-element tensors. Without retain_graph (default: create_graph) the
  /// graph's saved tensors are freed, and a second backward through it throws. With
  /// create_graph the backward is recorded: the .grad() it leaves can be differentiated again.
  void backward(const Tensor& seed = Tensor(), std::optional<bool> retain_graph = std::nullopt,
                bool create_graph = false) const;
  /// A tensor sharing this one's data (and version counter) without autograd history.
  Tensor detach() const;
  /// Makes a non-leaf keep its .grad() after backward.
  void retain_grad() const;
  bool retains_grad() const;
  /// Registers a hook called with this tensor's gradient during backward; it may return a
  /// replacement (same shape) or an undefined Tensor to keep the gradient.
  void register_hook(Hook hook) const;
  /// Registers a hook called with this leaf (its .grad() now complete) each time backward has
  /// accumulated a gradient into it (torch's register_post_accumulate_grad_hook). Throws
  /// xgrad::Error unless this is a leaf that requires grad.
  void register_post_accumulate_grad_hook(std::function<void(const Tensor&)> hook) const;

  /// A name for graph dumps (a parameter's module path, e.g. "fc1.weight").
  const std::string& name() const;
  Tensor& set_name(std::string name);

  // ---- conversions -----------------------------------------------------------------------
  /// A copy with dtype `d` (returns *this when the dtype already matches). Differentiable
  /// between float dtypes.
  Tensor to(Dtype d) const;
  /// A row-major contiguous tensor with the same values (*this when already contiguous).
  Tensor contiguous() const;
  /// A contiguous copy (differentiable).
  Tensor clone() const;

  // ---- in-place ops (bump the version; refused on tensors that require grad unless under
  // no_grad, since they are not recorded). `other` broadcasts to this tensor's shape. -----
  /// self += alpha * other, rounded as fma(alpha, other, self) (torch's add_ with alpha).
  Tensor& add_(const Tensor& other, double alpha = 1.0);
  Tensor& add_(double scalar);
  /// self -= alpha * other.
  Tensor& sub_(const Tensor& other, double alpha = 1.0);
  Tensor& mul_(const Tensor& other);
  Tensor& mul_(double scalar);
  Tensor& div_(const Tensor& other);
  Tensor& div_(double scalar);
  /// self = fma(value * t1, t2, self) (torch's addcmul_).
  Tensor& addcmul_(const Tensor& t1, const Tensor& t2, double value = 1.0);
  /// self = self + (value * t1) / t2 (torch's addcdiv_).
  Tensor& addcdiv_(const Tensor& t1, const Tensor& t2, double value = 1.0);
  /// self = sqrt(self).
  Tensor& sqrt_();
  /// self = max(self, other), elementwise.
  Tensor& maximum_(const Tensor& other);
  Tensor& zero_();
  Tensor& fill_(double value);
  /// Copies src's values (broadcast to this shape, converted to this dtype).
  Tensor& copy_(const Tensor& src);

  /// In-place operators (torch's x += y): add_, sub_, mul_, div_ with a broadcast tensor or a
  /// scalar, with their errors (refused on tensors that require grad outside no_grad).
  Tensor& operator+=(const Tensor& other);
  Tensor& operator+=(double scalar);
  Tensor& operator-=(const Tensor& other);
  Tensor& operator-=(double scalar);
  Tensor& operator*=(const Tensor& other);
  Tensor& operator*=(double scalar);
  Tensor& operator/=(const Tensor& other);
  Tensor& operator/=(double scalar);

  // ---- indexing (ops/tensor_index.hpp documents shapes, errors and gradients) ------------
  /// torch's x.index({Slice(0, 2), 1, None, Ellipsis}) (Python x[0:2, 1, None, ...]): a view
  /// sharing this tensor's storage; differentiable.
  Tensor index(const std::vector<indexing::TensorIndex>& indices) const;
  /// x[i] = x.select(0, i): the i-th slice along the first dimension, a view without that
  /// dimension (negative i counts from the end); differentiable.
  Tensor operator[](std::int64_t i) const;
  /// The i-th slice along `dim` (a view without `dim`); differentiable.
  Tensor select(std::int64_t dim, std::int64_t i) const;
  /// Writes `value` (broadcast to the indexed region's shape, converted to this dtype) into
  /// the region x.index(indices), in place (Python x[...] = value). Bumps the version.
  Tensor& index_put_(const std::vector<indexing::TensorIndex>& indices, const Tensor& value);
  /// Fills the region x.index(indices) with `value`, in place.
  Tensor& index_put_(const std::vector<indexing::TensorIndex>& indices, double value);

  // ---- method forms of common ops (see the ops/ headers for shapes and errors) -----------
  Tensor reshape(const Shape& shape) const;
  Tensor view(const Shape& shape) const;
  Tensor transpose(std::int64_t a, std::int64_t b) const;
  Tensor permute(const Shape& dims) const;
  Tensor flatten(std::int64_t start = 0, std::int64_t end = -1) const;
  Tensor squeeze(std::int64_t axis) const;
  Tensor unsqueeze(std::int64_t axis) const;
  Tensor t() const;
  Tensor sum() const;
  Tensor sum(std::int64_t axis, bool keepdim = false) const;
  Tensor mean() const;
  Tensor mean(std::int64_t axis, bool keepdim = false) const;
  Tensor max() const;
  Tensor max(std::int64_t axis, bool keepdim = false) const;
  Tensor matmul(const Tensor& other) const;
  Tensor exp() const;
  Tensor log() const;
  Tensor sqrt() const;
  Tensor abs() const;
  Tensor sign() const;
  Tensor tanh() const;
  Tensor sigmoid() const;
  Tensor relu() const;
  Tensor pow(double exponent) const;

  const std::shared_ptr<TensorImpl>& impl() const { return impl_; }

 private:
  TensorImpl& checked() const;
  std::shared_ptr<TensorImpl> impl_;
};

/// The state behind a Tensor. Users rarely touch it; ops and the engine do.
class TensorImpl {
 public:
  TensorImpl(std::shared_ptr<Storage> storage, Shape shape, Shape strides, std::int64_t offset,
             Dtype dtype);

  std::shared_ptr<Storage> storage;
  Shape shape;
  Shape strides;  // in elements
  std::int64_t offset = 0;
  std::int64_t numel = 0;
  Dtype dtype;

  // autograd state
  bool requires_grad = false;  // leaves only; a non-leaf requires grad through grad_fn
  bool retains_grad = false;
  std::shared_ptr<autograd::Node> grad_fn;
  std::uint32_t output_nr = 0;
  std::weak_ptr<autograd::Node> grad_accumulator;  // leaves: the AccumulateGrad of this graph
  Tensor grad;
  std::vector<Hook> hooks;  // leaves: run by AccumulateGrad before accumulating
  std::vector<std::function<void(const Tensor&)>> post_accumulate_hooks;  // leaves: after it
  std::string name;
  // forward-mode AD (autograd/forward_ad.hpp): the tangent, valid while dual level
  // `fw_level` is the active one (0: none)
  Tensor fw_grad;
  std::uint32_t fw_level = 0;
  // Inside func::vmap: the batch this tensor is mapped over (autograd/batching.hpp); its
  // shape and strides are then one sample's. Null for every other tensor.
  std::shared_ptr<const autograd::BatchInfo> batch;
};

// ---- construction -----------------------------------------------------------------------

/// Row-major strides of a shape (in elements).
Shape contiguous_strides(const Shape& shape);
/// Product of the dimensions (1 for a 0-d shape). Throws on a negative dimension.
std::int64_t shape_numel(const Shape& shape);

/// An uninitialised tensor of the given shape.
Tensor empty(const Shape& shape, TensorOptions opts = {});
Tensor zeros(const Shape& shape, TensorOptions opts = {});
Tensor ones(const Shape& shape, TensorOptions opts = {});
Tensor full(const Shape& shape, double value, TensorOptions opts = {});
Tensor zeros_like(const Tensor& t);
Tensor ones_like(const Tensor& t);
Tensor full_like(const Tensor& t, double value);
/// 0-d tensor holding `value`.
Tensor scalar_tensor(double value, TensorOptions opts = {});
/// [start, start+step, ...) below end, as torch.arange. Throws when step is 0.
Tensor arange(double start, double end, double step = 1.0, TensorOptions opts = {});
Tensor arange(double end, TensorOptions opts = {});

/// A number or a braced list of NestedLists, any depth: what tensor() takes. Like torch's
/// TensorDataContainer, `{{1.0}, {2.0}}` is a [2,1] list (a brace around one number is a
/// one-element list, not the number).
class NestedList {
 public:
  NestedList(double value) : value_(value), scalar_(true) {}  // NOLINT(google-explicit-constructor)
  NestedList(std::initializer_list<NestedList> items)         // NOLINT(google-explicit-constructor)
      : items_(items) {}
  bool is_scalar() const { return scalar_; }
  double value() const { return value_; }
  const std::vector<NestedList>& items() const { return items_; }

 private:
  double value_ = 0;
  bool scalar_ = false;
  std::vector<NestedList> items_;
};

/// A tensor from a number (0-d) or nested braces: tensor({{1., 2.}, {3., 4.}}, xgrad::float64)
/// is [2,2]. Throws xgrad::Error for ragged lists ("nested lists have ragged lengths").
Tensor tensor(const NestedList& data, TensorOptions opts = {});

/// Copies `numel(shape)` elements of type T from `data` into a new tensor.
template <class T>
Tensor from_data(const T* data, const Shape& shape, bool requires_grad = false);

/// Prints a tensor as torch 1.13's repr() does with its default print options (4 decimals,
/// summary threshold 1000, 3 edge items, 80 columns), e.g.
///   tensor([[0.5000, 1.2500],
///           [2.0000, 3.0000]], dtype=float64, grad_fn=<mul>)
/// Values: floats in fixed notation with 4 decimals, or scientific (1.0000e-05) when the
/// nonzero finite magnitudes span more than 1e3, exceed 1e8 or go below 1e-4; floats that are
/// all whole numbers print as torch's "1." / "-3." (int mode); nan, inf, -inf; int64 as
/// integers; bool as True/False; every element right-aligned to the widest one. Layout: one
/// row per line, a blank line between blocks of 3-d and higher tensors, 1-d rows wrapped at
/// 80 columns. Over 1000 elements, each dimension longer than 6 shows its first and last 3
/// entries around "..." (the format then follows those entries only). Suffixes, each moved
/// to a new line when it would pass column 80: "size=(2, 0)" for an empty tensor that is not
/// 1-d; "dtype=float64" when the dtype is a float other than default_dtype() (for an empty
/// tensor, any dtype but the default); then "grad_fn=<mul>" for a non-leaf or
/// "requires_grad=True" for a leaf that requires grad. Differences from torch: dtypes print
/// without "torch." (dtype=float64), grad_fn shows the node's name ("mul", not
/// "MulBackward0"), an undefined tensor prints "tensor(undefined)". Source: torch/_tensor_str.py.
/// Throws nothing beyond what the stream throws.
std::ostream& operator<<(std::ostream& os, const Tensor& t);

// ---- type dispatch helper ---------------------------------------------------------------

/// Calls f.template operator()<T>() with T = float or double according to d; throws
/// "op: expected a float32 or float64 tensor, got int64" otherwise.
template <class F>
decltype(auto) dispatch_floating(Dtype d, const char* op, F&& f) {
  switch (d) {
    case Dtype::float32:
      return f.template operator()<float>();
    case Dtype::float64:
      return f.template operator()<double>();
    default:
      fail(op, ": expected a float32 or float64 tensor, got ", dtype_name(d));
  }
}

/// As dispatch_floating, over all four dtypes (bool as bool).
template <class F>
decltype(auto) dispatch_all(Dtype d, F&& f) {
  switch (d) {
    case Dtype::float32:
      return f.template operator()<float>();
    case Dtype::float64:
      return f.template operator()<double>();
    case Dtype::int64:
      return f.template operator()<std::int64_t>();
    case Dtype::boolean:
      return f.template operator()<bool>();
  }
  return f.template operator()<float>();
}

}  // namespace xgrad

#include "xgrad/ops/shape.hpp"

#include <algorithm>
#include <cstring>
#include <numeric>

#include "detail/kernel.hpp"
#include "xgrad/autograd/batching.hpp"
#include "xgrad/autograd/forward_ad.hpp"
#include "xgrad/autograd/grad_mode.hpp"
#include "xgrad/autograd/node.hpp"
#include "xgrad/ops/elementwise.hpp"

namespace xgrad {

using autograd::jvp_op;
using autograd::Node;
using autograd::record_op;
using autograd::tangent;
using autograd::tensor_list;

namespace {

Tensor make_view(const Tensor& a, Shape shape, Shape strides, std::int64_t offset) {
  return Tensor(xgrad::detail::make_pooled<TensorImpl>(a.storage(), std::move(shape),
                                                       std::move(strides), offset, a.dtype()));
}

// Contiguous copy of any (strided) tensor, without recording.
Tensor copy_contiguous(const Tensor& a) {
  Tensor out = empty(a.shape(), a.dtype());
  if (a.is_contiguous()) {
    std::memcpy(out.raw_data(), a.raw_data(),
                static_cast<std::size_t>(a.numel()) * element_size(a.dtype()));
    return out;
  }
  dispatch_all(a.dtype(), [&]<class T>() {
    auto dst = detail::xview<T>(out);
    xt::noalias(dst) = detail::xview<T>(a);
  });
  return out;
}

Shape infer_shape(const Shape& shape, std::int64_t numel, const Shape& from, const char* op) {
  Shape out = shape;
  std::int64_t known = 1;
  int infer = -1;
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (out[i] == -1) {
      if (infer >= 0) fail(op, ": only one dimension can be -1, got ", shape);
      infer = static_cast<int>(i);
    } else {
      if (out[i] < 0) fail(op, ": invalid dimension in shape ", shape);
      known *= out[i];
    }
  }
  if (infer >= 0) {
    if (known == 0 || numel % known != 0)
      fail(op, ": cannot reshape a tensor of shape ", from, " (", numel, " elements) to ", shape);
    out[static_cast<std::size_t>(infer)] = numel / known;
  }
  if (shape_numel(out) != numel)
    fail(op, ": cannot reshape a tensor of shape ", from, " (", numel, " elements) to ", shape);
  return out;
}

// ---- slice_backward: a fused backward with its own derivatives ---------------------------
// The gradient of a slice is the incoming gradient written into a zero tensor of the input's
// shape. As an op of its own (torch's slice_backward) it is linear in g: its vjp slices the
// incoming gradient again and its jvp applies it to g's tangent, so slice is differentiable to
// any order while the first-order backward still costs one zero fill and one strided copy.

struct SliceSpec {
  Shape in_shape;
  std::int64_t axis = 0, start = 0, end = 0, step = 1;
};

Tensor slice_backward(const Tensor& g, const SliceSpec& s);

struct SliceBackwardBackward final : Node {
  SliceSpec spec;
  std::string_view name() const override { return "slice_backward"; }
  tensor_list apply(tensor_list&& g) override {
    return {slice(g[0], spec.axis, spec.start, spec.end, spec.step)};
  }
};

Tensor slice_backward(const Tensor& g, const SliceSpec& s) {
  Tensor out = zeros(s.in_shape, g.dtype());
  {
    no_grad guard;  // the write is the kernel; the node below is its derivative
    slice(out, s.axis, s.start, s.end, s.step).copy_(g.detach());
  }
  record_op<SliceBackwardBackward>({&g}, {&out}, [&](SliceBackwardBackward& n) { n.spec = s; });
  jvp_op("slice_backward", {&g}, out, [&] { return slice_backward(tangent(g), s); });
  return out;
}

// ---- nodes: the vjp of each op (its jvp sits beside its record_op below) ------------------

// reshape, view, squeeze, unsqueeze (and flatten, through reshape): the same elements, so the
// gradient is reshaped back.
struct ReshapeBackward final : Node {
  Shape in_shape;
  const char* op = "reshape";
  std::string_view name() const override { return op; }
  tensor_list apply(tensor_list&& g) override { return {reshape(g[0], in_shape)}; }
};

struct PermuteBackward final : Node {
  Shape inverse;
  std::string_view name() const override { return "permute"; }
  tensor_list apply(tensor_list&& g) override { return {permute(g[0], inverse)}; }
};

struct SliceBackward final : Node {
  SliceSpec spec;
  std::string_view name() const override { return "slice"; }
  tensor_list apply(tensor_list&& g) override { return {slice_backward(g[0], spec)}; }
};

struct ConcatBackward final : Node {
  std::vector<std::int64_t> sizes;
  std::int64_t axis = 0;
  std::string_view name() const override { return "concat"; }
  tensor_list apply(tensor_list&& g) override {
    tensor_list out(sizes.size());
    std::int64_t pos = 0;
    for (std::size_t i = 0; i < sizes.size(); ++i) {
      if (needs_input_grad(i)) out[i] = slice(g[0], axis, pos, pos + sizes[i]);
      pos += sizes[i];
    }
    return out;
  }
};

struct ExpandBackward final : Node {
  Shape in_shape;
  std::string_view name() const override { return "expand"; }
  tensor_list apply(tensor_list&& g) override { return {sum_to(g[0], in_shape)}; }
};

// contiguous and clone: copies, so the gradient passes unchanged.
struct IdentityBackward final : Node {
  const char* op = "contiguous";
  std::string_view name() const override { return op; }
  tensor_list apply(tensor_list&& g) override { return {g[0]}; }
};

struct ToBackward final : Node {
  Dtype in_dtype = Dtype::float32;
  std::string_view name() const override { return "to"; }
  tensor_list apply(tensor_list&& g) override { return {g[0].to(in_dtype)}; }
};

// Records a view that keeps a's elements in a's order (reshape, view, squeeze, unsqueeze):
// backward reshapes the gradient back, forward mode reshapes the tangent forward.
Tensor record_reshape(const Tensor& a, Tensor out, const char* op) {
  record_op<ReshapeBackward>({&a}, {&out}, [&](ReshapeBackward& n) {
    n.in_shape = a.shape();
    n.op = op;
  });
  // reshape (not view): a tangent need not be contiguous even when the primal is.
  jvp_op(op, {&a}, out, [&] { return reshape(tangent(a), out.shape()); });
  return out;
}

Tensor reshape_impl(const Tensor& a, const Shape& shape_in, const char* op, bool must_view) {
  Shape shape = infer_shape(shape_in, a.numel(), a.shape(), op);
  Tensor out;
  if (a.is_contiguous()) {
    out = make_view(a, shape, contiguous_strides(shape), a.offset());
  } else {
    if (must_view)
      fail(op, ": the tensor of shape ", a.shape(),
           " is not contiguous; use reshape() (which copies) or contiguous() first");
    Tensor c = copy_contiguous(a);
    out = make_view(c, shape, contiguous_strides(shape), 0);
  }
  return record_reshape(a, out, op);
}

}  // namespace

Tensor reshape(const Tensor& a, const Shape& shape) {
  if (autograd::any_batched(a))
    return autograd::vmap_op("reshape", {a}, [&](const autograd::BatchedArgs& p) {
      Shape s = shape;
      s.insert(s.begin(), p.batch_size());
      return reshape(p[0], s);
    });
  if (shape == a.shape()) return a;
  return reshape_impl(a, shape, "reshape", false);
}
Tensor view(const Tensor& a, const Shape& shape) {
  if (autograd::any_batched(a))
    return autograd::vmap_op("view", {a}, [&](const autograd::BatchedArgs& p) {
      Shape s = shape;
      s.insert(s.begin(), p.batch_size());
      return view(p[0], s);
    });
  return reshape_impl(a, shape, "view", true);
}

Tensor permute(const Tensor& a, const Shape& dims) {
  if (autograd::any_batched(a))
    return autograd::vmap_op("permute", {a}, [&](const autograd::BatchedArgs& p) {
      check(static_cast<std::int64_t>(dims.size()) == p.logical_dim(0), "permute: ", dims.size(),
            " dimensions given for a tensor of shape ", a.shape());
      Shape d{0};
      for (std::int64_t x : dims) d.push_back(autograd::physical_dim(p, 0, x, "permute"));
      return permute(p[0], d);
    });
  const std::int64_t n = a.dim();
  check(static_cast<std::int64_t>(dims.size()) == n, "permute: ", dims.size(),
        " dims given for a tensor of shape ", a.shape());
  Shape shape(dims.size()), strides(dims.size()), inverse(dims.size()), order(dims.size());
  Shape seen(dims.size(), 0);  // inline: no allocation for up to 6 dims
  for (std::size_t i = 0; i < dims.size(); ++i) {
    auto d = static_cast<std::size_t>(detail::normalize_axis(dims[i], n, a.shape(), "permute"));
    check(!seen[d], "permute: dims ", dims, " are not a permutation for shape ", a.shape());
    seen[d] = 1;
    shape[i] = a.shape()[d];
    strides[i] = a.strides()[d];
    inverse[d] = static_cast<std::int64_t>(i);
    order[i] = static_cast<std::int64_t>(d);
  }
  Tensor out = make_view(a, shape, strides, a.offset());
  record_op<PermuteBackward>({&a}, {&out}, [&](PermuteBackward& n) { n.inverse = inverse; });
  jvp_op("permute", {&a}, out, [&] { return permute(tangent(a), order); });
  return out;
}

Tensor transpose(const Tensor& a, std::int64_t axis0, std::int64_t axis1) {
  if (autograd::any_batched(a))
    return autograd::vmap_op("transpose", {a}, [&](const autograd::BatchedArgs& p) {
      return transpose(p[0], autograd::physical_dim(p, 0, axis0, "transpose"),
                       autograd::physical_dim(p, 0, axis1, "transpose"));
    });
  const std::int64_t n = a.dim();
  auto i = detail::normalize_axis(axis0, n, a.shape(), "transpose");
  auto j = detail::normalize_axis(axis1, n, a.shape(), "transpose");
  Shape dims(static_cast<std::size_t>(n));
  std::iota(dims.begin(), dims.end(), 0);
  std::swap(dims[static_cast<std::size_t>(i)], dims[static_cast<std::size_t>(j)]);
  return permute(a, dims);
}

Tensor flatten(const Tensor& a, std::int64_t start, std::int64_t end) {
  if (autograd::any_batched(a))
    return autograd::vmap_op("flatten", {a}, [&](const autograd::BatchedArgs& p) {
      if (p.logical_dim(0) == 0) return reshape(p[0], {p.batch_size(), 1});
      return flatten(p[0], autograd::physical_dim(p, 0, start, "flatten"),
                     autograd::physical_dim(p, 0, end, "flatten"));
    });
  if (a.dim() == 0) return reshape(a, {1});
  auto s = detail::normalize_axis(start, a.dim(), a.shape(), "flatten");
  auto e = detail::normalize_axis(end, a.dim(), a.shape(), "flatten");
  check(s <= e, "flatten: start axis ", start, " comes after end axis ", end);
  Shape shape;
  for (std::int64_t i = 0; i < s; ++i) shape.push_back(a.shape()[static_cast<std::size_t>(i)]);
  std::int64_t m = 1;
  for (std::int64_t i = s; i <= e; ++i) m *= a.shape()[static_cast<std::size_t>(i)];
  shape.push_back(m);
  for (std::int64_t i = e + 1; i < a.dim(); ++i)
    shape.push_back(a.shape()[static_cast<std::size_t>(i)]);
  return reshape(a, shape);
}

namespace {
// Views that drop or insert size-1 axes keep the other strides, so they work on any tensor.
Tensor restride(const Tensor& a, Shape shape, Shape strides, const char* op) {
  Tensor out = make_view(a, std::move(shape), std::move(strides), a.offset());
  return record_reshape(a, out, op);
}
}  // namespace

Tensor squeeze(const Tensor& a, std::int64_t axis) {
  if (autograd::any_batched(a))
    return autograd::vmap_op("squeeze", {a}, [&](const autograd::BatchedArgs& p) {
      return squeeze(p[0], autograd::physical_dim(p, 0, axis, "squeeze"));
    });
  auto ax = static_cast<std::size_t>(detail::normalize_axis(axis, a.dim(), a.shape(), "squeeze"));
  check(a.shape()[ax] == 1, "squeeze: axis ", axis, " of shape ", a.shape(), " has size ",
        a.shape()[ax], ", not 1");
  Shape shape = a.shape(), strides = a.strides();
  shape.erase(shape.begin() + static_cast<std::ptrdiff_t>(ax));
  strides.erase(strides.begin() + static_cast<std::ptrdiff_t>(ax));
  return restride(a, shape, strides, "squeeze");
}

Tensor squeeze(const Tensor& a) {
  if (autograd::any_batched(a))
    return autograd::vmap_op("squeeze", {a}, [&](const autograd::BatchedArgs& p) {
      Tensor t = p[0];
      for (std::int64_t d = p.logical_dim(0); d-- > 0;)
        if (a.shape()[static_cast<std::size_t>(d)] == 1) t = squeeze(t, d + 1);
      return t;
    });
  Shape shape, strides;
  for (std::size_t i = 0; i < a.shape().size(); ++i) {
    if (a.shape()[i] == 1) continue;
    shape.push_back(a.shape()[i]);
    strides.push_back(a.strides()[i]);
  }
  if (shape.size() == a.shape().size()) return a;
  return restride(a, shape, strides, "squeeze");
}

Tensor unsqueeze(const Tensor& a, std::int64_t axis) {
  if (autograd::any_batched(a))
    return autograd::vmap_op("unsqueeze", {a}, [&](const autograd::BatchedArgs& p) {
      return unsqueeze(p[0], autograd::wrap_dim(axis, p.logical_dim(0) + 1, "unsqueeze") + 1);
    });
  auto ax =
      static_cast<std::size_t>(detail::normalize_axis(axis, a.dim() + 1, a.shape(), "unsqueeze"));
  Shape shape = a.shape(), strides = a.strides();
  std::int64_t st = ax < strides.size() ? strides[ax] * shape[ax] : 1;
  shape.insert(shape.begin() + static_cast<std::ptrdiff_t>(ax), 1);
  strides.insert(strides.begin() + static_cast<std::ptrdiff_t>(ax), st);
  return restride(a, shape, strides, "unsqueeze");
}

Tensor slice(const Tensor& a, std::int64_t axis, std::int64_t start, std::int64_t end,
             std::int64_t step) {
  if (autograd::any_batched(a))
    return autograd::vmap_op("slice", {a}, [&](const autograd::BatchedArgs& p) {
      return slice(p[0], autograd::physical_dim(p, 0, axis, "slice"), start, end, step);
    });
  check(step > 0, "slice: step must be positive, got ", step);
  auto ax = static_cast<std::size_t>(detail::normalize_axis(axis, a.dim(), a.shape(), "slice"));
  const std::int64_t n = a.shape()[ax];
  auto clampi = [n](std::int64_t v) {
    if (v < 0) v += n;
    return std::clamp<std::int64_t>(v, 0, n);
  };
  const std::int64_t s = clampi(start);
  const std::int64_t e = std::max(s, clampi(end));
  Shape shape = a.shape(), strides = a.strides();
  shape[ax] = (e - s + step - 1) / step;
  strides[ax] = a.strides()[ax] * step;
  Tensor out = make_view(a, shape, strides, a.offset() + s * a.strides()[ax]);
  const auto axis_n = static_cast<std::int64_t>(ax);
  record_op<SliceBackward>({&a}, {&out}, [&](SliceBackward& node) {
    node.spec = SliceSpec{a.shape(), axis_n, s, e, step};
  });
  jvp_op("slice", {&a}, out, [&] { return slice(tangent(a), axis_n, s, e, step); });
  return out;
}

Tensor concat(const std::vector<Tensor>& tensors, std::int64_t axis) {
  if (autograd::any_batched(tensors))
    return autograd::vmap_op("concat", tensors, [&](const autograd::BatchedArgs& p) {
      check(!tensors.empty(), "concat: expected at least one tensor");
      std::vector<Tensor> parts;
      for (std::size_t i = 0; i < p.size(); ++i) parts.push_back(p.expanded(i));
      const std::int64_t rank = tensors[0].dim();
      return concat(parts, autograd::wrap_dim(axis, rank, "concat") + 1);
    });
  check(!tensors.empty(), "concat: expected at least one tensor");
  const Tensor& first = tensors[0];
  auto ax =
      static_cast<std::size_t>(detail::normalize_axis(axis, first.dim(), first.shape(), "concat"));
  Shape shape = first.shape();
  std::vector<std::int64_t> sizes;
  std::int64_t total = 0;
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    detail::check_same_dtype(first, t, "concat");
    bool ok = t.dim() == first.dim();
    for (std::size_t d = 0; ok && d < shape.size(); ++d) ok = d == ax || t.shape()[d] == shape[d];
    if (!ok)
      fail("concat: tensor ", i, " has shape ", t.shape(), ", which does not match ", first.shape(),
           " outside axis ", axis);
    sizes.push_back(t.shape()[ax]);
    total += t.shape()[ax];
  }
  shape[ax] = total;
  Tensor out = empty(shape, first.dtype());
  {
    no_grad guard;
    std::int64_t pos = 0;
    for (std::size_t i = 0; i < tensors.size(); ++i) {
      slice(out, static_cast<std::int64_t>(ax), pos, pos + sizes[i]).copy_(tensors[i].detach());
      pos += sizes[i];
    }
  }
  // record_op takes a fixed list of inputs; concat's is a vector, so the same steps by hand.
  if (autograd::any_requires_grad(tensors)) {
    auto node = xgrad::detail::make_pooled<ConcatBackward>();
    std::vector<Tensor> outs{out};
    autograd::record(node, tensors, outs);
    out = outs[0];
    node->sizes = sizes;
    node->axis = static_cast<std::int64_t>(ax);
  }
  if (autograd::detail::fw_propagating()) {
    bool dual = false;
    for (const Tensor& t : tensors) dual = dual || autograd::has_tangent(t);
    if (dual) {
      Tensor t_out;
      {
        autograd::detail::PauseForward pause;
        std::vector<Tensor> ts;
        ts.reserve(tensors.size());
        for (const Tensor& t : tensors) ts.push_back(tangent(t));
        t_out = concat(ts, static_cast<std::int64_t>(ax));
      }
      autograd::set_tangent(out, t_out, "concat");
    }
  }
  return out;
}

Tensor stack(const std::vector<Tensor>& tensors, std::int64_t axis) {
  check(!tensors.empty(), "stack: expected at least one tensor");
  auto ax = detail::normalize_axis(axis, tensors[0].dim() + 1, tensors[0].shape(), "stack");
  std::vector<Tensor> parts;
  parts.reserve(tensors.size());
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    detail::check_same_dtype(tensors[0], tensors[i], "stack");
    if (tensors[i].shape() != tensors[0].shape())
      fail("stack: tensor ", i, " has shape ", tensors[i].shape(), ", expected ",
           tensors[0].shape());
    parts.push_back(unsqueeze(tensors[i], ax));
  }
  return concat(parts, ax);
}

Tensor expand(const Tensor& a, const Shape& shape) {
  if (autograd::any_batched(a))
    return autograd::vmap_op("expand", {a}, [&](const autograd::BatchedArgs& p) {
      const auto rank = static_cast<std::int64_t>(shape.size());
      check(rank >= p.logical_dim(0), "expand: cannot expand shape ", a.shape(), " to ", shape);
      Tensor t = p.aligned(0, rank);
      Shape s = shape;
      for (std::size_t i = 0; i < s.size(); ++i)
        if (s[i] == -1) s[i] = t.shape()[i + 1];
      s.insert(s.begin(), p.batch_size());
      return expand(t, s);
    });
  if (a.shape() == shape) return a;
  Shape b = detail::broadcast_shapes(a.shape(), shape, "expand");
  if (b != shape) fail("expand: cannot expand shape ", a.shape(), " to ", shape);
  Tensor out = detail::broadcast_view(a, shape);
  record_op<ExpandBackward>({&a}, {&out}, [&](ExpandBackward& n) { n.in_shape = a.shape(); });
  jvp_op("expand", {&a}, out, [&] { return expand(tangent(a), shape); });
  return out;
}

// ---- Tensor members that copy --------------------------------------------------------------

Tensor Tensor::contiguous() const {
  if (autograd::any_batched(*this))
    return autograd::vmap_op("contiguous", {*this},
                             [](const autograd::BatchedArgs& p) { return p[0].contiguous(); });
  if (is_contiguous()) return *this;
  Tensor out = copy_contiguous(*this);
  record_op<IdentityBackward>({this}, {&out});
  jvp_op("contiguous", {this}, out, [&] { return tangent(*this).contiguous(); });
  return out;
}

Tensor Tensor::clone() const {
  if (autograd::any_batched(*this))
    return autograd::vmap_op("clone", {*this},
                             [](const autograd::BatchedArgs& p) { return p[0].clone(); });
  Tensor out = copy_contiguous(*this);
  record_op<IdentityBackward>({this}, {&out}, [](IdentityBackward& n) { n.op = "clone"; });
  jvp_op("clone", {this}, out, [&] { return tangent(*this).clone(); });
  return out;
}

Tensor Tensor::to(Dtype d) const {
  if (autograd::any_batched(*this) && d != dtype())
    return autograd::vmap_op("to", {*this},
                             [d](const autograd::BatchedArgs& p) { return p[0].to(d); });
  if (d == dtype()) return *this;
  Tensor out = empty(shape(), d);
  Tensor src = copy_contiguous(*this);
  dispatch_all(dtype(), [&]<class S>() {
    dispatch_all(d, [&]<class D>() {
      const S* in = src.data_ptr<S>();
      D* o = out.data_ptr<D>();
      for (std::int64_t i = 0, n = numel(); i < n; ++i) o[i] = static_cast<D>(in[i]);
    });
  });
  // Only a float result carries a gradient (and a tangent) back.
  if (!is_floating(d)) return out;
  record_op<ToBackward>({this}, {&out}, [&](ToBackward& n) { n.in_dtype = dtype(); });
  jvp_op("to", {this}, out, [&] { return tangent(*this).to(d); });
  return out;
}

}  // namespace xgrad

#include "xgrad/ops/indexing.hpp"

#include <cstring>

#include "detail/kernel.hpp"
#include "xgrad/autograd/batching.hpp"
#include "xgrad/autograd/forward_ad.hpp"
#include "xgrad/autograd/grad_mode.hpp"
#include "xgrad/autograd/node.hpp"
#include "xgrad/ops/elementwise.hpp"
#include "xgrad/ops/shape.hpp"

namespace xgrad {

using autograd::jvp_op;
using autograd::Node;
using autograd::record_op;
using autograd::Saved;
using autograd::tangent;
using autograd::tensor_list;

namespace {

void check_index_dtype(const Tensor& index, const char* op, const char* what) {
  check(index.dtype() == Dtype::int64, op, ": ", what, " must be an int64 tensor, got ",
        dtype_name(index.dtype()), " ", index.shape());
}

// Throws unless every index lies in [0, size). `what` completes "out of range for ...".
void check_range(const Tensor& index_contig, std::int64_t size, const char* op,
                 const std::string& what) {
  const std::int64_t* p = index_contig.data_ptr<std::int64_t>();
  for (std::int64_t i = 0, n = index_contig.numel(); i < n; ++i)
    if (p[i] < 0 || p[i] >= size)
      fail(op, ": index ", p[i], " at position ", i, " is out of range for ", what);
}

// Calls f(flat, offset) for every element of `shape` in row-major order, where offset is
// Σ coord[d]·strides[d] over d != skip_axis and `coord` is the current multi-index.
template <class F>
void walk(const Shape& shape, const Shape& strides, std::int64_t skip_axis, F f) {
  const std::int64_t n = shape_numel(shape);
  if (n == 0) return;
  const std::size_t nd = shape.size();
  std::vector<std::int64_t> coord(nd, 0);
  std::int64_t off = 0;
  for (std::int64_t k = 0; k < n; ++k) {
    f(k, off);
    for (std::size_t d = nd; d-- > 0;) {
      const std::int64_t st = static_cast<std::int64_t>(d) == skip_axis ? 0 : strides[d];
      if (++coord[d] < shape[d]) {
        off += st;
        break;
      }
      off -= (shape[d] - 1) * st;
      coord[d] = 0;
    }
  }
}

// ---- fused backward kernels as ops ---------------------------------------------------------
// The backward of embedding, gather and index_select scatter-adds the gradient into zeros of
// the input's shape. Each scatter is an op of its own (torch's embedding_dense_backward,
// scatter_add, index_add): linear in the gradient, its vjp is the forward op again (a gather of
// the incoming gradient) and its jvp is itself applied to the tangent. So the first-order
// backward runs the same loop as before, and every order above it is recorded.

// Rows of a zero [V, D] tensor receive the sum of the gradient rows that looked them up.
// indices: int64, contiguous; g: indices' shape + [D].
Tensor embedding_backward(const Tensor& g, const Tensor& indices, std::int64_t V, std::int64_t D);

struct EmbeddingBackwardBackward final : Node {
  Saved indices;
  std::string_view name() const override { return "embedding_backward"; }
  tensor_list apply(tensor_list&& g) override { return {embedding(saved(indices), g[0])}; }
};

Tensor embedding_backward(const Tensor& g, const Tensor& indices, std::int64_t V, std::int64_t D) {
  Tensor out = dispatch_floating(g.dtype(), "embedding_backward", [&]<class T>() {
    Tensor gc = g.detach().contiguous();
    Tensor o = zeros({V, D}, dtype_of<T>);
    const T* pg = gc.data_ptr<T>();
    const std::int64_t* pi = indices.data_ptr<std::int64_t>();
    T* po = o.data_ptr<T>();
    for (std::int64_t p = 0, n = indices.numel(); p < n; ++p) {
      T* row = po + pi[p] * D;
      const T* src = pg + p * D;
      for (std::int64_t j = 0; j < D; ++j) row[j] += src[j];
    }
    return o;
  });
  record_op<EmbeddingBackwardBackward>(
      {&g}, {&out}, [&](EmbeddingBackwardBackward& n) { n.indices = n.save(indices); });
  jvp_op("embedding_backward", {&g}, out,
         [&] { return embedding_backward(tangent(g), indices, V, D); });
  return out;
}

// gather and index_select pick elements (gather) or slices (index_select) of x along an axis.
// Their backward is one op, `kind` naming which: x's shape with g added at the places the
// forward picked. Its vjp is that forward pick of the incoming gradient.
enum class Pick { gather, index_select };

Tensor pick_backward(Pick kind, const Tensor& g, const Tensor& idx, const Shape& in_shape,
                     std::int64_t axis);

struct PickBackwardBackward final : Node {
  Saved index;
  Pick kind = Pick::gather;
  std::int64_t axis = 0;
  std::string_view name() const override {
    return kind == Pick::gather ? "gather_backward" : "index_select_backward";
  }
  tensor_list apply(tensor_list&& g) override {
    const Tensor idx = saved(index);
    return {kind == Pick::gather ? gather(g[0], axis, idx) : index_select(g[0], axis, idx)};
  }
};

// gather's scatter: g has idx's shape; each element goes to its own position in o but at
// index idx along the axis.
template <class T>
void gather_scatter_add(T* po, const Shape& o_strides, const T* pg, const Tensor& idx,
                        std::int64_t axis) {
  const std::int64_t* pi = idx.data_ptr<std::int64_t>();
  const std::int64_t ax_stride = o_strides[static_cast<std::size_t>(axis)];
  walk(idx.shape(), o_strides, axis,
       [&](std::int64_t k, std::int64_t off) { po[off + pi[k] * ax_stride] += pg[k]; });
}

// index_select's scatter: g is [outer, K, inner] (idx: [K]); its slice k is added into the
// slice idx[k] of o, [outer, n, inner].
template <class T>
void index_select_scatter_add(T* po, const Shape& in_shape, const T* pg, const Tensor& idx,
                              std::int64_t axis) {
  const detail::AxisSplit s = detail::split_axis(in_shape, axis);
  const std::int64_t K = idx.numel();
  const std::int64_t* pi = idx.data_ptr<std::int64_t>();
  for (std::int64_t o_ = 0; o_ < s.outer; ++o_)
    for (std::int64_t k = 0; k < K; ++k) {
      T* dst = po + (o_ * s.n + pi[k]) * s.inner;
      const T* src = pg + (o_ * K + k) * s.inner;
      for (std::int64_t i = 0; i < s.inner; ++i) dst[i] += src[i];
    }
}

Tensor pick_backward(Pick kind, const Tensor& g, const Tensor& idx, const Shape& in_shape,
                     std::int64_t axis) {
  const char* op = kind == Pick::gather ? "gather_backward" : "index_select_backward";
  Tensor out = dispatch_floating(g.dtype(), op, [&]<class T>() {
    Tensor gc = g.detach().contiguous();
    Tensor o = zeros(in_shape, dtype_of<T>);
    if (kind == Pick::gather)
      gather_scatter_add(o.data_ptr<T>(), o.strides(), gc.data_ptr<T>(), idx, axis);
    else
      index_select_scatter_add(o.data_ptr<T>(), in_shape, gc.data_ptr<T>(), idx, axis);
    return o;
  });
  record_op<PickBackwardBackward>({&g}, {&out}, [&](PickBackwardBackward& n) {
    n.index = n.save(idx);
    n.kind = kind;
    n.axis = axis;
  });
  jvp_op(op, {&g}, out, [&] { return pick_backward(kind, tangent(g), idx, in_shape, axis); });
  return out;
}

// ---- nodes: the vjp of each op (its jvp sits beside its record_op below) ------------------

struct EmbeddingBackward final : Node {
  Saved indices;
  std::int64_t V = 0, D = 0;
  std::string_view name() const override { return "embedding"; }
  tensor_list apply(tensor_list&& g) override {
    return {embedding_backward(g[0], saved(indices), V, D)};
  }
};

struct PickBackward final : Node {
  Saved index;
  Pick kind = Pick::gather;
  Shape in_shape;
  std::int64_t axis = 0;
  std::string_view name() const override {
    return kind == Pick::gather ? "gather" : "index_select";
  }
  tensor_list apply(tensor_list&& g) override {
    return {pick_backward(kind, g[0], saved(index), in_shape, axis)};
  }
};

// The condition is a constant of the op (bool, no derivative): the gradient is routed by it.
struct WhereBackward final : Node {
  Saved cond;
  Shape a_shape, b_shape;
  std::string_view name() const override { return "where"; }
  tensor_list apply(tensor_list&& g) override {
    Tensor c = saved(cond);
    Tensor zero = scalar_tensor(0.0, g[0].dtype());
    tensor_list out(3);
    if (needs_input_grad(1)) out[1] = sum_to(where(c, g[0], zero), a_shape);
    if (needs_input_grad(2)) out[2] = sum_to(where(c, zero, g[0]), b_shape);
    return out;
  }
};

// The slices' gradients stacked back along the axis; a slice that got none contributes zeros.
struct UnbindBackward final : Node {
  std::int64_t axis = 0;
  std::string_view name() const override { return "unbind"; }
  tensor_list apply(tensor_list&& g) override {
    std::vector<Tensor> parts;
    parts.reserve(g.size());
    for (std::size_t i = 0; i < g.size(); ++i)
      parts.push_back(g[i].defined() ? g[i] : zeros(outputs()[i].shape, outputs()[i].dtype));
    return {stack(parts, axis)};
  }
};

}  // namespace

Tensor embedding(const Tensor& indices, const Tensor& weight) {
  if (autograd::any_batched(indices, weight))
    return autograd::vmap_op("embedding", {indices, weight}, [&](const autograd::BatchedArgs& p) {
      if (!p.batched(1)) return embedding(p[0], p[1]);  // [B, ...] indices into the shared table
      return autograd::map_samples(
          p, [](const std::vector<Tensor>& s) { return embedding(s[0], s[1]); });
    });
  check_index_dtype(indices, "embedding", "indices");
  check(weight.dim() == 2, "embedding: weight must be 2-D [num_embeddings, embedding_dim], got ",
        weight.shape());
  check(is_floating(weight.dtype()), "embedding: weight must be float32 or float64, got ",
        dtype_name(weight.dtype()));
  const std::int64_t V = weight.size(0), D = weight.size(1);
  Tensor idx = indices.contiguous();
  check_range(idx, V, "embedding", std::to_string(V) + " embeddings");
  Shape oshape = indices.shape();
  oshape.push_back(D);
  Tensor out = dispatch_floating(weight.dtype(), "embedding", [&]<class T>() {
    Tensor w = weight.detach().contiguous();
    Tensor o = empty(oshape, dtype_of<T>);
    const T* pw = w.data_ptr<T>();
    const std::int64_t* pi = idx.data_ptr<std::int64_t>();
    T* po = o.data_ptr<T>();
    for (std::int64_t p = 0, n = idx.numel(); p < n; ++p)
      std::memcpy(po + p * D, pw + pi[p] * D, static_cast<std::size_t>(D) * sizeof(T));
    return o;
  });
  record_op<EmbeddingBackward>({&weight}, {&out}, [&](EmbeddingBackward& n) {
    n.indices = n.save(idx);
    n.V = V;
    n.D = D;
  });
  jvp_op("embedding", {&weight}, out, [&] { return embedding(idx, tangent(weight)); });
  return out;
}

Tensor gather(const Tensor& x, std::int64_t axis_in, const Tensor& index) {
  if (autograd::any_batched(x, index))
    return autograd::vmap_fallback("gather", {x, index}, [&](const std::vector<Tensor>& s) {
      return gather(s[0], axis_in, s[1]);
    });
  check_index_dtype(index, "gather", "index");
  const std::int64_t axis = detail::normalize_axis(axis_in, x.dim(), x.shape(), "gather");
  check(index.dim() == x.dim(), "gather: index of shape ", index.shape(),
        " must have as many dimensions as the input of shape ", x.shape());
  for (std::int64_t d = 0; d < x.dim(); ++d)
    check(d == axis || index.size(d) <= x.size(d), "gather: index of shape ", index.shape(),
          " is larger than the input of shape ", x.shape(), " in dimension ", d);
  Tensor idx = index.contiguous();
  check_range(idx, x.size(axis), "gather",
              "axis " + std::to_string(axis_in) + " of size " + std::to_string(x.size(axis)));
  Tensor out = empty(idx.shape(), x.dtype());
  dispatch_all(x.dtype(), [&]<class T>() {
    Tensor xd = x.detach();
    const T* px = xd.data_ptr<T>();
    const std::int64_t* pi = idx.data_ptr<std::int64_t>();
    T* po = out.data_ptr<T>();
    const std::int64_t ax_stride = xd.strides()[static_cast<std::size_t>(axis)];
    walk(idx.shape(), xd.strides(), axis,
         [&](std::int64_t k, std::int64_t off) { po[k] = px[off + pi[k] * ax_stride]; });
  });
  record_op<PickBackward>({&x}, {&out}, [&](PickBackward& n) {
    n.index = n.save(idx);
    n.kind = Pick::gather;
    n.in_shape = x.shape();
    n.axis = axis;
  });
  jvp_op("gather", {&x}, out, [&] { return gather(tangent(x), axis, idx); });
  return out;
}

Tensor index_select(const Tensor& x, std::int64_t axis_in, const Tensor& index) {
  if (autograd::any_batched(x, index))
    return autograd::vmap_fallback("index_select", {x, index}, [&](const std::vector<Tensor>& s) {
      return index_select(s[0], axis_in, s[1]);
    });
  check_index_dtype(index, "index_select", "index");
  check(index.dim() <= 1, "index_select: index must be 0-d or 1-D, got shape ", index.shape());
  const std::int64_t axis = detail::normalize_axis(axis_in, x.dim(), x.shape(), "index_select");
  Tensor idx = index.contiguous().reshape({index.numel()});
  check_range(idx, x.size(axis), "index_select",
              "axis " + std::to_string(axis_in) + " of size " + std::to_string(x.size(axis)));
  const std::int64_t K = idx.numel();
  Shape oshape = x.shape();
  oshape[static_cast<std::size_t>(axis)] = K;
  Tensor out = empty(oshape, x.dtype());
  {
    Tensor xc = x.detach().contiguous();
    const detail::AxisSplit s = detail::split_axis(x.shape(), axis);
    const std::size_t es = element_size(x.dtype());
    const auto* px = static_cast<const char*>(xc.raw_data());
    auto* po = static_cast<char*>(out.raw_data());
    const std::int64_t* pi = idx.data_ptr<std::int64_t>();
    const std::size_t block = static_cast<std::size_t>(s.inner) * es;
    for (std::int64_t o = 0; o < s.outer; ++o)
      for (std::int64_t k = 0; k < K; ++k)
        std::memcpy(po + static_cast<std::size_t>(o * K + k) * block,
                    px + static_cast<std::size_t>(o * s.n + pi[k]) * block, block);
  }
  record_op<PickBackward>({&x}, {&out}, [&](PickBackward& n) {
    n.index = n.save(idx);
    n.kind = Pick::index_select;
    n.in_shape = x.shape();
    n.axis = axis;
  });
  jvp_op("index_select", {&x}, out, [&] { return index_select(tangent(x), axis, idx); });
  return out;
}

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  if (autograd::any_batched(cond, a, b))
    return autograd::vmap_op(
        "where", {cond, a, b},
        autograd::elementwise_rule(
            [](const Tensor& c, const Tensor& x, const Tensor& y) { return where(c, x, y); }));
  check(cond.dtype() == Dtype::boolean, "where: condition must be a bool tensor, got ",
        dtype_name(cond.dtype()), " ", cond.shape());
  detail::check_same_dtype(a, b, "where");
  const Shape shape = detail::broadcast_shapes(
      detail::broadcast_shapes(cond.shape(), a.shape(), "where"), b.shape(), "where");
  Tensor out = empty(shape, a.dtype());
  dispatch_all(a.dtype(), [&]<class T>() {
    T* po = out.data_ptr<T>();
    if (cond.shape() == shape && a.shape() == shape && b.shape() == shape && cond.is_contiguous() &&
        a.is_contiguous() && b.is_contiguous()) {
      const bool* pc = cond.data_ptr<bool>();
      const T* pa = a.data_ptr<T>();
      const T* pb = b.data_ptr<T>();
      for (std::int64_t i = 0, n = out.numel(); i < n; ++i) po[i] = pc[i] ? pa[i] : pb[i];
      return;
    }
    auto vo = detail::xview<T>(out);
    auto vc = detail::xview<bool>(detail::broadcast_view(cond, shape));
    auto va = detail::xview<T>(detail::broadcast_view(a, shape));
    auto vb = detail::xview<T>(detail::broadcast_view(b, shape));
    xt::noalias(vo) = xt::where(vc, va, vb);
  });
  record_op<WhereBackward>({&cond, &a, &b}, {&out}, [&](WhereBackward& n) {
    n.cond = n.save(cond);
    n.a_shape = a.shape();
    n.b_shape = b.shape();
  });
  // The tangents broadcast with the primals (tangent() gives zeros of each input's shape).
  jvp_op("where", {&a, &b}, out, [&] { return where(cond, tangent(a), tangent(b)); });
  return out;
}

std::vector<Tensor> unbind(const Tensor& x, std::int64_t axis_in) {
  if (autograd::any_batched(x))
    return autograd::vmap_op_multi("unbind", {x}, [&](const autograd::BatchedArgs& p) {
      return unbind(p[0], autograd::physical_dim(p, 0, axis_in, "unbind"));
    });
  check(x.dim() > 0, "unbind: expected a tensor with at least one dimension, got shape ",
        x.shape());
  const std::int64_t axis = detail::normalize_axis(axis_in, x.dim(), x.shape(), "unbind");
  const std::int64_t n = x.size(axis);
  std::vector<Tensor> outs;
  outs.reserve(static_cast<std::size_t>(n));
  {
    no_grad guard;
    Tensor xd = x.detach();
    for (std::int64_t i = 0; i < n; ++i) outs.push_back(squeeze(slice(xd, axis, i, i + 1), axis));
  }
  if (n > 0 && autograd::any_requires_grad({&x})) {
    auto node = xgrad::detail::make_pooled<UnbindBackward>();
    node->axis = axis;
    autograd::record(node, std::vector<Tensor>{x}, outs);
  }
  // Forward mode: the tangent of slice i is slice i of x's tangent (one unbind of it).
  if (n > 0 && autograd::any_tangent({&x})) {
    std::vector<Tensor> ts;
    {
      autograd::detail::PauseForward pause;
      ts = unbind(tangent(x), axis);
    }
    for (std::size_t i = 0; i < outs.size(); ++i) autograd::set_tangent(outs[i], ts[i], "unbind");
  }
  return outs;
}

}  // namespace xgrad

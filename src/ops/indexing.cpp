#include "xgrad/ops/indexing.hpp"

#include <cstring>

#include "detail/kernel.hpp"
#include "xgrad/autograd/grad_mode.hpp"
#include "xgrad/autograd/node.hpp"
#include "xgrad/ops/elementwise.hpp"
#include "xgrad/ops/shape.hpp"

namespace xgrad {

using autograd::Node;
using autograd::SavedVariable;
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

// [outer, n, inner] around `axis` of a shape.
struct Split {
  std::int64_t outer = 1, n = 1, inner = 1;
};
Split split(const Shape& shape, std::int64_t axis) {
  Split s;
  for (std::int64_t i = 0; i < axis; ++i) s.outer *= shape[static_cast<std::size_t>(i)];
  s.n = shape[static_cast<std::size_t>(axis)];
  for (std::size_t i = static_cast<std::size_t>(axis) + 1; i < shape.size(); ++i)
    s.inner *= shape[i];
  return s;
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

// ---- embedding ----------------------------------------------------------------------------

// Rows of a zero [V, D] tensor receive the sum of the gradient rows that looked them up.
Tensor embedding_backward(const Tensor& g, const Tensor& indices, std::int64_t V, std::int64_t D) {
  return dispatch_floating(g.dtype(), "embedding_backward", [&]<class T>() {
    Tensor gc = g.contiguous();
    Tensor out = zeros({V, D}, dtype_of<T>);
    const T* pg = gc.data_ptr<T>();
    const std::int64_t* pi = indices.data_ptr<std::int64_t>();
    T* po = out.data_ptr<T>();
    for (std::int64_t p = 0, n = indices.numel(); p < n; ++p) {
      T* row = po + pi[p] * D;
      const T* src = pg + p * D;
      for (std::int64_t j = 0; j < D; ++j) row[j] += src[j];
    }
    return out;
  });
}

struct EmbeddingBackward final : Node {
  SavedVariable indices;
  std::int64_t V = 0, D = 0;
  std::string_view name() const override { return "embedding"; }
  tensor_list apply(tensor_list&& g) override {
    return {embedding_backward(g[0], indices.unpack(name()).contiguous(), V, D)};
  }
  void release_saved() override { indices.reset(); }
};

// ---- gather -------------------------------------------------------------------------------

struct GatherBackward final : Node {
  SavedVariable index;
  Shape in_shape;
  std::int64_t axis = 0;
  std::string_view name() const override { return "gather"; }
  tensor_list apply(tensor_list&& g) override {
    Tensor idx = index.unpack(name()).contiguous();
    return {dispatch_floating(g[0].dtype(), "gather_backward", [&]<class T>() {
      Tensor gc = g[0].contiguous();
      Tensor out = zeros(in_shape, dtype_of<T>);
      const Shape st = out.strides();
      const T* pg = gc.data_ptr<T>();
      const std::int64_t* pi = idx.data_ptr<std::int64_t>();
      T* po = out.data_ptr<T>();
      const std::int64_t ax_stride = st[static_cast<std::size_t>(axis)];
      walk(idx.shape(), st, axis,
           [&](std::int64_t k, std::int64_t off) { po[off + pi[k] * ax_stride] += pg[k]; });
      return out;
    })};
  }
  void release_saved() override { index.reset(); }
};

// ---- index_select -------------------------------------------------------------------------

struct IndexSelectBackward final : Node {
  SavedVariable index;
  Shape in_shape;
  std::int64_t axis = 0;
  std::string_view name() const override { return "index_select"; }
  tensor_list apply(tensor_list&& g) override {
    Tensor idx = index.unpack(name()).contiguous();
    return {dispatch_floating(g[0].dtype(), "index_select_backward", [&]<class T>() {
      Tensor gc = g[0].contiguous();
      Tensor out = zeros(in_shape, dtype_of<T>);
      const Split s = split(in_shape, axis);
      const std::int64_t K = idx.numel();
      const T* pg = gc.data_ptr<T>();
      const std::int64_t* pi = idx.data_ptr<std::int64_t>();
      T* po = out.data_ptr<T>();
      for (std::int64_t o = 0; o < s.outer; ++o)
        for (std::int64_t k = 0; k < K; ++k) {
          T* dst = po + (o * s.n + pi[k]) * s.inner;
          const T* src = pg + (o * K + k) * s.inner;
          for (std::int64_t i = 0; i < s.inner; ++i) dst[i] += src[i];
        }
      return out;
    })};
  }
  void release_saved() override { index.reset(); }
};

// ---- where --------------------------------------------------------------------------------

struct WhereBackward final : Node {
  SavedVariable cond;
  Shape a_shape, b_shape;
  std::string_view name() const override { return "where"; }
  tensor_list apply(tensor_list&& g) override {
    Tensor c = cond.unpack(name());
    Tensor zero = scalar_tensor(0.0, g[0].dtype());
    tensor_list out(3);
    if (needs_input_grad(1)) out[1] = sum_to(where(c, g[0], zero), a_shape);
    if (needs_input_grad(2)) out[2] = sum_to(where(c, zero, g[0]), b_shape);
    return out;
  }
  void release_saved() override { cond.reset(); }
};

// ---- unbind -------------------------------------------------------------------------------

struct UnbindBackward final : Node {
  Shape in_shape;
  std::int64_t axis = 0;
  std::string_view name() const override { return "unbind"; }
  tensor_list apply(tensor_list&& g) override {
    Tensor out = zeros(in_shape, outputs().front().dtype);
    for (std::size_t i = 0; i < g.size(); ++i) {
      if (!g[i].defined()) continue;
      const auto k = static_cast<std::int64_t>(i);
      slice(out, axis, k, k + 1).copy_(unsqueeze(g[i], axis));
    }
    return {out};
  }
};

}  // namespace

Tensor embedding(const Tensor& indices, const Tensor& weight) {
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
  if (autograd::any_requires_grad({&weight})) {
    auto node = std::make_shared<EmbeddingBackward>();
    node->indices = SavedVariable(idx);
    node->V = V;
    node->D = D;
    autograd::record(node, {&weight}, {&out});
  }
  return out;
}

Tensor gather(const Tensor& x, std::int64_t axis_in, const Tensor& index) {
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
  if (autograd::any_requires_grad({&x})) {
    auto node = std::make_shared<GatherBackward>();
    node->index = SavedVariable(idx);
    node->in_shape = x.shape();
    node->axis = axis;
    autograd::record(node, {&x}, {&out});
  }
  return out;
}

Tensor index_select(const Tensor& x, std::int64_t axis_in, const Tensor& index) {
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
    const Split s = split(x.shape(), axis);
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
  if (autograd::any_requires_grad({&x})) {
    auto node = std::make_shared<IndexSelectBackward>();
    node->index = SavedVariable(idx);
    node->in_shape = x.shape();
    node->axis = axis;
    autograd::record(node, {&x}, {&out});
  }
  return out;
}

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
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
  if (autograd::any_requires_grad({&a, &b})) {
    auto node = std::make_shared<WhereBackward>();
    node->cond = SavedVariable(cond);
    node->a_shape = a.shape();
    node->b_shape = b.shape();
    autograd::record(node, {&cond, &a, &b}, {&out});
  }
  return out;
}

std::vector<Tensor> unbind(const Tensor& x, std::int64_t axis_in) {
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
    auto node = std::make_shared<UnbindBackward>();
    node->in_shape = x.shape();
    node->axis = axis;
    autograd::record(node, std::vector<Tensor>{x}, outs);
  }
  return outs;
}

}  // namespace xgrad

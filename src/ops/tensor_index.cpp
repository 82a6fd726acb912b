#include "xgrad/ops/tensor_index.hpp"

#include <algorithm>
#include <string>

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
using indexing::TensorIndex;

namespace {

struct ViewSpec {
  Shape shape, strides;
  std::int64_t offset = 0;
};

// Python's rules for one slice of a dimension of size n: the first position and the length.
std::pair<std::int64_t, std::int64_t> slice_bounds(const indexing::Slice& s, std::int64_t n) {
  auto bound = [n](const std::optional<std::int64_t>& v, std::int64_t dflt) {
    if (!v) return dflt;
    std::int64_t b = *v < 0 ? *v + n : *v;
    return std::clamp<std::int64_t>(b, 0, n);
  };
  const std::int64_t start = bound(s.start(), 0);
  const std::int64_t stop = bound(s.stop(), n);
  const std::int64_t len = stop > start ? (stop - start + s.step() - 1) / s.step() : 0;
  return {start, len};
}

// The shape, strides and offset of x[indices].
ViewSpec resolve(const Tensor& x, const std::vector<TensorIndex>& indices, const char* op) {
  const Shape& in = x.shape();
  const Shape& st = x.strides();
  const auto ndim = static_cast<std::int64_t>(in.size());
  std::int64_t named = 0, ellipses = 0;
  for (const auto& ix : indices) {
    if (ix.is_integer() || ix.is_slice()) ++named;
    if (ix.is_ellipsis()) ++ellipses;
  }
  if (ellipses > 1) fail(op, ": an index list can hold only one Ellipsis, got ", ellipses);
  if (named > ndim)
    fail(op, ": too many indices for a tensor of shape ", in, ": ", named, " dimensions indexed");
  ViewSpec v;
  v.offset = x.offset();
  std::size_t d = 0;  // the next input dimension
  auto keep = [&] {
    v.shape.push_back(in[d]);
    v.strides.push_back(st[d]);
    ++d;
  };
  auto insert = [&](std::int64_t size) {
    v.shape.push_back(size);
    v.strides.push_back(d < in.size() ? st[d] * in[d] : 1);
  };
  for (const auto& ix : indices) {
    switch (ix.kind()) {
      case TensorIndex::Kind::none:
        insert(1);
        break;
      case TensorIndex::Kind::boolean:
        insert(ix.boolean() ? 1 : 0);
        break;
      case TensorIndex::Kind::ellipsis:
        for (std::int64_t k = 0; k < ndim - named; ++k) keep();
        break;
      case TensorIndex::Kind::integer: {
        const std::int64_t n = in[d];
        const std::int64_t i = ix.integer();
        if (i < -n || i >= n)
          fail(op, ": index ", i, " is out of range for dimension ", d, " with size ", n,
               " (tensor of shape ", in, ")");
        v.offset += (i < 0 ? i + n : i) * st[d];
        ++d;
        break;
      }
      case TensorIndex::Kind::slice: {
        const auto& s = ix.slice();
        if (s.step() <= 0)
          fail(op, ": slice step must be positive, got ", s.step(), " (dimension ", d,
               " of a tensor of shape ", in, ")");
        auto [start, len] = slice_bounds(s, in[d]);
        v.shape.push_back(len);
        v.strides.push_back(st[d] * s.step());
        if (len > 0) v.offset += start * st[d];
        ++d;
        break;
      }
    }
  }
  while (d < in.size()) keep();
  return v;
}

Tensor make_view(const Tensor& x, ViewSpec v) {
  return Tensor(xgrad::detail::make_pooled<TensorImpl>(x.storage(), std::move(v.shape),
                                                       std::move(v.strides), v.offset, x.dtype()));
}

Tensor index_impl(const Tensor& x, const std::vector<TensorIndex>& indices, const char* op);

// ---- index_backward: a fused backward with its own derivatives -----------------------------
// The gradient of x[indices] is g written into the indexed region of zeros of x's shape. As an
// op of its own it is linear in g: its vjp indexes the incoming gradient again, its jvp applies
// it to g's tangent; the first-order backward stays one zero fill and one strided copy.

struct IndexSpec {
  Shape in_shape;
  std::vector<TensorIndex> indices;
  const char* op = "index";
};

Tensor index_backward(const Tensor& g, const IndexSpec& s);

struct IndexBackwardBackward final : Node {
  IndexSpec spec;
  std::string_view name() const override { return "index_backward"; }
  tensor_list apply(tensor_list&& g) override { return {index_impl(g[0], spec.indices, spec.op)}; }
};

Tensor index_backward(const Tensor& g, const IndexSpec& s) {
  Tensor out = zeros(s.in_shape, g.dtype());
  {
    no_grad guard;  // the write is the kernel; the node below is its derivative
    make_view(out, resolve(out, s.indices, s.op)).copy_(g.detach());
  }
  record_op<IndexBackwardBackward>({&g}, {&out}, [&](IndexBackwardBackward& n) { n.spec = s; });
  jvp_op("index_backward", {&g}, out, [&] { return index_backward(tangent(g), s); });
  return out;
}

struct IndexBackward final : Node {
  IndexSpec spec;
  std::string_view name() const override { return spec.op; }
  tensor_list apply(tensor_list&& g) override { return {index_backward(g[0], spec)}; }
};

Tensor index_impl(const Tensor& x, const std::vector<TensorIndex>& indices, const char* op) {
  Tensor out = make_view(x, resolve(x, indices, op));
  record_op<IndexBackward>({&x}, {&out}, [&](IndexBackward& n) {
    n.spec = IndexSpec{x.shape(), indices, op};
  });
  jvp_op(op, {&x}, out, [&] { return index_impl(tangent(x), indices, op); });
  return out;
}

// A value's shape without its leading dimensions of size 1: torch's setitem drops them before
// broadcasting (x[0, :2] = [[7, 8]] writes a [2] region).
Shape strip_leading_ones(const Shape& s) {
  std::size_t k = 0;
  while (k < s.size() && s[k] == 1) ++k;
  return Shape(s.begin() + static_cast<std::ptrdiff_t>(k), s.end());
}

// The region x[indices] as a plain view, checked to accept a value of shape `value_shape`.
Tensor region_for(const Tensor& x, const std::vector<TensorIndex>& indices,
                  const Shape& value_shape, const char* op) {
  const Shape value = strip_leading_ones(value_shape);
  Tensor region = make_view(x, resolve(x, indices, op));
  const Shape& r = region.shape();
  bool ok = value.size() <= r.size();
  for (std::size_t i = 0; ok && i < value.size(); ++i) {
    const std::int64_t vd = value[value.size() - 1 - i], rd = r[r.size() - 1 - i];
    ok = vd == rd || vd == 1;
  }
  if (!ok)
    fail(op, ": cannot broadcast a value of shape ", value_shape,
         " into the indexed region of shape ", r, " (tensor of shape ", x.shape(), ")");
  return region;
}

void check_not_recorded(const Tensor& x, const Tensor* value) {
  if (!is_grad_enabled()) return;
  if (x.requires_grad())
    fail("index_put_: in-place ops are not recorded by autograd; on a tensor that requires grad (",
         x.shape(), ") use it under xgrad::no_grad, or use the out-of-place index_put");
  if (value && value->requires_grad())
    fail("index_put_: in-place ops are not recorded by autograd; with a value that requires grad (",
         value->shape(), ") use it under xgrad::no_grad, or use the out-of-place index_put");
}

// x's gradient is g with the written region zeroed (index_put of a zero); the value's is the
// region of g summed back to the value's shape. Both are recorded ops, so this vjp is
// differentiable again.
struct IndexPutBackward final : Node {
  std::vector<TensorIndex> indices;
  Shape value_shape;
  Dtype value_dtype = Dtype::float32;
  std::string_view name() const override { return "index_put"; }
  tensor_list apply(tensor_list&& g) override {
    tensor_list out(2);
    if (needs_input_grad(0))
      out[0] = xgrad::index_put(g[0], indices, scalar_tensor(0.0, g[0].dtype()));
    if (needs_input_grad(1)) {
      Tensor region = index_impl(g[0], indices, "index_put");
      // clone: the gradient must not alias g (a leaf's accumulation may own and grow it).
      out[1] = sum_to(region, strip_leading_ones(value_shape))
                   .clone()
                   .reshape(value_shape)
                   .to(value_dtype);
    }
    return out;
  }
};

}  // namespace

Tensor index(const Tensor& x, const std::vector<TensorIndex>& indices) {
  if (autograd::any_batched(x))
    return autograd::vmap_fallback(
        "index", {x}, [&](const std::vector<Tensor>& s) { return index(s[0], indices); });
  return index_impl(x, indices, "index");
}

Tensor select(const Tensor& x, std::int64_t dim, std::int64_t i) {
  if (autograd::any_batched(x))
    return autograd::vmap_op("select", {x}, [&](const autograd::BatchedArgs& p) {
      return select(p[0], autograd::physical_dim(p, 0, dim, "select"), i);
    });
  const auto d = detail::normalize_axis(dim, x.dim(), x.shape(), "select");
  std::vector<TensorIndex> indices(static_cast<std::size_t>(d), indexing::Slice());
  indices.emplace_back(i);
  return index_impl(x, indices, "select");
}

Tensor& index_put_(Tensor& x, const std::vector<TensorIndex>& indices, const Tensor& value) {
  check_not_recorded(x, &value);
  Tensor region = region_for(x, indices, value.shape(), "index_put_");
  no_grad guard;
  region.copy_(value.detach().reshape(strip_leading_ones(value.shape())));  // bumps x's version
  return x;
}

Tensor& index_put_(Tensor& x, const std::vector<TensorIndex>& indices, double value) {
  check_not_recorded(x, nullptr);
  Tensor region = region_for(x, indices, {}, "index_put_");
  no_grad guard;
  region.fill_(value);
  return x;
}

Tensor index_put(const Tensor& x, const std::vector<TensorIndex>& indices, const Tensor& value) {
  if (autograd::any_batched(x, value))
    return autograd::vmap_fallback("index_put", {x, value}, [&](const std::vector<Tensor>& s) {
      return index_put(s[0], indices, s[1]);
    });
  Tensor out;
  {
    no_grad guard;
    out = x.detach().clone();
    region_for(out, indices, value.shape(), "index_put")
        .copy_(value.detach().reshape(strip_leading_ones(value.shape())));
  }
  if (autograd::any_requires_grad({&x, &value})) {
    check(is_floating(x.dtype()),
          "index_put: a value that requires grad needs a float tensor, got ", dtype_name(x.dtype()),
          " ", x.shape());
  }
  record_op<IndexPutBackward>({&x, &value}, {&out}, [&](IndexPutBackward& n) {
    n.indices = indices;
    n.value_shape = value.shape();
    n.value_dtype = value.dtype();
  });
  // The same write on the tangents: x's tangent with the region replaced by value's (zero
  // when value has none; a non-float value never has one).
  jvp_op("index_put", {&x, &value}, out, [&] {
    Tensor tv = autograd::has_tangent(value) ? tangent(value) : scalar_tensor(0.0, x.dtype());
    return xgrad::index_put(tangent(x), indices, tv);
  });
  return out;
}

// ---- Tensor members -----------------------------------------------------------------------

Tensor Tensor::index(const std::vector<TensorIndex>& indices) const {
  return xgrad::index(*this, indices);
}
Tensor Tensor::operator[](std::int64_t i) const {
  return xgrad::select(*this, 0, i);
}
Tensor Tensor::select(std::int64_t dim, std::int64_t i) const {
  return xgrad::select(*this, dim, i);
}
Tensor& Tensor::index_put_(const std::vector<TensorIndex>& indices, const Tensor& value) {
  return xgrad::index_put_(*this, indices, value);
}
Tensor& Tensor::index_put_(const std::vector<TensorIndex>& indices, double value) {
  return xgrad::index_put_(*this, indices, value);
}

}  // namespace xgrad

// var and std: the forward in float64 and two passes, one node each whose vjp and jvp are
// written with xgrad ops (differentiable to any order).
#include "xgrad/ops/variance.hpp"

#include "ops/reduction_util.hpp"
#include "xgrad/autograd/batching.hpp"
#include "xgrad/autograd/forward_ad.hpp"
#include "xgrad/autograd/grad_mode.hpp"
#include "xgrad/autograd/node.hpp"
#include "xgrad/ops/comparison.hpp"
#include "xgrad/ops/elementwise.hpp"
#include "xgrad/ops/indexing.hpp"
#include "xgrad/ops/reduction.hpp"
#include "xgrad/ops/shape.hpp"

namespace xgrad {

using autograd::jvp_op;
using autograd::Node;
using autograd::record_op;
using autograd::Saved;
using autograd::tangent;
using autograd::tensor_list;

namespace {

struct VarReduction {
  Shape axes;          // normalised, sorted
  Shape kept_shape;    // the input's shape with the reduced axes of size 1
  double divisor = 0;  // N − correction, clamped at 0
};

VarReduction reduction_of(const Tensor& x, const Shape& dim, double correction, const char* op) {
  check(x.defined(), op, ": undefined input");
  check(is_floating(x.dtype()), op, ": expected a float32 or float64 tensor, got ",
        dtype_name(x.dtype()), " of shape ", x.shape());
  check(correction >= 0, op, ": correction must be non-negative, got ", correction);
  VarReduction r;
  r.axes = dim.empty() ? detail::all_axes(x) : detail::normalize_axes(dim, x.shape(), op);
  r.kept_shape = detail::reduced_shape(x.shape(), r.axes, /*keepdim=*/true);
  double n = 1;
  for (auto a : r.axes) n *= static_cast<double>(x.shape()[static_cast<std::size_t>(a)]);
  r.divisor = std::max(n - correction, 0.0);
  return r;
}

// x − mean(x) over the reduced axes (broadcast back), with ops.
Tensor centred(const Tensor& x, const VarReduction& r) {
  return sub(x, mean(x, r.axes, /*keepdim=*/true));
}

// Σ(x − mean)²/divisor in float64 (two passes), cast back to x's dtype.
Tensor variance_value(const Tensor& x, const VarReduction& r, bool keepdim) {
  no_grad guard;
  Tensor xd = x.detach().to(Dtype::float64);
  Tensor c = centred(xd, r);
  return div(sum(mul(c, c), r.axes, keepdim), scalar_tensor(r.divisor, Dtype::float64))
      .to(x.dtype());
}

struct VarBackward final : Node {
  Saved x;
  VarReduction r;
  std::string_view name() const override { return "var"; }
  tensor_list apply(tensor_list&& g) override {
    Tensor xv = saved(x);
    Tensor ge = reshape(g[0], r.kept_shape);
    return {mul(ge, centred(xv, r)) * (2.0 / r.divisor)};
  }
};

struct StdBackward final : Node {
  Saved x, out;
  VarReduction r;
  std::string_view name() const override { return "std"; }
  tensor_list apply(tensor_list&& g) override {
    Tensor xv = saved(x);
    Tensor sd = reshape(saved(out), r.kept_shape);
    Tensor ge = reshape(g[0], r.kept_shape);
    // grad·(x − mean)/(divisor·std), 0 where std is 0 (safe denominator: no 0·inf in the
    // derivative of the unselected branch).
    Tensor pos = gt(sd, 0.0);
    Tensor safe = where(pos, sd, ones_like(sd.detach()));
    Tensor d = div(mul(ge, centred(xv, r)), safe) * (1.0 / r.divisor);
    return {where(pos, d, zeros_like(d.detach()))};
  }
};

}  // namespace

Tensor var(const Tensor& input, const Shape& dim, double correction, bool keepdim) {
  if (autograd::any_batched(input))
    return autograd::vmap_op("var", {input}, [&](const autograd::BatchedArgs& p) {
      return var(p[0], autograd::physical_dims(p, 0, dim, "var"), correction, keepdim);
    });
  const VarReduction r = reduction_of(input, dim, correction, "var");
  Tensor out = variance_value(input, r, keepdim);
  record_op<VarBackward>({&input}, {&out}, [&](VarBackward& n) {
    n.x = n.save(input);
    n.r = r;
  });
  jvp_op("var", {&input}, out, [&] {
    return sum(mul(centred(input, r), tangent(input)), r.axes, keepdim) * (2.0 / r.divisor);
  });
  return out;
}

Tensor std(const Tensor& input, const Shape& dim, double correction, bool keepdim) {
  if (autograd::any_batched(input))
    return autograd::vmap_op("std", {input}, [&](const autograd::BatchedArgs& p) {
      return xgrad::std(p[0], autograd::physical_dims(p, 0, dim, "std"), correction, keepdim);
    });
  const VarReduction r = reduction_of(input, dim, correction, "std");
  Tensor out = sqrt(variance_value(input, r, keepdim));
  record_op<StdBackward>({&input}, {&out}, [&](StdBackward& n) {
    n.x = n.save(input);
    n.out = n.save(out);
    n.r = r;
  });
  jvp_op("std", {&input}, out, [&] {
    // d std = Σ(x − mean)·dx / (divisor·std), 0 where std is 0.
    Tensor num = sum(mul(centred(input, r), tangent(input)), r.axes, keepdim) * (1.0 / r.divisor);
    Tensor pos = gt(out, 0.0);
    return where(pos, div(num, where(pos, out, ones_like(out))), zeros_like(out));
  });
  return out;
}

}  // namespace xgrad

// max_pool2d, avg_pool2d and adaptive_avg_pool2d as differentiable ops, to any order. The
// kernels are in pool_kernels.cpp; this file holds the geometry checks and the autograd side.
//
// Every derivative here is linear and comes in adjoint pairs, each an op of its own (its
// kernel, its node when grad mode is on and an input requires grad, its jvp):
//   max pool:  y = gather(x, idx)     its backward scatter(gy, idx)    (idx: the argmax)
//   avg pool:  y = avg(x)             its backward avg_backward(gy)
// The vjp of each member of a pair is the other one, and its jvp is itself applied to the
// tangent. The argmax indices are piecewise constant in x: their derivative is zero, so
// scatter and gather have none with respect to x (torch's max_pool2d_with_indices_backward
// gives zeros for self).
#include "xgrad/ops/pool.hpp"

#include <limits>

#include "ops/pool_kernels.hpp"
#include "xgrad/autograd/batching.hpp"
#include "xgrad/autograd/forward_ad.hpp"
#include "xgrad/autograd/grad_mode.hpp"
#include "xgrad/autograd/node.hpp"

namespace xgrad {

using autograd::jvp_op;
using autograd::Node;
using autograd::record_op;
using autograd::Saved;
using autograd::tangent;
using autograd::tensor_list;
using detail::PoolGeom;

namespace {

PoolGeom pool_geometry(const char* op, const Tensor& input, Size2 kernel, Size2 stride,
                       Size2 padding) {
  check(input.defined(), op, ": input is undefined");
  if (input.dim() != 4) fail(op, ": expected a 4-D input [N,C,H,W], got ", input.shape());
  check(kernel.h >= 1 && kernel.w >= 1, op, ": kernel size must be at least 1, got ", kernel,
        " (input ", input.shape(), ")");
  check(stride.h >= 1 && stride.w >= 1, op, ": stride must be at least 1, got ", stride, " (input ",
        input.shape(), ")");
  check(padding.h >= 0 && padding.w >= 0, op, ": padding must be non-negative, got ", padding,
        " (input ", input.shape(), ")");
  check(padding.h <= kernel.h / 2 && padding.w <= kernel.w / 2, op, ": padding ", padding,
        " must be at most half of the kernel ", kernel, " (input ", input.shape(), ")");
  const Shape& xs = input.shape();
  PoolGeom g{.N = xs[0],
             .C = xs[1],
             .H = xs[2],
             .W = xs[3],
             .kH = kernel.h,
             .kW = kernel.w,
             .sH = stride.h,
             .sW = stride.w,
             .pH = padding.h,
             .pW = padding.w};
  const std::int64_t padH = g.H + 2 * g.pH, padW = g.W + 2 * g.pW;
  check(g.kH <= padH && g.kW <= padW, op, ": kernel ", kernel, " is larger than the padded input ",
        padH, "x", padW, " (input ", input.shape(), ", padding ", padding, ")");
  g.OH = (padH - g.kH) / g.sH + 1;
  g.OW = (padW - g.kW) / g.sW + 1;
  return g;
}

// ---- the argmax indices ------------------------------------------------------------------------
// The max pool kernels work with int32 indices (the lane width of the AVX2 kernels). xgrad has
// no int32 dtype, so they live in a tensor of 4-byte float32 elements used only as storage:
// saved on the nodes like any tensor, they are freed by release_saved() with the rest of the
// graph (a second backward then throws) and shared, not copied, by the nodes of the higher
// derivatives. Their values are only ever read through index_data(), never as floats.

Tensor index_buffer(const PoolGeom& g) {
  return empty({g.planes() * g.out_plane()}, float32);
}

std::int32_t* index_data(const Tensor& indices) {
  return static_cast<std::int32_t*>(indices.raw_data());
}

// ---- the ops, declared ahead of the nodes whose vjps call them --------------------------------

Tensor max_pool2d_gather(const Tensor& t, const Tensor& indices, const PoolGeom& g);
Tensor max_pool2d_scatter(const Tensor& gy, const Tensor& indices, const PoolGeom& g);
Tensor avg_pool_op(const Tensor& x, const PoolGeom& g, bool adaptive);
Tensor avg_pool_backward_op(const Tensor& gy, const PoolGeom& g, bool adaptive);

// ---- nodes: the vjp of each op --------------------------------------------------------------

// A gather by stored argmax indices: max_pool2d itself (y = gather(x, idx)) and the gather that
// is the vjp of max pooling's backward and max pooling's jvp ("max_pool2d_gather"). Linear in
// its input; its vjp is the scatter gx = scatter(gy, idx).
struct MaxPool2dBackward final : Node {
  Saved indices;  // [N·C·OH·OW], flat index into its H·W input plane of each output's element
  PoolGeom geom;
  const char* op = "max_pool2d";
  std::string_view name() const override { return op; }
  tensor_list apply(tensor_list&& grads) override {
    return {max_pool2d_scatter(grads[0], saved(indices), geom)};
  }
};

// max pooling's backward gx = scatter(gy, idx): linear in gy, its vjp the gather.
struct MaxPool2dBackwardBackward final : Node {
  Saved indices;
  PoolGeom geom;
  std::string_view name() const override { return "max_pool2d_backward"; }
  tensor_list apply(tensor_list&& grads) override {
    return {max_pool2d_gather(grads[0], saved(indices), geom)};
  }
};

struct AvgPoolBackward final : Node {
  PoolGeom geom;
  bool adaptive = false;
  std::string_view name() const override { return adaptive ? "adaptive_avg_pool2d" : "avg_pool2d"; }
  tensor_list apply(tensor_list&& grads) override {
    return {avg_pool_backward_op(grads[0], geom, adaptive)};
  }
};

struct AvgPoolBackwardBackward final : Node {
  PoolGeom geom;
  bool adaptive = false;
  std::string_view name() const override {
    return adaptive ? "adaptive_avg_pool2d_backward" : "avg_pool2d_backward";
  }
  tensor_list apply(tensor_list&& grads) override {
    return {avg_pool_op(grads[0], geom, adaptive)};
  }
};

// ---- the ops ----------------------------------------------------------------------------------

Tensor max_pool2d_gather(const Tensor& t, const Tensor& indices, const PoolGeom& g) {
  Tensor out = detail::max_pool_gather_kernel(g, t, index_data(indices));
  record_op<MaxPool2dBackward>({&t}, {&out}, [&](MaxPool2dBackward& n) {
    n.indices = n.save(indices);
    n.geom = g;
    n.op = "max_pool2d_gather";
  });
  jvp_op("max_pool2d_gather", {&t}, out, [&] { return max_pool2d_gather(tangent(t), indices, g); });
  return out;
}

Tensor max_pool2d_scatter(const Tensor& gy, const Tensor& indices, const PoolGeom& g) {
  Tensor out = detail::max_pool_scatter_kernel(g, gy, index_data(indices));
  record_op<MaxPool2dBackwardBackward>({&gy}, {&out}, [&](MaxPool2dBackwardBackward& n) {
    n.indices = n.save(indices);
    n.geom = g;
  });
  jvp_op("max_pool2d_backward", {&gy}, out,
         [&] { return max_pool2d_scatter(tangent(gy), indices, g); });
  return out;
}

Tensor avg_pool_op(const Tensor& x, const PoolGeom& g, bool adaptive) {
  Tensor out = detail::avg_pool_kernel(g, x, adaptive);
  record_op<AvgPoolBackward>({&x}, {&out}, [&](AvgPoolBackward& n) {
    n.geom = g;
    n.adaptive = adaptive;
  });
  jvp_op(adaptive ? "adaptive_avg_pool2d" : "avg_pool2d", {&x}, out,
         [&] { return avg_pool_op(tangent(x), g, adaptive); });
  return out;
}

Tensor avg_pool_backward_op(const Tensor& gy, const PoolGeom& g, bool adaptive) {
  Tensor out = detail::avg_pool_backward_kernel(g, gy, adaptive);
  record_op<AvgPoolBackwardBackward>({&gy}, {&out}, [&](AvgPoolBackwardBackward& n) {
    n.geom = g;
    n.adaptive = adaptive;
  });
  jvp_op(adaptive ? "adaptive_avg_pool2d_backward" : "avg_pool2d_backward", {&gy}, out,
         [&] { return avg_pool_backward_op(tangent(gy), g, adaptive); });
  return out;
}

}  // namespace

Tensor max_pool2d(const Tensor& input, Size2 kernel) {
  return max_pool2d(input, kernel, kernel, 0);
}

Tensor max_pool2d(const Tensor& input, Size2 kernel, Size2 stride, Size2 padding) {
  if (autograd::any_batched(input))
    return autograd::vmap_op("max_pool2d", {input}, [&](const autograd::BatchedArgs& p) {
      return autograd::fold_images(p[0], [&](const Tensor& x) { return max_pool2d(x, kernel, stride, padding); });
    });
  const PoolGeom g = pool_geometry("max_pool2d", input, kernel, stride, padding);
  check(g.in_plane() <= std::numeric_limits<std::int32_t>::max(), "max_pool2d: input ",
        input.shape(), " has planes of more than 2^31 elements");
  // The indices are kept only when a derivative will read them: backward or the jvp.
  const bool keep = autograd::any_requires_grad({&input}) || autograd::any_tangent({&input});
  const Tensor indices = keep ? index_buffer(g) : Tensor();
  Tensor y = detail::max_pool_kernel(g, input, keep ? index_data(indices) : nullptr);
  record_op<MaxPool2dBackward>({&input}, {&y}, [&](MaxPool2dBackward& n) {
    n.indices = n.save(indices);
    n.geom = g;
  });
  // The jvp gathers the tangent at the argmax (the indices do not move for a small step).
  jvp_op("max_pool2d", {&input}, y, [&] { return max_pool2d_gather(tangent(input), indices, g); });
  return y;
}

Tensor avg_pool2d(const Tensor& input, Size2 kernel) {
  return avg_pool2d(input, kernel, kernel, 0);
}

Tensor avg_pool2d(const Tensor& input, Size2 kernel, Size2 stride, Size2 padding) {
  if (autograd::any_batched(input))
    return autograd::vmap_op("avg_pool2d", {input}, [&](const autograd::BatchedArgs& p) {
      return autograd::fold_images(p[0], [&](const Tensor& x) { return avg_pool2d(x, kernel, stride, padding); });
    });
  const PoolGeom g = pool_geometry("avg_pool2d", input, kernel, stride, padding);
  return avg_pool_op(input, g, false);
}

Tensor adaptive_avg_pool2d(const Tensor& input, Size2 output_size) {
  if (autograd::any_batched(input))
    return autograd::vmap_op("adaptive_avg_pool2d", {input}, [&](const autograd::BatchedArgs& p) {
      return autograd::fold_images(p[0], [&](const Tensor& x) { return adaptive_avg_pool2d(x, output_size); });
    });
  const char* op = "adaptive_avg_pool2d";
  check(input.defined(), op, ": input is undefined");
  if (input.dim() != 4) fail(op, ": expected a 4-D input [N,C,H,W], got ", input.shape());
  check(input.shape()[2] >= 1 && input.shape()[3] >= 1, op,
        ": expected an input with non-empty H and W, got ", input.shape());
  check(output_size.h >= 0 && output_size.w >= 0, op, ": output size must be non-negative, got ",
        output_size, " (input ", input.shape(), ")");
  PoolGeom g;
  g.N = input.shape()[0];
  g.C = input.shape()[1];
  g.H = input.shape()[2];
  g.W = input.shape()[3];
  g.OH = output_size.h;
  g.OW = output_size.w;
  return avg_pool_op(input, g, true);
}

}  // namespace xgrad

// conv2d and its backward as differentiable ops. The kernels (im2col + GEMM) are in
// conv_kernels.cpp; this file holds the autograd side.
//
// conv2d is bilinear in (input, weight) and linear in the bias, and so are the two halves of
// its backward: the input gradient bwd_input(gy, w) (a transposed convolution) and the weight
// gradient bwd_weight(x, gy) (a correlation of x with gy). They are the adjoints of conv2d in
// each argument:
//   ⟨conv2d(x, w), gy⟩ = ⟨x, bwd_input(gy, w)⟩ = ⟨w, bwd_weight(x, gy)⟩,
// so every derivative of any of the three is written with the three again, at the same
// geometry (torch's convolution_backward and its double backward do the same). Each is an op
// of its own: its fused kernel, then its node when grad mode is on and an input requires grad,
// then its jvp. The first-order backward (create_graph off) keeps the fused kernel that
// computes the input, weight and bias gradients in one pass over the batch.
#include "xgrad/ops/conv.hpp"

#include "ops/conv_kernels.hpp"
#include "xgrad/autograd/batching.hpp"
#include "xgrad/autograd/forward_ad.hpp"
#include "xgrad/autograd/grad_mode.hpp"
#include "xgrad/autograd/node.hpp"
#include "xgrad/ops/elementwise.hpp"
#include "xgrad/ops/reduction.hpp"

namespace xgrad {

using autograd::has_tangent;
using autograd::jvp_op;
using autograd::Node;
using autograd::record_op;
using autograd::Saved;
using autograd::tangent;
using autograd::tensor_list;
using detail::ConvGeom;

namespace {

// The three ops, defined below the nodes whose vjps call them.
Tensor conv2d_op(const Tensor& x, const Tensor& w, const Tensor& b, const ConvGeom& g);
Tensor conv2d_backward_input(const Tensor& gy, const Tensor& w, const ConvGeom& g);
Tensor conv2d_backward_weight(const Tensor& x, const Tensor& gy, const ConvGeom& g);

// a + b where either may be undefined (a term that is zero).
Tensor add_terms(const Tensor& a, const Tensor& b) {
  if (!a.defined()) return b;
  if (!b.defined()) return a;
  return add(a, b);
}

// The tangent of a bilinear op f(a, b): f(ȧ, b) + f(a, ḃ), over the inputs that carry one.
template <class F>
Tensor bilinear_tangent(const Tensor& a, const Tensor& b, F f) {
  Tensor r;
  if (has_tangent(a)) r = f(tangent(a), b);
  if (has_tangent(b)) r = add_terms(r, f(a, tangent(b)));
  return r;
}

// ---- nodes: the vjp of each op --------------------------------------------------------------

struct Conv2dBackward final : Node {
  Saved input, weight;
  ConvGeom geom;
  std::string_view name() const override { return "conv2d"; }
  tensor_list apply(tensor_list&& grads) override {
    const bool need_x = needs_input_grad(0), need_w = needs_input_grad(1),
               need_b = needs_input_grad(2);
    const Tensor& gy = grads[0];
    const Tensor x = saved(input), w = saved(weight);
    if (!autograd::any_requires_grad({&gy, &x, &w}) && !autograd::any_tangent({&gy, &x, &w})) {
      // Nothing to record (create_graph off): the fused kernel, all gradients in one pass.
      detail::ConvGrads r = detail::conv_backward_kernel(geom, gy, x, w, need_x, need_w, need_b);
      return {std::move(r.input), std::move(r.weight), std::move(r.bias)};
    }
    tensor_list out(3);
    if (need_x) out[0] = conv2d_backward_input(gy, w, geom);
    if (need_w) out[1] = conv2d_backward_weight(x, gy, geom);
    if (need_b) out[2] = sum(gy, Shape{0, 2, 3});
    return out;
  }
};

// gx = bwd_input(gy, w): ⟨gx, ggx⟩ = ⟨gy, conv2d(ggx, w)⟩ = ⟨w, bwd_weight(ggx, gy)⟩.
struct Conv2dBackwardInputBackward final : Node {
  Saved grad_output, weight;
  ConvGeom geom;
  std::string_view name() const override { return "conv2d_backward_input"; }
  tensor_list apply(tensor_list&& grads) override {
    tensor_list out(2);
    if (needs_input_grad(0)) out[0] = conv2d_op(grads[0], saved(weight), Tensor(), geom);
    if (needs_input_grad(1)) out[1] = conv2d_backward_weight(grads[0], saved(grad_output), geom);
    return out;
  }
};

// gw = bwd_weight(x, gy): ⟨gw, ggw⟩ = ⟨x, bwd_input(gy, ggw)⟩ = ⟨gy, conv2d(x, ggw)⟩.
struct Conv2dBackwardWeightBackward final : Node {
  Saved input, grad_output;
  ConvGeom geom;
  std::string_view name() const override { return "conv2d_backward_weight"; }
  tensor_list apply(tensor_list&& grads) override {
    tensor_list out(2);
    if (needs_input_grad(0)) out[0] = conv2d_backward_input(saved(grad_output), grads[0], geom);
    if (needs_input_grad(1)) out[1] = conv2d_op(saved(input), grads[0], Tensor(), geom);
    return out;
  }
};

// ---- the ops --------------------------------------------------------------------------------
// Each: the kernel, record_op (the node and what its vjp needs), jvp_op (bilinear: the
// tangent is the op applied to one tangent and the other primal, summed over the inputs that
// carry one).

Tensor conv2d_op(const Tensor& x, const Tensor& w, const Tensor& b, const ConvGeom& g) {
  Tensor out = detail::conv_forward_kernel(g, x, w, b);
  record_op<Conv2dBackward>({&x, &w, &b}, {&out}, [&](Conv2dBackward& n) {
    n.geom = g;
    if (n.needs_input_grad(1)) n.input = n.save(x);
    if (n.needs_input_grad(0)) n.weight = n.save(w);
  });
  // d conv2d(x, w, b) = conv2d(dx, w, db) + conv2d(x, dw). The bias tangent rides on one of
  // the two convolutions (as its bias), so it costs no broadcast of its own.
  jvp_op("conv2d", {&x, &w, &b}, out, [&] {
    Tensor tb = b.defined() && has_tangent(b) ? tangent(b) : Tensor();
    Tensor r;
    if (has_tangent(x)) {
      r = conv2d_op(tangent(x), w, tb, g);
      tb = Tensor();
    }
    if (has_tangent(w) || tb.defined()) r = add_terms(r, conv2d_op(x, tangent(w), tb, g));
    return r;
  });
  return out;
}

Tensor conv2d_backward_input(const Tensor& gy, const Tensor& w, const ConvGeom& g) {
  Tensor out = detail::conv_backward_kernel(g, gy, Tensor(), w, true, false, false).input;
  record_op<Conv2dBackwardInputBackward>({&gy, &w}, {&out}, [&](Conv2dBackwardInputBackward& n) {
    n.geom = g;
    if (n.needs_input_grad(1)) n.grad_output = n.save(gy);
    if (n.needs_input_grad(0)) n.weight = n.save(w);
  });
  jvp_op("conv2d_backward_input", {&gy, &w}, out, [&] {
    return bilinear_tangent(
        gy, w, [&](const Tensor& a, const Tensor& b) { return conv2d_backward_input(a, b, g); });
  });
  return out;
}

Tensor conv2d_backward_weight(const Tensor& x, const Tensor& gy, const ConvGeom& g) {
  Tensor out = detail::conv_backward_kernel(g, gy, x, Tensor(), false, true, false).weight;
  record_op<Conv2dBackwardWeightBackward>({&x, &gy}, {&out}, [&](Conv2dBackwardWeightBackward& n) {
    n.geom = g;
    if (n.needs_input_grad(0)) n.grad_output = n.save(gy);
    if (n.needs_input_grad(1)) n.input = n.save(x);
  });
  jvp_op("conv2d_backward_weight", {&x, &gy}, out, [&] {
    return bilinear_tangent(
        x, gy, [&](const Tensor& a, const Tensor& b) { return conv2d_backward_weight(a, b, g); });
  });
  return out;
}

}  // namespace

Tensor conv2d(const Tensor& input, const Tensor& weight, const Tensor& bias, Size2 stride,
              Size2 padding, Size2 dilation, std::int64_t groups) {
  if (autograd::any_batched(input, weight, bias))
    return autograd::vmap_op("conv2d", {input, weight, bias}, [&](const autograd::BatchedArgs& p) {
      auto conv = [&](const Tensor& x, const Tensor& w, const Tensor& b) {
        return conv2d(x, w, b, stride, padding, dilation, groups);
      };
      if (p.batched(1) || p.batched(2))  // weights per sample: one convolution per sample
        return autograd::map_samples(p, [&](const std::vector<Tensor>& s) { return conv(s[0], s[1], s[2]); });
      return autograd::fold_images(p[0], [&](const Tensor& x) { return conv(x, p[1], p[2]); });
    });
  check(input.defined() && weight.defined(), "conv2d: input and weight must be defined");
  const auto shapes = [&] {
    std::string s =
        "input " + format_shape(input.shape()) + ", weight " + format_shape(weight.shape());
    if (bias.defined()) s += ", bias " + format_shape(bias.shape());
    return s;
  };
  if (input.dim() != 4) fail("conv2d: expected a 4-D input [N,C,H,W], got ", shapes());
  if (weight.dim() != 4) fail("conv2d: expected a 4-D weight [O,C/groups,kH,kW], got ", shapes());
  if (input.dtype() != weight.dtype() || (bias.defined() && bias.dtype() != input.dtype()))
    fail("conv2d: expected tensors of the same dtype, got ", dtype_name(input.dtype()), " ",
         input.shape(), " and ", dtype_name(weight.dtype()), " ", weight.shape(),
         bias.defined() ? std::string(" and ") + std::string(dtype_name(bias.dtype())) + " " +
                              format_shape(bias.shape())
                        : std::string());
  check(stride.h >= 1 && stride.w >= 1, "conv2d: stride must be at least 1, got ", stride, " (",
        shapes(), ")");
  check(dilation.h >= 1 && dilation.w >= 1, "conv2d: dilation must be at least 1, got ", dilation,
        " (", shapes(), ")");
  check(padding.h >= 0 && padding.w >= 0, "conv2d: padding must be non-negative, got ", padding,
        " (", shapes(), ")");
  check(groups >= 1, "conv2d: groups must be at least 1, got ", groups, " (", shapes(), ")");
  const Shape& xs = input.shape();
  const Shape& ws = weight.shape();
  ConvGeom g{.N = xs[0],
             .C = xs[1],
             .H = xs[2],
             .W = xs[3],
             .O = ws[0],
             .kH = ws[2],
             .kW = ws[3],
             .sH = stride.h,
             .sW = stride.w,
             .pH = padding.h,
             .pW = padding.w,
             .dH = dilation.h,
             .dW = dilation.w,
             .groups = groups};
  check(g.kH >= 1 && g.kW >= 1 && g.O >= 1, "conv2d: weight ", weight.shape(),
        " has an empty dimension (", shapes(), ")");
  check(g.C % groups == 0, "conv2d: groups ", groups, " does not divide the ", g.C,
        " input channels (", shapes(), ")");
  check(g.O % groups == 0, "conv2d: groups ", groups, " does not divide the ", g.O,
        " output channels (", shapes(), ")");
  check(weight.shape()[1] * groups == g.C, "conv2d: channel mismatch: input has ", g.C,
        " channels but weight expects ", weight.shape()[1] * groups, " (", weight.shape()[1],
        " per group x ", groups, " groups) (", shapes(), ")");
  if (bias.defined())
    check(bias.dim() == 1 && bias.shape()[0] == g.O, "conv2d: bias must have shape [", g.O,
          "], got ", bias.shape(), " (", shapes(), ")");
  const std::int64_t ekH = g.dH * (g.kH - 1) + 1, ekW = g.dW * (g.kW - 1) + 1;
  const std::int64_t padH = g.H + 2 * g.pH, padW = g.W + 2 * g.pW;
  check(ekH <= padH && ekW <= padW, "conv2d: kernel ", g.kH, "x", g.kW, " (dilated ", ekH, "x", ekW,
        ") is larger than the padded input ", padH, "x", padW, " (", shapes(), ", padding ",
        padding, ", dilation ", dilation, ")");
  g.OH = (padH - ekH) / g.sH + 1;
  g.OW = (padW - ekW) / g.sW + 1;

  return conv2d_op(input, weight, bias, g);
}

}  // namespace xgrad

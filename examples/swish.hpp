// A user-defined op, written outside the library: swish(x) = x · sigmoid(βx)
// (Ramachandran, Zoph & Le 2017). docs/extending.md walks through this file.
#pragma once

#include "xgrad/autograd/function.hpp"
#include "xgrad/xgrad.hpp"

struct Swish : xgrad::autograd::Function<Swish> {
  static constexpr std::string_view name = "swish";

  // x: any shape, float32 or float64; beta: a plain number (not differentiated).
  static xgrad::Tensor forward(xgrad::autograd::FunctionCtx& ctx, const xgrad::Tensor& x,
                               double beta) {
    ctx.save_for_backward({x});
    ctx.saved_data["beta"] = beta;
    return x * xgrad::sigmoid(x * beta);
  }

  // d/dx [x·s(βx)] = s + βx·s·(1 − s). s is recomputed from the saved input, not saved from
  // forward: forward records nothing, so a tensor made there has no history, and a backward
  // built on it would not be differentiable again (create_graph, second derivatives).
  static xgrad::Tensor derivative(const xgrad::Tensor& x, double beta) {
    xgrad::Tensor s = xgrad::sigmoid(x * beta);
    return s + x * s * (1.0 - s) * beta;
  }

  static xgrad::autograd::tensor_list backward(xgrad::autograd::FunctionCtx& ctx,
                                               const xgrad::autograd::tensor_list& grads) {
    const xgrad::Tensor x = ctx.saved_tensors()[0];
    return {grads[0] * derivative(x, ctx.saved_data.at("beta"))};
  }

  // Forward mode (func::jvp, jacfwd): the output's tangent from the input's.
  static xgrad::Tensor jvp(xgrad::autograd::FunctionCtx& ctx,
                           const xgrad::autograd::tensor_list& tangents) {
    const xgrad::Tensor x = ctx.saved_tensors()[0];
    return tangents[0] * derivative(x, ctx.saved_data.at("beta"));
  }
};

inline xgrad::Tensor swish(const xgrad::Tensor& x, double beta = 1.0) {
  return Swish::apply(x, beta);
}

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
    xgrad::Tensor s = xgrad::sigmoid(x * beta);
    ctx.save_for_backward({x, s});
    ctx.saved_data["beta"] = beta;
    return x * s;
  }

  // d/dx [x·s(βx)] = s + βx·s·(1 − s)
  static xgrad::autograd::tensor_list backward(xgrad::autograd::FunctionCtx& ctx,
                                               const xgrad::autograd::tensor_list& grads) {
    auto saved = ctx.saved_tensors();
    const xgrad::Tensor& x = saved[0];
    const xgrad::Tensor& s = saved[1];
    const double beta = ctx.saved_data.at("beta");
    xgrad::Tensor local = s + x * s * (1.0 - s) * beta;
    return {grads[0] * local};
  }
};

inline xgrad::Tensor swish(const xgrad::Tensor& x, double beta = 1.0) {
  return Swish::apply(x, beta);
}

// Function: the public way to add an op from outside the library — write its forward and its
// backward, and use it like any built-in op (it records a graph node with its own name).
#pragma once

#include <cstddef>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "xgrad/autograd/forward_ad.hpp"
#include "xgrad/autograd/grad_mode.hpp"
#include "xgrad/autograd/node.hpp"

namespace xgrad::autograd {

/// What an op's forward leaves for its backward (torch's AutogradContext).
class FunctionCtx {
 public:
  /// Saves tensors (inputs or the output) for backward. They are saved as SavedVariables:
  /// backward refuses them, with an error naming the op, if they were modified in place.
  void save_for_backward(std::vector<Tensor> tensors);
  /// The saved tensors, in the order given. Throws xgrad::Error after the graph was freed
  /// (a second backward without retain_graph) or when one was modified in place.
  std::vector<Tensor> saved_tensors() const;
  /// Non-tensor values the backward needs (hyperparameters, sizes), by name.
  std::map<std::string, double> saved_data;
  /// True when Tensor input i of apply() needs a gradient (backward may skip the others).
  bool needs_input_grad(std::size_t i) const {
    return node_ != nullptr && node_->needs_input_grad(i);
  }

 private:
  template <class F>
  friend class FunctionNode;
  template <class F>
  friend struct Function;
  // Moves what forward saved into the node's store, once the node is recorded (so that a
  // saved output is known as one and does not keep its own node alive).
  void commit(Node& node);
  std::vector<Tensor> pending_;
  std::vector<Saved> handles_;
  const Node* node_ = nullptr;
};

/// The graph node of a user-defined op F.
template <class F>
class FunctionNode final : public Node {
 public:
  FunctionNode() { ctx.node_ = this; }
  std::string_view name() const override { return F::name; }
  bool once_differentiable() const override {
    if constexpr (requires { F::once_differentiable; }) {
      return F::once_differentiable;
    } else {
      return false;
    }
  }
  tensor_list apply(tensor_list&& grads) override {
    tensor_list out = F::backward(ctx, grads);
    if (out.size() != next_edges().size())
      fail(F::name, ": backward returned ", out.size(), " gradients, but forward took ",
           next_edges().size(), " tensor inputs");
    return out;
  }
  FunctionCtx ctx;
};

/// Base of a user-defined op, as torch::autograd::Function. Derive `struct MyOp :
/// Function<MyOp>` with
///   static constexpr std::string_view name = "my_op";
///   static Tensor forward(FunctionCtx& ctx, const Tensor& x, ...);   // any extra arguments
///   static tensor_list backward(FunctionCtx& ctx, const tensor_list& grad_outputs);
/// and call MyOp::apply(x, ...). forward runs with recording off (write it with any xgrad
/// ops); backward gets the gradient of the output and returns one gradient per Tensor
/// argument of apply, in order (an undefined Tensor for "no gradient"), each of its input's
/// shape. Written with xgrad ops, backward is itself differentiable: backward with
/// create_graph records it (double backward works through the op). A backward made of raw
/// loops should say so with `static constexpr bool once_differentiable = true;`, so that
/// create_graph through it throws instead of giving wrong second derivatives. For forward
/// mode (forward_ad.hpp, func::jvp, func::jacfwd) add
///   static Tensor jvp(FunctionCtx& ctx, const tensor_list& tangents);  // one per Tensor arg
/// returning the output's tangent (tangents of inputs without one are zeros); without it, a
/// dual input makes apply throw. Check it with xgrad::gradcheck and gradgradcheck;
/// docs/extending.md walks through one.
template <class F>
struct Function {
  template <class... Args>
  static Tensor apply(const Args&... args) {
    std::vector<Tensor> inputs;
    (collect(inputs, args), ...);
    auto node = std::make_shared<FunctionNode<F>>();
    Tensor out;
    {
      no_grad guard;               // forward's own ops record nothing ...
      detail::PauseForward pause;  // ... and propagate no tangents: jvp() says what to
      out = F::forward(node->ctx, args...);
    }
    check(out.defined(), F::name, ": forward returned an undefined tensor");
    if (any_requires_grad(inputs)) {
      // An output that is one of the inputs (an identity op) gets its own handle, so that
      // recording does not rewrite the input's history.
      for (const Tensor& in : inputs)
        if (in.defined() && in.impl() == out.impl()) out = out.detach();
      std::vector<Tensor> outs{out};
      record(node, inputs, outs);
      out = outs[0];
      node->ctx.commit(*node);
    }
    if (detail::fw_propagating()) {
      bool dual = false;
      for (const Tensor& in : inputs) dual = dual || has_tangent(in);
      if (dual) {
        if constexpr (requires(FunctionCtx & c, const tensor_list& t) { F::jvp(c, t); }) {
          tensor_list tangents;
          for (const Tensor& in : inputs) tangents.push_back(tangent(in));
          Tensor t;
          {
            detail::PauseForward pause;
            t = F::jvp(node->ctx, tangents);
          }
          set_tangent(out, t, F::name);
        } else {
          fail(F::name,
               ": an input carries a forward-mode tangent, but the Function defines no "
               "static jvp(ctx, tangents)");
        }
      }
    }
    return out;
  }

 private:
  template <class A>
  static void collect(std::vector<Tensor>& inputs, const A& a) {
    if constexpr (std::is_same_v<std::decay_t<A>, Tensor>) inputs.push_back(a);
  }
};

}  // namespace xgrad::autograd

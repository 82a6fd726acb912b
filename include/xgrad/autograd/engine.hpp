// The backward engine: a dependency-counted walk over the graph in reverse recording order.
#pragma once

#include <optional>
#include <vector>

#include "xgrad/tensor.hpp"

namespace xgrad {

/// Backpropagates from `outputs`, each seeded with the matching entry of `seeds` (an undefined
/// or missing seed means ones, allowed only for one-element outputs), and accumulates into the
/// .grad() of every leaf that requires grad. Walks the graph with an explicit queue (no
/// recursion) in decreasing sequence number, summing the gradients that reach each node
/// before running it. Frees saved tensors unless retain_graph (which defaults to
/// create_graph, as in torch). With create_graph the backward pass is itself recorded: the
/// gradients it accumulates have a graph and can be differentiated again (double backward,
/// gradient penalties, Hessian-vector products), to any order.
/// Throws xgrad::Error when an output does not require grad, a seed's shape differs from its
/// output's, an implicit seed is asked for a non-scalar, the graph was already freed, or
/// create_graph meets a node whose backward is once_differentiable.
void backward(const std::vector<Tensor>& outputs, const std::vector<Tensor>& seeds = {},
              std::optional<bool> retain_graph = std::nullopt, bool create_graph = false);

/// Returns d(outputs)/d(inputs) — one gradient per input, same shapes — without touching any
/// .grad() (torch.autograd.grad, same argument order). `seeds` are the grad_outputs (vector-
/// Jacobian product: Σ seedᵢ · ∂outputᵢ/∂input). With create_graph the returned gradients
/// carry a graph and can be differentiated again; retain_graph defaults to create_graph. An
/// input the outputs do not depend on gets an undefined tensor when allow_unused, else an
/// error is thrown.
std::vector<Tensor> grad(const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs,
                         const std::vector<Tensor>& seeds = {},
                         std::optional<bool> retain_graph = std::nullopt, bool create_graph = false,
                         bool allow_unused = false);

}  // namespace xgrad

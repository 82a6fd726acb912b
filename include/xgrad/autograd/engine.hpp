// The backward engine: a dependency-counted walk over the graph in reverse recording order.
#pragma once

#include <vector>

#include "xgrad/tensor.hpp"

namespace xgrad {

/// Backpropagates from `outputs`, each seeded with the matching entry of `seeds` (an undefined
/// or missing seed means ones, allowed only for one-element outputs), and accumulates into the
/// .grad() of every leaf that requires grad. Walks the graph with an explicit queue (no
/// recursion) in decreasing sequence number, summing the gradients that reach each node
/// before running it. Frees saved tensors unless retain_graph.
/// Throws xgrad::Error when an output does not require grad, a seed's shape differs from its
/// output's, an implicit seed is asked for a non-scalar, or the graph was already freed.
void backward(const std::vector<Tensor>& outputs, const std::vector<Tensor>& seeds = {},
              bool retain_graph = false);

/// Returns d(outputs)/d(inputs) — one gradient per input, same shapes — without touching any
/// .grad() (torch.autograd.grad). An input the outputs do not depend on gets an undefined
/// tensor when allow_unused, else an error is thrown.
std::vector<Tensor> grad(const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs,
                         const std::vector<Tensor>& seeds = {}, bool retain_graph = false,
                         bool allow_unused = false);

}  // namespace xgrad

// Activation checkpointing: trade compute for memory by keeping only a block's inputs for
// backward and recomputing the block's activations when its gradient is needed.
#pragma once

#include <functional>
#include <vector>

#include "xgrad/tensor.hpp"

namespace xgrad {

/// Runs `fn(inputs)` without keeping its activations for backward, and recomputes them when
/// backward reaches the result (activation checkpointing: Chen et al. 2016, "Training Deep
/// Nets with Sublinear Memory Cost"; torch.utils.checkpoint.checkpoint with
/// use_reentrant=True). Returns fn's output, with the same value, shape and dtype (an input or
/// a captured parameter returned as it is comes back as a fresh alias, see the overload
/// below).
///
/// Forward (grad mode on, an input requiring grad): fn runs under no_grad, and one graph node
/// (named "checkpoint") is recorded whose inputs are `inputs` and whose output is fn's result. It
/// keeps only the inputs (as saved tensors: modifying one in place before backward is an error)
/// and, with preserve_rng_state, a copy of the default generator's state taken before fn ran.
/// Backward: the node sets the default generator to that copy (so dropout inside fn draws the
/// same mask again), runs fn once more with grad mode on, on aliases of the inputs that
/// require grad as the originals do (inputs of any shape and dtype; those that need no
/// gradient go in detached), puts the caller's generator state back (the caller's
/// random stream is the same as without checkpoint), and backpropagates the incoming gradient
/// through the recomputed graph. The inputs' gradients continue along the outer graph; the
/// parameters fn uses (weights of modules it captures) get their .grad() accumulated as in a
/// plain backward. Gradients are bit-identical to those without checkpoint when fn is
/// deterministic given the generator's state. grad() with respect to the inputs (or tensors
/// before them) works too. With create_graph, the recomputation and its backward are
/// recorded and the aliases are then connected to the real inputs, so the gradients can be
/// differentiated again, completely (through ops whose backward is differentiable).
/// preserve_rng_state = false skips the generator copy: the recomputation then draws new
/// numbers (another dropout mask: wrong gradients) and advances the caller's stream.
///
/// Memory: between forward and backward a checkpointed block holds its inputs, its output and
/// the node (plus 2.5 KB of generator state); during its backward, one block's recomputed
/// graph. Checkpointing blocks of k of n layers keeps about n/k block inputs plus one block's
/// activations at a time (k ≈ √n minimises it, as in Chen et al.). Compute: fn runs twice.
///
/// When grad mode is off, nothing is recorded: fn runs as a plain call. When no input requires
/// grad (the first block of a network, on data), fn runs recorded once to learn whether its
/// result needs a graph (parameters inside fn): if not, its result is returned as is; if so,
/// that graph is dropped at once (its activations freed) and the checkpoint node is recorded
/// as above, with no input edge, so the parameters get their gradients from the recomputation.
/// The result then requires grad exactly as without checkpoint. Torch's reentrant checkpoint
/// instead runs fn unrecorded, warns ("None of the inputs have requires_grad=True") and gives
/// those parameters no gradient at all.
///
/// Not supported, as in torch's reentrant variant: grad() (torch.autograd.grad) of parameters
/// used only inside fn — the outer graph does not reach them, so grad() finds them unused,
/// and a grad() that runs the node still accumulates into those parameters' .grad() during the
/// recomputation; fn that modifies its inputs in place; fn whose result depends on state other
/// than its inputs, its parameters and the default generator (it would be recomputed
/// differently). Forward hooks of modules inside fn run twice (forward and recomputation).
///
/// Throws xgrad::Error when fn returns an undefined tensor, when the recomputation's result
/// does not match the forward's (a nondeterministic fn: another number of outputs, or another
/// shape), and what fn itself throws. A second backward through the node without
/// retain_graph throws as for any freed graph.
Tensor checkpoint(const std::function<Tensor(const std::vector<Tensor>&)>& fn,
                  const std::vector<Tensor>& inputs, bool preserve_rng_state = true);

/// checkpoint() of a function with several outputs: one node, one output slot per tensor fn
/// returns. An output that is one of the inputs, or a tensor that already requires grad (a
/// captured parameter), is returned as a fresh alias of the same data, as torch does.
/// Errors as checkpoint() above; fn must return at least one tensor, all defined.
std::vector<Tensor> checkpoint(
    const std::function<std::vector<Tensor>(const std::vector<Tensor>&)>& fn,
    const std::vector<Tensor>& inputs, bool preserve_rng_state = true);

}  // namespace xgrad

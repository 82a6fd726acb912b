// xgrad::func — torch.func's function transforms: grad, grad_and_value, vjp, jvp, jacrev,
// jacfwd, hessian, hvp, vhp, and functional_call (a module run with other tensors as its
// parameters). Each transform takes a function and returns a function (or runs it once, for
// vjp / jvp / hvp / vhp), so they compose: grad(grad(f)), jacrev(jacrev(f)),
// jacfwd(jacrev(f)) (= hessian(f), as torch.func computes it).
//
// How they work here: reverse-mode transforms run f on their own leaves (detached aliases of
// the inputs, requires_grad) and call xgrad::grad (engine.hpp); forward-mode ones run f inside
// a forward_ad::dual_level on make_dual inputs (forward_ad.hpp). A transform applied to inputs
// that require grad, or called while an outer reverse transform is running f, records its own
// backward (create_graph) and differentiates the inputs themselves instead of aliases, so its
// results stay differentiable by the outer transform (and by plain backward). An input that
// carries a tangent (inside an outer jacfwd) keeps it on the leaf, so forward-over-reverse
// works.
//
// Limit: forward mode has one dual level at a time (forward_ad.hpp), so a forward-mode
// transform (jvp, jacfwd, hvp, hessian) inside another one — jacfwd(jacfwd(f)),
// jvp of a hessian — throws xgrad::Error; use jacfwd(jacrev(f)), jacrev(jacfwd(f)) or
// jacrev(jacrev(f)).
//
// Source: the torch.func documentation (torch 2.x; functorch in torch 1.13) and
// torch.autograd.functional.hvp / vhp for hvp's and vhp's (output, product) results.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "xgrad/nn/module.hpp"
#include "xgrad/tensor.hpp"

namespace xgrad::func {

/// A function of several tensors with one tensor output.
using Fn = std::function<Tensor(const std::vector<Tensor>&)>;
/// A function of one tensor (the convenient overloads).
using UnaryFn = std::function<Tensor(const Tensor&)>;
/// A function of several tensors with several outputs (what grad and jacrev return).
using MultiFn = std::function<std::vector<Tensor>(const std::vector<Tensor>&)>;
/// A function returning a table of Jacobians J[output i][argnum j] (what jacrev / jacfwd of a
/// MultiFn and hessian return).
using JacobianFn = std::function<std::vector<std::vector<Tensor>>(const std::vector<Tensor>&)>;
/// What vjp returns besides the output: cotangent (the output's shape) → one gradient per
/// primal (the primal's shape).
using VjpFn = std::function<std::vector<Tensor>(const Tensor& cotangent)>;

// ---- reverse mode ------------------------------------------------------------------------

/// torch.func.grad: a function returning ∂f/∂inputs[a] for each a in argnums (each of that
/// input's shape), for f with a one-element output. argnums index the inputs; negative ones
/// count from the end. An input f does not use gets zeros. Calling the returned function
/// throws xgrad::Error when f's output has more than one element, an argnum is out of range
/// or repeated, or an argnum input is not float32/float64.
MultiFn grad(Fn f, std::vector<std::int64_t> argnums = {0});
/// torch.func.grad of a function of one tensor: x (any shape) → ∂f/∂x (x's shape).
UnaryFn grad(UnaryFn f);

/// torch.func.grad_and_value: as grad, returning (gradients, f's value) from one call of f.
std::function<std::pair<std::vector<Tensor>, Tensor>(const std::vector<Tensor>&)> grad_and_value(
    Fn f, std::vector<std::int64_t> argnums = {0});
/// grad_and_value of a function of one tensor: x → (∂f/∂x, f(x)).
std::function<std::pair<Tensor, Tensor>(const Tensor&)> grad_and_value(UnaryFn f);

/// torch.func.vjp: runs f(primals) once and returns (output, vjp_fn), where vjp_fn(v) = vᵀ·J
/// — one tensor per primal, of its shape — for a cotangent v of the output's shape (vjp_fn
/// throws xgrad::Error for another shape). vjp_fn may be called any number of times. Every
/// primal is differentiated (torch.func.vjp has no argnums).
std::pair<Tensor, VjpFn> vjp(Fn f, const std::vector<Tensor>& primals);
/// vjp of a function of one tensor: (f(x), v → vᵀ·∂f/∂x).
std::pair<Tensor, UnaryFn> vjp(UnaryFn f, const Tensor& primal);

/// torch.func.jacrev: a function returning the Jacobian of f w.r.t. each argnum input, of
/// shape output.shape ++ input.shape (torch's layout), by reverse mode: one backward per
/// output element through one recorded forward (retain_graph). Best when the output is small.
/// Errors as grad (any output size is allowed).
MultiFn jacrev(Fn f, std::vector<std::int64_t> argnums = {0});
/// jacrev of a function of one tensor: x → ∂f/∂x, shape f(x).shape ++ x.shape.
UnaryFn jacrev(UnaryFn f);
/// jacrev of a function with several outputs: J[i][j] = ∂output_i/∂inputs[argnums[j]], shape
/// output_i.shape ++ input.shape.
JacobianFn jacrev(MultiFn f, std::vector<std::int64_t> argnums = {0});

// ---- forward mode ------------------------------------------------------------------------

/// torch.func.jvp: runs f once on dual inputs (forward_ad) and returns (output, J·t), the
/// directional derivative along `tangents` (one per primal, same shapes; J·t has the output's
/// shape). Throws xgrad::Error when the counts or shapes differ, or inside another
/// forward-mode transform / dual_level (one dual level at a time).
std::pair<Tensor, Tensor> jvp(Fn f, const std::vector<Tensor>& primals,
                              const std::vector<Tensor>& tangents);
/// jvp of a function of one tensor: (f(x), ∂f/∂x · t).
std::pair<Tensor, Tensor> jvp(UnaryFn f, const Tensor& primal, const Tensor& tangent);

/// torch.func.jacfwd: the Jacobian (shape output.shape ++ input.shape) by forward mode, one
/// dual pass of f per element of the argnum inputs. Best when the inputs are small. Throws as
/// jacrev, and inside another forward-mode transform: jacfwd(jacfwd(f)) is refused (one dual
/// level at a time); write jacfwd(jacrev(f)) instead.
MultiFn jacfwd(Fn f, std::vector<std::int64_t> argnums = {0});
/// jacfwd of a function of one tensor: x → ∂f/∂x, shape f(x).shape ++ x.shape.
UnaryFn jacfwd(UnaryFn f);
/// jacfwd of a function with several outputs: J[i][j] as jacrev's.
JacobianFn jacfwd(MultiFn f, std::vector<std::int64_t> argnums = {0});

// ---- second order ------------------------------------------------------------------------

/// torch.func.hessian = jacfwd(jacrev(f, argnums), argnums) (forward-over-reverse):
/// H[i][j] = ∂²f/∂inputs[argnums[i]]∂inputs[argnums[j]], of shape
/// output.shape ++ input_i.shape ++ input_j.shape. Throws as jacfwd.
JacobianFn hessian(Fn f, std::vector<std::int64_t> argnums = {0});
/// hessian of a function of one tensor: x → H, shape f(x).shape ++ x.shape ++ x.shape.
UnaryFn hessian(UnaryFn f);

/// torch.autograd.functional.hvp: (f(primals), H·v) for a one-element f, with H·v one tensor
/// per primal (its shape): ∇f at primals, differentiated along v by forward mode
/// (forward-over-reverse: one forward and one backward pass, no Hessian built). Throws
/// xgrad::Error when f's output has more than one element, counts or shapes differ, or
/// inside another forward-mode transform.
std::pair<Tensor, std::vector<Tensor>> hvp(Fn f, const std::vector<Tensor>& primals,
                                           const std::vector<Tensor>& tangents);
/// hvp of a function of one tensor.
std::pair<Tensor, Tensor> hvp(UnaryFn f, const Tensor& primal, const Tensor& tangent);

/// torch.autograd.functional.vhp: (f(primals), vᵀ·H) by reverse-over-reverse: the gradient is
/// recorded (create_graph) and differentiated again with v as its seed. Equal to hvp for the
/// (symmetric) Hessians of twice continuously differentiable f. Throws as hvp (except for
/// forward mode, which vhp does not use).
std::pair<Tensor, std::vector<Tensor>> vhp(Fn f, const std::vector<Tensor>& primals,
                                           const std::vector<Tensor>& v);
/// vhp of a function of one tensor.
std::pair<Tensor, Tensor> vhp(UnaryFn f, const Tensor& primal, const Tensor& v);

// ---- vectorizing map ----------------------------------------------------------------------

/// Where each input of a vmapped function is mapped: a dimension (negative counts from the
/// end), or std::nullopt for an input shared by every sample (torch.func's None).
using InDims = std::vector<std::optional<std::int64_t>>;

/// torch.func.vmap: the function f mapped over a batch dimension of its inputs, as if f ran on
/// each sample and the results were stacked — in one pass, through each op's batching rule
/// (autograd/batching.hpp). inputs[i]'s dimension in_dims[i] (all 0 when in_dims is empty) is
/// the batch dimension, of the same size B in every mapped input; f sees one sample. Each
/// result gets the batch dimension at out_dims[k] (all 0 when empty); a result that does not
/// depend on the batch is expanded to it. vmap composes with every transform:
/// vmap(grad(loss)) gives per-sample gradients, vmap(vmap(f)) maps two dimensions.
/// An op without a batching rule runs once per sample (a notice on stderr, once per op).
/// Throws xgrad::Error when no input is mapped, when in_dims has the wrong length or a
/// dimension is out of range, when mapped sizes differ, or, inside f, when a sample's data is
/// read directly (item(), data_ptr()): the error names the op.
/// Source: torch.func.vmap (functorch; He, Zou et al.), JAX's vmap.
MultiFn vmap(MultiFn f, InDims in_dims = {}, std::vector<std::int64_t> out_dims = {});
/// vmap of a function with one result.
Fn vmap(Fn f, InDims in_dims = {}, std::int64_t out_dim = 0);
/// vmap of a function of one tensor.
UnaryFn vmap(UnaryFn f, std::optional<std::int64_t> in_dim = 0, std::int64_t out_dim = 0);

// ---- modules -----------------------------------------------------------------------------

/// torch.func.functional_call: module(inputs) with the tensors of `params_and_buffers`
/// (keyed as named_parameters() / named_buffers() / state_dict() name them: "fc1.weight")
/// standing in for the module's own parameters and buffers during the call. Names left out
/// keep the module's tensors. The substitutes are used as they are (not copied): gradients
/// flow to them, and a buffer the forward updates in place (batch norm's running stats in
/// training mode) is updated in the substitute. The module's own tensors are put back when the
/// call returns or throws. inputs: what Module::operator() takes (the module's documented
/// shape). Like torch, shapes and dtypes are not compared with the module's own: the forward's
/// ops report a mismatch. Throws xgrad::Error naming the key for an unknown name, an
/// undefined tensor, or a parameter/buffer whose module field was not bound at registration
/// (Module::register_parameter(name, member, t); every built-in module binds its fields) —
/// nothing is changed then — and whatever forward throws.
Tensor functional_call(nn::Module& module, const std::map<std::string, Tensor>& params_and_buffers,
                       const Tensor& inputs);

}  // namespace xgrad::func

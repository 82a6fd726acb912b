// torch.func's transforms on top of the engine (reverse mode) and forward_ad (forward mode).
#include <cstring>

#include "xgrad/autograd/batching.hpp"
#include "xgrad/autograd/engine.hpp"
#include "xgrad/autograd/forward_ad.hpp"
#include "xgrad/autograd/grad_mode.hpp"
#include "xgrad/func.hpp"
#include "xgrad/ops/elementwise.hpp"

namespace xgrad::func {

namespace fwd = autograd::forward_ad;

namespace {

// How many reverse-mode transforms are running f on this thread. An inner transform called
// while one is (grad(grad(f)), or a closure over an outer leaf) must record its backward so
// that the outer one can differentiate its result, even when its own inputs do not require
// grad.
thread_local int g_reverse_depth = 0;

struct ReverseScope {
  ReverseScope() { ++g_reverse_depth; }
  ~ReverseScope() { --g_reverse_depth; }
  ReverseScope(const ReverseScope&) = delete;
  ReverseScope& operator=(const ReverseScope&) = delete;
};

// argnums → input indices, checked (torch: in range, unique).
std::vector<std::size_t> input_indices(const std::vector<std::int64_t>& argnums,
                                       const std::vector<Tensor>& inputs, const char* op) {
  check(!argnums.empty(), op, ": argnums must not be empty");
  const auto n = static_cast<std::int64_t>(inputs.size());
  std::vector<std::size_t> idx;
  for (std::int64_t a : argnums) {
    check(a >= -n && a < n, op, ": argnum ", a, " is out of range for ", n, " input(s)");
    const auto i = static_cast<std::size_t>(a < 0 ? a + n : a);
    for (std::size_t k : idx) check(k != i, op, ": argnum ", a, " is given twice");
    const Tensor& x = inputs[i];
    check(x.defined(), op, ": input ", i, " is undefined");
    check(is_floating(x.dtype()), op, ": input ", i, " must be float32 or float64 to be ",
          "differentiated, got ", dtype_name(x.dtype()));
    idx.push_back(i);
  }
  return idx;
}

// Whether this transform's results must stay differentiable by something outside it: grad
// mode is on and an input requires grad, or an outer reverse transform is running.
bool nested_reverse(const std::vector<Tensor>& inputs) {
  if (!is_grad_enabled()) return false;
  if (g_reverse_depth > 0) return true;
  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

// The tensor f gets for a differentiated input. Nested: the input itself, so that the graph
// reaches the outer transform's leaves. Else a fresh leaf sharing its data (the input is
// never modified); a tangent the input carries (an outer jacfwd) stays on it.
Tensor reverse_input(const Tensor& x, bool nested) {
  if (nested && x.requires_grad()) return x;
  Tensor leaf = x.detach().requires_grad_();
  if (autograd::has_tangent(x)) leaf = fwd::make_dual(leaf, autograd::tangent(x));
  return leaf;
}

// A result handed back to the caller: with its graph when nested, else detached from the
// transform's private leaves — but keeping its tangent, for an outer jacfwd.
Tensor finish(const Tensor& t, bool nested) {
  if (!t.defined() || nested) return t;
  Tensor d = t.detach();
  if (autograd::has_tangent(t)) d = fwd::make_dual(d, autograd::tangent(t));
  return d;
}

std::vector<Tensor> run_f(const MultiFn& f, const std::vector<Tensor>& args) {
  ReverseScope scope;
  // torch.func.grad differentiates even under an outer no_grad (it respects only a no_grad
  // inside f).
  enable_grad on;
  return f(args);
}

// d(out)/d(wrt) seeded with `seed` (undefined: ones); zeros where out does not depend on an
// input (torch.func returns zeros, not None).
std::vector<Tensor> reverse_grads(const Tensor& out, const std::vector<Tensor>& wrt,
                                  const Tensor& seed, bool retain, bool create) {
  std::vector<Tensor> g;
  if (out.requires_grad()) {
    g = xgrad::grad({out}, wrt, seed.defined() ? std::vector<Tensor>{seed} : std::vector<Tensor>{},
                    retain, create, /*allow_unused=*/true);
  } else {
    g.resize(wrt.size());
  }
  for (std::size_t k = 0; k < wrt.size(); ++k)
    if (!g[k].defined()) g[k] = zeros(wrt[k].shape(), wrt[k].dtype());
  return g;
}

// A tensor of `shape` with 1 at flat index k and 0 elsewhere.
Tensor one_hot(const Shape& shape, Dtype d, std::int64_t k) {
  Tensor z = zeros(shape, d);
  dispatch_floating(d, "one_hot", [&]<class T>() { z.data_ptr<T>()[k] = T(1); });
  return z;
}

Shape concat(const Shape& a, const Shape& b) {
  Shape s = a;
  s.insert(s.end(), b.begin(), b.end());
  return s;
}

bool carries_derivative(const Tensor& t) {
  return t.requires_grad() || autograd::has_tangent(t);
}

// The Jacobian [out..., in...] from its rows (one gradient per output element, each of the
// input's shape). Rows that carry a graph or a tangent (nested transforms, forward-over-
// reverse) are combined with differentiable ops: J = Σ_r e_r ⊗ row_r, e_r one-hot of shape
// [out..., 1...] broadcast against row_r [in...]. Else the values are copied.
Tensor stack_rows(const std::vector<Tensor>& rows, const Shape& out_shape, const Shape& in_shape,
                  Dtype d) {
  const Shape jshape = concat(out_shape, in_shape);
  bool diff = false;
  // Batched rows (jacrev inside vmap) are combined with ops too: their data is the batch's.
  for (const Tensor& r : rows) diff = diff || carries_derivative(r) || autograd::is_batched(r);
  if (diff) {
    if (out_shape.empty()) return rows[0];
    Shape eshape = out_shape;
    eshape.resize(out_shape.size() + in_shape.size(), 1);
    Tensor j;
    for (std::size_t r = 0; r < rows.size(); ++r) {
      Tensor term = mul(one_hot(eshape, rows[r].dtype(), static_cast<std::int64_t>(r)), rows[r]);
      j = j.defined() ? add(j, term) : term;
    }
    return j.defined() ? j : zeros(jshape, d);
  }
  no_grad guard;
  const std::int64_t m = shape_numel(in_shape);
  Tensor j = empty({static_cast<std::int64_t>(rows.size()), m}, d);
  for (std::size_t r = 0; r < rows.size(); ++r)
    j[static_cast<std::int64_t>(r)].copy_(rows[r].reshape({m}));
  return j.reshape(jshape);
}

// The Jacobian from its columns (one tangent per input element, each of the output's shape):
// J = Σ_c col_c ⊗ e_c when a column carries a graph (jacfwd inside a reverse transform), else
// copied.
Tensor stack_columns(const std::vector<Tensor>& cols, const Shape& out_shape, const Shape& in_shape,
                     Dtype d) {
  const Shape jshape = concat(out_shape, in_shape);
  bool diff = false;
  for (const Tensor& c : cols) diff = diff || carries_derivative(c) || autograd::is_batched(c);
  if (diff) {
    Shape cshape = out_shape;
    cshape.resize(out_shape.size() + in_shape.size(), 1);
    Tensor j;
    for (std::size_t c = 0; c < cols.size(); ++c) {
      Tensor term = mul(cols[c].reshape(cshape),
                        one_hot(in_shape, cols[c].dtype(), static_cast<std::int64_t>(c)));
      j = j.defined() ? add(j, term) : term;
    }
    return j.defined() ? j : zeros(jshape, d);
  }
  no_grad guard;
  const std::int64_t n = shape_numel(out_shape);
  Tensor j = empty({n, static_cast<std::int64_t>(cols.size())}, d);
  for (std::size_t c = 0; c < cols.size(); ++c)
    j.select(1, static_cast<std::int64_t>(c)).copy_(cols[c].reshape({n}));
  return j.reshape(jshape);
}

void check_no_dual_level(const char* op) {
  check(autograd::detail::active_fw_level() == 0, op,
        ": forward mode is already in use (a forward-mode transform — jvp, jacfwd, hvp, hessian "
        "— or a forward_ad::dual_level is active); xgrad has one dual level at a time, so "
        "jacfwd(jacfwd(f)) is not supported: write jacfwd(jacrev(f)) or jacrev(jacrev(f))");
}

void check_pairs(const std::vector<Tensor>& primals, const std::vector<Tensor>& tangents,
                 const char* op, const char* what) {
  check(!primals.empty(), op, ": no primals given");
  check(primals.size() == tangents.size(), op, ": got ", primals.size(), " primal(s) and ",
        tangents.size(), " ", what);
  for (std::size_t i = 0; i < primals.size(); ++i) {
    check(primals[i].defined() && tangents[i].defined(), op, ": primal and ", what, " ", i,
          " must be defined");
    check(is_floating(primals[i].dtype()), op, ": primal ", i, " must be float32 or float64, got ",
          dtype_name(primals[i].dtype()));
    if (primals[i].shape() != tangents[i].shape())
      fail(op, ": ", what, " ", i, " has shape ", tangents[i].shape(), " but its primal has shape ",
           primals[i].shape());
  }
}

void check_scalar(const Tensor& out, const char* op) {
  check(out.defined(), op, ": f returned an undefined tensor");
  if (out.numel() != 1) fail(op, ": f must return a one-element tensor, got shape ", out.shape());
}

MultiFn as_multi(Fn f) {
  return [f = std::move(f)](const std::vector<Tensor>& x) { return std::vector<Tensor>{f(x)}; };
}
Fn as_fn(UnaryFn f) {
  return [f = std::move(f)](const std::vector<Tensor>& x) { return f(x.at(0)); };
}

std::vector<std::vector<Tensor>> jacrev_impl(const MultiFn& f, const std::vector<Tensor>& inputs,
                                             const std::vector<std::int64_t>& argnums) {
  const auto idx = input_indices(argnums, inputs, "jacrev");
  const bool nested = nested_reverse(inputs);
  std::vector<Tensor> args = inputs, wrt;
  for (std::size_t i : idx) wrt.push_back(args[i] = reverse_input(inputs[i], nested));
  const std::vector<Tensor> outs = run_f(f, args);
  std::vector<std::vector<Tensor>> jac(outs.size());
  for (std::size_t o = 0; o < outs.size(); ++o) {
    const Tensor& out = outs[o];
    check(out.defined(), "jacrev: output ", o, " of f is undefined");
    const std::int64_t n = out.numel();
    // rows[k][r]: row r of the Jacobian w.r.t. wrt[k].
    std::vector<std::vector<Tensor>> rows(wrt.size());
    for (std::int64_t r = 0; r < n; ++r) {
      // The graph serves every row of every output: free it only after the very last one.
      const bool retain = nested || r + 1 < n || o + 1 < outs.size();
      Tensor seed = one_hot(out.shape(), out.dtype(), r);
      std::vector<Tensor> g = reverse_grads(out, wrt, seed, retain, nested);
      for (std::size_t k = 0; k < wrt.size(); ++k) rows[k].push_back(std::move(g[k]));
    }
    for (std::size_t k = 0; k < wrt.size(); ++k)
      jac[o].push_back(
          finish(stack_rows(rows[k], out.shape(), wrt[k].shape(), wrt[k].dtype()), nested));
  }
  return jac;
}

std::vector<std::vector<Tensor>> jacfwd_impl(const MultiFn& f, const std::vector<Tensor>& inputs,
                                             const std::vector<std::int64_t>& argnums) {
  check_no_dual_level("jacfwd");
  const auto idx = input_indices(argnums, inputs, "jacfwd");
  // cols[o][k][c]: column c of the Jacobian of output o w.r.t. argnum k (J·e_c).
  std::vector<std::vector<std::vector<Tensor>>> cols;
  std::vector<Shape> out_shapes;
  std::vector<Dtype> out_dtypes;
  auto note_outputs = [&](const std::vector<Tensor>& outs) {
    if (!out_shapes.empty()) return;
    for (std::size_t o = 0; o < outs.size(); ++o) {
      check(outs[o].defined(), "jacfwd: output ", o, " of f is undefined");
      out_shapes.push_back(outs[o].shape());
      out_dtypes.push_back(outs[o].dtype());
    }
    cols.assign(outs.size(), std::vector<std::vector<Tensor>>(idx.size()));
  };
  for (std::size_t k = 0; k < idx.size(); ++k) {
    const Tensor& x = inputs[idx[k]];
    const std::int64_t m = x.numel();
    if (m == 0 && out_shapes.empty()) note_outputs(f(inputs));
    for (std::int64_t c = 0; c < m; ++c) {
      // One pass per input element, along e_c: its tangent output is column c.
      fwd::dual_level level;
      std::vector<Tensor> args = inputs;
      args[idx[k]] = fwd::make_dual(x, one_hot(x.shape(), x.dtype(), c));
      const std::vector<Tensor> outs = f(args);
      note_outputs(outs);
      check(outs.size() == out_shapes.size(), "jacfwd: f returned ", outs.size(), " outputs, then ",
            out_shapes.size());
      for (std::size_t o = 0; o < outs.size(); ++o) {
        Tensor t = fwd::unpack_dual(outs[o]).tangent;
        if (!t.defined()) t = zeros(outs[o].shape(), outs[o].dtype());
        cols[o][k].push_back(std::move(t));
      }
    }
  }
  std::vector<std::vector<Tensor>> jac(out_shapes.size());
  for (std::size_t o = 0; o < out_shapes.size(); ++o)
    for (std::size_t k = 0; k < idx.size(); ++k)
      jac[o].push_back(
          stack_columns(cols[o][k], out_shapes[o], inputs[idx[k]].shape(), out_dtypes[o]));
  return jac;
}

}  // namespace

// ---- grad, grad_and_value, vjp -------------------------------------------------------------

std::function<std::pair<std::vector<Tensor>, Tensor>(const std::vector<Tensor>&)> grad_and_value(
    Fn f, std::vector<std::int64_t> argnums) {
  return [f = std::move(f), argnums = std::move(argnums)](const std::vector<Tensor>& inputs) {
    const auto idx = input_indices(argnums, inputs, "grad");
    const bool nested = nested_reverse(inputs);
    std::vector<Tensor> args = inputs, wrt;
    for (std::size_t i : idx) wrt.push_back(args[i] = reverse_input(inputs[i], nested));
    Tensor out = run_f(as_multi(f), args)[0];
    check_scalar(out, "grad");
    std::vector<Tensor> g = reverse_grads(out, wrt, Tensor(), nested, nested);
    for (Tensor& t : g) t = finish(t, nested);
    return std::pair<std::vector<Tensor>, Tensor>{std::move(g), finish(out, nested)};
  };
}

std::function<std::pair<Tensor, Tensor>(const Tensor&)> grad_and_value(UnaryFn f) {
  auto gv = grad_and_value(as_fn(std::move(f)), {0});
  return [gv](const Tensor& x) {
    auto [g, v] = gv({x});
    return std::pair<Tensor, Tensor>{g[0], v};
  };
}

MultiFn grad(Fn f, std::vector<std::int64_t> argnums) {
  auto gv = grad_and_value(std::move(f), std::move(argnums));
  return [gv](const std::vector<Tensor>& x) { return gv(x).first; };
}

UnaryFn grad(UnaryFn f) {
  auto gv = grad_and_value(std::move(f));
  return [gv](const Tensor& x) { return gv(x).first; };
}

std::pair<Tensor, VjpFn> vjp(Fn f, const std::vector<Tensor>& primals) {
  check(!primals.empty(), "vjp: no primals given");
  std::vector<std::int64_t> all;
  for (std::size_t i = 0; i < primals.size(); ++i) all.push_back(static_cast<std::int64_t>(i));
  input_indices(all, primals, "vjp");
  const bool nested = nested_reverse(primals);
  std::vector<Tensor> wrt;
  for (const Tensor& p : primals) wrt.push_back(reverse_input(p, nested));
  Tensor out = run_f(as_multi(std::move(f)), wrt)[0];
  check(out.defined(), "vjp: f returned an undefined tensor");
  VjpFn fn = [out, wrt, nested](const Tensor& v) {
    check(v.defined(), "vjp: the cotangent is undefined");
    if (v.shape() != out.shape())
      fail("vjp: the cotangent has shape ", v.shape(), " but the output has shape ", out.shape());
    const bool create = nested || (is_grad_enabled() && v.requires_grad());
    // The graph is kept: vjp_fn may be called again (torch's vjp_fn too).
    std::vector<Tensor> g = reverse_grads(out, wrt, v, /*retain=*/true, create);
    for (Tensor& t : g) t = finish(t, create);
    return g;
  };
  return {finish(out, nested), std::move(fn)};
}

std::pair<Tensor, UnaryFn> vjp(UnaryFn f, const Tensor& primal) {
  auto [out, fn] = vjp(as_fn(std::move(f)), std::vector<Tensor>{primal});
  return {out, [fn = std::move(fn)](const Tensor& v) { return fn(v)[0]; }};
}

// ---- jacobians ---------------------------------------------------------------------------

JacobianFn jacrev(MultiFn f, std::vector<std::int64_t> argnums) {
  return [f = std::move(f), argnums = std::move(argnums)](const std::vector<Tensor>& x) {
    return jacrev_impl(f, x, argnums);
  };
}

MultiFn jacrev(Fn f, std::vector<std::int64_t> argnums) {
  return [f = as_multi(std::move(f)), argnums = std::move(argnums)](const std::vector<Tensor>& x) {
    return jacrev_impl(f, x, argnums)[0];
  };
}

UnaryFn jacrev(UnaryFn f) {
  auto j = jacrev(as_fn(std::move(f)), {0});
  return [j](const Tensor& x) { return j({x})[0]; };
}

JacobianFn jacfwd(MultiFn f, std::vector<std::int64_t> argnums) {
  return [f = std::move(f), argnums = std::move(argnums)](const std::vector<Tensor>& x) {
    return jacfwd_impl(f, x, argnums);
  };
}

MultiFn jacfwd(Fn f, std::vector<std::int64_t> argnums) {
  return [f = as_multi(std::move(f)), argnums = std::move(argnums)](const std::vector<Tensor>& x) {
    return jacfwd_impl(f, x, argnums)[0];
  };
}

UnaryFn jacfwd(UnaryFn f) {
  auto j = jacfwd(as_fn(std::move(f)), {0});
  return [j](const Tensor& x) { return j({x})[0]; };
}

JacobianFn hessian(Fn f, std::vector<std::int64_t> argnums) {
  return jacfwd(jacrev(std::move(f), argnums), argnums);
}

UnaryFn hessian(UnaryFn f) {
  return jacfwd(jacrev(std::move(f)));
}

// ---- jvp, hvp, vhp -----------------------------------------------------------------------

std::pair<Tensor, Tensor> jvp(Fn f, const std::vector<Tensor>& primals,
                              const std::vector<Tensor>& tangents) {
  check_no_dual_level("jvp");
  check_pairs(primals, tangents, "jvp", "tangent");
  fwd::dual_level level;
  std::vector<Tensor> args;
  for (std::size_t i = 0; i < primals.size(); ++i)
    args.push_back(fwd::make_dual(primals[i], tangents[i]));
  Tensor out = f(args);
  check(out.defined(), "jvp: f returned an undefined tensor");
  auto [primal, tangent] = fwd::unpack_dual(out);
  if (!tangent.defined()) tangent = zeros(out.shape(), out.dtype());
  return {primal, tangent};
}

std::pair<Tensor, Tensor> jvp(UnaryFn f, const Tensor& primal, const Tensor& tangent) {
  return jvp(as_fn(std::move(f)), std::vector<Tensor>{primal}, std::vector<Tensor>{tangent});
}

std::pair<Tensor, std::vector<Tensor>> hvp(Fn f, const std::vector<Tensor>& primals,
                                           const std::vector<Tensor>& tangents) {
  check_no_dual_level("hvp");
  check_pairs(primals, tangents, "hvp", "tangent");
  const bool nested = nested_reverse(primals);
  // Forward-over-reverse: the gradient, computed on dual inputs, carries H·v as its tangent.
  fwd::dual_level level;
  std::vector<Tensor> args;
  for (std::size_t i = 0; i < primals.size(); ++i)
    args.push_back(fwd::make_dual(reverse_input(primals[i], nested), tangents[i]));
  Tensor out = run_f(as_multi(std::move(f)), args)[0];
  check_scalar(out, "hvp");
  std::vector<Tensor> g = reverse_grads(out, args, Tensor(), nested, nested);
  std::vector<Tensor> hv;
  for (std::size_t i = 0; i < g.size(); ++i) {
    Tensor t = autograd::tangent_or_undefined(g[i]);
    hv.push_back(t.defined() ? finish(t, nested) : zeros(primals[i].shape(), primals[i].dtype()));
  }
  return {finish(fwd::unpack_dual(out).primal, nested), std::move(hv)};
}

std::pair<Tensor, Tensor> hvp(UnaryFn f, const Tensor& primal, const Tensor& tangent) {
  auto [out, hv] =
      hvp(as_fn(std::move(f)), std::vector<Tensor>{primal}, std::vector<Tensor>{tangent});
  return {out, hv[0]};
}

std::pair<Tensor, std::vector<Tensor>> vhp(Fn f, const std::vector<Tensor>& primals,
                                           const std::vector<Tensor>& v) {
  check_pairs(primals, v, "vhp", "v");
  const bool nested = nested_reverse(primals);
  std::vector<Tensor> wrt;
  for (const Tensor& p : primals) wrt.push_back(reverse_input(p, nested));
  Tensor out = run_f(as_multi(std::move(f)), wrt)[0];
  check_scalar(out, "vhp");
  // Reverse-over-reverse: the gradient is recorded, then differentiated with v as its seed.
  std::vector<Tensor> g;
  {
    enable_grad on;
    g = reverse_grads(out, wrt, Tensor(), /*retain=*/true, /*create=*/true);
  }
  std::vector<Tensor> outs, seeds;
  for (std::size_t i = 0; i < g.size(); ++i)
    if (g[i].requires_grad()) {
      outs.push_back(g[i]);
      seeds.push_back(v[i]);
    }
  std::vector<Tensor> vh(wrt.size());
  if (!outs.empty())
    vh = xgrad::grad(outs, wrt, seeds, /*retain_graph=*/nested, nested, /*allow_unused=*/true);
  for (std::size_t i = 0; i < vh.size(); ++i)
    vh[i] = vh[i].defined() ? finish(vh[i], nested) : zeros(primals[i].shape(), primals[i].dtype());
  return {finish(out, nested), std::move(vh)};
}

std::pair<Tensor, Tensor> vhp(UnaryFn f, const Tensor& primal, const Tensor& v) {
  auto [out, vh] = vhp(as_fn(std::move(f)), std::vector<Tensor>{primal}, std::vector<Tensor>{v});
  return {out, vh[0]};
}

}  // namespace xgrad::func

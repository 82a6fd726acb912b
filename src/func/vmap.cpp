// func::vmap: batch the inputs, run f once on batched tensors, unbatch the results.
#include "xgrad/autograd/batching.hpp"
#include "xgrad/func.hpp"
#include "xgrad/ops/shape.hpp"

namespace xgrad::func {

namespace {

// The dimension `from` of t moved to position `to` (both already in range).
Tensor move_dim(const Tensor& t, std::int64_t from, std::int64_t to) {
  if (from == to) return t;
  Shape order;
  for (std::int64_t d = 0; d < t.dim(); ++d)
    if (d != from) order.push_back(d);
  order.insert(order.begin() + to, from);
  return permute(t, order);
}

// Pops its vmap level however f leaves (a result, or an exception).
class LevelScope {
 public:
  LevelScope() : level_(autograd::detail::push_vmap_level()) {}
  ~LevelScope() { autograd::detail::pop_vmap_level(level_); }
  LevelScope(const LevelScope&) = delete;
  LevelScope& operator=(const LevelScope&) = delete;
  std::uint64_t level() const { return level_; }

 private:
  std::uint64_t level_;
};

std::vector<Tensor> run_vmapped(const MultiFn& f, const InDims& in_dims_in,
                                const std::vector<std::int64_t>& out_dims,
                                const std::vector<Tensor>& inputs) {
  InDims in_dims = in_dims_in;
  if (in_dims.empty()) in_dims.assign(inputs.size(), 0);
  check(in_dims.size() == inputs.size(), "vmap: in_dims has ", in_dims.size(),
        " entries but the function got ", inputs.size(), " input(s)");
  std::int64_t size = -1;
  std::vector<std::int64_t> dims(inputs.size(), -1);
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    if (!in_dims[i]) continue;
    const Tensor& x = inputs[i];
    check(x.defined(), "vmap: input ", i, " is undefined but in_dims maps it");
    check(x.dim() > 0, "vmap: input ", i, " is a scalar (shape []) and cannot be mapped over; ",
          "give it in_dims std::nullopt");
    const std::int64_t d = *in_dims[i];
    check(d >= -x.dim() && d < x.dim(), "vmap: in_dims[", i, "] = ", d,
          " is out of range for input ", i, " of shape ", x.shape());
    dims[i] = d < 0 ? d + x.dim() : d;
    const std::int64_t b = x.size(dims[i]);
    if (size >= 0 && b != size)
      fail("vmap: the mapped inputs have different sizes in their mapped dimension: ", size,
           " and ", b, " (input ", i, " of shape ", x.shape(), ", dimension ", dims[i], ")");
    size = b;
  }
  check(size >= 0, "vmap: no input is mapped (every in_dims entry is std::nullopt)");
  check(size > 0, "vmap: the mapped dimension has size 0");

  std::vector<Tensor> outs;
  std::uint64_t level = 0;
  {
    LevelScope scope;
    level = scope.level();
    std::vector<Tensor> args(inputs.size());
    for (std::size_t i = 0; i < inputs.size(); ++i)
      args[i] = dims[i] < 0 ? inputs[i]
                            : autograd::make_batched(move_dim(inputs[i], dims[i], 0), level);
    outs = f(args);
  }
  check(out_dims.empty() || out_dims.size() == outs.size(), "vmap: out_dims has ",
        out_dims.size(), " entries but the function returned ", outs.size(), " result(s)");
  for (std::size_t k = 0; k < outs.size(); ++k) {
    if (!outs[k].defined()) continue;
    Tensor p = autograd::to_physical(outs[k], level, size);
    const std::int64_t d = out_dims.empty() ? 0 : out_dims[k];
    check(d >= -p.dim() && d < p.dim(), "vmap: out_dims[", k, "] = ", d,
          " is out of range for a result of ", p.dim(), " dimension(s) with the batch");
    outs[k] = move_dim(p, 0, d < 0 ? d + p.dim() : d);
  }
  return outs;
}

}  // namespace

MultiFn vmap(MultiFn f, InDims in_dims, std::vector<std::int64_t> out_dims) {
  return [f = std::move(f), in_dims = std::move(in_dims),
          out_dims = std::move(out_dims)](const std::vector<Tensor>& inputs) {
    return run_vmapped(f, in_dims, out_dims, inputs);
  };
}

Fn vmap(Fn f, InDims in_dims, std::int64_t out_dim) {
  MultiFn m = [f = std::move(f)](const std::vector<Tensor>& a) {
    return std::vector<Tensor>{f(a)};
  };
  return [m = std::move(m), in_dims = std::move(in_dims), out_dim](const std::vector<Tensor>& a) {
    return run_vmapped(m, in_dims, {out_dim}, a)[0];
  };
}

UnaryFn vmap(UnaryFn f, std::optional<std::int64_t> in_dim, std::int64_t out_dim) {
  MultiFn m = [f = std::move(f)](const std::vector<Tensor>& a) {
    return std::vector<Tensor>{f(a[0])};
  };
  return [m = std::move(m), in_dim, out_dim](const Tensor& x) {
    return run_vmapped(m, {in_dim}, {out_dim}, {x})[0];
  };
}

}  // namespace xgrad::func

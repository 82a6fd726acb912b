// masked_fill, triu and tril: each a kernel, a node whose vjp is the op itself applied to the
// gradient (all three are linear in the input, with constant masks), and the same rule as jvp.
#include "xgrad/ops/masking.hpp"

#include "detail/kernel.hpp"
#include "xgrad/autograd/batching.hpp"
#include "xgrad/autograd/forward_ad.hpp"
#include "xgrad/autograd/node.hpp"

namespace xgrad {

using autograd::jvp_op;
using autograd::Node;
using autograd::record_op;
using autograd::Saved;
using autograd::tangent;
using autograd::tensor_list;

namespace {

// True when `from` broadcasts to exactly `to` (NumPy rules, `to` unchanged).
bool broadcasts_to(const Shape& from, const Shape& to) {
  if (from.size() > to.size()) return false;
  const std::size_t off = to.size() - from.size();
  for (std::size_t i = 0; i < from.size(); ++i)
    if (from[i] != 1 && from[i] != to[off + i]) return false;
  return true;
}

Tensor masked_fill_kernel(const Tensor& x, const Tensor& mask, double value) {
  Tensor out = x.detach().contiguous().clone();
  Tensor m = detail::broadcast_view(mask, x.shape()).contiguous();
  const bool* pm = m.data_ptr<bool>();
  dispatch_all(x.dtype(), [&]<class T>() {
    T* po = out.data_ptr<T>();
    const T v = static_cast<T>(value);
    for (std::int64_t i = 0, n = out.numel(); i < n; ++i)
      if (pm[i]) po[i] = v;
  });
  return out;
}

Tensor masked_fill_op(const Tensor& x, const Tensor& mask, double value);

struct MaskedFillBackward final : Node {
  Saved mask;
  std::string_view name() const override { return "masked_fill"; }
  tensor_list apply(tensor_list&& g) override { return {masked_fill_op(g[0], saved(mask), 0.0)}; }
};

Tensor masked_fill_op(const Tensor& x, const Tensor& mask, double value) {
  Tensor out = masked_fill_kernel(x, mask, value);
  record_op<MaskedFillBackward>({&x}, {&out},
                                [&](MaskedFillBackward& n) { n.mask = n.save(mask); });
  jvp_op("masked_fill", {&x}, out, [&] { return masked_fill_op(tangent(x), mask, 0.0); });
  return out;
}

// Keeps element (i, j) of each trailing matrix where keep(j − i) holds, zeroes the rest.
template <class Keep>
Tensor triangle_kernel(const Tensor& x, Keep keep) {
  Tensor out = x.detach().contiguous().clone();
  const std::int64_t M = x.shape()[static_cast<std::size_t>(x.dim() - 2)];
  const std::int64_t N = x.shape()[static_cast<std::size_t>(x.dim() - 1)];
  const std::int64_t mats = M * N == 0 ? 0 : out.numel() / (M * N);
  dispatch_all(x.dtype(), [&]<class T>() {
    T* p = out.data_ptr<T>();
    for (std::int64_t b = 0; b < mats; ++b)
      for (std::int64_t i = 0; i < M; ++i)
        for (std::int64_t j = 0; j < N; ++j)
          if (!keep(j - i)) p[(b * M + i) * N + j] = T(0);
  });
  return out;
}

struct TriangleBackward final : Node {
  bool upper = true;
  std::int64_t diagonal = 0;
  std::string_view name() const override { return upper ? "triu" : "tril"; }
  tensor_list apply(tensor_list&& g) override {
    return {upper ? triu(g[0], diagonal) : tril(g[0], diagonal)};
  }
};

Tensor triangle(const Tensor& x, std::int64_t diagonal, bool upper) {
  const char* op = upper ? "triu" : "tril";
  check(x.dim() >= 2, op, ": expected a tensor with at least 2 dimensions, got shape ", x.shape());
  Tensor out = upper ? triangle_kernel(x, [diagonal](std::int64_t d) { return d >= diagonal; })
                     : triangle_kernel(x, [diagonal](std::int64_t d) { return d <= diagonal; });
  record_op<TriangleBackward>({&x}, {&out}, [&](TriangleBackward& n) {
    n.upper = upper;
    n.diagonal = diagonal;
  });
  jvp_op(op, {&x}, out, [&] { return triangle(tangent(x), diagonal, upper); });
  return out;
}

}  // namespace

Tensor masked_fill(const Tensor& x, const Tensor& mask, double value) {
  if (autograd::any_batched(x, mask))  // x expanded to the batch, the mask aligned to x's rank
    return autograd::vmap_op("masked_fill", {x, mask}, [&](const autograd::BatchedArgs& p) {
      return masked_fill(p.expanded(0), p.aligned(1, p.logical_dim(0)), value);
    });
  check(x.defined() && mask.defined(), "masked_fill: undefined input or mask");
  check(mask.dtype() == Dtype::boolean, "masked_fill: the mask must be a bool tensor, got ",
        dtype_name(mask.dtype()), " of shape ", mask.shape());
  check(broadcasts_to(mask.shape(), x.shape()), "masked_fill: mask of shape ", mask.shape(),
        " does not broadcast to input of shape ", x.shape());
  return masked_fill_op(x, mask, value);
}

Tensor triu(const Tensor& input, std::int64_t diagonal) {
  if (autograd::any_batched(input))  // the last two dimensions are the same physically
    return autograd::vmap_op("triu", {input}, [&](const autograd::BatchedArgs& p) {
      check(p.logical_dim(0) >= 2, "triu: expected a tensor with at least 2 dimensions");
      return triu(p[0], diagonal);
    });
  return triangle(input, diagonal, true);
}
Tensor tril(const Tensor& input, std::int64_t diagonal) {
  if (autograd::any_batched(input))
    return autograd::vmap_op("tril", {input}, [&](const autograd::BatchedArgs& p) {
      check(p.logical_dim(0) >= 2, "tril: expected a tensor with at least 2 dimensions");
      return tril(p[0], diagonal);
    });
  return triangle(input, diagonal, false);
}

}  // namespace xgrad

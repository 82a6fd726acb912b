#include "xgrad/ops/dropout.hpp"

#include <random>

#include "detail/kernel.hpp"
#include "xgrad/autograd/batching.hpp"
#include "xgrad/autograd/forward_ad.hpp"
#include "xgrad/autograd/grad_mode.hpp"
#include "xgrad/autograd/node.hpp"
#include "xgrad/random.hpp"

namespace xgrad {

using autograd::jvp_op;
using autograd::Node;
using autograd::record_op;
using autograd::Saved;
using autograd::tangent;
using autograd::tensor_list;

namespace {

void check_p(double p, const char* op) {
  check(p >= 0.0 && p <= 1.0, op, ": dropout probability has to be between 0 and 1, got ", p);
}

// out = x · (mask ? scale : 0), mask broadcast to x's shape.
Tensor masked_scale(const Tensor& x, const Tensor& mask, double scale, const char* op) {
  return dispatch_floating(x.dtype(), op, [&]<class T>() {
    const T s = static_cast<T>(scale);
    Tensor xc = x.contiguous();
    Tensor m = detail::broadcast_view(mask, x.shape()).contiguous();
    Tensor out = empty(x.shape(), dtype_of<T>);
    const T* px = xc.data_ptr<T>();
    const bool* pm = m.data_ptr<bool>();
    T* po = out.data_ptr<T>();
    for (std::int64_t i = 0, n = x.numel(); i < n; ++i) po[i] = pm[i] ? px[i] * s : T(0);
    return out;
  });
}

Tensor apply_mask(const Tensor& x, const Tensor& mask, double scale);

// The mask is a constant of the op (no derivative), saved as a private copy (contiguous, x's
// shape) so that the caller may reuse its own mask tensor. The op is linear in x, so its vjp
// is the op itself applied to g (and recorded again under create_graph: any order works).
struct DropoutBackward final : Node {
  Saved mask;
  double scale = 1.0;
  std::string_view name() const override { return "dropout"; }
  tensor_list apply(tensor_list&& g) override { return {apply_mask(g[0], saved(mask), scale)}; }
};

// x·mask·scale (mask bool, broadcastable to x) with its node and its jvp: tangent·mask·scale.
Tensor apply_mask(const Tensor& x, const Tensor& mask, double scale) {
  Tensor out = masked_scale(x.detach(), mask, scale, "dropout");
  record_op<DropoutBackward>({&x}, {&out}, [&](DropoutBackward& n) {
    Tensor m = detail::broadcast_view(mask, x.shape()).contiguous();
    if (m.storage() == mask.storage()) m = m.clone();
    n.mask = n.save(m);
    n.scale = scale;
  });
  jvp_op("dropout", {&x}, out, [&] { return apply_mask(tangent(x), mask, scale); });
  return out;
}

}  // namespace

Tensor dropout_mask(const Shape& shape, double p) {
  check_p(p, "dropout_mask");
  Tensor mask = empty(shape, Dtype::boolean);
  bool* pm = mask.data_ptr<bool>();
  const std::int64_t n = mask.numel();
  if (p == 0.0 || p == 1.0) {
    for (std::int64_t i = 0; i < n; ++i) pm[i] = p == 0.0;
    return mask;
  }
  std::uniform_real_distribution<double> u(0.0, 1.0);
  auto& gen = default_generator();
  for (std::int64_t i = 0; i < n; ++i) pm[i] = u(gen) >= p;
  return mask;
}

Tensor dropout(const Tensor& x, double p, bool training) {
  if (autograd::any_batched(x))  // each sample draws its own mask (torch.func's randomness="different")
    return autograd::vmap_op("dropout", {x}, [&](const autograd::BatchedArgs& a) { return dropout(a[0], p, training); });
  check_p(p, "dropout");
  check(is_floating(x.dtype()), "dropout: expected a float32 or float64 tensor, got ",
        dtype_name(x.dtype()));
  if (!training || p == 0.0) return x;
  return dropout_with_mask(x, dropout_mask(x.shape(), p), p);
}

Tensor dropout_with_mask(const Tensor& x, const Tensor& mask, double p) {
  if (autograd::any_batched(x, mask))
    return autograd::vmap_fallback("dropout_with_mask", {x, mask}, [&](const std::vector<Tensor>& s) { return dropout_with_mask(s[0], s[1], p); });
  check_p(p, "dropout_with_mask");
  check(mask.dtype() == Dtype::boolean, "dropout_with_mask: the mask must be a bool tensor, got ",
        dtype_name(mask.dtype()), " ", mask.shape());
  check(detail::broadcast_shapes(mask.shape(), x.shape(), "dropout_with_mask") == x.shape(),
        "dropout_with_mask: a mask of shape ", mask.shape(), " does not broadcast to the input's ",
        x.shape());
  const double scale = p == 1.0 ? 0.0 : 1.0 / (1.0 - p);
  return apply_mask(x, mask, scale);
}

}  // namespace xgrad

#include "xgrad/ops/loss.hpp"

#include <cmath>
#include <limits>

#include "detail/kernel.hpp"
#include "xgrad/autograd/grad_mode.hpp"
#include "xgrad/autograd/node.hpp"
#include "xgrad/ops/elementwise.hpp"
#include "xgrad/ops/reduction.hpp"
#include "xgrad/ops/shape.hpp"

namespace xgrad {

using autograd::Node;
using autograd::tensor_list;

namespace {

// Backward of a loss computed elementwise then reduced. The forward precomputes the local
// derivatives of each per-element loss w.r.t. input (and target); backward scales them by the
// incoming gradient, broadcast back from the reduction.
struct LossBackward final : Node {
  const char* op = "loss";
  Tensor d_input, d_target;  // local derivatives, input's / target's shape (or undefined)
  Shape loss_shape;          // shape of the per-element loss (before reduction)
  Shape grad_shape;          // loss_shape with trailing 1s so it broadcasts against d_input
  Reduction reduction = Reduction::mean;
  std::string_view name() const override { return op; }
  tensor_list apply(tensor_list&& g) override {
    Tensor ge = g[0];
    if (reduction == Reduction::mean) {
      ge = div(ge, scalar_tensor(static_cast<double>(shape_numel(loss_shape)), ge.dtype()));
    }
    ge = reduction == Reduction::none ? reshape(ge, grad_shape) : ge;
    tensor_list out(2);
    if (needs_input_grad(0)) out[0] = mul(d_input, ge);
    if (needs_input_grad(1) && d_target.defined()) out[1] = mul(d_target, ge);
    return out;
  }
  void release_saved() override {
    d_input = Tensor();
    d_target = Tensor();
  }
};

Tensor reduce(const Tensor& per_element, Reduction r) {
  switch (r) {
    case Reduction::none:
      return per_element;
    case Reduction::sum:
      return sum(per_element);
    case Reduction::mean:
      return mean(per_element);
  }
  return per_element;
}

void check_same_shape(const Tensor& input, const Tensor& target, const char* op) {
  if (input.shape() != target.shape())
    fail(op, ": input ", input.shape(), " and target ", target.shape(),
         " must have the same shape");
  detail::check_same_dtype(input, target, op);
}

Tensor finish(const char* op, const Tensor& input, const Tensor& target, Tensor per_element,
              Tensor d_input, Tensor d_target, Shape grad_shape, Reduction reduction) {
  Tensor out;
  {
    no_grad guard;
    out = reduce(per_element, reduction);
  }
  if (autograd::any_requires_grad({&input, &target})) {
    auto node = std::make_shared<LossBackward>();
    node->op = op;
    if (input.requires_grad()) node->d_input = std::move(d_input);
    if (target.defined() && target.requires_grad()) node->d_target = std::move(d_target);
    node->loss_shape = per_element.shape();
    node->grad_shape = std::move(grad_shape);
    node->reduction = reduction;
    autograd::record(node, {&input, &target}, {&out});
  }
  return out;
}

}  // namespace

Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction) {
  check_same_shape(input, target, "mse_loss");
  Tensor per, d_in, d_tg;
  dispatch_floating(input.dtype(), "mse_loss", [&]<class T>() {
    Tensor x = input.detach().contiguous(), y = target.detach().contiguous();
    per = empty(x.shape(), x.dtype());
    d_in = empty(x.shape(), x.dtype());
    const T* px = x.data_ptr<T>();
    const T* py = y.data_ptr<T>();
    T* pl = per.data_ptr<T>();
    T* pd = d_in.data_ptr<T>();
    for (std::int64_t i = 0, n = x.numel(); i < n; ++i) {
      const T d = px[i] - py[i];
      pl[i] = d * d;
      pd[i] = T(2) * d;
    }
  });
  if (target.requires_grad()) {
    no_grad guard;
    d_tg = neg(d_in);
  }
  return finish("mse_loss", input, target, per, d_in, d_tg, input.shape(), reduction);
}

Tensor binary_cross_entropy_with_logits(const Tensor& logits, const Tensor& targets,
                                        Reduction reduction) {
  const char* op = "binary_cross_entropy_with_logits";
  check_same_shape(logits, targets, op);
  Tensor per, d_in, d_tg;
  dispatch_floating(logits.dtype(), op, [&]<class T>() {
    Tensor x = logits.detach().contiguous(), y = targets.detach().contiguous();
    per = empty(x.shape(), x.dtype());
    d_in = empty(x.shape(), x.dtype());
    d_tg = empty(x.shape(), x.dtype());
    const T* px = x.data_ptr<T>();
    const T* py = y.data_ptr<T>();
    T* pl = per.data_ptr<T>();
    T* pd = d_in.data_ptr<T>();
    T* pt = d_tg.data_ptr<T>();
    for (std::int64_t i = 0, n = x.numel(); i < n; ++i) {
      const T v = px[i], t = py[i];
      // max(x,0) - x·y + log(1 + e^-|x|): no overflow for any finite x.
      pl[i] = std::max(v, T(0)) - v * t + std::log1p(std::exp(-std::abs(v)));
      const T s = v >= T(0) ? T(1) / (T(1) + std::exp(-v)) : std::exp(v) / (T(1) + std::exp(v));
      pd[i] = s - t;
      pt[i] = -v;
    }
  });
  return finish(op, logits, targets, per, d_in, d_tg, logits.shape(), reduction);
}

Tensor cross_entropy(const Tensor& logits, const Tensor& labels, Reduction reduction) {
  const char* op = "cross_entropy";
  if (logits.dim() != 2) fail(op, ": expected logits of shape [N,C], got ", logits.shape());
  if (labels.dtype() != Dtype::int64)
    fail(op, ": expected int64 class labels, got ", dtype_name(labels.dtype()), " ",
         labels.shape());
  if (labels.dim() != 1 || labels.shape()[0] != logits.shape()[0])
    fail(op, ": logits ", logits.shape(), " and labels ", labels.shape(),
         " do not match (expected labels [", logits.shape()[0], "])");
  const std::int64_t n = logits.shape()[0], c = logits.shape()[1];
  Tensor lab = labels.contiguous();
  const std::int64_t* pl = lab.data_ptr<std::int64_t>();
  for (std::int64_t i = 0; i < n; ++i)
    if (pl[i] < 0 || pl[i] >= c)
      fail(op, ": label ", pl[i], " at position ", i, " is out of range for ", c, " classes");
  Tensor per, d_in;
  dispatch_floating(logits.dtype(), op, [&]<class T>() {
    Tensor x = logits.detach().contiguous();
    per = empty({n}, x.dtype());
    d_in = empty({n, c}, x.dtype());
    const T* px = x.data_ptr<T>();
    T* pper = per.data_ptr<T>();
    T* pd = d_in.data_ptr<T>();
    for (std::int64_t i = 0; i < n; ++i) {
      const T* row = px + i * c;
      T* drow = pd + i * c;
      T mx = -std::numeric_limits<T>::infinity();
      for (std::int64_t k = 0; k < c; ++k) mx = std::max(mx, row[k]);
      T total = 0;
      for (std::int64_t k = 0; k < c; ++k) {
        drow[k] = std::exp(row[k] - mx);
        total += drow[k];
      }
      const T lse = mx + std::log(total);
      pper[i] = lse - row[pl[i]];
      // d loss_i / d x_ik = softmax_ik - [k == label_i]
      for (std::int64_t k = 0; k < c; ++k) drow[k] /= total;
      drow[pl[i]] -= T(1);
    }
  });
  // The labels take the target's slot (no gradient: int64), so graph dumps can draw them.
  return finish(op, logits, labels, per, d_in, Tensor(), {n, 1}, reduction);
}

}  // namespace xgrad

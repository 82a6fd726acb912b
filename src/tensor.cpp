#include "xgrad/tensor.hpp"

#include "xgrad/autograd/batching.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <ostream>

#include "detail/kernel.hpp"
#include "xgrad/autograd/engine.hpp"
#include "xgrad/autograd/grad_mode.hpp"
#include "xgrad/autograd/node.hpp"

namespace xgrad {

// ---- dtype / error helpers --------------------------------------------------------------

namespace {
Dtype g_default_dtype = Dtype::float32;
}

std::ostream& operator<<(std::ostream& os, Dtype d) {
  return os << dtype_name(d);
}

Dtype default_dtype() {
  return g_default_dtype;
}

void set_default_dtype(Dtype d) {
  check(is_floating(d), "set_default_dtype: the default dtype must be float32 or float64, got ",
        dtype_name(d));
  g_default_dtype = d;
}

std::string format_shape(const Shape& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ",";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

// ---- shapes -----------------------------------------------------------------------------

Shape contiguous_strides(const Shape& shape) {
  Shape strides(shape.size());
  std::int64_t s = 1;
  for (std::size_t i = shape.size(); i-- > 0;) {
    strides[i] = s;
    s *= std::max<std::int64_t>(shape[i], 1);
  }
  return strides;
}

std::int64_t shape_numel(const Shape& shape) {
  std::int64_t n = 1;
  for (auto d : shape) {
    check(d >= 0, "tensor: negative dimension in shape ", shape);
    n *= d;
  }
  return n;
}

TensorImpl::TensorImpl(std::shared_ptr<Storage> storage_, Shape shape_, Shape strides_,
                       std::int64_t offset_, Dtype dtype_)
    : storage(std::move(storage_)),
      shape(std::move(shape_)),
      strides(std::move(strides_)),
      offset(offset_),
      numel(shape_numel(shape)),
      dtype(dtype_) {}

namespace detail {

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  const std::size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (std::size_t i = 0; i < n; ++i) {
    std::int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    std::int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    if (da != db && da != 1 && db != 1)
      fail(op, ": shapes ", a, " and ", b, " cannot be broadcast");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

std::int64_t normalize_axis(std::int64_t axis, std::int64_t ndim, const Shape& shape,
                            const char* op) {
  std::int64_t a = axis < 0 ? axis + ndim : axis;
  if (a < 0 || a >= ndim)
    fail(op, ": axis ", axis, " is out of range for a tensor of shape ", shape);
  return a;
}

void check_same_dtype(const Tensor& a, const Tensor& b, const char* op) {
  if (a.dtype() != b.dtype())
    fail(op, ": expected tensors of the same dtype, got ", dtype_name(a.dtype()), " ", a.shape(),
         " and ", dtype_name(b.dtype()), " ", b.shape());
}

Tensor broadcast_view(const Tensor& t, const Shape& shape) {
  if (t.shape() == shape) return t;
  const std::size_t n = shape.size();
  const std::size_t k = t.shape().size();
  Shape strides(n, 0);
  for (std::size_t i = 0; i < k; ++i) {
    const std::size_t j = n - k + i;
    strides[j] = t.shape()[i] == 1 ? 0 : t.strides()[i];
  }
  auto impl = detail::make_pooled<TensorImpl>(t.storage(), shape, strides, t.offset(), t.dtype());
  return Tensor(impl);
}

}  // namespace detail

// ---- metadata ---------------------------------------------------------------------------

TensorImpl& Tensor::checked() const {
  if (!impl_) throw Error("tensor: operation on an undefined tensor");
  return *impl_;
}

const Shape& Tensor::shape() const {
  return checked().shape;
}
const Shape& Tensor::strides() const {
  return checked().strides;
}
std::int64_t Tensor::offset() const {
  return checked().offset;
}
std::int64_t Tensor::dim() const {
  return static_cast<std::int64_t>(checked().shape.size());
}
std::int64_t Tensor::size(std::int64_t axis) const {
  return shape()[detail::normalize_axis(axis, dim(), shape(), "size")];
}
std::int64_t Tensor::numel() const {
  return checked().numel;
}
Dtype Tensor::dtype() const {
  return checked().dtype;
}
// A batched tensor (inside func::vmap) that reaches code reading its memory directly has
// bypassed the batching layer: its shape is one sample's, its memory the whole batch's.
namespace {
[[noreturn]] void batched_data_access(const TensorImpl& impl, const char* what) {
  fail("vmap: ", what, " of a batched tensor (one sample of shape ", impl.shape,
       "): an op without a batching rule was called inside func::vmap; give the op a rule "
       "(autograd::vmap_op) or a loop (autograd::vmap_fallback), or call it outside vmap");
}
}  // namespace

const std::shared_ptr<Storage>& Tensor::storage() const {
  const auto& impl = checked();
  if (impl.batch) batched_data_access(impl, "storage()");
  return impl.storage;
}
std::uint64_t Tensor::version() const {
  return checked().storage->version();
}

bool Tensor::is_contiguous() const {
  const auto& impl = checked();
  std::int64_t expected = 1;
  for (std::size_t i = impl.shape.size(); i-- > 0;) {
    if (impl.shape[i] == 1) continue;
    if (impl.strides[i] != expected) return false;
    expected *= impl.shape[i];
  }
  return true;
}

void* Tensor::raw_data() const {
  const auto& impl = checked();
  if (impl.batch) batched_data_access(impl, "data access");
  return static_cast<char*>(impl.storage->data()) +
         impl.offset * static_cast<std::int64_t>(element_size(impl.dtype));
}

template <class T>
T* Tensor::data_ptr() const {
  if (dtype() != dtype_of<T>)
    fail("data_ptr: tensor has dtype ", dtype_name(dtype()), ", asked for ",
         dtype_name(dtype_of<T>));
  return static_cast<T*>(raw_data());
}
template float* Tensor::data_ptr<float>() const;
template double* Tensor::data_ptr<double>() const;
template std::int64_t* Tensor::data_ptr<std::int64_t>() const;
template bool* Tensor::data_ptr<bool>() const;

// ---- values -----------------------------------------------------------------------------

double Tensor::item() const {
  check(numel() == 1, "item: only a one-element tensor can be converted to a scalar, got shape ",
        shape());
  return dispatch_all(dtype(), [&]<class T>() { return static_cast<double>(*data_ptr<T>()); });
}

template <class T>
Tensor from_data(const T* data, const Shape& shape, bool requires_grad) {
  Tensor t = empty(shape, dtype_of<T>);
  std::copy_n(data, t.numel(), t.data_ptr<T>());
  if (requires_grad) t.requires_grad_();
  return t;
}
template Tensor from_data<float>(const float*, const Shape&, bool);
template Tensor from_data<double>(const double*, const Shape&, bool);
template Tensor from_data<std::int64_t>(const std::int64_t*, const Shape&, bool);
template Tensor from_data<bool>(const bool*, const Shape&, bool);

// ---- factories --------------------------------------------------------------------------

Tensor empty(const Shape& shape, TensorOptions opts) {
  const std::int64_t n = shape_numel(shape);
  auto storage = detail::make_storage(static_cast<std::size_t>(n) * element_size(opts.dtype_));
  Tensor t(detail::make_pooled<TensorImpl>(std::move(storage), shape, contiguous_strides(shape), 0,
                                           opts.dtype_));
  if (opts.requires_grad_) t.requires_grad_();
  return t;
}

Tensor full(const Shape& shape, double value, TensorOptions opts) {
  bool rg = opts.requires_grad_;
  Tensor t = empty(shape, opts.requires_grad(false));
  t.fill_(value);
  if (rg) t.requires_grad_();
  return t;
}

Tensor zeros(const Shape& shape, TensorOptions opts) {
  bool rg = opts.requires_grad_;
  Tensor t = empty(shape, opts.requires_grad(false));
  std::memset(t.raw_data(), 0, static_cast<std::size_t>(t.numel()) * element_size(t.dtype()));
  if (rg) t.requires_grad_();
  return t;
}
Tensor ones(const Shape& shape, TensorOptions opts) {
  return full(shape, 1.0, opts);
}
Tensor zeros_like(const Tensor& t) {
  return zeros(t.shape(), t.dtype());
}
Tensor ones_like(const Tensor& t) {
  return ones(t.shape(), t.dtype());
}
Tensor full_like(const Tensor& t, double value) {
  return full(t.shape(), value, t.dtype());
}
Tensor scalar_tensor(double value, TensorOptions opts) {
  return full({}, value, opts);
}

Tensor arange(double start, double end, double step, TensorOptions opts) {
  check(step != 0.0, "arange: step must be nonzero");
  const double count = std::ceil((end - start) / step);
  const std::int64_t n = count > 0 ? static_cast<std::int64_t>(count) : 0;
  bool rg = opts.requires_grad_;
  Tensor t = empty({n}, opts.requires_grad(false));
  dispatch_all(t.dtype(), [&]<class T>() {
    T* p = t.data_ptr<T>();
    for (std::int64_t i = 0; i < n; ++i)
      p[i] = static_cast<T>(start + static_cast<double>(i) * step);
  });
  if (rg) t.requires_grad_();
  return t;
}
Tensor arange(double end, TensorOptions opts) {
  return arange(0.0, end, 1.0, opts);
}

namespace {
Tensor from_doubles(const std::vector<double>& values, const Shape& shape, TensorOptions opts) {
  bool rg = opts.requires_grad_;
  Tensor t = empty(shape, opts.requires_grad(false));
  dispatch_all(t.dtype(), [&]<class T>() {
    T* p = t.data_ptr<T>();
    for (std::size_t i = 0; i < values.size(); ++i) p[i] = static_cast<T>(values[i]);
  });
  if (rg) t.requires_grad_();
  return t;
}

void flatten_nested(const NestedList& list, std::size_t depth, Shape& shape,
                    std::vector<double>& out) {
  if (list.is_scalar()) {
    check(shape.size() == depth, "tensor: nested lists have ragged lengths at depth ", depth);
    out.push_back(list.value());
    return;
  }
  const auto n = static_cast<std::int64_t>(list.items().size());
  if (shape.size() <= depth) {
    check(out.empty() || shape.size() == depth,
          "tensor: nested lists have ragged lengths at depth ", depth);
    shape.push_back(n);
  } else {
    check(shape[depth] == n, "tensor: nested lists have ragged lengths at depth ", depth);
  }
  for (const auto& e : list.items()) flatten_nested(e, depth + 1, shape, out);
}
}  // namespace

Tensor tensor(const NestedList& data, TensorOptions opts) {
  Shape shape;
  std::vector<double> values;
  flatten_nested(data, 0, shape, values);
  check(static_cast<std::int64_t>(values.size()) == shape_numel(shape),
        "tensor: nested lists have ragged lengths");
  return from_doubles(values, shape, opts);
}

// ---- autograd state ---------------------------------------------------------------------

bool Tensor::requires_grad() const {
  const auto& impl = checked();
  return impl.requires_grad || impl.grad_fn != nullptr;
}

Tensor& Tensor::requires_grad_(bool r) {
  auto& impl = checked();
  if (r) {
    check(is_floating(impl.dtype),
          "requires_grad_: only float32 and float64 tensors can require "
          "gradients, got ",
          dtype_name(impl.dtype));
  }
  if (impl.grad_fn && !r)
    fail("requires_grad_: cannot turn off requires_grad of a non-leaf tensor (use detach())");
  impl.requires_grad = r;
  return *this;
}

Tensor Tensor::grad() const {
  return checked().grad;
}
void Tensor::set_grad(const Tensor& g) const {
  if (g.defined() && g.shape() != shape())
    fail("set_grad: gradient of shape ", g.shape(), " for a tensor of shape ", shape());
  checked().grad = g;
}
void Tensor::zero_grad(bool set_to_none) const {
  auto& impl = checked();
  if (set_to_none || !impl.grad.defined()) {
    impl.grad = Tensor();
  } else {
    impl.grad.zero_();
  }
}
const std::shared_ptr<autograd::Node>& Tensor::grad_fn() const {
  return checked().grad_fn;
}
std::uint32_t Tensor::output_nr() const {
  return checked().output_nr;
}
bool Tensor::is_leaf() const {
  return checked().grad_fn == nullptr;
}

void Tensor::backward(const Tensor& seed, std::optional<bool> retain_graph,
                      bool create_graph) const {
  // The one-element output and seed lists live in per-thread vectors reused from one backward
  // to the next (issue 14: a training step allocates nothing); a backward started inside this
  // one (a hook, checkpoint's recomputation) makes its own.
  thread_local std::vector<Tensor> outs, seeds;
  thread_local bool busy = false;
  if (busy) {
    xgrad::backward({*this}, {seed}, retain_graph, create_graph);
    return;
  }
  busy = true;
  struct Reset {
    ~Reset() {
      outs.clear();
      seeds.clear();
      busy = false;
    }
  } reset;
  outs.assign(1, *this);
  seeds.assign(1, seed);
  xgrad::backward(outs, seeds, retain_graph, create_graph);
}

Tensor Tensor::detach() const {
  const auto& impl = checked();
  auto d = detail::make_pooled<TensorImpl>(impl.storage, impl.shape, impl.strides, impl.offset,
                                           impl.dtype);
  if (impl.batch) d->batch = autograd::detail::detached_batch(*impl.batch);
  return Tensor(std::move(d));
}

void Tensor::retain_grad() const {
  auto& impl = checked();
  check(requires_grad(), "retain_grad: the tensor does not require grad");
  if (!impl.grad_fn || impl.retains_grad) return;  // leaves keep their grad anyway
  impl.retains_grad = true;
  std::weak_ptr<TensorImpl> weak = impl_;
  impl.grad_fn->add_pre_hook(impl.output_nr, [weak](const Tensor& g) -> Tensor {
    if (auto self = weak.lock()) {
      if (!self->grad.defined()) {
        self->grad = g.clone();
      } else {
        self->grad = self->grad.clone();
        self->grad.add_(g);
      }
    }
    return Tensor();
  });
}
bool Tensor::retains_grad() const {
  return checked().retains_grad;
}

void Tensor::register_hook(Hook hook) const {
  auto& impl = checked();
  check(requires_grad(),
        "register_hook: cannot register a hook on a tensor that does not require "
        "grad");
  if (impl.grad_fn) {
    impl.grad_fn->add_pre_hook(impl.output_nr, std::move(hook));
  } else {
    impl.hooks.push_back(std::move(hook));
  }
}

void Tensor::register_post_accumulate_grad_hook(std::function<void(const Tensor&)> hook) const {
  check(is_leaf() && requires_grad(),
        "register_post_accumulate_grad_hook: the tensor must be a leaf that requires grad");
  checked().post_accumulate_hooks.push_back(std::move(hook));
}

const std::string& Tensor::name() const {
  return checked().name;
}
Tensor& Tensor::set_name(std::string n) {
  checked().name = std::move(n);
  return *this;
}

}  // namespace xgrad

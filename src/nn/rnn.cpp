#include "xgrad/nn/rnn.hpp"

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "xgrad/nn/init.hpp"
#include "xgrad/ops/activation.hpp"
#include "xgrad/ops/elementwise.hpp"
#include "xgrad/ops/indexing.hpp"
#include "xgrad/ops/linalg.hpp"
#include "xgrad/ops/shape.hpp"

namespace xgrad::nn {

namespace {

// Registers weight_ih [G·H, I], weight_hh [G·H, H] and the biases [G·H] under the given suffix
// ("" for cells, "_l0" for LSTM), each drawn from U(−1/√H, 1/√H) in that order (torch's
// reset_parameters).
void make_parameters(std::int64_t input_size, std::int64_t hidden_size, std::int64_t gates,
                     bool bias, Dtype dtype, const char* type,
                     const std::function<void(const std::string&, Tensor&, Tensor)>& reg,
                     const std::string& suffix, Tensor& w_ih, Tensor& w_hh, Tensor& b_ih,
                     Tensor& b_hh) {
  check(input_size > 0 && hidden_size > 0, type,
        ": sizes must be positive, got input_size=", input_size, " hidden_size=", hidden_size);
  check(is_floating(dtype), type, ": dtype must be float32 or float64, got ", dtype_name(dtype));
  const std::int64_t G = gates * hidden_size;
  reg("weight_ih" + suffix, w_ih, empty({G, input_size}, dtype));
  reg("weight_hh" + suffix, w_hh, empty({G, hidden_size}, dtype));
  if (bias) {
    reg("bias_ih" + suffix, b_ih, empty({G}, dtype));
    reg("bias_hh" + suffix, b_hh, empty({G}, dtype));
  }
  const double k = 1.0 / std::sqrt(static_cast<double>(hidden_size));
  for (Tensor* t : {&w_ih, &w_hh, &b_ih, &b_hh})
    if (t->defined()) init::uniform_(*t, -k, k);
}

// Gate block j (of width H) of a [N, G·H] tensor: a view.
Tensor gate(const Tensor& gates, std::int64_t j, std::int64_t H) {
  return slice(gates, 1, j * H, (j + 1) * H);
}

// One LSTM step from the input projection gi = x·W_ihᵀ + b_ih [N, 4H].
LSTMState lstm_step(const Tensor& gi, const Tensor& h, const Tensor& c, const Tensor& w_hh,
                    const Tensor& b_hh, std::int64_t H) {
  Tensor gates = gi + linear(h, w_hh, b_hh);
  Tensor i = sigmoid(gate(gates, 0, H));
  Tensor f = sigmoid(gate(gates, 1, H));
  Tensor g = tanh(gate(gates, 2, H));
  Tensor o = sigmoid(gate(gates, 3, H));
  Tensor c1 = f * c + i * g;
  Tensor h1 = o * tanh(c1);
  return {h1, c1};
}

}  // namespace

// ---- RNNCellBase ---------------------------------------------------------------------------

RNNCellBase::RNNCellBase(std::int64_t input_size, std::int64_t hidden_size, std::int64_t gates,
                         bool bias, Dtype dtype, const char* type)
    : input_size_(input_size), hidden_size_(hidden_size), type_(type) {
  make_parameters(
      input_size, hidden_size, gates, bias, dtype, type,
      [this](const std::string& n, Tensor& m, Tensor t) { register_parameter(n, m, t); }, "",
      weight_ih, weight_hh, bias_ih, bias_hh);
}

Tensor RNNCellBase::batched_input(const Tensor& x) const {
  check(x.defined(), type_, ": the input is undefined");
  check((x.dim() == 1 || x.dim() == 2) && x.size(-1) == input_size_, type_, ": input of shape ",
        x.shape(), " does not match input_size ", input_size_, " (expected [N, ", input_size_,
        "] or [", input_size_, "])");
  check(x.dtype() == weight_ih.dtype(), type_, ": input is ", dtype_name(x.dtype()),
        " but the parameters are ", dtype_name(weight_ih.dtype()));
  return x.dim() == 1 ? unsqueeze(x, 0) : x;
}

Tensor RNNCellBase::batched_state(const Tensor& s, const Tensor& x, const char* what) const {
  const std::int64_t N = x.dim() == 1 ? 1 : x.size(0);
  if (!s.defined()) return zeros({N, hidden_size_}, weight_ih.dtype());
  const Shape expected = x.dim() == 1 ? Shape{hidden_size_} : Shape{N, hidden_size_};
  check(s.shape() == expected, type_, ": ", what, " of shape ", s.shape(), " does not match ",
        expected, " (batch ", N, ", hidden_size ", hidden_size_, ") for an input of shape ",
        x.shape());
  check(s.dtype() == weight_ih.dtype(), type_, ": ", what, " is ", dtype_name(s.dtype()),
        " but the parameters are ", dtype_name(weight_ih.dtype()));
  return x.dim() == 1 ? unsqueeze(s, 0) : s;
}

Tensor RNNCellBase::unbatched_like(const Tensor& s, const Tensor& x) {
  return x.dim() == 1 ? squeeze(s, 0) : s;
}

// ---- RNNCell -------------------------------------------------------------------------------

RNNCell::RNNCell(std::int64_t input_size, std::int64_t hidden_size, RNNCellOptions options)
    : RNNCellBase(input_size, hidden_size, 1, options.bias, options.dtype, "RNNCell"),
      nonlinearity_(options.nonlinearity) {}

Tensor RNNCell::forward(const Tensor& x, const Tensor& h) {
  auto scope = enter_scope();  // tag the nodes with this module's path, as operator() does
  Tensor xb = batched_input(x);
  Tensor hb = batched_state(h, x, "h");
  Tensor pre = linear(xb, weight_ih, bias_ih) + linear(hb, weight_hh, bias_hh);
  Tensor h1 = nonlinearity_ == RNNNonlinearity::tanh ? tanh(pre) : relu(pre);
  return unbatched_like(h1, x);
}

Tensor RNNCell::forward(const Tensor& x) {
  return forward(x, Tensor());
}

// ---- LSTMCell ------------------------------------------------------------------------------

LSTMCell::LSTMCell(std::int64_t input_size, std::int64_t hidden_size, RecurrentOptions options)
    : RNNCellBase(input_size, hidden_size, 4, options.bias, options.dtype, "LSTMCell") {}

LSTMState LSTMCell::forward(const Tensor& x, const Tensor& h, const Tensor& c) {
  auto scope = enter_scope();
  Tensor xb = batched_input(x);
  Tensor hb = batched_state(h, x, "h");
  Tensor cb = batched_state(c, x, "c");
  LSTMState s =
      lstm_step(linear(xb, weight_ih, bias_ih), hb, cb, weight_hh, bias_hh, hidden_size());
  return {unbatched_like(s.h, x), unbatched_like(s.c, x)};
}

Tensor LSTMCell::forward(const Tensor& x) {
  return forward(x, Tensor(), Tensor()).h;
}

// ---- GRUCell -------------------------------------------------------------------------------

GRUCell::GRUCell(std::int64_t input_size, std::int64_t hidden_size, RecurrentOptions options)
    : RNNCellBase(input_size, hidden_size, 3, options.bias, options.dtype, "GRUCell") {}

Tensor GRUCell::forward(const Tensor& x, const Tensor& h) {
  auto scope = enter_scope();
  Tensor xb = batched_input(x);
  Tensor hb = batched_state(h, x, "h");
  const std::int64_t H = hidden_size();
  Tensor gi = linear(xb, weight_ih, bias_ih);
  Tensor gh = linear(hb, weight_hh, bias_hh);
  Tensor r = sigmoid(gate(gi, 0, H) + gate(gh, 0, H));
  Tensor z = sigmoid(gate(gi, 1, H) + gate(gh, 1, H));
  Tensor n = tanh(gate(gi, 2, H) + r * gate(gh, 2, H));
  Tensor h1 = n + z * (hb - n);  // (1 − z)·n + z·h, as torch computes it
  return unbatched_like(h1, x);
}

Tensor GRUCell::forward(const Tensor& x) {
  return forward(x, Tensor());
}

// ---- LSTM ----------------------------------------------------------------------------------

LSTM::LSTM(std::int64_t input_size, std::int64_t hidden_size, RecurrentOptions options)
    : input_size_(input_size), hidden_size_(hidden_size), batch_first_(options.batch_first) {
  make_parameters(
      input_size, hidden_size, 4, options.bias, options.dtype, "LSTM",
      [this](const std::string& n, Tensor& m, Tensor t) { register_parameter(n, m, t); }, "_l0",
      weight_ih, weight_hh, bias_ih, bias_hh);
}

LSTMOutput LSTM::forward(const Tensor& x, const Tensor& h0, const Tensor& c0) {
  auto scope = enter_scope();
  check(x.defined(), "LSTM: the input is undefined");
  const bool unbatched = x.dim() == 2;
  check((x.dim() == 2 || x.dim() == 3) && x.size(-1) == input_size_, "LSTM: input of shape ",
        x.shape(), " does not match input_size ", input_size_, " (expected ",
        batch_first_ ? "[N, T, " : "[T, N, ", input_size_, "] or [T, ", input_size_, "])");
  check(x.dtype() == weight_ih.dtype(), "LSTM: input is ", dtype_name(x.dtype()),
        " but the parameters are ", dtype_name(weight_ih.dtype()));
  // Time-major, batched: [T, N, I].
  Tensor xs = unbatched ? unsqueeze(x, 1) : (batch_first_ ? transpose(x, 0, 1) : x);
  const std::int64_t T = xs.size(0), N = xs.size(1), H = hidden_size_;
  check(T > 0, "LSTM: the sequence of shape ", x.shape(), " has no time steps");
  auto state = [&](const Tensor& s, const char* what) {
    if (!s.defined()) return zeros({N, H}, weight_ih.dtype());
    const Shape expected = unbatched ? Shape{H} : Shape{N, H};
    check(s.shape() == expected, "LSTM: ", what, " of shape ", s.shape(), " does not match ",
          expected, " (batch ", N, ", hidden_size ", H, ") for an input of shape ", x.shape());
    check(s.dtype() == weight_ih.dtype(), "LSTM: ", what, " is ", dtype_name(s.dtype()),
          " but the parameters are ", dtype_name(weight_ih.dtype()));
    return unbatched ? unsqueeze(s, 0) : s;
  };
  Tensor h = state(h0, "h0"), c = state(c0, "c0");

  // All input projections in one product, then one view per step (unbind: O(T) backward).
  std::vector<Tensor> gi = unbind(linear(xs, weight_ih, bias_ih), 0);
  std::vector<Tensor> hs;
  hs.reserve(static_cast<std::size_t>(T));
  for (std::int64_t t = 0; t < T; ++t) {
    LSTMState s = lstm_step(gi[static_cast<std::size_t>(t)], h, c, weight_hh, bias_hh, H);
    h = s.h;
    c = s.c;
    hs.push_back(h);
  }
  Tensor out = stack(hs, 0);  // [T, N, H]
  if (unbatched) return {squeeze(out, 1), squeeze(h, 0), squeeze(c, 0)};
  if (batch_first_) out = transpose(out, 0, 1);
  return {out, h, c};
}

Tensor LSTM::forward(const Tensor& x) {
  return forward(x, Tensor(), Tensor()).output;
}

}  // namespace xgrad::nn

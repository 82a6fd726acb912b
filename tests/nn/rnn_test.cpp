// Recurrent modules: RNNCell, LSTMCell, GRUCell and LSTM. Outputs against torch 1.13 for given
// weights (numbers printed by python3-torch, float64), parameter names, shapes and init,
// gradcheck of every cell and of LSTM w.r.t. inputs, states and parameters, an LSTM unrolled
// over 10,000 steps through backward, batch_first / unbatched forms, and the errors.
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "test_util.hpp"
#include "xgrad/nn/rnn.hpp"

using namespace xgrad;
using xgrad::testing::expect_error;
using xgrad::testing::expect_gradcheck;
using xgrad::testing::expect_values;
using xgrad::testing::kFloatDtypes;
using xgrad::testing::leaf;
using xgrad::testing::tol;
using xgrad::testing::values_of;

namespace {

// t[k] = 0.5·sin(0.7k + phase) (flat index k): the weights the torch script set.
void fill_sin(const Tensor& t, double phase) {
  std::vector<double> v(static_cast<std::size_t>(t.numel()));
  for (std::size_t k = 0; k < v.size(); ++k)
    v[k] = 0.5 * std::sin(0.7 * static_cast<double>(k) + phase);
  no_grad guard;
  Tensor(t).copy_(from_data(v.data(), t.shape()));
}

// Parameter i (registration order) gets phase 0.3·i, as in the torch script.
void fill_parameters(const nn::Module& m) {
  double phase = 0;
  for (const Tensor& p : m.parameters()) {
    fill_sin(p, phase);
    phase += 0.3;
  }
}

nn::RecurrentOptions options(Dtype d, bool bias = true) {
  nn::RecurrentOptions o;
  o.dtype = d;
  o.bias = bias;
  return o;
}

// The inputs of the torch script: I = 3, H = 2, N = 2.
Tensor x_in(Dtype d) {
  return tensor({{0.5, -1.0, 2.0}, {0.1, 0.3, -0.7}}, d);
}
Tensor h_in(Dtype d) {
  return tensor({{0.2, -0.1}, {-0.4, 0.6}}, d);
}
Tensor c_in(Dtype d) {
  return tensor({{1.0, -0.5}, {0.3, 0.2}}, d);
}
// seq[k] = 0.4·cos(0.9k), [T=4, N=2, I=3].
Tensor seq_in(Dtype d) {
  std::vector<double> v(24);
  for (std::size_t k = 0; k < v.size(); ++k) v[k] = 0.4 * std::cos(0.9 * static_cast<double>(k));
  return from_data(v.data(), {4, 2, 3}).to(d);
}

// A float64 leaf copy of a parameter, for gradcheck.
Tensor leaf_copy(const Tensor& p) {
  return p.detach().clone().requires_grad_();
}

}  // namespace

BOOST_AUTO_TEST_SUITE(rnn)

// ---- values against torch -----------------------------------------------------------------

BOOST_AUTO_TEST_CASE(rnn_cell_matches_torch) {
  for (Dtype d : kFloatDtypes) {
    BOOST_TEST_CONTEXT(dtype_name(d)) {
      nn::RNNCellOptions o;
      o.dtype = d;
      nn::RNNCell cell(3, 2, o);
      fill_parameters(cell);
      Tensor h = cell.forward(x_in(d), h_in(d));
      BOOST_TEST((h.dtype() == d));
      expect_values(
          h, {2, 2},
          {0.8679736635390984, 0.6318468022831601, 0.5504642809425273, 0.8342802611148912}, tol(d));
    }
  }
}

BOOST_AUTO_TEST_CASE(lstm_cell_matches_torch) {
  for (Dtype d : kFloatDtypes) {
    BOOST_TEST_CONTEXT(dtype_name(d)) {
      nn::LSTMCell cell(3, 2, options(d));
      fill_parameters(cell);
      auto [h, c] = cell.forward(x_in(d), h_in(d), c_in(d));
      expect_values(
          h, {2, 2},
          {0.05193356738966557, -0.20669752751623416, 0.040157318997412005, -0.13477009704852982},
          tol(d));
      expect_values(
          c, {2, 2},
          {0.11795257174340912, -0.91966314541001, 0.19452432633001002, -0.3819395437250329},
          tol(d));
    }
  }
}

BOOST_AUTO_TEST_CASE(gru_cell_matches_torch) {
  for (Dtype d : kFloatDtypes) {
    BOOST_TEST_CONTEXT(dtype_name(d)) {
      nn::GRUCell cell(3, 2, options(d));
      fill_parameters(cell);
      expect_values(
          cell.forward(x_in(d), h_in(d)), {2, 2},
          {-0.10076833688382597, -0.29852306223579433, -0.25462158665495976, 0.0041629915238339255},
          tol(d));
    }
  }
}

BOOST_AUTO_TEST_CASE(lstm_sequence_matches_torch) {
  // torch.nn.LSTM(3, 2) over [T=4, N=2, I=3] from (h0, c0).
  for (Dtype d : kFloatDtypes) {
    BOOST_TEST_CONTEXT(dtype_name(d)) {
      nn::LSTM lstm(3, 2, options(d));
      fill_parameters(lstm);
      auto [out, h, c] = lstm.forward(seq_in(d), h_in(d), c_in(d));
      expect_values(
          out, {4, 2, 2},
          {0.13848644811996033, -0.2948028982004355, -0.010529231711201455, -0.04351486553864101,
           0.03084570770778648, -0.34754462360983396, -0.05930067750283927, -0.15132252794625822,
           -0.08873927811035293, -0.337360823088066, -0.07728683673645784, -0.27296794783270667,
           -0.14878163454063847, -0.3134155442642455, -0.09292837480597069, -0.3643792051994566},
          tol(d));
      expect_values(
          h, {2, 2},
          {-0.14878163454063847, -0.3134155442642455, -0.09292837480597069, -0.3643792051994566},
          tol(d));
      expect_values(
          c, {2, 2},
          {-0.565916904354438, -1.4018444084449473, -0.3491892436975763, -1.1276687786267423},
          tol(d));
    }
  }
}

// ---- structure ----------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(parameter_names_shapes_and_init) {
  manual_seed(0);
  nn::LSTMCell lstm_cell(5, 4);
  nn::GRUCell gru_cell(5, 4);
  nn::RNNCell rnn_cell(5, 4);
  nn::LSTM lstm(5, 4);
  struct Expect {
    const nn::Module* m;
    std::vector<std::string> names;
    std::int64_t gates;
  };
  const std::vector<std::string> cell_names = {"weight_ih", "weight_hh", "bias_ih", "bias_hh"};
  for (const Expect& e :
       {Expect{&lstm_cell, cell_names, 4}, Expect{&gru_cell, cell_names, 3},
        Expect{&rnn_cell, cell_names, 1},
        Expect{&lstm, {"weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"}, 4}}) {
    BOOST_TEST_CONTEXT(e.m->type_name()) {
      auto named = e.m->named_parameters();
      BOOST_REQUIRE_EQUAL(named.size(), 4u);
      const std::vector<Shape> shapes = {
          {4 * e.gates, 5}, {4 * e.gates, 4}, {4 * e.gates}, {4 * e.gates}};
      for (std::size_t i = 0; i < 4; ++i) {
        BOOST_TEST(named[i].first == e.names[i]);
        BOOST_TEST(named[i].second.shape() == shapes[i]);
        BOOST_TEST((named[i].second.dtype() == float32));
        // U(−1/√H, 1/√H) with H = 4: within ±0.5 and not all equal.
        xt::xarray<double> v = to_xarray<double>(named[i].second);
        BOOST_TEST(xt::amax(xt::abs(v))() <= 0.5);
        BOOST_TEST(xt::amax(v)() > xt::amin(v)());
      }
    }
  }
  BOOST_TEST(lstm_cell.type_name() == "LSTMCell");
  BOOST_TEST(lstm.weight_hh.name() == "weight_hh_l0");
  nn::LSTMCell no_bias(2, 3, options(float32, false));
  BOOST_TEST(no_bias.parameters().size() == 2u);
  BOOST_TEST(!no_bias.bias_ih.defined());
}

BOOST_AUTO_TEST_CASE(init_covers_the_range) {
  // Many draws: the extremes approach ±1/√H and the mean is near 0.
  manual_seed(4);
  nn::LSTM lstm(50, 16, options(float64));
  xt::xarray<double> w = to_xarray<double>(lstm.weight_ih);
  BOOST_TEST(xt::amax(w)() > 0.24);
  BOOST_TEST(xt::amin(w)() < -0.24);
  BOOST_TEST(xt::amax(xt::abs(w))() <= 0.25);
  BOOST_TEST(std::abs(xt::mean(w)()) < 0.01);
}

BOOST_AUTO_TEST_CASE(zero_state_and_operator_call) {
  manual_seed(1);
  nn::LSTMCell lstm_cell(3, 2, options(float64));
  nn::GRUCell gru_cell(3, 2, options(float64));
  nn::RNNCell rnn_cell(3, 2, {true, nn::RNNNonlinearity::relu, float64});
  Tensor x = x_in(float64), z = zeros({2, 2}, float64);
  // An undefined state is zeros; operator()(x) is one step from zeros returning h.
  expect_values(lstm_cell(x), {2, 2}, values_of(lstm_cell.forward(x, z, z).h));
  expect_values(lstm_cell.forward(x, Tensor(), Tensor()).c, {2, 2},
                values_of(lstm_cell.forward(x, z, z).c));
  expect_values(gru_cell(x), {2, 2}, values_of(gru_cell.forward(x, z)));
  expect_values(rnn_cell(x), {2, 2}, values_of(rnn_cell.forward(x, z)));
  // relu nonlinearity: no negative outputs.
  BOOST_TEST(xt::amin(to_xarray<double>(rnn_cell.forward(x, h_in(float64))))() >= 0.0);
}

BOOST_AUTO_TEST_CASE(unbatched_inputs) {
  manual_seed(2);
  nn::LSTMCell lstm_cell(3, 2, options(float64));
  nn::GRUCell gru_cell(3, 2, options(float64));
  nn::LSTM lstm(3, 2, options(float64));
  Tensor x = tensor({0.5, -1.0, 2.0}, float64), h = tensor({0.2, -0.1}, float64);
  Tensor c = tensor({1.0, -0.5}, float64);
  auto s = lstm_cell.forward(x, h, c);
  auto sb = lstm_cell.forward(x.unsqueeze(0), h.unsqueeze(0), c.unsqueeze(0));
  expect_values(s.h, {2}, values_of(sb.h));
  expect_values(s.c, {2}, values_of(sb.c));
  expect_values(gru_cell.forward(x, h), {2},
                values_of(gru_cell.forward(x.unsqueeze(0), h.unsqueeze(0))));
  // LSTM over [T, I] = the batched run with N = 1.
  Tensor seq = slice(seq_in(float64), 1, 0, 1);  // [4,1,3]
  auto un = lstm.forward(seq.squeeze(1), h, c);
  auto ba = lstm.forward(seq, h.unsqueeze(0), c.unsqueeze(0));
  expect_values(un.output, {4, 2}, values_of(ba.output));
  expect_values(un.h, {2}, values_of(ba.h));
  expect_values(un.c, {2}, values_of(ba.c));
}

BOOST_AUTO_TEST_CASE(lstm_equals_a_loop_of_cells_and_batch_first) {
  manual_seed(3);
  nn::LSTMCell cell(3, 2, options(float64));
  nn::LSTM lstm(3, 2, options(float64));
  auto seq_p = lstm.parameters();
  auto cell_p = cell.parameters();
  for (std::size_t i = 0; i < 4; ++i) {
    no_grad guard;
    seq_p[i].copy_(cell_p[i]);
  }
  Tensor seq = seq_in(float64);
  Tensor h = h_in(float64), c = c_in(float64);
  std::vector<double> outs;
  for (std::int64_t t = 0; t < 4; ++t) {
    auto s = cell.forward(slice(seq, 0, t, t + 1).squeeze(0), h, c);
    h = s.h;
    c = s.c;
    for (double v : values_of(h)) outs.push_back(v);
  }
  auto r = lstm.forward(seq, h_in(float64), c_in(float64));
  expect_values(r.output, {4, 2, 2}, outs);
  expect_values(r.h, {2, 2}, values_of(h));
  expect_values(r.c, {2, 2}, values_of(c));
  // lstm(x) is the output from zero state.
  expect_values(lstm(seq), {4, 2, 2}, values_of(lstm.forward(seq, Tensor(), Tensor()).output));

  // batch_first: [N, T, I] in, [N, T, H] out, same numbers.
  nn::RecurrentOptions bf = options(float64);
  bf.batch_first = true;
  nn::LSTM lstm_bf(3, 2, bf);
  for (std::size_t i = 0; i < 4; ++i) {
    no_grad guard;
    lstm_bf.parameters()[i].copy_(cell_p[i]);
  }
  auto rb = lstm_bf.forward(seq.transpose(0, 1), h_in(float64), c_in(float64));
  expect_values(rb.output, {2, 4, 2}, values_of(r.output.transpose(0, 1)));
  expect_values(rb.h, {2, 2}, values_of(r.h));
}

// ---- gradients ----------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(rnn_cell_gradcheck) {
  for (auto nl : {nn::RNNNonlinearity::tanh, nn::RNNNonlinearity::relu}) {
    manual_seed(5);
    auto cell = std::make_shared<nn::RNNCell>(3, 4, nn::RNNCellOptions{true, nl, float64});
    // relu: inputs chosen by seed so that no pre-activation sits within eps of 0.
    expect_gradcheck(
        [cell](const std::vector<Tensor>& in) {
          cell->weight_ih = in[2];
          cell->weight_hh = in[3];
          cell->bias_ih = in[4];
          cell->bias_hh = in[5];
          return cell->forward(in[0], in[1]);
        },
        {leaf({2, 3}), leaf({2, 4}, -1, 1, 2), leaf_copy(cell->weight_ih),
         leaf_copy(cell->weight_hh), leaf_copy(cell->bias_ih), leaf_copy(cell->bias_hh)});
  }
}

BOOST_AUTO_TEST_CASE(lstm_cell_gradcheck) {
  manual_seed(6);
  auto cell = std::make_shared<nn::LSTMCell>(3, 2, options(float64));
  expect_gradcheck(
      [cell](const std::vector<Tensor>& in) {
        cell->weight_ih = in[3];
        cell->weight_hh = in[4];
        cell->bias_ih = in[5];
        cell->bias_hh = in[6];
        auto [h, c] = cell->forward(in[0], in[1], in[2]);
        return concat({h, c}, 1);
      },
      {leaf({2, 3}), leaf({2, 2}, -1, 1, 2), leaf({2, 2}, -1, 1, 3), leaf_copy(cell->weight_ih),
       leaf_copy(cell->weight_hh), leaf_copy(cell->bias_ih), leaf_copy(cell->bias_hh)});
  // Without biases, unbatched.
  auto nb = std::make_shared<nn::LSTMCell>(3, 2, options(float64, false));
  expect_gradcheck(
      [nb](const std::vector<Tensor>& in) {
        nb->weight_ih = in[3];
        nb->weight_hh = in[4];
        auto [h, c] = nb->forward(in[0], in[1], in[2]);
        return concat({h, c}, 0);
      },
      {leaf({3}), leaf({2}, -1, 1, 2), leaf({2}, -1, 1, 3), leaf_copy(nb->weight_ih),
       leaf_copy(nb->weight_hh)});
}

BOOST_AUTO_TEST_CASE(gru_cell_gradcheck) {
  manual_seed(7);
  auto cell = std::make_shared<nn::GRUCell>(3, 2, options(float64));
  expect_gradcheck(
      [cell](const std::vector<Tensor>& in) {
        cell->weight_ih = in[2];
        cell->weight_hh = in[3];
        cell->bias_ih = in[4];
        cell->bias_hh = in[5];
        return cell->forward(in[0], in[1]);
      },
      {leaf({2, 3}), leaf({2, 2}, -1, 1, 2), leaf_copy(cell->weight_ih), leaf_copy(cell->weight_hh),
       leaf_copy(cell->bias_ih), leaf_copy(cell->bias_hh)});
}

BOOST_AUTO_TEST_CASE(lstm_gradcheck_through_time) {
  manual_seed(8);
  auto lstm = std::make_shared<nn::LSTM>(2, 2, options(float64));
  // Outputs and final state of a 3-step sequence w.r.t. the input, the initial state and every
  // parameter.
  expect_gradcheck(
      [lstm](const std::vector<Tensor>& in) {
        lstm->weight_ih = in[3];
        lstm->weight_hh = in[4];
        lstm->bias_ih = in[5];
        lstm->bias_hh = in[6];
        auto [out, h, c] = lstm->forward(in[0], in[1], in[2]);
        return concat({out.reshape({-1}), h.reshape({-1}), c.reshape({-1})}, 0);
      },
      {leaf({3, 2, 2}), leaf({2, 2}, -1, 1, 2), leaf({2, 2}, -1, 1, 3), leaf_copy(lstm->weight_ih),
       leaf_copy(lstm->weight_hh), leaf_copy(lstm->bias_ih), leaf_copy(lstm->bias_hh)});
}

BOOST_AUTO_TEST_CASE(lstm_unrolled_over_10000_steps) {
  // Backpropagation through 10,000 steps: the engine walks the graph iteratively and nodes
  // are freed iteratively, so neither recurses once per step.
  manual_seed(9);
  const std::int64_t T = 10000;
  nn::LSTM lstm(1, 3, options(float64));
  Tensor x = (randn({T, 2, 1}, float64) * 0.5).detach().requires_grad_();
  Tensor h0 = zeros({2, 3}, float64).requires_grad_();
  {
    auto r = lstm.forward(x, h0, Tensor());
    BOOST_TEST((r.output.shape() == Shape{T, 2, 3}));
    Tensor loss = mean(r.output) + sum(r.h);
    loss.backward();
  }
  for (const Tensor& p : lstm.parameters()) {
    BOOST_REQUIRE(p.grad().defined());
    xt::xarray<double> g = to_xarray<double>(p.grad());
    BOOST_TEST(xt::all(xt::isfinite(g)));
    BOOST_TEST(xt::amax(xt::abs(g))() > 0.0);
  }
  // The gradient reaches the first step's input and the initial state.
  BOOST_TEST((x.grad().shape() == Shape{T, 2, 1}));
  BOOST_TEST(xt::all(xt::isfinite(to_xarray<double>(x.grad()))));
  BOOST_TEST(std::abs(to_xarray<double>(x.grad())(0, 0, 0)) > 0.0);
  BOOST_TEST(h0.grad().defined());
}

BOOST_AUTO_TEST_CASE(stateful_calls_tag_nodes_with_the_module_scope) {
  // forward(x, h, c) is an entry point besides operator(): its nodes carry the module's path
  // too (graph dumps draw them inside the module's cluster).
  class Encoder : public nn::Module {
   public:
    Encoder() {
      lstm = register_module("lstm", std::make_shared<nn::LSTM>(2, 3));
      cell = register_module("cell", std::make_shared<nn::GRUCell>(2, 3));
    }
    std::shared_ptr<nn::LSTM> lstm;
    std::shared_ptr<nn::GRUCell> cell;

   protected:
    Tensor forward(const Tensor& x) override { return (*lstm)(x); }
  };
  Encoder enc;
  auto r = enc.lstm->forward(zeros({3, 1, 2}), Tensor(), Tensor());
  BOOST_TEST(nn::scope_path(*r.h.grad_fn()) == "lstm");
  BOOST_TEST(nn::scope_path(*r.output.grad_fn()) == "lstm");
  BOOST_TEST(nn::scope_path(*enc.cell->forward(zeros({1, 2}), Tensor()).grad_fn()) == "cell");
}

// ---- errors -------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(errors) {
  nn::LSTMCell cell(3, 2);
  expect_error(
      [&] {
        cell.forward(zeros({5, 4}), Tensor(), Tensor());
      },
      {"LSTMCell", "[5,4]", "input_size 3"});
  expect_error(
      [&] {
        cell.forward(zeros({5, 3}), zeros({4, 2}), Tensor());
      },
      {"LSTMCell", "h of shape [4,2]", "[5,2]"});
  expect_error(
      [&] {
        cell.forward(zeros({5, 3}), Tensor(), zeros({5, 3}));
      },
      {"LSTMCell", "c of shape [5,3]"});
  expect_error(
      [&] {
        cell.forward(zeros({5, 3}, float64), Tensor(), Tensor());
      },
      {"LSTMCell", "float64", "float32"});
  expect_error(
      [&] {
        cell.forward(zeros({3}), zeros({1, 2}), Tensor());
      },
      {"LSTMCell", "h of shape [1,2]", "[2]"});
  nn::GRUCell gru(3, 2);
  expect_error([&] { gru.forward(zeros({2, 2, 3}), Tensor()); }, {"GRUCell", "[2,2,3]"});
  nn::RNNCell rnn_cell(3, 2);
  expect_error([&] { rnn_cell.forward(zeros({1, 3}), zeros({1, 3})); }, {"RNNCell", "h of shape"});
  nn::LSTM lstm(3, 2);
  expect_error([&] { lstm(zeros({4, 2, 5})); }, {"LSTM", "[4,2,5]", "input_size 3"});
  expect_error([&] { lstm(zeros({0, 2, 3})); }, {"LSTM", "no time steps"});
  expect_error(
      [&] {
        lstm.forward(zeros({4, 2, 3}), zeros({3, 2}), Tensor());
      },
      {"LSTM", "h0 of shape [3,2]", "[2,2]"});
  expect_error([] { nn::LSTM(0, 2); }, {"LSTM", "positive"});
  expect_error([] { nn::GRUCell(3, -1); }, {"GRUCell", "positive"});
}

BOOST_AUTO_TEST_SUITE_END()

// create_graph and double backward through the engine, the node's saved-tensor store, and
// forward mode's API (dual levels, make_dual, unpack_dual, custom Functions with a jvp).
#include <boost/test/unit_test.hpp>

#include "test_util.hpp"

using namespace xgrad;
using xgrad::testing::expect_error;
using xgrad::testing::expect_gradcheck;
using xgrad::testing::expect_values;
using xgrad::testing::make;
namespace fwd = xgrad::autograd::forward_ad;

BOOST_AUTO_TEST_SUITE(higher_order)

// d/dx x³ = 3x², d²/dx² = 6x, d³/dx³ = 6, d⁴/dx⁴ = 0: grad of grad of grad, each recorded.
BOOST_AUTO_TEST_CASE(derivatives_of_x_cubed_to_the_fourth_order) {
  Tensor x = make({2.0, -1.5}, {2}).requires_grad_();
  Tensor y = sum(mul(mul(x, x), x));
  Tensor g1 = grad({y}, {x}, {}, std::nullopt, /*create_graph=*/true)[0];
  expect_values(g1, {2}, {12.0, 6.75});
  BOOST_TEST(g1.requires_grad());
  Tensor g2 = grad({sum(g1)}, {x}, {}, std::nullopt, true)[0];
  expect_values(g2, {2}, {12.0, -9.0});
  Tensor g3 = grad({sum(g2)}, {x}, {}, std::nullopt, true)[0];
  expect_values(g3, {2}, {6.0, 6.0});
  // The fourth derivative is zero: g3 is made of constants only, so it has no graph (as in
  // torch, differentiating it again is an error, not a silent zero).
  BOOST_TEST(!g3.requires_grad());
}

// Through a node that saves its own output (exp): d²/dx² eˣ = eˣ.
BOOST_AUTO_TEST_CASE(double_backward_through_a_saved_output) {
  Tensor x = make({0.5, -1.0}, {2}).requires_grad_();
  Tensor g = grad({sum(exp(x))}, {x}, {}, std::nullopt, true)[0];
  Tensor h = grad({sum(g)}, {x})[0];
  expect_values(h, {2}, {std::exp(0.5), std::exp(-1.0)});
}

// backward(create_graph) leaves a .grad() with a graph: a gradient penalty trains through it.
BOOST_AUTO_TEST_CASE(backward_with_create_graph_leaves_a_differentiable_grad) {
  Tensor w = make({3.0}, {1}).requires_grad_();
  Tensor x = make({2.0}, {1});
  Tensor y = sum(mul(mul(w, w), x));  // dy/dw = 2wx = 12
  y.backward(Tensor(), std::nullopt, /*create_graph=*/true);
  Tensor gw = w.grad();
  expect_values(gw, {1}, {12.0});
  BOOST_TEST(gw.requires_grad());
  // penalty = (dy/dw)² → d/dw = 2·(2wx)·2x = 96
  Tensor penalty = sum(mul(gw, gw));
  Tensor d = grad({penalty}, {w})[0];
  expect_values(d, {1}, {96.0});
}

// Hessian-vector product by double backward: f = Σ x_i² x_j summed over pairs.
BOOST_AUTO_TEST_CASE(hessian_vector_product_by_double_backward) {
  Tensor x = make({1.0, 2.0, 3.0}, {3}).requires_grad_();
  Tensor v = make({1.0, 0.0, -1.0}, {3});
  // f = (Σx)³ → ∇f = 3(Σx)²·1, H = 6(Σx)·11ᵀ → Hv = 6·6·(Σv)·1 = 0
  Tensor s = sum(x);
  Tensor f = mul(mul(s, s), s);
  Tensor g = grad({f}, {x}, {}, std::nullopt, true)[0];
  Tensor hv = grad({sum(mul(g, v))}, {x}, {}, /*retain_graph=*/true)[0];
  expect_values(hv, {3}, {0.0, 0.0, 0.0});
  Tensor v2 = make({1.0, 1.0, 0.0}, {3});
  Tensor g2 = grad({f}, {x}, {}, std::nullopt, true)[0];
  Tensor hv2 = grad({sum(mul(g2, v2))}, {x})[0];
  expect_values(hv2, {3}, {72.0, 72.0, 72.0});
}

// create_graph off records nothing: the gradient has no graph.
BOOST_AUTO_TEST_CASE(without_create_graph_the_gradient_has_no_graph) {
  Tensor x = make({1.0, 2.0}, {2}).requires_grad_();
  Tensor g = grad({sum(exp(x))}, {x})[0];
  BOOST_TEST(!g.requires_grad());
  BOOST_TEST(!g.grad_fn());
}

// retain_graph defaults to create_graph (torch): a second grad through the same graph works.
BOOST_AUTO_TEST_CASE(retain_graph_defaults_to_create_graph) {
  Tensor x = make({1.0}, {1}).requires_grad_();
  Tensor y = sum(exp(x));
  grad({y}, {x}, {}, std::nullopt, true);
  Tensor g = grad({y}, {x})[0];
  expect_values(g, {1}, {std::exp(1.0)});
  expect_error([&] { grad({y}, {x}); }, {"exp", "second time"});
}

// Saved tensors are freed after backward: every storage the graph saved is released.
BOOST_AUTO_TEST_CASE(saved_tensors_are_freed_after_backward) {
  Tensor x = make({0.5, 1.5}, {2}).requires_grad_();
  std::weak_ptr<Storage> saved_out;
  Tensor loss;
  {
    Tensor e = exp(x);  // saves its output
    saved_out = e.storage();
    loss = sum(mul(log(e), e));  // log saves e, mul saves both
  }
  BOOST_TEST(saved_out.use_count() > 0);  // the graph keeps e alive
  loss.backward();
  BOOST_TEST(saved_out.use_count() == 0);  // nothing keeps it now
}

// Every tensor a graph saved is freed by backward without retain_graph: after the step, the
// bytes held by storages are the parameters' plus their gradients, nothing else (the MLP and the
// CNN: linear, relu, conv, max pool, log_softmax/cross_entropy save inputs, outputs, indices).
BOOST_AUTO_TEST_CASE(backward_frees_every_saved_tensor_of_a_model) {
  for (const std::string model : {"mlp", "cnn"}) {
    manual_seed(5);
    std::shared_ptr<nn::Module> net;
    Tensor x;
    if (model == "mlp") {
      net = std::make_shared<nn::MLP>(std::vector<std::int64_t>{784, 64, 10});
      x = randn({8, 784});
    } else {
      net = std::make_shared<nn::CNN>();
      x = randn({8, 1, 28, 28});
    }
    Tensor labels = tensor({1.0, 0.0, 3.0, 9.0, 2.0, 2.0, 7.0, 5.0}).to(int64);
    std::int64_t param_bytes = 0;
    for (const Tensor& p : net->parameters()) param_bytes += p.numel() * 4;
    const std::int64_t before = memory_allocated();  // parameters, x, labels, and the rest
    {
      Tensor loss = cross_entropy((*net)(x), labels);
      BOOST_TEST(memory_allocated() > before);  // the graph holds activations
      loss.backward();
    }
    BOOST_TEST(memory_allocated() - before == param_bytes,
               model << ": " << memory_allocated() - before << " bytes held, expected the "
                     << param_bytes << " bytes of the gradients");
  }
}

// backward(create_graph) on a leaf leaves no reference cycle (leaf → .grad() → its graph →
// the leaf): torch documents that cycle as a leak; here the graph holds leaves weakly, so
// dropping the leaf frees everything. Second derivatives still reach the leaf while it lives.
BOOST_AUTO_TEST_CASE(create_graph_backward_leaves_no_cycle) {
  const std::int64_t before = memory_allocated();
  {
    Tensor w = make({1.0, 2.0, 3.0}, {3}).requires_grad_();
    sum(mul(mul(w, w), w)).backward(Tensor(), std::nullopt, /*create_graph=*/true);
    expect_values(w.grad(), {3}, {3.0, 12.0, 27.0});
    BOOST_TEST(w.grad().requires_grad());
    expect_values(grad({sum(w.grad())}, {w}, {}, /*retain_graph=*/true)[0], {3}, {6.0, 12.0, 18.0});
  }
  BOOST_TEST(memory_allocated() == before);
  // A leaf dropped before backward gets nothing (nobody could read it); the rest still does.
  Tensor keep = make({2.0}, {1}).requires_grad_();
  Tensor y;
  {
    Tensor gone = make({5.0}, {1}).requires_grad_();
    y = sum(mul(keep, gone));
  }
  y.backward();
  expect_values(keep.grad(), {1}, {5.0});
}

// A custom Function marked once_differentiable refuses create_graph with its name.
struct RawSquare : autograd::Function<RawSquare> {
  static constexpr std::string_view name = "raw_square";
  static constexpr bool once_differentiable = true;
  static Tensor forward(autograd::FunctionCtx& ctx, const Tensor& x) {
    ctx.save_for_backward({x});
    return mul(x, x);
  }
  static autograd::tensor_list backward(autograd::FunctionCtx& ctx,
                                        const autograd::tensor_list& g) {
    Tensor x = ctx.saved_tensors()[0];
    return {mul(g[0], mul(x, scalar_tensor(2.0, float64)))};
  }
};

BOOST_AUTO_TEST_CASE(once_differentiable_function_refuses_create_graph) {
  Tensor x = make({3.0}, {1}).requires_grad_();
  Tensor y = sum(RawSquare::apply(x));
  expect_error([&] { grad({y}, {x}, {}, true, /*create_graph=*/true); },
               {"raw_square", "once_differentiable", "create_graph"});
  expect_values(grad({y}, {x})[0], {1}, {6.0});
}

// A custom Function written with xgrad ops is twice differentiable, and its jvp takes part in
// forward mode.
struct Cube : autograd::Function<Cube> {
  static constexpr std::string_view name = "cube";
  static Tensor forward(autograd::FunctionCtx& ctx, const Tensor& x) {
    ctx.save_for_backward({x});
    return mul(mul(x, x), x);
  }
  static autograd::tensor_list backward(autograd::FunctionCtx& ctx,
                                        const autograd::tensor_list& g) {
    Tensor x = ctx.saved_tensors()[0];
    return {mul(g[0], mul(mul(x, x), scalar_tensor(3.0, float64)))};
  }
  static Tensor jvp(autograd::FunctionCtx& ctx, const autograd::tensor_list& t) {
    Tensor x = ctx.saved_tensors()[0];
    return mul(t[0], mul(mul(x, x), scalar_tensor(3.0, float64)));
  }
};

BOOST_AUTO_TEST_CASE(custom_function_is_twice_differentiable_and_has_a_jvp) {
  Tensor x = make({0.3, -0.7, 1.1}, {3}).requires_grad_();
  expect_gradcheck([](const auto& in) { return Cube::apply(in[0]); }, {x});
  fwd::dual_level level;
  Tensor d = fwd::make_dual(make({2.0}, {1}), make({1.0}, {1}));
  expect_values(fwd::unpack_dual(Cube::apply(d)).tangent, {1}, {12.0});
}

BOOST_AUTO_TEST_CASE(function_without_jvp_refuses_a_dual_input) {
  fwd::dual_level level;
  Tensor d = fwd::make_dual(make({2.0}, {1}), make({1.0}, {1}));
  expect_error([&] { RawSquare::apply(d); }, {"raw_square", "tangent", "jvp"});
}

// ---- forward mode --------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(dual_numbers_carry_the_directional_derivative) {
  fwd::dual_level level;
  Tensor x = fwd::make_dual(make({1.0, 2.0}, {2}), make({1.0, 0.5}, {2}));
  // y = x² eˣ → dy = (2x + x²) eˣ dx
  Tensor y = mul(mul(x, x), exp(x));
  auto [primal, t] = fwd::unpack_dual(y);
  expect_values(primal, {2}, {std::exp(1.0), 4 * std::exp(2.0)});
  expect_values(t, {2}, {3 * std::exp(1.0), 0.5 * 8 * std::exp(2.0)});
  BOOST_TEST(!fwd::unpack_dual(primal).tangent.defined());
}

BOOST_AUTO_TEST_CASE(tangents_end_with_their_level) {
  Tensor y;
  {
    fwd::dual_level level;
    Tensor x = fwd::make_dual(make({1.0}, {1}), make({1.0}, {1}));
    y = exp(x);
    BOOST_TEST(fwd::unpack_dual(y).tangent.defined());
  }
  fwd::dual_level again;
  BOOST_TEST(!fwd::unpack_dual(y).tangent.defined());
}

BOOST_AUTO_TEST_CASE(forward_mode_errors) {
  expect_error([] { fwd::make_dual(make({1.0}, {1}), make({1.0}, {1})); },
               {"make_dual", "dual_level"});
  fwd::dual_level level;
  expect_error([] { fwd::dual_level nested; }, {"dual_level", "already active"});
  expect_error(
      [] {
        fwd::make_dual(make({1.0, 2.0}, {2}), make({1.0}, {1}));
      },
      {"make_dual", "[1]", "[2]"});
}

// make_dual keeps reverse mode connected: forward-over-reverse gives a Hessian-vector product.
BOOST_AUTO_TEST_CASE(forward_over_reverse_gives_hessian_vector_product) {
  // f(x) = Σ x³ → ∇f = 3x², H = diag(6x); H·u with u = [1, 2] at x = [1, -1] = [6, -12]
  fwd::dual_level level;
  Tensor x0 = make({1.0, -1.0}, {2}).requires_grad_();
  Tensor x = fwd::make_dual(x0, make({1.0, 2.0}, {2}));
  Tensor f = sum(mul(mul(x, x), x));
  Tensor g = grad({f}, {x0}, {}, std::nullopt, /*create_graph=*/true)[0];
  expect_values(g, {2}, {3.0, 3.0});
  expect_values(fwd::unpack_dual(g).tangent, {2}, {6.0, -12.0});
}

// docs/higher-order.md's gradient penalty λ(‖∇ₓD(x)‖ − 1)² (Gulrajani et al. 2017), as written
// there: its gradient w.r.t. a critic weight matches central differences of the penalty, and
// training on it drives the critic's input-gradient norms to 1.
namespace {
Tensor penalty_of(nn::Sequential& critic, const Tensor& x) {
  Tensor score = sum(critic(x));
  Tensor gx = grad({score}, {x}, {}, std::nullopt, /*create_graph=*/true)[0];  // [64, 2]
  Tensor norms = sqrt(sum(gx * gx, Shape{1}));                                 // [64]
  return mean((norms - 1.0) * (norms - 1.0)) * 10.0;
}
}  // namespace

BOOST_AUTO_TEST_CASE(gradient_penalty_trains_through_the_input_gradient) {
  manual_seed(11);
  const nn::LinearOptions f64{.dtype = float64};
  nn::Sequential critic{std::make_shared<nn::Linear>(2, 16, f64), std::make_shared<nn::Tanh>(),
                        std::make_shared<nn::Linear>(16, 1, f64)};
  Tensor x = randn({64, 2}, float64).requires_grad_();
  // d penalty / d w for one weight of the first layer, against central differences.
  Tensor w = critic.parameters()[0];
  Tensor dw = grad({penalty_of(critic, x)}, {w})[0];
  const double eps = 1e-6;
  double* pw = w.data_ptr<double>();
  const double orig = pw[3];
  pw[3] = orig + eps;
  const double up = penalty_of(critic, x).item();
  pw[3] = orig - eps;
  const double down = penalty_of(critic, x).item();
  pw[3] = orig;
  BOOST_TEST(dw.contiguous().data_ptr<double>()[3] == (up - down) / (2 * eps),
             boost::test_tools::tolerance(1e-6));
  // Training on the penalty alone moves every input-gradient norm towards 1.
  optim::Adam opt(critic.parameters(), optim::AdamOptions(1e-2));
  const double start = penalty_of(critic, x).item();
  for (int step = 0; step < 200; ++step) {
    opt.zero_grad();
    penalty_of(critic, x).backward();
    opt.step();
  }
  const double end = penalty_of(critic, x).item();
  BOOST_TEST(end < start / 20, "penalty " << start << " -> " << end);
}

BOOST_AUTO_TEST_SUITE_END()

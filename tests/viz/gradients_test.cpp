// viz::GradientRecorder and the gradient views of to_dot: the recorded statistics are those of
// the real gradients, vanishing gradients are amber, dead ReLU units are counted, nodes that
// got no gradient are dashed, the backward graph is numbered in the engine's order, and
// recording changes nothing about the gradients or the parameters.
#include <cmath>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "test_util.hpp"
#include "xgrad/nn/mlp.hpp"
#include "xgrad/viz/dot.hpp"
#include "xgrad/viz/gradients.hpp"

using namespace xgrad;
using xgrad::testing::expect_error;

namespace {

std::size_t count(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (std::size_t p = text.find(needle); p != std::string::npos; p = text.find(needle, p + 1)) ++n;
  return n;
}

// The DOT statement of the node whose label starts with `label` ("  leaf4 [... label=...];").
std::string statement_labelled(const std::string& dot, const std::string& label) {
  const std::size_t p = dot.find("label=\"" + label);
  BOOST_REQUIRE_MESSAGE(p != std::string::npos, "no node labelled " << label);
  const std::size_t start = dot.rfind('\n', p) + 1;
  return dot.substr(start, dot.find('\n', p) - start);
}

// The DOT statement of node `id` ("  op3 [...];").
std::string statement(const std::string& dot, const std::string& id) {
  const std::size_t p = dot.find(" " + id + " [");
  BOOST_REQUIRE_MESSAGE(p != std::string::npos, "no node " << id);
  return dot.substr(p, dot.find('\n', p) - p);
}

struct Reference {
  double norm = 0, min = INFINITY, max = -INFINITY;
};

Reference reference(const Tensor& g) {
  Reference r;
  const auto a = to_xarray<double>(g);
  for (double v : a) {
    r.norm += v * v;
    r.min = std::min(r.min, v);
    r.max = std::max(r.max, v);
  }
  r.norm = std::sqrt(r.norm);
  return r;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(viz_gradients)

BOOST_AUTO_TEST_CASE(recorded_statistics_are_those_of_the_real_gradients) {
  manual_seed(0);
  nn::LinearOptions f64;
  f64.dtype = float64;
  nn::MLP mlp({6, 5, 3}, f64);
  Tensor x = randn({4, 6}, float64);
  Tensor logits = mlp(x);
  Tensor loss = cross_entropy(logits, tensor({0.0, 1.0, 2.0, 1.0}, int64));
  logits.retain_grad();
  viz::GradientRecorder grads({loss});
  BOOST_TEST(grads.size() == 0u);
  loss.backward();
  BOOST_TEST(grads.size() == 8u);  // linear, relu, linear, cross_entropy and 4 parameters
  for (const auto& [name, p] : mlp.named_parameters()) {
    const viz::GradientStats* s = grads.find(p);
    BOOST_REQUIRE_MESSAGE(s != nullptr, name);
    const Reference r = reference(p.grad());
    BOOST_TEST(s->norm == r.norm, boost::test_tools::tolerance(1e-12));
    BOOST_TEST(s->min == r.min);
    BOOST_TEST(s->max == r.max);
    BOOST_TEST(s->numel == p.numel());
    BOOST_TEST(s->finite());
  }
  // An op output: the logits (whose gradient retain_grad kept for comparison).
  const viz::GradientStats* s = grads.find(logits);
  BOOST_REQUIRE(s != nullptr);
  BOOST_TEST(s->norm == reference(logits.grad()).norm, boost::test_tools::tolerance(1e-12));
  BOOST_TEST(s->units == 3);
  // The loss's own gradient is the seed, 1.
  BOOST_TEST(grads.find(loss)->norm == 1.0);
  BOOST_TEST(grads.find(x) == nullptr);  // needs no gradient: not in the graph
  // Arrival order follows the backward pass: the loss first, the first layer's weight late.
  BOOST_TEST(grads.find(loss)->order == 0u);
  BOOST_TEST(grads.find(mlp.layers()[0]->weight)->order > grads.find(logits)->order);
}

BOOST_AUTO_TEST_CASE(statistics_of_one_tensor) {
  const viz::GradientStats s =
      viz::gradient_stats(tensor({{0.0, 3.0, 0.0}, {0.0, -4.0, NAN}}, float64));
  BOOST_TEST(s.numel == 6);
  BOOST_TEST(s.nan_count == 1);
  BOOST_TEST(s.inf_count == 0);
  BOOST_TEST(std::isnan(s.norm));
  BOOST_TEST(s.min == -4.0);
  BOOST_TEST(s.max == 3.0);
  BOOST_TEST(s.zero_fraction == 3.0 / 6.0);
  BOOST_TEST(s.units == 3);
  BOOST_TEST(s.dead_units == 1);  // column 0 is zero in both rows (NaN is not zero)
  const viz::GradientStats f = viz::gradient_stats(tensor({3.0, 4.0}));
  BOOST_TEST(f.norm == 5.0);
  BOOST_TEST(f.finite());
}

BOOST_AUTO_TEST_CASE(vanishing_gradient_is_amber) {
  Tensor x = tensor({1.0, 2.0, 3.0}, float64).requires_grad_().set_name("x");
  Tensor w = tensor({1.0, 1.0, 1.0}, float64).requires_grad_().set_name("w");
  Tensor loss = ((x * 1e-12).sum() + (w * 1.0).sum());
  viz::GradientRecorder grads({loss});
  loss.backward();
  const std::string dot =
      viz::to_dot({loss}, {.kind = viz::GraphKind::gradients, .gradients = &grads});
  // x's gradient has norm √3·1e-12 < 1e-8: amber. w's is fine.
  const auto xs = statement_labelled(dot, "x\\n[3]");
  BOOST_TEST(xs.find("fillcolor=\"#ffd166\"") != std::string::npos);
  BOOST_TEST(xs.find("grad ‖·‖ 1.73e-12") != std::string::npos);
  const auto ws = statement_labelled(dot, "w\\n[3]");
  BOOST_TEST(ws.find("fillcolor=\"#cfe8cf\"") != std::string::npos);
  // A threshold below it turns the amber off.
  const std::string lenient = viz::to_dot(
      {loss},
      {.kind = viz::GraphKind::gradients, .gradients = &grads, .vanishing_threshold = 1e-13});
  BOOST_TEST(statement_labelled(lenient, "x\\n[3]").find("#ffd166") == std::string::npos);
  BOOST_TEST(count(dot, "vanishing gradient") == 1u);  // the legend entry
}

BOOST_AUTO_TEST_CASE(dead_relu_units_are_shown) {
  // Pre-activations [3 rows, 4 units]: unit 1 is negative for every row (dead), 5 of 12
  // entries are <= 0 (zero gradient).
  Tensor x =
      tensor({{1.0, -1.0, 2.0, 3.0}, {2.0, -2.0, -1.0, 1.0}, {3.0, -3.0, 1.0, -1.0}}, float64)
          .requires_grad_()
          .set_name("x");
  Tensor a = x * 1.0;  // an op feeding only the relu: its gradient is what relu passes back
  Tensor loss = relu(a).sum();
  viz::GradientRecorder grads({loss});
  loss.backward();
  const std::string dot =
      viz::to_dot({loss}, {.kind = viz::GraphKind::gradients, .gradients = &grads});
  const std::string relu_node = statement(dot, "op2");
  BOOST_TEST(relu_node.find("relu") != std::string::npos);
  BOOST_TEST(relu_node.find("dead 1/4 units (25%)") != std::string::npos);
  BOOST_TEST(relu_node.find("zero grads 42%") != std::string::npos);  // 5/12
  BOOST_TEST(grads.find(a)->dead_units == 1);
}

BOOST_AUTO_TEST_CASE(nodes_without_gradient_are_dashed) {
  Tensor x = tensor({1.0, 2.0}, float64).requires_grad_().set_name("x");
  Tensor a = (x * 2.0).sum();
  Tensor b = (x * 3.0).sum();
  viz::GradientRecorder grads({a, b});
  a.backward();  // b's branch gets nothing
  const std::string dot =
      viz::to_dot({a, b}, {.kind = viz::GraphKind::gradients, .gradients = &grads});
  BOOST_TEST(count(dot, "no gradient") == 2u + 1u);  // b's mul and sum, and the legend
  BOOST_TEST(count(dot, "style=\"rounded,filled,dashed\"") == 2u + 1u);
}

BOOST_AUTO_TEST_CASE(backward_graph_is_numbered_in_engine_order) {
  Tensor x = tensor({1.0, 2.0}, float64).requires_grad_().set_name("x");
  Tensor w = tensor({3.0, 4.0}, float64).requires_grad_().set_name("w");
  Tensor y = x * w;
  Tensor loss = (y.exp() + y).sum();
  viz::GradientRecorder grads({loss});
  loss.backward();
  const std::string dot =
      viz::to_dot({loss}, {.kind = viz::GraphKind::backward, .gradients = &grads});
  BOOST_TEST(dot.find("backward graph: the nodes the engine runs") != std::string::npos);
  // Recording order: mul (op0), x, w accumulators, exp, add, sum (op5). The engine runs the
  // latest ready node first: sum, add, exp, mul, then the accumulators (w's was made last).
  BOOST_TEST(statement(dot, "op5").find("label=\"1. sum backward") != std::string::npos);
  BOOST_TEST(statement(dot, "op4").find("label=\"2. add backward") != std::string::npos);
  BOOST_TEST(statement(dot, "op3").find("label=\"3. exp backward") != std::string::npos);
  BOOST_TEST(statement(dot, "op0").find("label=\"4. mul backward") != std::string::npos);
  BOOST_TEST(statement(dot, "leaf2").find("label=\"5. accumulate_grad\\nw") != std::string::npos);
  BOOST_TEST(statement(dot, "leaf1").find("label=\"6. accumulate_grad\\nx") != std::string::npos);
  // The hooks saw the gradients in the same order.
  const auto* mul = y.grad_fn().get();
  BOOST_TEST(grads.find(loss)->order < grads.find(mul, 0)->order);
  BOOST_TEST(grads.find(w)->order < grads.find(x)->order);
  // Edges follow the gradient: from a node to the nodes it sends gradients to.
  BOOST_TEST(dot.find("  out0 -> op5 [label=\"[]\"];") != std::string::npos);
  BOOST_TEST(dot.find("  op5 -> op4 [label=\"[2]\"];") != std::string::npos);
  BOOST_TEST(dot.find("  op0 -> leaf1 [label=\"[2]\"];") != std::string::npos);
  // Without a recorder the backward graph is drawn bare.
  const std::string bare = viz::to_dot({loss}, {.kind = viz::GraphKind::backward});
  BOOST_TEST(bare.find("grad ‖·‖") == std::string::npos);
  BOOST_TEST(statement(bare, "op5").find("1. sum backward") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(gradients_view_needs_a_recorder) {
  Tensor x = tensor({1.0}, float64).requires_grad_();
  expect_error([&] { viz::to_dot({x.sum()}, {.kind = viz::GraphKind::gradients}); },
               {"to_dot", "GradientRecorder"});
  expect_error([] { viz::GradientRecorder r({Tensor()}); }, {"GradientRecorder", "undefined"});
}

BOOST_AUTO_TEST_CASE(recording_changes_no_gradient_and_attaches_nothing_to_parameters) {
  manual_seed(2);
  nn::LinearOptions f64;
  f64.dtype = float64;
  nn::MLP mlp({5, 4, 2}, f64);
  Tensor x = randn({3, 5}, float64);
  auto step = [&](bool record) {
    mlp.zero_grad();
    Tensor loss = mlp(x).pow(2.0).mean();
    std::optional<viz::GradientRecorder> r;
    if (record) r.emplace(std::vector<Tensor>{loss});
    loss.backward();
    std::vector<xt::xarray<double>> out;
    for (auto& p : mlp.parameters()) out.push_back(to_xarray<double>(p.grad()));
    return out;
  };
  const auto plain = step(false);
  const auto recorded = step(true);
  BOOST_REQUIRE(plain.size() == recorded.size());
  for (std::size_t i = 0; i < plain.size(); ++i) BOOST_TEST((plain[i] == recorded[i]));
  for (auto& p : mlp.parameters()) BOOST_TEST(p.impl()->hooks.empty());
  // A recorder destroyed before backward leaves hooks that do nothing.
  Tensor loss = mlp(x).sum();
  { viz::GradientRecorder gone({loss}); }
  mlp.zero_grad();
  loss.backward();
  BOOST_TEST(mlp.parameters()[0].grad().defined());
}

BOOST_AUTO_TEST_SUITE_END()

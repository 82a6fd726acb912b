// One schedule (autograd/schedule.hpp): the engine runs nodes in exactly the order
// autograd::schedule gives, and the graph writer's backward view numbers them in that order.
#include <set>
#include <string>
#include <vector>

#include "test_util.hpp"
#include "xgrad/autograd/node.hpp"
#include "xgrad/autograd/schedule.hpp"
#include "xgrad/nn/linear.hpp"
#include "xgrad/nn/rnn.hpp"
#include "xgrad/viz/dot.hpp"
#include "xgrad/viz/graph.hpp"

using namespace xgrad;
using autograd::Node;

namespace {

// Every op node of the graph behind `out` (leaves' accumulators run the leaf's hooks instead).
std::vector<Node*> op_nodes(const Tensor& out) {
  std::vector<Node*> nodes;
  std::set<Node*> seen{out.grad_fn().get()};
  std::vector<Node*> stack{out.grad_fn().get()};
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    if (n->leaf() == nullptr) nodes.push_back(n);
    for (const auto& e : n->next_edges())
      if (e.valid() && seen.insert(e.fn.get()).second) stack.push_back(e.fn.get());
  }
  return nodes;
}

// The LSTM classifier's graph of xgrad-graph --model lstm, over `steps` time steps.
Tensor lstm_loss(std::int64_t steps) {
  manual_seed(3);
  nn::LSTM lstm(28, 16);
  nn::Linear fc(16, 10);
  Tensor seq = randn({steps, 4, 28});
  Tensor out = lstm(seq);  // [T, N, 16]
  Tensor last = slice(out, 0, steps - 1, steps).reshape({4, 16});
  return cross_entropy(fc(last), tensor({1.0, 2.0, 3.0, 4.0}, int64));
}

}  // namespace

BOOST_AUTO_TEST_SUITE(schedule)

BOOST_AUTO_TEST_CASE(diamond_runs_latest_ready_first) {
  Tensor x = tensor({1.0, 2.0}, float64).requires_grad_();
  Tensor a = mul(x, x);   // recorded first
  Tensor b = exp(x);      // recorded second
  Tensor c = add(a, b);   // both feed c
  Tensor loss = c.sum();  // root
  std::vector<Node*> order = autograd::schedule({loss.grad_fn().get()});
  BOOST_REQUIRE_EQUAL(order.size(), 5u);  // sum, add, exp, mul, x's accumulator
  BOOST_TEST(order[0] == loss.grad_fn().get());
  BOOST_TEST(order[1] == c.grad_fn().get());
  BOOST_TEST(order[2] == b.grad_fn().get());  // ready together with mul, recorded later
  BOOST_TEST(order[3] == a.grad_fn().get());
  BOOST_TEST(order[4]->leaf() != nullptr);  // x waits for both
}

BOOST_AUTO_TEST_CASE(a_root_fed_by_another_root_waits) {
  Tensor x = tensor({1.0, 2.0}, float64).requires_grad_();
  Tensor y = mul(x, x);
  Tensor z = y.sum();
  std::vector<Node*> order = autograd::schedule({y.grad_fn().get(), z.grad_fn().get()});
  BOOST_REQUIRE_EQUAL(order.size(), 3u);
  BOOST_TEST(order[0] == z.grad_fn().get());
  BOOST_TEST(order[1] == y.grad_fn().get());
}

BOOST_AUTO_TEST_CASE(engine_and_graph_writer_share_the_lstm_order) {
  Tensor loss = lstm_loss(6);
  std::vector<Node*> ran;
  for (Node* n : op_nodes(loss))
    n->add_pre_hook(0, [&ran, n](const Tensor&) {
      ran.push_back(n);
      return Tensor();
    });
  std::vector<Node*> planned;
  for (Node* n : autograd::schedule({loss.grad_fn().get()}))
    if (n->leaf() == nullptr) planned.push_back(n);
  BOOST_REQUIRE_GT(planned.size(), 100u);

  // The writer's numbering (backward view) is the schedule's.
  const viz::Graph g = viz::collect_graph({loss});
  const std::vector<std::size_t> position = viz::backward_order(g, {loss});
  std::vector<std::size_t> planned_positions;
  for (Node* n : planned) planned_positions.push_back(position.at(g.index.at(n)));
  for (std::size_t i = 1; i < planned_positions.size(); ++i)
    BOOST_TEST(planned_positions[i - 1] < planned_positions[i]);
  const std::string dot = viz::to_dot({loss}, {.kind = viz::GraphKind::backward, .max_nodes = 0});
  BOOST_TEST(dot.find("label=\"1. cross_entropy backward") != std::string::npos);

  loss.backward();
  BOOST_REQUIRE_EQUAL(ran.size(), planned.size());
  for (std::size_t i = 0; i < ran.size(); ++i) BOOST_TEST(ran[i] == planned[i]);
}

BOOST_AUTO_TEST_SUITE_END()

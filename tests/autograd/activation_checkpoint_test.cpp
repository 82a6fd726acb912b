// Activation checkpointing: gradients bit-identical to a plain backward, dropout replayed, the
// caller's random stream untouched, the memory a checkpointed graph holds, nesting, identity
// functions, several outputs, create_graph. (Named activation_checkpoint: tests/io's
// checkpoint_test already owns the target checkpoint_test and the suite checkpoint.)
#include <boost/test/unit_test.hpp>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "test_util.hpp"

using namespace xgrad;
using xgrad::testing::expect_error;
using xgrad::testing::expect_values;
using xgrad::testing::make;

namespace {

using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

// Same shape, dtype and bytes: the two backward passes rounded every value the same way.
void expect_bit_identical(const Tensor& a, const Tensor& b, const std::string& what) {
  BOOST_REQUIRE_MESSAGE(a.defined() && b.defined(), what << ": undefined gradient");
  BOOST_REQUIRE_MESSAGE(a.shape() == b.shape() && a.dtype() == b.dtype(), what << ": shape");
  const Tensor ca = a.detach().contiguous(), cb = b.detach().contiguous();
  const std::size_t n = static_cast<std::size_t>(ca.numel()) * element_size(ca.dtype());
  BOOST_CHECK_MESSAGE(std::memcmp(ca.raw_data(), cb.raw_data(), n) == 0,
                      what << ": gradients differ");
}

// A stack of blocks, each Linear → ReLU (→ dropout when p > 0), run plainly or with every
// block under checkpoint.
struct Mlp {
  std::vector<std::shared_ptr<nn::Linear>> layers;
  double p = 0.0;
  Mlp(int depth, std::int64_t width, Dtype d, double dropout_p = 0.0) : p(dropout_p) {
    for (int i = 0; i < depth; ++i)
      layers.push_back(std::make_shared<nn::Linear>(width, width, nn::LinearOptions{.dtype = d}));
  }
  Tensor block(std::size_t i, const Tensor& x) {
    Tensor h = relu((*layers[i])(x));
    return p > 0 ? dropout(h, p) : h;
  }
  Fn block_fn(std::size_t i) {
    return [this, i](const std::vector<Tensor>& xs) { return block(i, xs[0]); };
  }
  Tensor forward(const Tensor& x, bool ckpt, bool preserve_rng_state = true) {
    Tensor h = x;
    for (std::size_t i = 0; i < layers.size(); ++i)
      h = ckpt ? checkpoint(block_fn(i), {h}, preserve_rng_state) : block(i, h);
    return h;
  }
  std::vector<Tensor> parameters() const {
    std::vector<Tensor> ps;
    for (const auto& l : layers)
      for (const Tensor& t : l->parameters()) ps.push_back(t);
    return ps;
  }
  void zero_grad() {
    for (auto& l : layers) l->zero_grad();
  }
};

// The gradients of every parameter and of x after one backward of sum(out²).
std::vector<Tensor> gradients(Mlp& m, const Tensor& x, const std::function<Tensor()>& forward) {
  m.zero_grad();
  x.zero_grad();
  Tensor out = forward();
  sum(mul(out, out)).backward();
  std::vector<Tensor> gs;
  for (const Tensor& p : m.parameters()) gs.push_back(p.grad());
  gs.push_back(x.grad());
  return gs;
}

void expect_same_gradients(const std::vector<Tensor>& a, const std::vector<Tensor>& b) {
  BOOST_REQUIRE_EQUAL(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i)
    expect_bit_identical(a[i], b[i], "gradient " + std::to_string(i));
}

}  // namespace

BOOST_AUTO_TEST_SUITE(activation_checkpoint)

BOOST_AUTO_TEST_CASE(gradients_are_bit_identical_to_a_plain_backward) {
  for (Dtype d : xgrad::testing::kFloatDtypes) {
    manual_seed(1);
    Mlp m(4, 16, d);
    Tensor x = randn({8, 16}, d).requires_grad_();
    auto plain = gradients(m, x, [&] { return m.forward(x, false); });
    auto ckpt = gradients(m, x, [&] { return m.forward(x, true); });
    expect_same_gradients(plain, ckpt);
  }
}

// The recorded graph: one "checkpoint" node per block, whose only edge is its input.
BOOST_AUTO_TEST_CASE(records_one_node_per_call) {
  manual_seed(2);
  Mlp m(2, 4, float64);
  Tensor x = randn({3, 4}, float64).requires_grad_();
  Tensor y = m.forward(x, true);
  BOOST_REQUIRE(y.grad_fn());
  BOOST_TEST(y.grad_fn()->name() == "checkpoint");
  BOOST_REQUIRE_EQUAL(y.grad_fn()->next_edges().size(), 1u);
  BOOST_TEST(y.grad_fn()->next_edges()[0].fn->name() == "checkpoint");
  BOOST_TEST(y.grad_fn()->next_edges()[0].fn->next_edges()[0].fn->leaf() == x.impl().get());
}

// Dropout inside the block draws its mask again in the recomputation from the generator state
// the forward started with: the same mask, so the gradients of a plain run with the same seed.
// Without preserve_rng_state the recomputation draws new masks and the gradients differ.
BOOST_AUTO_TEST_CASE(dropout_replays_the_same_mask) {
  manual_seed(3);
  Mlp m(3, 32, float32, 0.5);
  Tensor x = randn({16, 32}).requires_grad_();
  manual_seed(10);
  auto plain = gradients(m, x, [&] { return m.forward(x, false); });
  manual_seed(10);
  auto ckpt = gradients(m, x, [&] { return m.forward(x, true); });
  expect_same_gradients(plain, ckpt);
  manual_seed(10);
  auto unpreserved = gradients(m, x, [&] { return m.forward(x, true, false); });
  BOOST_TEST(std::memcmp(unpreserved.back().raw_data(), plain.back().raw_data(),
                         static_cast<std::size_t>(x.numel()) * 4) != 0);
}

// As torch: the recomputation runs on a copy of the forward's generator state and the state
// the caller had is put back, so what the caller draws after backward is what it would draw
// without checkpoint.
BOOST_AUTO_TEST_CASE(callers_random_stream_is_unaffected) {
  manual_seed(4);
  Mlp m(3, 8, float64, 0.25);
  Tensor x = randn({4, 8}, float64).requires_grad_();
  auto after = [&](bool ckpt) {
    manual_seed(20);
    Tensor out = m.forward(x, ckpt);
    sum(out).backward();
    return default_generator()();
  };
  const auto plain = after(false);
  BOOST_TEST(after(true) == plain);
  manual_seed(20);
  default_generator()();
  BOOST_TEST(default_generator()() != plain);  // the forward did draw (dropout)
}

// Between forward and backward, a checkpointed block keeps only its input (the previous block's
// output): memory_allocated is lower than without checkpoint by what each block's own graph
// holds beyond its output — measured here on one plain block.
BOOST_AUTO_TEST_CASE(graph_holds_only_the_inputs) {
  const std::int64_t batch = 32, width = 64, depth = 6;
  manual_seed(5);
  // Blocks Linear → ReLU → Linear: the second Linear keeps the ReLU's output whatever the
  // ReLU itself saves, so a plain block holds at least one activation more than its output.
  std::vector<std::shared_ptr<nn::Linear>> layers;
  for (int i = 0; i < 2 * depth; ++i)
    layers.push_back(std::make_shared<nn::Linear>(width, width, nn::LinearOptions{}));
  auto block = [&](int i, const Tensor& x) {
    return (*layers[2 * i + 1])(relu((*layers[2 * i])(x)));
  };
  Tensor x = randn({batch, width}).requires_grad_();
  const std::int64_t activation = batch * width * 4;

  std::int64_t before = memory_allocated();
  Tensor one = block(0, x);
  const std::int64_t per_block = memory_allocated() - before;
  one = Tensor();
  BOOST_TEST(per_block > activation);

  auto held = [&](bool ckpt) {
    const std::int64_t start = memory_allocated();
    Tensor h = x;
    for (int i = 0; i < depth; ++i)
      h = ckpt ? checkpoint([&, i](const std::vector<Tensor>& xs) { return block(i, xs[0]); }, {h})
               : block(i, h);
    const std::int64_t bytes = memory_allocated() - start;
    sum(h).backward();
    return bytes;
  };
  const std::int64_t plain = held(false);
  const std::int64_t ckpt = held(true);
  BOOST_TEST(plain == depth * per_block);
  BOOST_TEST(ckpt == depth * activation);  // the blocks' outputs, nothing else
  BOOST_TEST(plain - ckpt == depth * (per_block - activation));
}

// A checkpoint inside a checkpointed function: recorded during the outer recomputation, run
// inside the outer node's backward (two levels of reentrant backward).
BOOST_AUTO_TEST_CASE(nested_checkpoints) {
  manual_seed(6);
  Mlp m(4, 8, float64, 0.5);
  Tensor x = randn({5, 8}, float64).requires_grad_();
  auto nested = [&] {
    Tensor h = x;
    for (std::size_t pair = 0; pair < 2; ++pair) {
      h = checkpoint(
          [&, pair](const std::vector<Tensor>& xs) {
            Tensor a = checkpoint(m.block_fn(2 * pair), {xs[0]});
            return checkpoint(m.block_fn(2 * pair + 1), {a});
          },
          {h});
    }
    return h;
  };
  manual_seed(30);
  auto plain = gradients(m, x, [&] { return m.forward(x, false); });
  manual_seed(30);
  auto ckpt = gradients(m, x, nested);
  expect_same_gradients(plain, ckpt);
}

// fn returning its input: the result is a new non-leaf of the checkpoint node sharing the
// input's data; the input stays a leaf and gets the incoming gradient as it is.
BOOST_AUTO_TEST_CASE(function_returning_its_input) {
  Tensor x = make({1.0, -2.0, 3.0}, {3}).requires_grad_();
  Tensor y = checkpoint([](const std::vector<Tensor>& xs) { return xs[0]; }, {x});
  BOOST_TEST(x.is_leaf());
  BOOST_TEST(y.impl() != x.impl());
  BOOST_TEST(y.data_ptr<double>() == x.data_ptr<double>());
  BOOST_REQUIRE(y.grad_fn());
  BOOST_TEST(y.grad_fn()->name() == "checkpoint");
  sum(mul(y, y)).backward();
  expect_values(x.grad(), {3}, {2.0, -4.0, 6.0});
}

// Several outputs, one of them the input itself, and a data input that needs no gradient.
BOOST_AUTO_TEST_CASE(several_outputs) {
  Tensor x = make({1.0, 2.0}, {2}).requires_grad_();
  Tensor c = make({3.0, 5.0}, {2});
  std::vector<Tensor> ys = checkpoint(
      [](const std::vector<Tensor>& xs) {
        return std::vector<Tensor>{xs[0], mul(xs[0], xs[1]), mul(xs[0], xs[0])};
      },
      {x, c});
  BOOST_REQUIRE_EQUAL(ys.size(), 3u);
  for (const Tensor& y : ys) BOOST_TEST(y.grad_fn()->name() == "checkpoint");
  BOOST_TEST(!c.requires_grad());
  // d/dx [2·(c·x) + 3·x²] = 2c + 6x: the first output gets no gradient at all here.
  sum(add(mul(ys[1], scalar_tensor(2.0, float64)), mul(ys[2], scalar_tensor(3.0, float64))))
      .backward();
  expect_values(x.grad(), {2}, {6 + 6.0, 10 + 12.0});
  x.zero_grad();
  std::vector<Tensor> zs = checkpoint(
      [](const std::vector<Tensor>& xs) {
        return std::vector<Tensor>{xs[0], mul(xs[0], xs[0])};
      },
      {x});
  sum(add(zs[0], zs[1])).backward();
  expect_values(x.grad(), {2}, {3.0, 5.0});
  // A captured parameter returned as it is: a fresh alias, through which its gradient still
  // reaches it. d/dw [Σ x·w + Σ w²] = x + 2w, d/dx = w.
  Tensor w = make({0.5, -1.0}, {2}).requires_grad_();
  std::vector<Tensor> ws = checkpoint(
      [&](const std::vector<Tensor>& xs) {
        return std::vector<Tensor>{mul(xs[0], w), w};
      },
      {x});
  BOOST_TEST(w.is_leaf());
  BOOST_TEST(ws[1].impl() != w.impl());
  x.zero_grad();
  sum(add(ws[0], mul(ws[1], ws[1]))).backward();
  expect_values(w.grad(), {2}, {2.0, 0.0});
  expect_values(x.grad(), {2}, {0.5, -1.0});
}

// No input requires grad (the first block of a network, on data): the parameters inside make
// the result need a graph, so the node is recorded (without input edges) and the parameters get
// the gradients of a plain run; torch's reentrant checkpoint would give them none. A function
// of data alone gives a result without graph, as a plain call does.
BOOST_AUTO_TEST_CASE(inputs_without_grad) {
  manual_seed(7);
  Mlp m(2, 8, float64);
  Tensor x = randn({4, 8}, float64);
  const std::int64_t before = memory_allocated();
  Tensor y = checkpoint(m.block_fn(0), {x});
  BOOST_TEST(memory_allocated() - before == 4 * 8 * 8);  // the block's graph is not kept
  BOOST_REQUIRE(y.grad_fn());
  BOOST_TEST(y.grad_fn()->name() == "checkpoint");
  BOOST_TEST(!y.grad_fn()->next_edges()[0].valid());
  sum(y).backward();
  const Tensor gw = m.layers[0]->weight.grad(), gb = m.layers[0]->bias.grad();
  m.zero_grad();
  sum(m.block(0, x)).backward();
  expect_bit_identical(gw, m.layers[0]->weight.grad(), "weight");
  expect_bit_identical(gb, m.layers[0]->bias.grad(), "bias");
  Tensor d = checkpoint([](const std::vector<Tensor>& xs) { return mul(xs[0], xs[0]); }, {x});
  BOOST_TEST(!d.requires_grad());
  // Under no_grad: nothing recorded at all.
  no_grad guard;
  Tensor xr = randn({4, 8}, float64).requires_grad_();
  BOOST_TEST(!checkpoint(m.block_fn(1), {xr}).requires_grad());
}

// With create_graph the recomputation and its backward are recorded: the gradients can be
// differentiated again, with respect to the input and to a parameter used inside fn.
BOOST_AUTO_TEST_CASE(create_graph_through_checkpoint) {
  Tensor x = make({2.0, -1.5}, {2}).requires_grad_();
  Tensor w = make({0.5, 3.0}, {2}).requires_grad_();
  Fn cube_w = [&](const std::vector<Tensor>& xs) { return mul(mul(mul(xs[0], xs[0]), xs[0]), w); };
  // y = Σ w·x³: ∂y/∂x = 3w·x², ∂y/∂w = x³; ∂²y/∂x² = 6w·x, ∂/∂w Σ ∂y/∂x = 3x².
  Tensor y = sum(checkpoint(cube_w, {x}));
  y.backward(Tensor(), std::nullopt, /*create_graph=*/true);
  expect_values(x.grad(), {2}, {6.0, 20.25});
  expect_values(w.grad(), {2}, {8.0, -3.375});
  BOOST_REQUIRE(x.grad().requires_grad());
  const Tensor gx = x.grad();
  std::vector<Tensor> second = grad({sum(gx)}, {x, w});
  expect_values(second[0], {2}, {6.0, -27.0});
  expect_values(second[1], {2}, {12.0, 6.75});
  // grad() of the inputs works as well (not of parameters used only inside fn; see the header).
  Tensor g = grad({sum(checkpoint(cube_w, {x}))}, {x}, {}, std::nullopt, true)[0];
  expect_values(g, {2}, {6.0, 20.25});
  expect_values(grad({sum(g)}, {x})[0], {2}, {6.0, -27.0});
}

BOOST_AUTO_TEST_CASE(errors) {
  Tensor x = make({1.0, 2.0}, {2}).requires_grad_();
  expect_error([&] { checkpoint([](const std::vector<Tensor>&) { return Tensor(); }, {x}); },
               {"checkpoint", "undefined"});
  // A second backward through a freed graph, as for any node.
  Tensor y = sum(checkpoint([](const std::vector<Tensor>& xs) { return mul(xs[0], xs[0]); }, {x}));
  y.backward(Tensor(), true);
  y.backward();
  expect_values(x.grad(), {2}, {4.0, 8.0});
  expect_error([&] { y.backward(); }, {"second time"});
  // The saved input modified in place before backward.
  Tensor a = make({1.0, 2.0}, {2}).requires_grad_();
  Tensor b = mul(a, scalar_tensor(1.0, float64));
  Tensor z = sum(checkpoint([](const std::vector<Tensor>& xs) { return mul(xs[0], xs[0]); }, {b}));
  {
    no_grad guard;
    b.add_(1.0);
  }
  expect_error([&] { z.backward(); }, {"checkpoint", "modified by an in-place operation"});
}

BOOST_AUTO_TEST_SUITE_END()

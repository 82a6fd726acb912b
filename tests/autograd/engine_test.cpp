// The autograd engine: fan-out, accumulation, grad mode, detach, retain_graph, grad(),
// retain_grad, hooks, version checks, views, seeds, and long chains.
#include <fstream>
#include <string>

#include "test_util.hpp"

using namespace xgrad;
using xgrad::testing::expect_error;
using xgrad::testing::expect_values;

namespace {
// Resident set size of this process in bytes (Linux /proc/self/statm).
std::int64_t rss_bytes() {
  std::ifstream f("/proc/self/statm");
  std::int64_t size = 0, resident = 0;
  f >> size >> resident;
  return resident * 4096;
}
}  // namespace

BOOST_AUTO_TEST_SUITE(engine)

BOOST_AUTO_TEST_CASE(fan_out_sums_gradients) {
  // y = x·x + x  =>  dy/dx = 2x + 1
  Tensor x = tensor({1.0, -2.0, 3.5}, float64).requires_grad_();
  Tensor y = x * x + x;
  y.backward(ones({3}, float64));
  expect_values(x.grad(), {3}, {3.0, -3.0, 8.0});
}

BOOST_AUTO_TEST_CASE(scalar_backward_needs_no_seed) {
  Tensor x = tensor({1.0, 2.0}, float64).requires_grad_();
  Tensor loss = (x * x).sum();
  loss.backward();
  expect_values(x.grad(), {2}, {2.0, 4.0});
  BOOST_TEST(loss.item() == 5.0);
}

BOOST_AUTO_TEST_CASE(gradients_accumulate_over_two_backward_calls) {
  Tensor x = tensor({2.0}, float64).requires_grad_();
  (x * 3.0).sum().backward();
  (x * x).sum().backward();
  expect_values(x.grad(), {1}, {3.0 + 4.0});
  x.zero_grad();
  BOOST_TEST(!x.grad().defined());
  (x * 5.0).sum().backward();
  expect_values(x.grad(), {1}, {5.0});
  x.zero_grad(/*set_to_none=*/false);
  expect_values(x.grad(), {1}, {0.0});
}

BOOST_AUTO_TEST_CASE(no_grad_records_nothing) {
  Tensor x = tensor({1.0, 2.0}, float64).requires_grad_();
  Tensor y;
  {
    no_grad guard;
    BOOST_TEST(!is_grad_enabled());
    y = x * 2.0;
  }
  BOOST_TEST(is_grad_enabled());
  BOOST_TEST(!y.requires_grad());
  BOOST_TEST(y.grad_fn() == nullptr);
  expect_error([&] { y.sum().backward(); }, {"backward", "does not require grad"});
}

BOOST_AUTO_TEST_CASE(detach_cuts_the_graph_but_shares_memory) {
  Tensor x = tensor({1.0, 2.0}, float64).requires_grad_();
  Tensor d = x.detach();
  BOOST_TEST(!d.requires_grad());
  BOOST_TEST(d.storage() == x.storage());
  Tensor y = (x * d).sum();  // d is a constant: dy/dx = d
  y.backward();
  expect_values(x.grad(), {2}, {1.0, 2.0});
}

BOOST_AUTO_TEST_CASE(second_backward_through_freed_graph_throws) {
  Tensor x = tensor({1.0, 2.0}, float64).requires_grad_();
  Tensor y = (x * x).sum();
  y.backward();
  expect_error([&] { y.backward(); }, {"mul", "second time", "retain_graph"});
}

BOOST_AUTO_TEST_CASE(retain_graph_allows_second_backward) {
  Tensor x = tensor({1.0, 2.0}, float64).requires_grad_();
  Tensor y = (x * x).sum();
  y.backward(Tensor(), /*retain_graph=*/true);
  y.backward();
  expect_values(x.grad(), {2}, {4.0, 8.0});
}

BOOST_AUTO_TEST_CASE(grad_returns_gradients_without_touching_dot_grad) {
  Tensor x = tensor({1.0, 2.0}, float64).requires_grad_();
  Tensor w = tensor({3.0, 4.0}, float64).requires_grad_();
  Tensor h = x * w;  // non-leaf input
  Tensor y = (h * h).sum();
  auto g = grad({y}, {x, w, h});
  BOOST_REQUIRE_EQUAL(g.size(), 3u);
  expect_values(g[0], {2}, {2 * 3.0 * 3.0 * 1.0, 2 * 4.0 * 4.0 * 2.0});  // 2 h w
  expect_values(g[1], {2}, {2 * 3.0 * 1.0, 2 * 8.0 * 2.0});              // 2 h x
  expect_values(g[2], {2}, {6.0, 16.0});                                 // 2 h
  BOOST_TEST(!x.grad().defined());
  BOOST_TEST(!w.grad().defined());
}

BOOST_AUTO_TEST_CASE(grad_of_unused_input) {
  Tensor x = tensor({1.0}, float64).requires_grad_();
  Tensor z = tensor({1.0}, float64).requires_grad_();
  Tensor y = (x * 2.0).sum();
  expect_error([&] { grad({y}, {z}, {}, true); }, {"grad", "not used"});
  auto g = grad({y}, {z}, {}, false, /*create_graph=*/false, /*allow_unused=*/true);
  BOOST_TEST(!g[0].defined());
}

BOOST_AUTO_TEST_CASE(retain_grad_keeps_non_leaf_gradient) {
  Tensor x = tensor({1.0, 2.0}, float64).requires_grad_();
  Tensor h = x * 3.0;
  h.retain_grad();
  Tensor y = (h * h).sum();
  y.backward();
  expect_values(h.grad(), {2}, {6.0, 12.0});  // 2h
  expect_values(x.grad(), {2}, {18.0, 36.0});
}

BOOST_AUTO_TEST_CASE(non_leaf_without_retain_grad_has_no_grad) {
  Tensor x = tensor({1.0}, float64).requires_grad_();
  Tensor h = x * 3.0;
  (h * h).sum().backward();
  BOOST_TEST(!h.grad().defined());
}

BOOST_AUTO_TEST_CASE(hook_that_doubles_a_gradient) {
  Tensor x = tensor({1.0, 2.0}, float64).requires_grad_();
  Tensor h = x * 3.0;
  int calls = 0;
  h.register_hook([&](const Tensor& g) {
    ++calls;
    return g * 2.0;
  });
  (h.sum()).backward();
  BOOST_TEST(calls == 1);
  expect_values(x.grad(), {2}, {6.0, 6.0});  // 3 · 2
}

BOOST_AUTO_TEST_CASE(hook_on_leaf_sees_and_replaces_gradient) {
  Tensor x = tensor({1.0, 2.0}, float64).requires_grad_();
  Tensor seen;
  x.register_hook([&](const Tensor& g) {
    seen = g.clone();
    return g * 10.0;
  });
  (x * x).sum().backward();
  expect_values(seen, {2}, {2.0, 4.0});
  expect_values(x.grad(), {2}, {20.0, 40.0});
}

BOOST_AUTO_TEST_CASE(hook_returning_wrong_shape_throws) {
  Tensor x = tensor({1.0, 2.0}, float64).requires_grad_();
  Tensor h = x * 3.0;
  h.register_hook([](const Tensor&) { return zeros({3}, float64); });
  expect_error([&] { h.sum().backward(); }, {"hook", "[3]", "[2]"});
}

BOOST_AUTO_TEST_CASE(saved_tensor_modified_in_place_is_refused) {
  Tensor x = tensor({1.0, 2.0}, float64).requires_grad_();
  Tensor a = tensor({3.0, 4.0}, float64);
  Tensor y = (x * a).sum();  // mul saves a
  a.mul_(2.0);
  expect_error([&] { y.backward(); }, {"mul", "modified by an in-place operation", "version"});
}

BOOST_AUTO_TEST_CASE(saved_output_modified_in_place_is_refused) {
  Tensor x = tensor({0.5}, float64).requires_grad_();
  Tensor y = exp(x);  // exp saves its output
  {
    no_grad guard;
    y.add_(1.0);
  }
  expect_error([&] { y.sum().backward(); }, {"exp", "in-place"});
}

BOOST_AUTO_TEST_CASE(in_place_on_tensor_requiring_grad_needs_no_grad) {
  Tensor w = tensor({1.0}, float64).requires_grad_();
  expect_error([&] { w.mul_(2.0); }, {"mul_", "no_grad"});
  {
    no_grad guard;
    w.mul_(2.0);
  }
  expect_values(w, {1}, {2.0});
}

BOOST_AUTO_TEST_CASE(in_place_ops_bump_version) {
  Tensor a = zeros({2}, float64);
  const auto v0 = a.version();
  a.add_(ones({2}, float64));
  a.mul_(3.0);
  a.zero_();
  a.copy_(tensor({5.0, 6.0}, float64));
  BOOST_TEST(a.version() == v0 + 4);
  expect_values(a, {2}, {5.0, 6.0});
  Tensor view = a.reshape({2, 1});
  view.fill_(1.0);
  BOOST_TEST(a.version() == v0 + 5);  // views share the counter
}

BOOST_AUTO_TEST_CASE(optimizer_style_in_place_arithmetic) {
  Tensor p = tensor({1.0, 2.0}, float64);
  Tensor g = tensor({0.5, -1.0}, float64);
  p.add_(g, -0.1);  // p - 0.1 g
  expect_values(p, {2}, {std::fma(-0.1, 0.5, 1.0), std::fma(-0.1, -1.0, 2.0)}, 0);
  Tensor v = tensor({1.0, 1.0}, float64);
  v.addcmul_(g, g, 0.5);  // v + 0.5 g²
  expect_values(v, {2}, {std::fma(0.5 * 0.5, 0.5, 1.0), std::fma(0.5 * -1.0, -1.0, 1.0)}, 0);
  Tensor q = tensor({1.0, 1.0}, float64);
  q.addcdiv_(g, tensor({2.0, 4.0}, float64), -1.0);
  expect_values(q, {2}, {1.0 + (-1.0 * 0.5) / 2.0, 1.0 + (-1.0 * -1.0) / 4.0}, 0);
}

BOOST_AUTO_TEST_CASE(views_share_memory_with_their_base) {
  Tensor base = arange(6.0, float64).reshape({2, 3});
  Tensor tr = base.transpose(0, 1);
  Tensor row = slice(base, 0, 1, 2);
  BOOST_TEST(tr.storage() == base.storage());
  BOOST_TEST(row.storage() == base.storage());
  BOOST_TEST(!tr.is_contiguous());
  base.mul_(10.0);
  expect_values(tr, {3, 2}, {0, 30, 10, 40, 20, 50});
  expect_values(row, {1, 3}, {30, 40, 50});
  row.fill_(-1.0);
  expect_values(base, {2, 3}, {0, 10, 20, -1, -1, -1});
}

BOOST_AUTO_TEST_CASE(fill_on_strided_view_writes_only_the_view) {
  Tensor base = zeros({2, 3}, float64);
  Tensor every_other = slice(base.reshape({6}), 0, 1, 6, 2);  // elements 1, 3, 5
  every_other.fill_(-1.0);
  xgrad::testing::expect_values(base, {2, 3}, {0, -1, 0, -1, 0, -1});
  Tensor col = slice(base, 1, 2, 3);  // column 2
  col.zero_();
  xgrad::testing::expect_values(base, {2, 3}, {0, -1, 0, -1, 0, 0});
  // Arithmetic in place through strided views: a stepped slice and a transpose.
  every_other.add_(3.0);
  xgrad::testing::expect_values(base, {2, 3}, {0, 2, 0, 2, 0, 3});
  Tensor tr = base.transpose(0, 1);  // [3,2]
  tr.mul_(tensor({{1.0, 10.0}}, float64));
  xgrad::testing::expect_values(base, {2, 3}, {0, 2, 0, 20, 0, 30});
  tr.addcmul_(ones({3, 2}, float64), full({3, 2}, 2.0, float64), 0.5);
  xgrad::testing::expect_values(base, {2, 3}, {1, 3, 1, 21, 1, 31});
}

BOOST_AUTO_TEST_CASE(backward_of_non_scalar_with_seed) {
  Tensor x = tensor({{1.0, 2.0}, {3.0, 4.0}}, float64).requires_grad_();
  Tensor y = x * x;
  y.backward(tensor({{1.0, 0.0}, {0.5, 2.0}}, float64));
  expect_values(x.grad(), {2, 2}, {2.0, 0.0, 3.0, 16.0});
}

BOOST_AUTO_TEST_CASE(backward_of_non_scalar_without_seed_throws) {
  Tensor x = tensor({1.0, 2.0}, float64).requires_grad_();
  Tensor y = x * 2.0;
  expect_error([&] { y.backward(); }, {"backward", "[2]"});
  expect_error([&] { y.backward(ones({3}, float64)); }, {"backward", "[3]", "[2]"});
}

BOOST_AUTO_TEST_CASE(nodes_know_name_and_order) {
  Tensor x = tensor({1.0}, float64).requires_grad_();
  Tensor a = x * 2.0;
  Tensor b = exp(a);
  BOOST_TEST(a.grad_fn()->name() == "mul");
  BOOST_TEST(b.grad_fn()->name() == "exp");
  BOOST_TEST(b.grad_fn()->sequence_nr() > a.grad_fn()->sequence_nr());
  BOOST_TEST(x.is_leaf());
  BOOST_TEST(!b.is_leaf());
}

BOOST_AUTO_TEST_CASE(int_and_bool_tensors_never_require_grad) {
  Tensor labels = tensor({1.0, 2.0}, int64);
  expect_error([&] { labels.requires_grad_(); }, {"requires_grad_", "int64"});
  Tensor mask = gt(tensor({1.0, -1.0}, float64), tensor({0.0, 0.0}, float64));
  BOOST_TEST(mask.dtype() == Dtype::boolean);
  BOOST_TEST(!mask.requires_grad());
}

BOOST_AUTO_TEST_CASE(long_chain_backward_and_free_without_stack_overflow) {
  // 100,000 tanh nodes: the engine walks iteratively and nodes are freed iteratively.
  Tensor x = tensor({0.5}, float64).requires_grad_();
  {
    Tensor y = x;
    for (int i = 0; i < 100000; ++i) y = tanh(y);
    y.sum().backward();
  }  // the chain is released here
  BOOST_TEST(x.grad().defined());
  const double g = x.grad().item();
  BOOST_TEST(g > 0.0);
  BOOST_TEST(g < 1.0);
  {
    // Built and dropped without backward: freeing alone must not recurse either.
    Tensor y = x;
    for (int i = 0; i < 100000; ++i) y = y * 1.0;
  }
}

BOOST_AUTO_TEST_CASE(memory_stays_flat_over_many_iterations) {
  Tensor w = randn({16, 16}, float64).requires_grad_();
  Tensor xin = randn({4, 16}, float64);
  auto step = [&] {
    Tensor h = tanh(matmul(xin, w));
    Tensor loss = (h * h).mean();
    loss.backward();
    w.zero_grad();
  };
#if defined(__SANITIZE_ADDRESS__)
  // Under AddressSanitizer freed memory sits in a quarantine, so RSS is no measure; a cycle
  // would instead be reported by LeakSanitizer when the process exits.
  const int iterations = 2000;
  const std::int64_t limit = 1024LL * 1024 * 1024;
#else
  const int iterations = 100000;
  const std::int64_t limit = 10 * 1024 * 1024;
#endif
  for (int i = 0; i < 1000; ++i) step();  // warm-up: allocator pools settle
  const std::int64_t before = rss_bytes();
  for (int i = 0; i < iterations; ++i) step();
  const std::int64_t growth = rss_bytes() - before;
  BOOST_TEST_MESSAGE("RSS growth over " << iterations << " iterations: " << growth << " bytes");
  BOOST_TEST(growth < limit);
}

BOOST_AUTO_TEST_SUITE_END()

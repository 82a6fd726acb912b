// DistributedDataParallel and the collectives, run by ctest under `mpirun -np 2`: every case
// runs on both ranks, which talk to each other.
#include <algorithm>
#include <string>

#include "test_util.hpp"
#include "xgrad/distributed/collectives.hpp"
#include "xgrad/distributed/ddp.hpp"
#include "xgrad/distributed/init.hpp"

using namespace xgrad;
namespace dist = xgrad::distributed;

namespace {

struct MpiSession {
  // A failed check on one rank must not leave the other waiting for a minute.
  dist::Session session = dist::init({.timeout = std::chrono::seconds(20)});
};

// Largest |a - b| over two tensors of one shape.
double max_diff(const Tensor& a, const Tensor& b) {
  return max(abs(a.detach().to(float64) - b.detach().to(float64))).item();
}

// True when `t` holds bitwise the same values on every rank.
bool same_on_all_ranks(const Tensor& t) {
  Tensor hi = t.detach().clone(), lo = t.detach().clone();
  dist::all_reduce(hi, dist::ReduceOp::max);
  dist::all_reduce(lo, dist::ReduceOp::min);
  return max_diff(hi, t) == 0 && max_diff(lo, t) == 0;
}

// A model with a branch that only rank 0 takes: the other rank gets no gradient for `b`.
struct Branchy : nn::Module {
  std::shared_ptr<nn::Linear> a, b;
  explicit Branchy(Dtype dt) {
    a = register_module("a", std::make_shared<nn::Linear>(4, 3, nn::LinearOptions{.dtype = dt}));
    b = register_module("b", std::make_shared<nn::Linear>(4, 3, nn::LinearOptions{.dtype = dt}));
  }
  bool use_b = true;
  Tensor forward(const Tensor& x) override { return use_b ? (*a)(x) + (*b)(x) : (*a)(x); }
};

}  // namespace

BOOST_TEST_GLOBAL_FIXTURE(MpiSession);

BOOST_AUTO_TEST_SUITE(ddp)

BOOST_AUTO_TEST_CASE(runs_on_two_ranks) {
  BOOST_REQUIRE(dist::world_size() == 2);
  BOOST_TEST((dist::rank() == 0 || dist::rank() == 1));
}

BOOST_AUTO_TEST_CASE(five_steps_equal_one_process_on_the_union_batch) {
  // Issue 16, item 1: float64, 5 SGD steps (momentum), several buckets. Each rank starts
  // from its own random weights: DDP's constructor must give both rank 0's.
  const int r = dist::rank();
  const std::int64_t B = 6, steps = 5;
  manual_seed(100 + static_cast<std::uint64_t>(r));
  nn::MLP model({5, 16, 8, 3}, nn::LinearOptions{.dtype = float64});
  dist::DistributedDataParallel ddp(model, {.bucket_cap_mb = 1e-4, .first_bucket_cap_mb = 1e-4});
  BOOST_TEST(ddp.buckets().size() > 2u);
  nn::MLP reference({5, 16, 8, 3}, nn::LinearOptions{.dtype = float64});
  reference.load_state_dict(model.state_dict());
  optim::SGD opt(model.parameters(), optim::SGDOptions(0.1).momentum(0.9));
  optim::SGD ref_opt(reference.parameters(), optim::SGDOptions(0.1).momentum(0.9));
  manual_seed(7);  // the same global batches on both ranks
  for (std::int64_t s = 0; s < steps; ++s) {
    Tensor x = randn({2 * B, 5}, float64);
    std::vector<std::int64_t> labels;
    for (std::int64_t i = 0; i < 2 * B; ++i) labels.push_back((i * 7 + s) % 3);
    Tensor y = from_data(labels.data(), {2 * B});
    // This rank's half of the global batch.
    Tensor xr = x.index({indexing::Slice(r * B, (r + 1) * B)});
    Tensor yr = y.index({indexing::Slice(r * B, (r + 1) * B)});
    opt.zero_grad();
    cross_entropy(ddp(xr), yr).backward();
    opt.step();
    ref_opt.zero_grad();
    cross_entropy(reference(x), y).backward();
    ref_opt.step();
  }
  const auto params = model.named_parameters();
  const auto ref = reference.named_parameters();
  for (std::size_t i = 0; i < params.size(); ++i) {
    BOOST_TEST(max_diff(params[i].second, ref[i].second) <= 1e-12, params[i].first);
    BOOST_TEST(same_on_all_ranks(params[i].second), params[i].first);
  }
  BOOST_TEST(max_diff(params[0].second, model.parameters()[0]) == 0.0);
}

BOOST_AUTO_TEST_CASE(unused_parameters_count_as_zero_in_float32) {
  const int r = dist::rank();
  manual_seed(3);
  Branchy model(float32);
  dist::DistributedDataParallel ddp(model);
  Branchy local(float32);  // the same weights, no DDP: this rank's own gradients
  local.load_state_dict(model.state_dict());
  model.use_b = local.use_b = (r == 0);
  manual_seed(10 + static_cast<std::uint64_t>(r));
  Tensor x = randn({5, 4});
  ddp(x).pow(2.0).mean().backward();
  local(x).pow(2.0).mean().backward();
  const auto p = model.named_parameters();
  const auto l = local.named_parameters();
  for (std::size_t i = 0; i < p.size(); ++i) {
    Tensor expected =
        l[i].second.grad().defined() ? l[i].second.grad().clone() : zeros(l[i].second.shape());
    dist::all_reduce(expected, dist::ReduceOp::avg);
    BOOST_REQUIRE(p[i].second.grad().defined());
    BOOST_TEST(max_diff(p[i].second.grad(), expected) <= 1e-6, p[i].first);
    BOOST_TEST(same_on_all_ranks(p[i].second.grad()), p[i].first);
  }
  // b's gradient is rank 0's halved: not zero, not rank 0's own.
  BOOST_TEST(max(abs(model.b->weight.grad())).item() > 0.0);
}

BOOST_AUTO_TEST_CASE(first_bucket_all_reduce_starts_before_backward_finishes) {
  // Issue 16, item 3: one bucket per parameter; the last layer's gradients are ready first,
  // so bucket 0's all-reduce must start before the first layer's weight (parameter 0, the
  // last gradient backward computes) is ready. Without overlap it starts after it.
  for (bool overlap : {true, false}) {
    manual_seed(1);
    nn::MLP model({8, 32, 32, 32, 4});
    std::vector<dist::DDPEvent> events;
    dist::DistributedDataParallel ddp(
        model, {.bucket_cap_mb = 1e-6,
                .first_bucket_cap_mb = 1e-6,
                .overlap = overlap,
                .observer = [&](const dist::DDPEvent& e) { events.push_back(e); }});
    const std::size_t n = model.parameters().size();
    BOOST_REQUIRE(ddp.buckets().size() == n);
    BOOST_TEST(ddp.buckets()[0].parameters[0] == n - 1);  // reverse registration order
    manual_seed(2);
    ddp(randn({16, 8})).pow(2.0).mean().backward();
    auto at = [&](dist::DDPEvent::Kind k, std::size_t i) {
      auto it = std::find_if(events.begin(), events.end(),
                             [&](const dist::DDPEvent& e) { return e.kind == k && e.index == i; });
      BOOST_REQUIRE(it != events.end());
      return it - events.begin();
    };
    const auto first_launch = at(dist::DDPEvent::launched, 0);
    const auto last_ready = at(dist::DDPEvent::ready, 0);
    const auto finished = at(dist::DDPEvent::finished, 0);
    if (overlap) {
      BOOST_TEST(first_launch < last_ready);
      // every bucket's all-reduce started while gradients were still being computed
      BOOST_TEST(at(dist::DDPEvent::launched, n - 2) < last_ready);
    } else {
      BOOST_TEST(first_launch > last_ready);
    }
    BOOST_TEST(finished == static_cast<std::ptrdiff_t>(events.size()) - 1);
    for (const Tensor& p : model.parameters()) BOOST_TEST(same_on_all_ranks(p.grad()));
  }
}

BOOST_AUTO_TEST_CASE(buckets_fill_in_reverse_order_up_to_their_cap) {
  manual_seed(1);
  nn::MLP model({100, 100, 10});  // weights 40000 B and 4000 B, biases 400 B and 40 B
  dist::DistributedDataParallel ddp(model, {.bucket_cap_mb = 0.03, .first_bucket_cap_mb = 0.001});
  // Parameters: 0 fc1.weight, 1 fc1.bias, 2 fc2.weight, 3 fc2.bias. The first bucket closes
  // once it holds >= 1048 B (fc2.bias + fc2.weight = 4040 B), the next at >= 31457 B.
  const auto& b = ddp.buckets();
  BOOST_REQUIRE(b.size() == 2u);
  BOOST_TEST((b[0].parameters == std::vector<std::size_t>{3, 2}));
  BOOST_TEST((b[1].parameters == std::vector<std::size_t>{1, 0}));
  BOOST_TEST(b[0].bytes() == 4040u);
  BOOST_TEST(b[1].bytes() == 40400u);
  BOOST_CHECK_THROW(dist::DistributedDataParallel(model, {.bucket_cap_mb = 0}), Error);
}

BOOST_AUTO_TEST_CASE(collectives_reduce_and_broadcast) {
  const int r = dist::rank();
  Tensor t = tensor({1.0 + r, 10.0 * (r + 1)}, float64);
  dist::all_reduce(t);
  testing::expect_values(t, {2}, {3.0, 30.0});
  Tensor a = tensor({1.0 + r, 4.0}, float32);
  dist::all_reduce(a, dist::ReduceOp::avg);
  testing::expect_values(a, {2}, {1.5, 4.0});
  const std::vector<std::int64_t> mv = {0, r + 1, 2 * (r + 1)};
  Tensor m = from_data(mv.data(), {3});
  dist::all_reduce(m, dist::ReduceOp::max);
  BOOST_TEST(m.data_ptr<std::int64_t>()[2] == 4);
  Tensor v = (tensor({1.0, 2.0, 3.0, 4.0}, float64) * (r + 1.0)).reshape({2, 2}).t();  // a view
  dist::all_reduce(v, dist::ReduceOp::product);
  testing::expect_values(v, {2, 2}, {2.0, 18.0, 8.0, 32.0});
  BOOST_TEST(dist::all_reduce(static_cast<double>(r), dist::ReduceOp::sum) == 1.0);
  Tensor b = full({3}, static_cast<double>(r), float64);
  dist::broadcast(b, 1);
  testing::expect_values(b, {3}, {1.0, 1.0, 1.0});
  dist::barrier();
  BOOST_CHECK_THROW(dist::all_reduce(zeros({2}, boolean)), Error);
  BOOST_CHECK_THROW(dist::all_reduce(m, dist::ReduceOp::avg), Error);
  BOOST_CHECK_THROW(dist::broadcast(b, 2), Error);
}

BOOST_AUTO_TEST_CASE(broadcast_parameters_copies_parameters_and_buffers) {
  manual_seed(50 + static_cast<std::uint64_t>(dist::rank()));
  nn::Sequential model;
  model.push_back(std::make_shared<nn::Linear>(3, 4));
  model.push_back(std::make_shared<nn::BatchNorm1d>(4));
  model.train();
  model(randn({6, 3}));  // rank-dependent running statistics
  dist::broadcast_parameters(model, 0);
  for (const Tensor& p : model.parameters()) BOOST_TEST(same_on_all_ranks(p));
  for (const Tensor& b : model.buffers())
    if (is_floating(b.dtype())) BOOST_TEST(same_on_all_ranks(b));
}

BOOST_AUTO_TEST_SUITE_END()

// DistributedSampler and ShardDataset: disjoint shards that together are the single-process
// order, torch's padding and counts, and the equivalence with a single DataLoader of R·B.
#include <algorithm>
#include <set>

#include "test_util.hpp"
#include "xgrad/data/dataloader.hpp"
#include "xgrad/distributed/sampler.hpp"

using namespace xgrad;
using distributed::DistributedSampler;
using distributed::DistributedSamplerOptions;

namespace {

// The order a shuffling DataLoader with `seed` visits N samples in during epoch `epoch`.
std::vector<std::int64_t> loader_order(std::int64_t n, std::uint64_t seed, std::int64_t epoch) {
  data::TensorDataset ds(arange(0, static_cast<double>(n), 1, float64),
                         arange(0, static_cast<double>(n), 1, float64));
  data::DataLoader loader(ds, {.batch_size = n, .shuffle = true, .seed = seed});
  loader.set_state({seed, epoch, 0});
  loader.begin();
  return loader.order();
}

}  // namespace

BOOST_AUTO_TEST_SUITE(distributed_sampler)

BOOST_AUTO_TEST_CASE(shards_are_disjoint_and_interleave_the_dataloader_order) {
  const std::int64_t n = 10;
  const auto order = loader_order(n, 7, 3);
  std::set<std::int64_t> seen;
  for (std::int64_t r = 0; r < 2; ++r) {
    DistributedSampler s(n, {.num_replicas = 2, .rank = r, .seed = 7});
    s.set_epoch(3);
    BOOST_TEST(s.num_samples() == 5);
    BOOST_TEST(s.total_size() == 10);
    for (std::size_t i = 0; i < 5; ++i) {
      BOOST_TEST(s.indices()[i] == order[2 * i + static_cast<std::size_t>(r)]);
      seen.insert(s.indices()[i]);
    }
  }
  BOOST_TEST(seen.size() == 10u);  // every sample once
}

BOOST_AUTO_TEST_CASE(same_seed_same_order_and_epochs_differ) {
  DistributedSampler a(100, {.num_replicas = 3, .rank = 1, .seed = 5});
  DistributedSampler b(100, {.num_replicas = 3, .rank = 1, .seed = 5});
  const auto e0 = a.indices();
  BOOST_TEST(e0 == b.indices());
  a.set_epoch(1);
  BOOST_TEST(a.indices() != e0);
  a.set_epoch(0);
  BOOST_TEST(a.indices() == e0);
}

BOOST_AUTO_TEST_CASE(pads_as_torch_by_repeating_the_start) {
  // torch: N = 10, R = 4 -> num_samples 3, total 12, order + order[0:2].
  std::vector<std::int64_t> all;
  for (std::int64_t r = 0; r < 4; ++r) {
    DistributedSampler s(10, {.num_replicas = 4, .rank = r, .shuffle = false});
    BOOST_TEST(s.num_samples() == 3);
    all.insert(all.end(), s.indices().begin(), s.indices().end());
  }
  // rank r holds positions r, r+4, r+8 of [0..9, 0, 1]
  const std::vector<std::int64_t> expected = {0, 4, 8, 1, 5, 9, 2, 6, 0, 3, 7, 1};
  BOOST_TEST(all == expected, boost::test_tools::per_element());
  // More padding than samples: N = 2, R = 5 -> [0, 1, 0, 1, 0].
  std::vector<std::int64_t> tiny;
  for (std::int64_t r = 0; r < 5; ++r)
    tiny.push_back(
        DistributedSampler(2, {.num_replicas = 5, .rank = r, .shuffle = false}).indices()[0]);
  const std::vector<std::int64_t> cyc = {0, 1, 0, 1, 0};
  BOOST_TEST(tiny == cyc, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(drop_last_cuts_the_tail) {
  DistributedSampler s(10, {.num_replicas = 4, .rank = 3, .shuffle = false, .drop_last = true});
  BOOST_TEST(s.num_samples() == 2);  // torch: ceil((10 - 4) / 4) = 2
  const std::vector<std::int64_t> expected = {3, 7};
  BOOST_TEST(s.indices() == expected, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(shard_batches_together_are_the_single_process_batch) {
  // Two ranks with batch 3 see, step by step, exactly the samples of one process with batch 6.
  const std::int64_t n = 12;
  Tensor x = arange(0, static_cast<double>(n), 1, float64).reshape({n, 1});
  data::TensorDataset ds(x, arange(0, static_cast<double>(n), 1, float64));
  data::DataLoader single(ds, {.batch_size = 6, .shuffle = true, .seed = 11});
  std::vector<std::vector<double>> single_batches;
  for (int epoch = 0; epoch < 2; ++epoch)
    for (auto& b : single) {
      const double* p = b.labels.data_ptr<double>();
      single_batches.emplace_back(p, p + b.labels.numel());
    }
  std::vector<std::vector<double>> union_batches(single_batches.size());
  for (std::int64_t r = 0; r < 2; ++r) {
    DistributedSampler s(n, {.num_replicas = 2, .rank = r, .seed = 11});
    distributed::ShardDataset shard(ds, s);
    data::DataLoader loader(shard, {.batch_size = 3});
    std::size_t k = 0;
    for (int epoch = 0; epoch < 2; ++epoch) {
      shard.set_epoch(epoch);
      for (auto& b : loader) {
        const double* p = b.labels.data_ptr<double>();
        union_batches[k].insert(union_batches[k].end(), p, p + b.labels.numel());
        ++k;
      }
    }
    BOOST_TEST(k == single_batches.size());
  }
  for (std::size_t k = 0; k < single_batches.size(); ++k) {
    auto a = single_batches[k], b = union_batches[k];
    std::sort(a.begin(), a.end());
    std::sort(b.begin(), b.end());
    BOOST_TEST(a == b, boost::test_tools::per_element());
  }
}

BOOST_AUTO_TEST_CASE(bad_arguments_are_refused) {
  BOOST_CHECK_THROW(DistributedSampler(10, {.num_replicas = 0}), Error);
  BOOST_CHECK_THROW(DistributedSampler(10, {.num_replicas = 2, .rank = 2}), Error);
  BOOST_CHECK_THROW(DistributedSampler(-1, {.num_replicas = 2}), Error);
  BOOST_CHECK_THROW(DistributedSampler(1, {.num_replicas = 2, .drop_last = true}), Error);
  DistributedSampler s(10, {.num_replicas = 2});
  data::TensorDataset other(zeros({9, 1}), zeros({9}));
  BOOST_CHECK_THROW(distributed::ShardDataset(other, s), Error);
  data::TensorDataset ok(zeros({10, 1}), zeros({10}));
  distributed::ShardDataset shard(ok, s);
  const std::int64_t bad = 5;
  BOOST_CHECK_THROW(shard.get_batch(std::span<const std::int64_t>(&bad, 1)), Error);
}

BOOST_AUTO_TEST_SUITE_END()

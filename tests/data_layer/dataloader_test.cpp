// DataLoader: coverage of every sample per epoch, seeded shuffling, drop_last, the batch-size
// regimes, and saving/restoring the position.
#include "xgrad/data/dataloader.hpp"

#include <algorithm>
#include <numeric>

#include "test_util.hpp"

using namespace xgrad;
using namespace xgrad::testing;
using xgrad::data::Batch;
using xgrad::data::DataLoader;
using xgrad::data::DataLoaderOptions;
using xgrad::data::DataLoaderState;
using xgrad::data::TensorDataset;

namespace {

/// N samples whose input is [i, -i] (float32) and whose label is i (int64), so a batch's
/// labels name the samples it holds.
TensorDataset numbered(std::int64_t n) {
  Tensor idx = arange(static_cast<double>(n), Dtype::float32).reshape({n, 1});
  return TensorDataset(concat({idx, idx * -1.0}, 1), arange(static_cast<double>(n), Dtype::int64));
}

/// The labels of one batch, after checking that its inputs match them.
std::vector<std::int64_t> ids(const Batch& b) {
  const std::int64_t n = b.labels.numel();
  BOOST_REQUIRE(b.inputs.shape() == (Shape{n, 2}));
  const std::int64_t* y = b.labels.data_ptr<std::int64_t>();
  const float* x = b.inputs.data_ptr<float>();
  for (std::int64_t i = 0; i < n; ++i) {
    BOOST_CHECK_EQUAL(x[2 * i], static_cast<float>(y[i]));
    BOOST_CHECK_EQUAL(x[2 * i + 1], -static_cast<float>(y[i]));
  }
  return {y, y + n};
}

/// One epoch: the sizes of its batches and the samples in visiting order.
struct Epoch {
  std::vector<std::int64_t> sizes, order;
};

Epoch run_epoch(DataLoader& loader) {
  Epoch e;
  for (auto& batch : loader) {
    auto v = ids(batch);
    e.sizes.push_back(static_cast<std::int64_t>(v.size()));
    e.order.insert(e.order.end(), v.begin(), v.end());
  }
  return e;
}

std::vector<std::int64_t> iota_vec(std::int64_t n) {
  std::vector<std::int64_t> v(static_cast<std::size_t>(n));
  std::iota(v.begin(), v.end(), std::int64_t{0});
  return v;
}

std::vector<std::int64_t> sorted(std::vector<std::int64_t> v) {
  std::sort(v.begin(), v.end());
  return v;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(dataloader)

BOOST_AUTO_TEST_CASE(yields_every_sample_once_per_epoch) {
  TensorDataset d = numbered(103);
  DataLoader loader(d, {.batch_size = 10, .shuffle = true, .seed = 7});
  BOOST_TEST(loader.size() == 11);
  for (int epoch = 0; epoch < 3; ++epoch) {
    Epoch e = run_epoch(loader);
    BOOST_TEST(loader.epoch() == epoch);
    std::vector<std::int64_t> want_sizes(10, 10);
    want_sizes.push_back(3);
    BOOST_TEST(e.sizes == want_sizes, boost::test_tools::per_element());
    BOOST_TEST(sorted(e.order) == iota_vec(103), boost::test_tools::per_element());
    BOOST_TEST(e.order == loader.order(), boost::test_tools::per_element());
  }
}

BOOST_AUTO_TEST_CASE(without_shuffle_visits_in_order) {
  TensorDataset d = numbered(7);
  DataLoader loader(d, {.batch_size = 3});
  for (int epoch = 0; epoch < 2; ++epoch) {
    Epoch e = run_epoch(loader);
    BOOST_TEST(e.order == iota_vec(7), boost::test_tools::per_element());
    BOOST_TEST(e.sizes == (std::vector<std::int64_t>{3, 3, 1}), boost::test_tools::per_element());
  }
}

BOOST_AUTO_TEST_CASE(shuffles_differently_each_epoch) {
  TensorDataset d = numbered(50);
  DataLoader loader(d, {.batch_size = 8, .shuffle = true, .seed = 123});
  std::vector<std::vector<std::int64_t>> orders;
  for (int epoch = 0; epoch < 4; ++epoch) orders.push_back(run_epoch(loader).order);
  for (std::size_t i = 0; i < orders.size(); ++i) {
    BOOST_TEST((orders[i] != iota_vec(50)));
    for (std::size_t j = i + 1; j < orders.size(); ++j)
      BOOST_TEST((orders[i] != orders[j]), "epochs " << i << " and " << j << " share an order");
  }
}

BOOST_AUTO_TEST_CASE(same_seed_gives_same_orders) {
  TensorDataset d = numbered(40);
  DataLoader a(d, {.batch_size = 6, .shuffle = true, .seed = 99});
  DataLoader b(d, {.batch_size = 6, .shuffle = true, .seed = 99});
  DataLoader c(d, {.batch_size = 6, .shuffle = true, .seed = 100});
  // The process-wide generator neither drives nor is disturbed by the loaders.
  manual_seed(1);
  const double before = rand({1}).item();
  for (int epoch = 0; epoch < 3; ++epoch) {
    const auto oa = run_epoch(a).order;
    xgrad::manual_seed(static_cast<std::uint64_t>(epoch) + 1000);  // must not matter
    const auto ob = run_epoch(b).order;
    const auto oc = run_epoch(c).order;
    BOOST_TEST(oa == ob, boost::test_tools::per_element());
    BOOST_TEST((oa != oc));
  }
  manual_seed(1);
  DataLoader e(d, {.batch_size = 6, .shuffle = true, .seed = 5});
  run_epoch(e);
  BOOST_TEST(rand({1}).item() == before);
}

BOOST_AUTO_TEST_CASE(drop_last_drops_the_short_batch) {
  TensorDataset d = numbered(103);
  DataLoader loader(d, {.batch_size = 10, .shuffle = true, .drop_last = true, .seed = 3});
  BOOST_TEST(loader.size() == 10);
  std::vector<std::int64_t> seen_total;
  for (int epoch = 0; epoch < 2; ++epoch) {
    Epoch e = run_epoch(loader);
    BOOST_TEST(e.sizes == std::vector<std::int64_t>(10, 10), boost::test_tools::per_element());
    auto s = sorted(e.order);
    BOOST_TEST((std::adjacent_find(s.begin(), s.end()) == s.end()));  // no repeats
    BOOST_TEST(s.size() == 100u);
    // The dropped samples are the tail of this epoch's order, so they change between epochs.
    seen_total.insert(seen_total.end(), e.order.begin(), e.order.end());
  }
  auto all = sorted(seen_total);
  all.erase(std::unique(all.begin(), all.end()), all.end());
  BOOST_TEST(all.size() > 100u);
  // Divisible sizes lose nothing; a batch larger than the dataset leaves no batch at all.
  TensorDataset d100 = numbered(100);
  BOOST_TEST(DataLoader(d100, {.batch_size = 10, .drop_last = true}).size() == 10);
  DataLoader none(d100, {.batch_size = 101, .drop_last = true});
  BOOST_TEST(none.size() == 0);
  BOOST_TEST(run_epoch(none).order.empty());
  BOOST_TEST(none.state().epoch == 1);
}

BOOST_AUTO_TEST_CASE(batch_size_one_is_stochastic) {
  TensorDataset d = numbered(9);
  DataLoader loader(d, {.batch_size = 1, .shuffle = true, .seed = 4});
  BOOST_TEST(loader.size() == 9);
  Epoch e = run_epoch(loader);
  BOOST_TEST(e.sizes == std::vector<std::int64_t>(9, 1), boost::test_tools::per_element());
  BOOST_TEST(sorted(e.order) == iota_vec(9), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(batch_size_n_is_full_batch) {
  TensorDataset d = numbered(9);
  for (std::int64_t bs : {9, 50}) {  // the whole dataset, or more
    DataLoader loader(d, {.batch_size = bs, .shuffle = true, .seed = 4});
    BOOST_TEST(loader.size() == 1);
    Epoch e = run_epoch(loader);
    BOOST_TEST(e.sizes == std::vector<std::int64_t>{9}, boost::test_tools::per_element());
    BOOST_TEST(sorted(e.order) == iota_vec(9), boost::test_tools::per_element());
  }
}

BOOST_AUTO_TEST_CASE(rejects_batch_size_zero) {
  TensorDataset d = numbered(4);
  expect_error([&] { DataLoader(d, {.batch_size = 0}); },
               {"DataLoader", "batch_size must be at least 1, got 0"});
  expect_error([&] { DataLoader(d, {.batch_size = -3}); }, {"got -3"});
}

BOOST_AUTO_TEST_CASE(state_saves_and_restores_position) {
  TensorDataset d = numbered(23);
  const DataLoaderOptions opts{.batch_size = 5, .shuffle = true, .seed = 11};
  DataLoader a(d, opts);
  BOOST_TEST((a.state() == DataLoaderState{11, 0, 0}));
  run_epoch(a);
  BOOST_TEST((a.state() == DataLoaderState{11, 1, 0}));

  // Checkpoint inside the loop body, after batch 2 of epoch 1 was yielded.
  DataLoaderState saved;
  std::vector<std::int64_t> rest;  // what `a` yields after the checkpoint
  std::int64_t i = 0;
  for (auto& batch : a) {
    if (i == 2) saved = a.state();
    if (i > 2) {
      auto v = ids(batch);
      rest.insert(rest.end(), v.begin(), v.end());
    }
    ++i;
  }
  BOOST_TEST((saved == DataLoaderState{11, 1, 3}));
  const auto next_a = run_epoch(a).order;  // epoch 2

  DataLoader b(d, {.batch_size = 5, .shuffle = true, .seed = 0});  // seed comes from the state
  b.set_state(saved);
  const auto rest_b = run_epoch(b).order;
  BOOST_TEST(rest_b == rest, boost::test_tools::per_element());
  BOOST_TEST(b.epoch() == 1);
  BOOST_TEST(run_epoch(b).order == next_a, boost::test_tools::per_element());

  // A checkpoint taken during the last batch points at the next epoch.
  DataLoader c(d, opts);
  for (auto& batch : c) (void)batch;
  DataLoaderState last;
  for (auto& batch : c) {
    (void)batch;
    last = c.state();
  }
  BOOST_TEST((last == DataLoaderState{11, 2, 0}));

  expect_error(
      [&] {
        b.set_state({11, 0, 5});
      },
      {"DataLoader::set_state", "batch 5 is out of range", "5 batches"});
  expect_error([&] { b.set_state({11, -1, 0}); }, {"epoch must be non-negative"});
}

BOOST_AUTO_TEST_CASE(break_abandons_the_epoch) {
  TensorDataset d = numbered(20);
  DataLoader loader(d, {.batch_size = 4, .shuffle = true, .seed = 2});
  int n = 0;
  for (auto& batch : loader) {
    (void)batch;
    if (++n == 2) break;
  }
  BOOST_TEST(loader.epoch() == 0);
  Epoch e = run_epoch(loader);  // a full new epoch, not the rest of epoch 0
  BOOST_TEST(loader.epoch() == 1);
  BOOST_TEST(e.sizes.size() == 5u);
  BOOST_TEST(sorted(e.order) == iota_vec(20), boost::test_tools::per_element());
  DataLoader fresh(d, {.batch_size = 4, .shuffle = true, .seed = 2});
  fresh.set_state({2, 1, 0});
  BOOST_TEST(run_epoch(fresh).order == e.order, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_SUITE_END()

// memory_allocated / max_memory_allocated / reset_peak_memory_stats: the bytes held by tensor
// storages, counted exactly, and the peak.
#include <boost/test/unit_test.hpp>
#include <thread>

#include "test_util.hpp"

using namespace xgrad;

BOOST_AUTO_TEST_SUITE(memory_stats)

// A tensor of n elements moves the counter by exactly n · element size, both ways; views share
// their base's storage and count nothing.
BOOST_AUTO_TEST_CASE(allocated_moves_by_exactly_the_storage_bytes) {
  const std::int64_t before = memory_allocated();
  {
    Tensor a = empty({3, 5}, float64);
    BOOST_TEST(memory_allocated() - before == 3 * 5 * 8);
    Tensor b = zeros({7}, float32);
    BOOST_TEST(memory_allocated() - before == 3 * 5 * 8 + 7 * 4);
    Tensor v = a.reshape({15}).detach().transpose(0, 0);
    BOOST_TEST(memory_allocated() - before == 3 * 5 * 8 + 7 * 4);
    Tensor e = empty({0, 4}, float32);  // no elements, no bytes
    BOOST_TEST(memory_allocated() - before == 3 * 5 * 8 + 7 * 4);
  }
  BOOST_TEST(memory_allocated() == before);
}

// The peak follows the highest point, stays there when memory is freed, and a reset brings it
// down to what is allocated now.
BOOST_AUTO_TEST_CASE(peak_follows_and_resets) {
  reset_peak_memory_stats();
  const std::int64_t base = memory_allocated();
  BOOST_TEST(max_memory_allocated() == base);
  {
    Tensor a = empty({1000}, float32);
    {
      Tensor b = empty({250}, float64);
      BOOST_TEST(max_memory_allocated() == base + 4000 + 2000);
    }
    BOOST_TEST(memory_allocated() == base + 4000);
    BOOST_TEST(max_memory_allocated() == base + 6000);
    reset_peak_memory_stats();
    BOOST_TEST(max_memory_allocated() == base + 4000);
  }
  BOOST_TEST(memory_allocated() == base);
  BOOST_TEST(max_memory_allocated() == base + 4000);
  reset_peak_memory_stats();
  BOOST_TEST(max_memory_allocated() == base);
}

// A graph's saved tensors are storages too: freed by backward, the counter comes back.
BOOST_AUTO_TEST_CASE(saved_tensors_are_counted_until_backward_frees_them) {
  Tensor x = ones({100}, float64).requires_grad_();
  const std::int64_t before = memory_allocated();
  Tensor loss;
  {
    Tensor h = mul(x, x);  // 800 bytes, saved by relu
    loss = sum(relu(h));   // relu's output is freed at once; the 0-d loss stays
  }
  BOOST_TEST(memory_allocated() - before >= 800 + 8);
  loss.backward();
  loss = Tensor();
  BOOST_TEST(memory_allocated() - before == 800);  // x.grad()
}

// The counters are kept per thread (storage.cpp): a storage made on one thread and freed on
// another, and the peak over threads that run one after another, are still exact once the
// threads are joined.
BOOST_AUTO_TEST_CASE(exact_across_joined_threads) {
  reset_peak_memory_stats();
  const std::int64_t base = memory_allocated();
  Tensor held = empty({250}, float32);  // 1000 bytes on this thread
  Tensor from_thread;
  std::thread([&] { from_thread = empty({1000}, float32); }).join();  // 4000, kept
  BOOST_TEST(memory_allocated() == base + 5000);
  BOOST_TEST(max_memory_allocated() == base + 5000);
  std::thread([&] {
    Tensor t = empty({500}, float32);  // 2000 while 5000 are held: peak 7000
    BOOST_TEST(memory_allocated() == base + 7000);
  }).join();
  BOOST_TEST(max_memory_allocated() == base + 7000);
  std::thread([&] { from_thread = Tensor(); }).join();  // freed on another thread
  BOOST_TEST(memory_allocated() == base + 1000);
  {
    Tensor t = empty({1250}, float32);  // 1000 + 5000: below the peak
    BOOST_TEST(max_memory_allocated() == base + 7000);
    Tensor u = empty({500}, float32);  // 1000 + 5000 + 2000 = 8000: a new peak
    BOOST_TEST(max_memory_allocated() == base + 8000);
  }
  held = Tensor();
  BOOST_TEST(memory_allocated() == base);
  reset_peak_memory_stats();
  BOOST_TEST(max_memory_allocated() == base);
}

BOOST_AUTO_TEST_SUITE_END()

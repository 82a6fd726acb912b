// The built-in optimizers split the update of a large parameter into chunks run on the batch
// threads (optim/update.hpp, split_update). Each element is updated by the same formula in
// whichever chunk holds it, so 1, 2 and 3 threads must give the same bits, every step, for
// every variant (momentum, Nesterov, centred, AMSGrad, decoupled decay) and both dtypes; and
// the first Adam step is checked element by element against its closed form, so a chunk that
// was skipped or run twice cannot pass.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <vector>

#include "test_util.hpp"
#include "xgrad/optim/adam.hpp"
#include "xgrad/optim/adamw.hpp"
#include "xgrad/optim/rmsprop.hpp"
#include "xgrad/optim/sgd.hpp"

using namespace xgrad;

namespace {

// Odd, and more than 16 chunks of the minimum 2^15 elements: uneven chunks and a scalar tail.
constexpr std::int64_t kN = 16 * 32768 + 4099;

struct ThreadCounts {
  int gemm = get_num_threads();
  ~ThreadCounts() {
    set_num_threads(gemm);
    set_num_batch_threads(0);
  }
};

using MakeOptimizer = std::function<std::unique_ptr<optim::Optimizer>(std::vector<Tensor>)>;

// Three steps of the optimizer on a fresh parameter with `threads` batch threads; returns the
// parameter's bytes after the last step.
std::vector<unsigned char> run(const MakeOptimizer& make, Dtype dtype, int threads) {
  set_num_threads(threads);
  set_num_batch_threads(threads);
  manual_seed(7);
  Tensor p = randn({kN}, TensorOptions().dtype(dtype)).requires_grad_();
  auto opt = make({p});
  for (int step = 0; step < 3; ++step) {
    p.set_grad(randn({kN}, TensorOptions().dtype(dtype)));
    opt->step();
  }
  const std::size_t size = static_cast<std::size_t>(p.numel()) * element_size(dtype);
  const auto* bytes = dtype == float32
                          ? reinterpret_cast<const unsigned char*>(p.data_ptr<float>())
                          : reinterpret_cast<const unsigned char*>(p.data_ptr<double>());
  return std::vector<unsigned char>(bytes, bytes + size);
}

void expect_same_bits_for_any_thread_count(const MakeOptimizer& make) {
  ThreadCounts restore;
  for (Dtype dtype : {float32, float64}) {
    const auto one = run(make, dtype, 1);
    for (int threads : {2, 3}) {
      const auto many = run(make, dtype, threads);
      BOOST_REQUIRE_EQUAL(one.size(), many.size());
      BOOST_CHECK_MESSAGE(std::memcmp(one.data(), many.data(), one.size()) == 0,
                          "threads=" << threads << " dtype=" << dtype_name(dtype)
                                     << " changed the parameter's bits");
    }
  }
}

}  // namespace

BOOST_AUTO_TEST_SUITE(optimizer_threads)

BOOST_AUTO_TEST_CASE(adam_and_adamw_give_the_same_bits_with_any_thread_count) {
  expect_same_bits_for_any_thread_count([](std::vector<Tensor> ps) {
    return std::make_unique<optim::Adam>(std::move(ps), optim::AdamOptions(1e-2).weight_decay(0.1));
  });
  expect_same_bits_for_any_thread_count([](std::vector<Tensor> ps) {
    return std::make_unique<optim::Adam>(std::move(ps), optim::AdamOptions(1e-2).amsgrad(true));
  });
  expect_same_bits_for_any_thread_count([](std::vector<Tensor> ps) {
    return std::make_unique<optim::AdamW>(std::move(ps), optim::AdamWOptions(1e-2));
  });
}

BOOST_AUTO_TEST_CASE(sgd_gives_the_same_bits_with_any_thread_count) {
  expect_same_bits_for_any_thread_count([](std::vector<Tensor> ps) {
    return std::make_unique<optim::SGD>(std::move(ps), optim::SGDOptions(0.1));
  });
  expect_same_bits_for_any_thread_count([](std::vector<Tensor> ps) {
    return std::make_unique<optim::SGD>(
        std::move(ps), optim::SGDOptions(0.1).momentum(0.9).nesterov(true).weight_decay(1e-3));
  });
}

BOOST_AUTO_TEST_CASE(rmsprop_gives_the_same_bits_with_any_thread_count) {
  expect_same_bits_for_any_thread_count([](std::vector<Tensor> ps) {
    return std::make_unique<optim::RMSprop>(std::move(ps), optim::RMSpropOptions(1e-2));
  });
  expect_same_bits_for_any_thread_count([](std::vector<Tensor> ps) {
    return std::make_unique<optim::RMSprop>(
        std::move(ps), optim::RMSpropOptions(1e-2).centered(true).momentum(0.5));
  });
}

// Adam's first step from zero state: m = (1 - b1) g, v = (1 - b2) g^2, and after bias
// correction p <- p - lr g / (|g| + eps) (Kingma & Ba 2015, Algorithm 1). Every element of a
// large parameter, updated on 2 threads.
BOOST_AUTO_TEST_CASE(adam_first_step_on_two_threads_updates_every_element) {
  ThreadCounts restore;
  set_num_threads(2);
  set_num_batch_threads(2);
  const double lr = 0.01, eps = 1e-8;
  manual_seed(3);
  Tensor p = randn({kN}, TensorOptions().dtype(float64)).requires_grad_();
  const Tensor before = p.detach().clone();
  const Tensor g = randn({kN}, TensorOptions().dtype(float64));
  p.set_grad(g);
  optim::Adam opt({p}, optim::AdamOptions(lr).eps(eps));
  opt.step();
  const double* pa = p.data_ptr<double>();
  const double* pb = before.data_ptr<double>();
  const double* pg = g.data_ptr<double>();
  std::int64_t wrong = 0;
  for (std::int64_t i = 0; i < kN; ++i) {
    // m_hat = g and sqrt(v_hat) = |g| up to rounding in the bias corrections.
    const double expected = pb[i] - lr * pg[i] / (std::abs(pg[i]) + eps);
    if (std::abs(pa[i] - expected) > 1e-12 * (1 + std::abs(expected))) ++wrong;
  }
  BOOST_CHECK_EQUAL(wrong, 0);
}

BOOST_AUTO_TEST_SUITE_END()

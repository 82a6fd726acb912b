// nn::Embedding: N(0,1) initialisation, lookup, scatter-added weight gradient, gradcheck, errors.
#include <memory>

#include "test_util.hpp"
#include "xgrad/nn/embedding.hpp"

using namespace xgrad;
using xgrad::testing::expect_error;
using xgrad::testing::expect_gradcheck;
using xgrad::testing::expect_values;

namespace {

Tensor ids(const std::vector<std::int64_t>& v, const Shape& shape) {
  return from_data(v.data(), shape);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(embedding_module)

BOOST_AUTO_TEST_CASE(parameters_and_init) {
  manual_seed(0);
  nn::Embedding emb(1000, 16);
  auto named = emb.named_parameters();
  BOOST_REQUIRE_EQUAL(named.size(), 1u);
  BOOST_TEST(named[0].first == "weight");
  BOOST_TEST((emb.weight.shape() == Shape{1000, 16}));
  BOOST_TEST(emb.num_embeddings() == 1000);
  BOOST_TEST(emb.embedding_dim() == 16);
  BOOST_TEST(emb.type_name() == "Embedding");
  // N(0, 1): sample mean and standard deviation of 16,000 draws.
  xt::xarray<double> w = to_xarray<double>(emb.weight);
  const double m = xt::mean(w)();
  const double sd = std::sqrt(xt::mean(xt::square(w - m))());
  BOOST_TEST(std::abs(m) < 0.05);
  BOOST_TEST(std::abs(sd - 1.0) < 0.05);
}

BOOST_AUTO_TEST_CASE(lookup_and_gradient) {
  nn::Embedding emb(4, 2, float64);
  {
    no_grad guard;
    emb.weight.copy_(tensor({{0.0, 1.0}, {2.0, 3.0}, {4.0, 5.0}, {6.0, 7.0}}, float64));
  }
  Tensor out = emb(ids({3, 1, 3, 0, 0, 0}, {2, 3}));
  expect_values(out, {2, 3, 2}, {6, 7, 2, 3, 6, 7, 0, 1, 0, 1, 0, 1});
  out.sum().backward();
  // Row counts: 0 three times, 1 once, 2 never, 3 twice.
  expect_values(emb.weight.grad(), {4, 2}, {3, 3, 1, 1, 0, 0, 2, 2});
}

BOOST_AUTO_TEST_CASE(gradcheck_through_module) {
  auto emb = std::make_shared<nn::Embedding>(5, 3, float64);
  expect_gradcheck(
      [emb](const std::vector<Tensor>& in) {
        emb->weight = in[0];
        return (*emb)(ids({4, 0, 4, 2}, {2, 2}));
      },
      {emb->weight.detach().clone().requires_grad_()});
}

BOOST_AUTO_TEST_CASE(errors) {
  nn::Embedding emb(10, 3);
  expect_error([&] { emb(ids({0, 10}, {2})); }, {"embedding", "index 10", "10 embeddings"});
  expect_error([&] { emb(tensor({1.0})); }, {"embedding", "int64"});
  expect_error([] { nn::Embedding(0, 3); }, {"Embedding", "positive"});
}

BOOST_AUTO_TEST_SUITE_END()

// viz::diff of two recorded steps: the MLP against itself (same seed) shows no difference; an
// MLP with one layer changed (fc2 with 64 units) names fc2 first; the same structure with
// other weights lists the gradients that differ, most different first; a layer added shows as
// added; diff_to_dot draws both steps in one picture that Graphviz reads.
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "process_util.hpp"
#include "test_util.hpp"
#include "xgrad/nn/mlp.hpp"
#include "xgrad/viz/diff.hpp"
#include "xgrad/viz/render.hpp"
#include "xgrad/xgrad.hpp"

using namespace xgrad;

namespace {

// One MLP training step with the given widths and seed, recorded with its gradients.
viz::GraphRecord mlp_step(const std::vector<std::int64_t>& sizes, std::uint64_t seed,
                          const std::string& title) {
  manual_seed(seed);
  nn::MLP model(sizes);
  manual_seed(100);  // the same batch whatever the model drew
  Tensor images = randn({8, 784});
  std::vector<std::int64_t> c(8);
  for (std::size_t i = 0; i < c.size(); ++i) c[i] = static_cast<std::int64_t>(i % 10);
  Tensor loss = cross_entropy(model(images), from_data(c.data(), {8}));
  viz::GradientRecorder grads({loss});
  loss.backward();
  return viz::record_graph({loss}, &grads, title);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(graph_diff)

BOOST_AUTO_TEST_CASE(the_same_step_shows_no_difference) {
  const auto a = mlp_step({784, 256, 128, 10}, 1, "mlp");
  const auto b = mlp_step({784, 256, 128, 10}, 1, "mlp again");
  BOOST_TEST(a.nodes.size() == b.nodes.size());
  BOOST_TEST(a.nodes.size() > 10u);
  BOOST_TEST(a.nodes[0].grad_norm > 0);  // gradients were recorded
  const viz::GraphDiff d = viz::diff(a, b);
  BOOST_TEST(d.same());
  BOOST_TEST(d.to_string().rfind("no difference", 0) == 0u);
}

BOOST_AUTO_TEST_CASE(one_layer_changed_is_named) {
  const auto a = mlp_step({784, 256, 128, 10}, 1, "mlp");
  const auto b = mlp_step({784, 256, 64, 10}, 1, "mlp, fc2 of 64 units");
  const viz::GraphDiff d = viz::diff(a, b);
  BOOST_TEST(!d.same());
  BOOST_REQUIRE(!d.modules.empty());
  BOOST_TEST(d.modules[0] == "fc2");  // where the steps start to differ
  BOOST_TEST(d.removed.empty());
  BOOST_TEST(d.added.empty());
  bool weight = false;
  for (const auto& r : d.reshaped)
    weight = weight || r == "param:fc2.weight: [128,256] float32 → [64,256] float32";
  BOOST_TEST(weight);
  // fc1 is untouched in structure; nothing before fc2 is reported reshaped.
  for (const auto& r : d.reshaped) BOOST_TEST(r.find("fc1") == std::string::npos, r);
  BOOST_TEST(d.to_string().find("first difference: fc2") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(other_weights_change_the_gradients_only) {
  const auto a = mlp_step({784, 256, 128, 10}, 1, "seed 1");
  const auto b = mlp_step({784, 256, 128, 10}, 2, "seed 2");
  const viz::GraphDiff d = viz::diff(a, b);
  BOOST_TEST(d.modules.empty());
  BOOST_REQUIRE(!d.gradients.empty());
  for (std::size_t k = 1; k < d.gradients.size(); ++k)
    BOOST_TEST(d.gradients[k - 1].relative >= d.gradients[k].relative);
  // The relative difference is the one the norms give.
  const auto& g = d.gradients[0];
  BOOST_TEST(g.relative == std::abs(g.norm_a - g.norm_b) / std::max(g.norm_a, g.norm_b),
             boost::test_tools::tolerance(1e-12));
  // Far enough apart, nothing counts as changed.
  BOOST_TEST(viz::diff(a, b, 1.0).gradients.empty());
}

BOOST_AUTO_TEST_CASE(an_added_layer_is_added) {
  const auto a = mlp_step({784, 256, 10}, 1, "two layers");
  const auto b = mlp_step({784, 256, 128, 10}, 1, "three layers");
  const viz::GraphDiff d = viz::diff(a, b);
  bool fc3 = false;
  for (const auto& k : d.added) fc3 = fc3 || k == "fc3/linear#0";
  BOOST_TEST(fc3);
  BOOST_TEST(!d.modules.empty());
  const std::string dot = viz::diff_to_dot(a, b, d);
  BOOST_TEST(dot.find("added") != std::string::npos);
  BOOST_TEST(dot.find("two layers") != std::string::npos);
  if (viz::graphviz_available()) {
    const auto path = xgrad::testing::temp_path("graph_diff.svg");
    viz::render(dot, path.string());
    BOOST_TEST(xgrad::testing::slurp(path).find("fc3.weight") != std::string::npos);
    std::filesystem::remove(path);
  }
}

BOOST_AUTO_TEST_SUITE_END()

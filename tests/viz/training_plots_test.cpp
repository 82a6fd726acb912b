// viz::loss_plot, grad_norm_plot, update_ratio_plot, lr_plot and write_training_plots: the series
// are the recorder's numbers (the running mean is the mean of the last steps/50 losses), a loss
// that spans more than a factor of 100 goes on a log axis, zero norms lift the pen instead of
// breaking the log axis, and the files are written.
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "process_util.hpp"
#include "test_util.hpp"
#include "xgrad/viz/training_plots.hpp"
#include "xgrad/xgrad.hpp"

using namespace xgrad;
using xgrad::testing::expect_error;
using xgrad::testing::make;

namespace {

// A recorder over one parameter "lin.weight" [2, 2] whose gradient at step s is g(s) * ones,
// with loss(s) and learning rate 0.1.
struct Run {
  Tensor w = make({1, 1, 1, 1}, {2, 2}).requires_grad_();
  viz::GradientFlightRecorder rec{{{"lin.weight", w}}};
  template <class G, class L>
  Run(int steps, G g, L loss) {
    for (int s = 1; s <= steps; ++s) {
      w.zero_grad();
      (w * g(s)).sum().backward();
      rec.record_gradients(s, loss(s));
      rec.record_update(0.1);
    }
  }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(viz_training_plots)

BOOST_AUTO_TEST_CASE(loss_plot_has_train_running_mean_and_test) {
  Run r(
      200, [](int) { return 1.0; }, [](int s) { return s % 2 ? 1.0 : 3.0; });
  viz::TrainingPlotOptions opts;
  opts.title = "run: ";
  opts.test_steps = {100, 200};
  opts.test_loss = {2.5, 2.0};
  const viz::LinePlot p = viz::loss_plot(r.rec, opts);
  BOOST_TEST(p.title == "run: loss");
  BOOST_TEST(!p.y.log);  // 1..3: linear
  BOOST_REQUIRE_EQUAL(p.series.size(), 3u);
  BOOST_TEST(p.series[0].label == "train");
  BOOST_TEST(p.series[0].y[1] == 3.0);
  // 200 steps: the mean of the last 4 losses, from the 4th step on.
  BOOST_TEST(p.series[1].label == "train, mean of last 4");
  BOOST_TEST(std::isnan(p.series[1].y[2]));
  BOOST_TEST(p.series[1].y[3] == 2.0);
  BOOST_TEST(p.series[1].y[150] == 2.0);
  BOOST_TEST(p.series[2].label == "test");
  BOOST_TEST(p.series[2].y == opts.test_loss, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_loss_that_blows_up_goes_on_a_log_axis) {
  Run r(
      10, [](int) { return 1.0; }, [](int s) { return s == 5 ? 1e6 : (s == 6 ? 0.0 : 2.0); });
  const viz::LinePlot p = viz::loss_plot(r.rec);
  BOOST_TEST(p.y.log);
  BOOST_REQUIRE_EQUAL(p.series.size(), 1u);  // 10 steps: no running mean
  BOOST_TEST(p.series[0].y[4] == 1e6);
  BOOST_TEST(std::isnan(p.series[0].y[5]));  // 0 cannot go on a log axis: the pen lifts
  BOOST_TEST(viz::line_plot_svg(p).find("<svg") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(norm_and_ratio_plots_are_per_module_on_log_axes) {
  Run r(
      6, [](int s) { return s == 3 ? 0.0 : static_cast<double>(s); }, [](int) { return 1.0; });
  const viz::LinePlot g = viz::grad_norm_plot(r.rec);
  BOOST_TEST(g.y.log);
  BOOST_REQUIRE_EQUAL(g.series.size(), 1u);
  BOOST_TEST(g.series[0].label == "lin");
  BOOST_TEST(g.series[0].y[1] == 4.0);       // ‖2 · ones(2, 2)‖
  BOOST_TEST(std::isnan(g.series[0].y[2]));  // a zero norm lifts the pen
  // No optimizer ran: the weights did not move, every ratio is 0, nothing to draw.
  expect_error([&] { viz::update_ratio_plot(r.rec); },
               {"update_ratio_plot", "no module has a value > 0"});
  const viz::LinePlot lr = viz::lr_plot(r.rec);
  BOOST_TEST(lr.series[0].y == std::vector<double>(6, 0.1), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(write_training_plots_writes_what_has_something_to_draw) {
  xgrad::testing::TempDir tmp;
  Run r(
      5, [](int s) { return static_cast<double>(s); }, [](int s) { return 3.0 - 0.1 * s; });
  const std::string dir = (std::filesystem::path(tmp.path) / "plots").string();
  const auto files = viz::write_training_plots(dir, r.rec);
  // The weights never moved (no optimizer), so update_ratios.svg has nothing to draw.
  BOOST_REQUIRE_EQUAL(files.size(), 3u);
  for (const char* name : {"loss.svg", "lr.svg", "grad_norms.svg"})
    BOOST_TEST(std::filesystem::exists(std::filesystem::path(dir) / name), name);
  BOOST_TEST(!std::filesystem::exists(std::filesystem::path(dir) / "update_ratios.svg"));
}

BOOST_AUTO_TEST_CASE(bad_input_is_refused) {
  Tensor w = make({1}, {1}).requires_grad_();
  viz::GradientFlightRecorder empty({{"w", w}});
  expect_error([&] { viz::loss_plot(empty); }, {"loss_plot", "no step"});
  expect_error([&] { viz::write_training_plots("/nonexistent/x/y", empty); }, {"no step"});
  Run r(
      3, [](int) { return 1.0; }, [](int) { return 1.0; });
  viz::TrainingPlotOptions opts;
  opts.test_steps = {1, 2};
  opts.test_loss = {1};
  expect_error([&] { viz::loss_plot(r.rec, opts); },
               {"loss_plot", "2 test steps", "1 test losses"});
  expect_error([&] { viz::write_training_plots("/nonexistent/x/y", r.rec); },
               {"cannot create the folder '/nonexistent/x/y'"});
}

BOOST_AUTO_TEST_SUITE_END()

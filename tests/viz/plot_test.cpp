// viz::plot and viz::contour: tick choice (linear and log), a line plot that xmllint accepts,
// escaping of labels, NaN and infinite points skipped, the errors, atomic writing, and the
// marching squares of contour_lines on a function whose contours are known (circles).
#include <sys/wait.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "process_util.hpp"
#include "test_util.hpp"
#include "xgrad/io/atomic_file.hpp"
#include "xgrad/viz/contour.hpp"
#include "xgrad/viz/plot.hpp"

using namespace xgrad;
using xgrad::testing::expect_error;
using xgrad::testing::kInf;
using xgrad::testing::kNaN;
using xgrad::testing::list_dir;
using xgrad::testing::slurp;
using xgrad::testing::TempDir;

namespace {

void expect_ticks(const std::vector<double>& got, const std::vector<double>& expected) {
  BOOST_REQUIRE_EQUAL(got.size(), expected.size());
  for (std::size_t i = 0; i < got.size(); ++i)
    BOOST_CHECK_MESSAGE(std::abs(got[i] - expected[i]) <= 1e-12 * std::abs(expected[i]),
                        "tick " << i << " is " << got[i] << ", expected " << expected[i]);
}

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto pos = text.find(what); pos != std::string::npos; pos = text.find(what, pos + 1)) ++n;
  return n;
}

/// Runs xmllint on an SVG text; skipped (with a note) when xmllint is not installed.
void expect_well_formed(const std::string& svg) {
  if (std::system("command -v xmllint >/dev/null 2>&1") != 0) {
    BOOST_TEST_MESSAGE("xmllint is not installed (Debian: libxml2-utils): XML check skipped");
    return;
  }
  TempDir dir;
  const std::string path = dir.path + "/plot.svg", err = dir.path + "/err.txt";
  io::write_file_atomically(path, svg);
  const int status = std::system(("xmllint --noout " + path + " 2>" + err).c_str());
  BOOST_CHECK_MESSAGE(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                      "xmllint rejects the SVG: " << slurp(err));
}

viz::LinePlot loss_curve() {
  viz::LinePlot p;
  p.title = "training loss";
  p.x.label = "step";
  p.y = {"loss", true};
  p.series.push_back({"train", {1, 2, 3, 4, 5}, {2.3, 1.1, 0.6, 0.35, 0.2}});
  p.series.push_back({"test", {1, 3, 5}, {2.2, 0.7, 0.3}});
  return p;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(plot)

BOOST_AUTO_TEST_CASE(nice_ticks_are_multiples_of_1_2_5) {
  expect_ticks(viz::nice_ticks(0, 1), {0, 0.2, 0.4, 0.6, 0.8, 1});
  expect_ticks(viz::nice_ticks(-2, 2), {-2, -1, 0, 1, 2});
  expect_ticks(viz::nice_ticks(0, 100), {0, 20, 40, 60, 80, 100});
  expect_ticks(viz::nice_ticks(-1.7, 2.3), {-1, 0, 1, 2});
  expect_ticks(viz::nice_ticks(0.013, 0.047), {0.02, 0.03, 0.04});
  // A tick at zero is +0, never -0 (it would print as "-0").
  for (double t : viz::nice_ticks(-0.3, 0.3))
    if (t == 0) BOOST_CHECK(!std::signbit(t));
  expect_error([] { viz::nice_ticks(1, 1); }, {"nice_ticks", "lo < hi"});
  expect_error([] { viz::nice_ticks(0, kInf); }, {"nice_ticks"});
}

BOOST_AUTO_TEST_CASE(log_ticks_are_decades) {
  expect_ticks(viz::log_ticks(1e-3, 10), {1e-3, 1e-2, 0.1, 1, 10});
  expect_ticks(viz::log_ticks(0.05, 2000), {0.1, 1, 10, 100, 1000});
  // Many decades: every second one (or fifth), at most about `target`.
  expect_ticks(viz::log_ticks(1e-12, 1e4), {1e-12, 1e-10, 1e-8, 1e-6, 1e-4, 1e-2, 1, 1e2, 1e4});
  // Fewer than three powers of ten inside: 1, 2 and 5 times them.
  expect_ticks(viz::log_ticks(0.15, 3), {0.2, 0.5, 1, 2});
  expect_ticks(viz::log_ticks(0.037, 2.3), {0.05, 0.1, 0.2, 0.5, 1, 2});
  // Narrower still: linear ticks.
  expect_ticks(viz::log_ticks(1.01, 1.02), viz::nice_ticks(1.01, 1.02));
  BOOST_CHECK_GE(viz::log_ticks(1.01, 1.02).size(), 2u);
  expect_error([] { viz::log_ticks(0, 1); }, {"log_ticks", "0 < lo < hi"});
  expect_error([] { viz::log_ticks(-1, 1); }, {"log_ticks"});
}

BOOST_AUTO_TEST_CASE(label_numbers_and_escaping) {
  BOOST_TEST(viz::label_number(0.2) == "0.2");
  BOOST_TEST(viz::label_number(-1.5) == "\u22121.5");  // a real minus sign
  BOOST_TEST(viz::label_number(-0.0) == "0");
  BOOST_TEST(viz::label_number(1e-3) == "0.001");
  BOOST_TEST(viz::label_number(3.14159265, 6) == "3.14159");
  BOOST_TEST(viz::xml_escape("a<b & \"c\" > 'd'") ==
             "a&lt;b &amp; &quot;c&quot; &gt; &apos;d&apos;");
}

BOOST_AUTO_TEST_CASE(line_plot_is_well_formed_svg) {
  const std::string svg = viz::line_plot_svg(loss_curve());
  BOOST_CHECK(svg.rfind("<?xml", 0) == 0);
  BOOST_CHECK(svg.find("</svg>") != std::string::npos);
  // One path per series, titled by its label; the legend names each series.
  BOOST_CHECK_EQUAL(count(svg, "<title>train</title></path>"), 1u);
  BOOST_CHECK_EQUAL(count(svg, "<title>test</title></path>"), 1u);
  BOOST_CHECK_EQUAL(count(svg, ">train</text>"), 1u);
  // The log axis has decade ticks: 0.2 .. 2.3 spans 0.2, 0.5, 1, 2.
  for (const char* tick : {">0.2</text>", ">0.5</text>", ">1</text>", ">2</text>"})
    BOOST_CHECK_MESSAGE(svg.find(tick) != std::string::npos, "no tick label " << tick);
  BOOST_CHECK(svg.find(">step</text>") != std::string::npos);
  expect_well_formed(svg);
}

BOOST_AUTO_TEST_CASE(labels_are_escaped) {
  viz::LinePlot p = loss_curve();
  p.title = "loss <MLP> & \"friends\"";
  p.series[0].label = "adam(lr=0.01) <fast> & 'bold'";
  p.x.label = "x < 1";
  const std::string svg = viz::line_plot_svg(p);
  BOOST_CHECK(svg.find("<MLP>") == std::string::npos);
  BOOST_CHECK(svg.find("loss &lt;MLP&gt; &amp; &quot;friends&quot;") != std::string::npos);
  BOOST_CHECK(svg.find("adam(lr=0.01) &lt;fast&gt; &amp; &apos;bold&apos;") != std::string::npos);
  BOOST_CHECK(svg.find(">x &lt; 1</text>") != std::string::npos);
  expect_well_formed(svg);
}

BOOST_AUTO_TEST_CASE(nan_and_infinite_points_are_skipped) {
  viz::LinePlot p;
  p.series.push_back({"broken", {0, 1, 2, 3, 4, 5}, {1, 2, kNaN, 3, kInf, 4}});
  p.x.log = false;
  const std::string svg = viz::line_plot_svg(p);
  BOOST_CHECK(svg.find("nan") == std::string::npos);
  BOOST_CHECK(svg.find("inf") == std::string::npos);
  // The pen lifts at each bad point: three pieces, the last two single points (drawn as dots).
  const auto begin = svg.find("d=\"", svg.find("<path stroke=")) + 3;
  const std::string d = svg.substr(begin, svg.find('"', begin) - begin);
  BOOST_CHECK_EQUAL(count(d, "M"), 3u);
  BOOST_CHECK_EQUAL(count(d, "h0"), 2u);
  // The y axis spans the finite values only: 1..4.
  BOOST_CHECK(svg.find(">4</text>") != std::string::npos);
  expect_well_formed(svg);
}

BOOST_AUTO_TEST_CASE(errors) {
  viz::LinePlot empty;
  expect_error([&] { viz::line_plot_svg(empty); }, {"line_plot_svg", "no series"});
  viz::LinePlot uneven;
  uneven.series.push_back({"a", {1, 2}, {1}});
  expect_error([&] { viz::line_plot_svg(uneven); }, {"series 'a'", "2 x values and 1 y values"});
  viz::LinePlot nothing;
  nothing.series.push_back({"a", {kNaN}, {1}});
  expect_error([&] { viz::line_plot_svg(nothing); }, {"no series has a finite point"});
  viz::LinePlot log = loss_curve();
  log.series[1].y[1] = 0;
  expect_error([&] { viz::line_plot_svg(log); }, {"series 'test'", "y = 0", "log axis"});
  log = loss_curve();
  log.x.log = true;
  log.series[0].x[0] = -1;
  expect_error([&] { viz::line_plot_svg(log); }, {"x = -1", "log axis"});
}

BOOST_AUTO_TEST_CASE(write_is_atomic) {
  TempDir dir;
  const std::string path = dir.path + "/loss.svg";
  viz::write_line_plot(path, loss_curve());
  BOOST_TEST(slurp(path) == viz::line_plot_svg(loss_curve()));
  // A failing plot leaves the old file as it was, and no temporary file.
  viz::LinePlot bad;
  expect_error([&] { viz::write_line_plot(path, bad); }, {"no series"});
  BOOST_TEST(slurp(path) == viz::line_plot_svg(loss_curve()));
  BOOST_TEST(list_dir(dir.path) == std::vector<std::string>{"loss.svg"});
  expect_error([&] { viz::write_line_plot(dir.path + "/no/such/folder/x.svg", loss_curve()); },
               {"no/such/folder"});
}

BOOST_AUTO_TEST_CASE(contour_lines_of_a_cone_are_circles) {
  // f = distance from the grid's centre: the contour at level r is a circle of radius r,
  // closed (it ends where it starts), every point at distance r (linear interpolation of a
  // cone is exact along the axes and within a cell's diagonal error elsewhere).
  const int n = 41;
  std::vector<double> v(n * n);
  for (int j = 0; j < n; ++j)
    for (int i = 0; i < n; ++i) v[j * n + i] = std::hypot(i - 20.0, j - 20.0);
  const auto lines = viz::contour_lines(v, n, n, 10.5);
  BOOST_REQUIRE_EQUAL(lines.size(), 1u);
  const viz::Polyline& c = lines[0];
  BOOST_CHECK(c.front() == c.back());
  BOOST_CHECK_GT(c.size(), 40u);
  for (const auto& q : c) BOOST_CHECK_SMALL(std::hypot(q[0] - 20, q[1] - 20) - 10.5, 0.05);
  // A level outside the values gives no line; a NaN cell is left out.
  BOOST_CHECK(viz::contour_lines(v, n, n, 100).empty());
  v[20 * n + 30] = kNaN;  // on the circle of radius 10
  const auto cut = viz::contour_lines(v, n, n, 10);
  BOOST_REQUIRE_EQUAL(cut.size(), 1u);
  BOOST_CHECK(cut[0].front() != cut[0].back());  // opened where the NaN is
  expect_error([&] { viz::contour_lines(v, n, n + 1, 1); }, {"contour_lines", "41 x 42"});
  expect_error([&] { viz::contour_lines({1}, 1, 1, 1); }, {"at least 2 x 2"});
}

BOOST_AUTO_TEST_CASE(contour_plot_draws_paths_and_legend) {
  viz::ContourPlot p;
  p.document_title = "bowl <test>";
  p.heading = "Bowl: f(x, y) = \u00bd(x\u00b2 + 10y\u00b2)";
  p.f = [](double x, double y) { return 0.5 * (x * x + 10 * y * y); };
  p.window = {-4, 4, -2, 2};
  p.start = {-3.5, 1.5};
  p.minima = {{0, 0}};
  p.minima_label = "minimum (f = 0)";
  p.paths.push_back({"sgd & co", {{-3.5, 1.5, 14.375}, {-1, 0.5, 1.75}, {0, 0, 0}}});
  p.paths.push_back({"diverging", {{-3.5, 1.5, 14.375}, {kNaN, kNaN, kNaN}}});
  const std::string svg = viz::contour_plot_svg(p);
  BOOST_CHECK(svg.find("<title>bowl &lt;test&gt;</title>") != std::string::npos);
  BOOST_CHECK(svg.find("<title>sgd &amp; co</title></path>") != std::string::npos);
  BOOST_CHECK(svg.find("(0, 0), f = 0<") != std::string::npos);
  BOOST_CHECK(svg.find("diverged (not finite)") != std::string::npos);
  BOOST_CHECK(svg.find("contours: 24 log-spaced levels of f") != std::string::npos);
  BOOST_CHECK_GE(count(svg, "data-level="), 20u);
  expect_well_formed(svg);
  p.window = {1, 1, 0, 1};
  expect_error([&] { viz::contour_plot_svg(p); }, {"xmin < xmax"});
  p.window = {-1, 1, -1, 1};
  p.f = nullptr;
  expect_error([&] { viz::contour_plot_svg(p); }, {"no function"});
}

BOOST_AUTO_TEST_SUITE_END()

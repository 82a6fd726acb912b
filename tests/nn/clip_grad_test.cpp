// clip_grad_norm_ and clip_grad_value_ against torch.nn.utils (torch 1.13.1, Debian's
// python3-torch). The reference numbers were printed with "%.17g" by /usr/bin/python3 running:
//
//   import torch
//   from torch.nn.utils import clip_grad_norm_, clip_grad_value_
//   def mk(dtype):
//       a = torch.zeros(2, 3, dtype=dtype, requires_grad=True)
//       b = torch.zeros(4, dtype=dtype, requires_grad=True)
//       c = torch.zeros(2, dtype=dtype, requires_grad=True)  # no gradient: skipped
//       a.grad = torch.tensor([[0.5, -1.25, 2.0], [3.0, -0.75, 0.1]], dtype=dtype)
//       b.grad = torch.tensor([-4.0, 1.5, 0.3, -2.2], dtype=dtype)
//       return a, b, c
//   for dtype in (torch.float64, torch.float32):
//       for max_norm, norm_type in [(1.0, 2.0), (100.0, 2.0), (2.5, 1.0), (1.5, inf),
//                                   (3.0, 3.0), (0.0, 2.0)]:
//           a, b, c = mk(dtype)
//           total = clip_grad_norm_([a, b, c], max_norm, norm_type)
//           print(total.item(), a.grad.flatten().tolist(), b.grad.tolist())
//   a, b, c = mk(torch.float64); clip_grad_value_([a, b, c], 1.0); print(a.grad, b.grad)
//
// xgrad accumulates norms in double, torch in the gradient's dtype with its own reduction
// order, so the checks allow 2 units in the last place. On these inputs every value agrees
// exactly except the float32 3-norm total (4.8706985 against torch's 4.8706989: one unit in
// the last place); the clipped float32 gradients of that case are still exact.
#include <cmath>
#include <limits>
#include <vector>

#include "test_util.hpp"
#include "xgrad/nn/clip_grad.hpp"

using namespace xgrad;
using xgrad::testing::expect_error;
using xgrad::testing::expect_values;

namespace {

struct Params {
  Tensor a, b, c;
  std::vector<Tensor> all() const { return {a, b, c}; }
};

Params make(Dtype dtype) {
  Params p;
  p.a = zeros({2, 3}, dtype).requires_grad_();
  p.b = zeros({4}, dtype).requires_grad_();
  p.c = zeros({2}, dtype).requires_grad_();
  p.a.set_grad(tensor({{0.5, -1.25, 2.0}, {3.0, -0.75, 0.1}}, dtype));
  p.b.set_grad(tensor({-4.0, 1.5, 0.3, -2.2}, dtype));
  return p;
}

struct Expected {
  double max_norm, norm_type, total;
  std::vector<double> a, b;
};

const double kInf = std::numeric_limits<double>::infinity();

const std::vector<Expected> kFloat64 = {
    {1.0,
     2.0,
     6.2100724633453357,
     {0.080514345434273243, -0.20128586358568312, 0.32205738173709297, 0.48308607260563946,
      -0.12077151815140987, 0.016102869086854651},
     {-0.64411476347418595, 0.24154303630281973, 0.048308607260563942, -0.35426311991080228}},
    {100.0,
     2.0,
     6.2100724633453357,
     {0.5, -1.25, 2, 3, -0.75, 0.10000000000000001},
     {-4, 1.5, 0.29999999999999999, -2.2000000000000002}},
    {2.5,
     1.0,
     15.6,
     {0.080128199991782056, -0.20032049997945514, 0.32051279996712823, 0.48076919995069234,
      -0.12019229998767308, 0.016025639998356413},
     {-0.64102559993425645, 0.24038459997534617, 0.048076919995069231, -0.35256407996384109}},
    {1.5,
     kInf,
     4,
     {0.18749995312501172, -0.46874988281252927, 0.74999981250004688, 1.1249997187500704,
      -0.28124992968751761, 0.037499990625002345},
     {-1.4999996250000938, 0.56249985937503522, 0.11249997187500703, -0.82499979375005161}},
    {3.0,
     3.0,
     4.8706983750540394,
     {0.30796398720119278, -0.76990996800298195, 1.2318559488047711, 1.8477839232071567,
      -0.46194598080178917, 0.061592797440238559},
     {-2.4637118976095422, 0.92389196160357834, 0.18477839232071566, -1.3550415436852483}},
    {0.0, 2.0, 6.2100724633453357, {0, -0, 0, 0, -0, 0}, {-0, 0, 0, -0}},
};

const std::vector<Expected> kFloat32 = {
    {1.0,
     2.0,
     6.2100725173950195,
     {0.080514349043369293, -0.20128586888313293, 0.32205739617347717, 0.48308610916137695,
      -0.12077152729034424, 0.016102870926260948},
     {-0.64411479234695435, 0.24154305458068848, 0.048308610916137695, -0.35426315665245056}},
    {100.0,
     2.0,
     6.2100725173950195,
     {0.5, -1.25, 2, 3, -0.75, 0.10000000149011612},
     {-4, 1.5, 0.30000001192092896, -2.2000000476837158}},
    {2.5,
     1.0,
     15.600000381469727,
     {0.080128200352191925, -0.20032049715518951, 0.3205128014087677, 0.48076921701431274,
      -0.12019230425357819, 0.016025640070438385},
     {-0.6410256028175354, 0.24038460850715637, 0.048076923936605453, -0.35256409645080566}},
    {1.5,
     kInf,
     4,
     {0.18749995529651642, -0.46874988079071045, 0.74999982118606567, 1.1249997615814209,
      -0.28124994039535522, 0.037499990314245224},
     {-1.4999996423721313, 0.56249988079071045, 0.11249997466802597, -0.82499980926513672}},
    {3.0,
     3.0,
     4.8706989288330078,
     {0.30796396732330322, -0.76990991830825806, 1.2318558692932129, 1.8477838039398193,
      -0.46194595098495483, 0.061592794954776764},
     {-2.4637117385864258, 0.92389190196990967, 0.18477839231491089, -1.35504150390625}},
    {0.0, 2.0, 6.2100725173950195, {0, -0, 0, 0, -0, 0}, {-0, 0, 0, -0}},
};

void check_against_torch(Dtype dtype, const std::vector<Expected>& cases, double ulp) {
  for (const Expected& e : cases) {
    BOOST_TEST_CONTEXT("max_norm " << e.max_norm << ", norm_type " << e.norm_type) {
      Params p = make(dtype);
      const double total = nn::clip_grad_norm_(p.all(), e.max_norm, e.norm_type);
      BOOST_CHECK_MESSAGE(std::abs(total - e.total) <= 2 * ulp * e.total,
                          "total " << total << " != torch's " << e.total);
      expect_values(p.a.grad(), {2, 3}, e.a, 2 * ulp);
      expect_values(p.b.grad(), {4}, e.b, 2 * ulp);
      BOOST_CHECK(!p.c.grad().defined());
    }
  }
}

}  // namespace

BOOST_AUTO_TEST_SUITE(clip_grad)

BOOST_AUTO_TEST_CASE(norm_float64_matches_torch) {
  check_against_torch(Dtype::float64, kFloat64, std::numeric_limits<double>::epsilon());
}

BOOST_AUTO_TEST_CASE(norm_float32_matches_torch) {
  check_against_torch(Dtype::float32, kFloat32, std::numeric_limits<float>::epsilon());
}

BOOST_AUTO_TEST_CASE(norm_clips_in_place_and_bumps_the_version) {
  Params p = make(Dtype::float64);
  Tensor g = p.a.grad();
  const auto v = g.version();
  nn::clip_grad_norm_(p.all(), 1.0);
  BOOST_CHECK(p.a.grad().impl() == g.impl());  // the same tensor, modified in place
  BOOST_CHECK_GT(g.version(), v);
  // After clipping the total norm is max_norm (up to the 1e-6 guard).
  Params q = make(Dtype::float64);
  nn::clip_grad_norm_(q.all(), 1.0);
  const double after = nn::clip_grad_norm_(q.all(), 1e9);
  BOOST_CHECK_CLOSE(after, 1.0, 1e-4);
}

BOOST_AUTO_TEST_CASE(no_gradients_give_zero) {
  Tensor w = zeros({3}, Dtype::float64).requires_grad_();
  BOOST_CHECK_EQUAL(nn::clip_grad_norm_({w}, 1.0), 0.0);
  BOOST_CHECK_EQUAL(nn::clip_grad_norm_({}, 1.0), 0.0);
  nn::clip_grad_value_({w}, 1.0);
  BOOST_CHECK(!w.grad().defined());
}

BOOST_AUTO_TEST_CASE(non_finite_gradients_propagate_as_in_torch) {
  Tensor w = zeros({2}, Dtype::float64).requires_grad_();
  w.set_grad(tensor({1.0, std::nan("")}, Dtype::float64));
  BOOST_CHECK(std::isnan(nn::clip_grad_norm_({w}, 1.0)));
  BOOST_CHECK(std::isnan(to_xarray<double>(w.grad())(0)));
}

BOOST_AUTO_TEST_CASE(value_clamps_like_torch) {
  Params p = make(Dtype::float64);
  nn::clip_grad_value_(p.all(), 1.0);
  expect_values(p.a.grad(), {2, 3}, {0.5, -1, 1, 1, -0.75, 0.10000000000000001}, 0);
  expect_values(p.b.grad(), {4}, {-1, 1, 0.29999999999999999, -1}, 0);
  BOOST_CHECK(!p.c.grad().defined());
}

BOOST_AUTO_TEST_CASE(bad_arguments_throw) {
  Params p = make(Dtype::float64);
  expect_error([&] { nn::clip_grad_norm_(p.all(), -1.0); }, {"clip_grad_norm_", "max_norm -1"});
  expect_error([&] { nn::clip_grad_norm_(p.all(), std::nan("")); },
               {"clip_grad_norm_", "max_norm"});
  expect_error([&] { nn::clip_grad_norm_(p.all(), 1.0, 0.0); }, {"clip_grad_norm_", "norm_type 0"});
  expect_error([&] { nn::clip_grad_norm_(p.all(), 1.0, -kInf); }, {"clip_grad_norm_", "norm_type"});
  expect_error([&] { nn::clip_grad_value_(p.all(), -0.5); }, {"clip_grad_value_", "clip_value"});
  // Nothing was changed by the refused calls.
  expect_values(p.b.grad(), {4}, {-4, 1.5, 0.29999999999999999, -2.2000000000000002}, 0);
}

BOOST_AUTO_TEST_SUITE_END()

// batch_norm: training and evaluation values, gradients and running-statistics updates against
// torch 1.13 (numbers printed by python3-torch in float64), [N,C] and [N,C,H,W] inputs, float32,
// gradcheck of every differentiable input, and the errors.
#include <cmath>

#include "test_util.hpp"
#include "xgrad/ops/normalization.hpp"

using namespace xgrad;
using xgrad::testing::expect_error;
using xgrad::testing::expect_gradcheck;
using xgrad::testing::expect_values;
using xgrad::testing::kFloatDtypes;
using xgrad::testing::leaf;
using xgrad::testing::values_of;

namespace {

double tol(Dtype d) {
  return d == float64 ? 1e-12 : 1e-5;
}

// The [4,3] case torch evaluated.
struct Case2d {
  Tensor x, rm, rv, w, b, seed;
  explicit Case2d(Dtype d) {
    x = tensor({{1.0, -2.0, 0.5}, {3.0, 0.0, 1.5}, {-1.0, 4.0, 2.5}, {2.0, 1.0, -0.5}}, d)
            .requires_grad_();
    rm = tensor({0.1, -0.2, 0.3}, d);
    rv = tensor({1.0, 2.0, 0.5}, d);
    w = tensor({1.5, -0.5, 2.0}, d).requires_grad_();
    b = tensor({0.1, 0.2, -0.3}, d).requires_grad_();
    seed = tensor({{0.3, -1.0, 2.0}, {1.0, 0.5, -0.5}, {-2.0, 0.25, 1.0}, {0.7, 0.1, -1.2}}, d);
  }
};

// x[k] = 0.5·sin(1.3k) + 0.1k, k = 0..23, as [2,2,3,2] (the 4-D case torch evaluated).
Tensor input4d(Dtype d) {
  std::vector<double> v(24);
  for (std::size_t k = 0; k < v.size(); ++k)
    v[k] = 0.5 * std::sin(1.3 * static_cast<double>(k)) + 0.1 * static_cast<double>(k);
  return from_data(v.data(), {2, 2, 3, 2}).to(d);
}

// The Hessian of Σ x̂² (batch statistics, no affine) w.r.t. x [M, C] (row-major values): per
// channel Σ_j x̂_j² = M·s/(s + ε), s the biased variance, so within a channel
//   H_jk = 2ε/(s+ε)²·(δ_jk − 1/M) − 8ε(x_j − μ)(x_k − μ)/(M(s+ε)³), and 0 across channels.
std::vector<double> squares_hessian(const std::vector<double>& xv, std::int64_t M, std::int64_t C,
                                    double eps) {
  const std::int64_t n = M * C;
  std::vector<double> want(static_cast<std::size_t>(n * n), 0.0);
  for (std::int64_t c = 0; c < C; ++c) {
    double mu = 0, s = 0;
    for (std::int64_t i = 0; i < M; ++i) mu += xv[static_cast<std::size_t>(i * C + c)] / M;
    for (std::int64_t i = 0; i < M; ++i)
      s += std::pow(xv[static_cast<std::size_t>(i * C + c)] - mu, 2) / M;
    for (std::int64_t j = 0; j < M; ++j)
      for (std::int64_t k = 0; k < M; ++k) {
        const double dj = xv[static_cast<std::size_t>(j * C + c)] - mu;
        const double dk = xv[static_cast<std::size_t>(k * C + c)] - mu;
        want[static_cast<std::size_t>((j * C + c) * n + k * C + c)] =
            2 * eps / std::pow(s + eps, 2) * ((j == k ? 1.0 : 0.0) - 1.0 / M) -
            8 * eps * dj * dk / (M * std::pow(s + eps, 3));
      }
  }
  return want;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(normalization)

BOOST_AUTO_TEST_CASE(training_matches_torch_2d) {
  for (Dtype d : kFloatDtypes) {
    BOOST_TEST_CONTEXT(dtype_name(d)) {
      Case2d c(d);
      const std::uint64_t v0 = c.rm.version();
      Tensor y = batch_norm(c.x, c.rm, c.rv, c.w, c.b, true, 0.1, 1e-5);
      BOOST_TEST(y.grad_fn()->name() == "batch_norm");
      expect_values(
          y, {4, 3},
          {-0.1535456968861959, 0.8350846186853564, -1.1944236133126178, 1.8748198782033707,
           0.3732048960050972, 0.5944236133126182, -2.1819112719757623, -0.5505545493554213,
           2.383270839937854, 0.8606370906585874, 0.1422650346649676, -2.9832708399378536},
          tol(d));
      // Running statistics, the variance unbiased (·4/3).
      expect_values(c.rm, {3}, {0.21500000000000002, -0.10500000000000001, 0.37}, tol(d));
      expect_values(c.rv, {3}, {1.1916666666666667, 2.425, 0.6166666666666667}, tol(d));
      BOOST_TEST(c.rm.version() > v0);
      y.backward(c.seed);
      expect_values(
          c.x.grad(), {4, 3},
          {0.4983975109412092, 0.11346868400177308, 3.3630298523694613, -0.3448159351996364,
           -0.1538058843443474, -1.8425097097380105, -0.28108150298959844, 0.06219952831883289,
           0.10733963465546083, 0.12749992724802553, -0.021862327976258582, -1.6278597772869112},
          tol(d));
      expect_values(c.w.grad(), {3}, {4.530016451033365, 1.4837886091103327, 1.8335684072908667},
                    tol(d));
      expect_values(c.b.grad(), {3}, {0.0, -0.15, 1.3}, tol(d));
    }
  }
}

BOOST_AUTO_TEST_CASE(evaluation_matches_torch_2d) {
  for (Dtype d : kFloatDtypes) {
    BOOST_TEST_CONTEXT(dtype_name(d)) {
      Case2d c(d);
      // torch's numbers were taken after the training call above updated the statistics.
      {
        no_grad g;
        batch_norm(c.x, c.rm, c.rv, c.w, c.b, true, 0.1, 1e-5);
      }
      Tensor rm_before = c.rm.clone();
      Tensor y = batch_norm(c.x, c.rm, c.rv, c.w, c.b, false, 0.1, 1e-5);
      expect_values(
          y, {4, 3},
          {1.1786528564290952, 0.8084465763391389, 0.03108887628932755, 3.9268130001974906,
           0.16628660131102396, 2.577926386207232, -1.5695072873393001, -1.1180333487452059,
           5.124763896125137, 2.5527329283132927, -0.1547933862030335, -2.5157486336285775},
          tol(d));
      // Evaluation leaves the statistics alone.
      expect_values(c.rm, {3}, values_of(rm_before), 0.0);
      y.backward(c.seed);
      expect_values(
          c.x.grad(), {4, 3},
          {0.4122240215652593, 0.3210799875140575, 5.09367501983581, 1.3740800718841977,
           -0.16053999375702874, -1.2734187549589524, -2.7481601437683953, -0.08026999687851437,
           2.546837509917905, 0.9618560503189384, -0.03210799875140575, -3.056205011901486},
          tol(d));
      expect_values(c.w.grad(), {3}, {6.137557654416083, 1.9805819029804634, 3.653438407977234},
                    tol(d));
      expect_values(c.b.grad(), {3}, {0.0, -0.15, 1.3}, tol(d));
    }
  }
}

BOOST_AUTO_TEST_CASE(training_and_evaluation_4d_match_torch) {
  // torch.nn.BatchNorm2d(2) with weight [0.8, 1.2], bias [0, -0.4], called on x, then on 2x,
  // then in eval mode on x.
  for (Dtype d : kFloatDtypes) {
    BOOST_TEST_CONTEXT(dtype_name(d)) {
      Tensor x = input4d(d);
      Tensor rm = zeros({2}, d), rv = ones({2}, d);
      Tensor w = tensor({0.8, 1.2}, d), b = tensor({0.0, -0.4}, d);
      Tensor y = batch_norm(x, rm, rv, w, b, true);
      expect_values(
          y, {2, 2, 3, 2},
          {-0.9804867102098543, -0.3134007949015116,   -0.45561560514466826, -1.0308044075679343,
           -1.028332555905882,  -0.2838396154430493,   -1.0457961890999283,  -1.4872001505732169,
           -2.3589922990183747, -2.114242417808637,    -0.8417569795414258,  -0.1359774556316829,
           0.457247269472649,   -0.022547647684864905, 0.27803660583289974,  1.0866250976197112,
           1.3866154960778359,  0.9065028678546687,    -0.6641463884573434,  0.042507496017858644,
           1.314780028695397,   1.5585416453479846,    0.6864336832696829,   0.24584902679968548},
          tol(d));
      expect_values(rm, {2}, {0.08551022523314124, 0.1449997730839734}, tol(d));
      expect_values(rv, {2}, {0.9531021726914204, 0.9463325219486355}, tol(d));
      batch_norm(x * 2.0, rm, rv, w, b, true);
      expect_values(rm, {2}, {0.2479796531761096, 0.4204993419435229}, tol(d));
      expect_values(rv, {2}, {1.0702006461879598, 1.0370293575483138}, tol(d));
      expect_values(
          batch_norm(x, rm, rv, w, b, false), {2, 2, 3, 2},
          {-0.19176590828697163, 0.25813147122264096, 0.1622186824984495,  -0.22570126753360512,
           -0.2240341965315442,  0.27806817932631644, 0.39984854132916975, 0.11736548114010252,
           -0.44055092975847204, -0.2839195864549951, 0.5304264820487439,  0.982100633470858,
           0.7778734365822776,   0.4542892160528689,  0.6570098325074795,  1.2023396546614489,
           1.4046597622325567,   1.0808612703887663,  0.6440910335039686,  1.0963247450338243,
           1.9105345614244162,   2.0665334500588224,  1.5084149295071263,  1.2264561957962024},
          tol(d));
    }
  }
}

BOOST_AUTO_TEST_CASE(normalised_output_has_zero_mean_unit_variance) {
  // No weight or bias: each channel of the output has mean 0 and biased variance 1/(1+eps/σ²).
  Tensor x = leaf({5, 3, 2, 2}, -3, 5).detach();
  Tensor y = batch_norm(x, Tensor(), Tensor(), Tensor(), Tensor(), true, 0.1, 0.0);
  Tensor m = mean(y, Shape{0, 2, 3});
  Tensor v = mean(pow(y, 2.0), Shape{0, 2, 3});
  expect_values(m, {3}, {0, 0, 0}, 1e-12);
  expect_values(v, {3}, {1, 1, 1}, 1e-12);
}

BOOST_AUTO_TEST_CASE(gradcheck_training) {
  // [N,C], [N,C,L] and [N,C,H,W]; with and without affine parameters; running statistics
  // given (their updates do not change the training output).
  for (const Shape& shape : {Shape{4, 3}, Shape{3, 2, 4}, Shape{2, 3, 2, 2}}) {
    BOOST_TEST_CONTEXT("shape " << format_shape(shape)) {
      const std::int64_t C = shape[1];
      expect_gradcheck(
          [C](const std::vector<Tensor>& in) {
            Tensor rm = zeros({C}, float64), rv = ones({C}, float64);
            return batch_norm(in[0], rm, rv, in[1], in[2], true, 0.1, 1e-5);
          },
          {leaf(shape, -2, 2, 1), leaf({C}, 0.5, 1.5, 2), leaf({C}, -1, 1, 3)});
      expect_gradcheck(
          [](const std::vector<Tensor>& in) {
            return batch_norm(in[0], Tensor(), Tensor(), Tensor(), Tensor(), true);
          },
          {leaf(shape, -2, 2, 4)});
    }
  }
  // A non-contiguous input.
  expect_gradcheck(
      [](const std::vector<Tensor>& in) {
        return batch_norm(in[0].t(), Tensor(), Tensor(), in[1], Tensor(), true);
      },
      {leaf({3, 5}), leaf({3}, 0.5, 1.5, 2)});
}

BOOST_AUTO_TEST_CASE(gradcheck_evaluation) {
  for (const Shape& shape : {Shape{4, 3}, Shape{2, 3, 2, 2}}) {
    BOOST_TEST_CONTEXT("shape " << format_shape(shape)) {
      expect_gradcheck(
          [](const std::vector<Tensor>& in) {
            Tensor rm = tensor({0.2, -0.1, 0.4}, float64), rv = tensor({0.5, 1.5, 2.0}, float64);
            return batch_norm(in[0], rm, rv, in[1], in[2], false, 0.1, 1e-5);
          },
          {leaf(shape, -2, 2, 1), leaf({3}, 0.5, 1.5, 2), leaf({3}, -1, 1, 3)});
    }
  }
}

BOOST_AUTO_TEST_CASE(only_weight_requires_grad) {
  Case2d c(float64);
  Tensor x = c.x.detach();
  Tensor y = batch_norm(x, Tensor(), Tensor(), c.w, Tensor(), true);
  y.backward(c.seed);
  expect_values(c.w.grad(), {3}, {4.530016451033365, 1.4837886091103327, 1.8335684072908667},
                1e-12);
  BOOST_TEST(!x.grad().defined());
}

BOOST_AUTO_TEST_CASE(errors) {
  Tensor x = zeros({4, 3});
  Tensor c3 = zeros({3}), c2 = zeros({2});
  expect_error([&] { batch_norm(zeros({3}), c3, c3, c3, c3, true); },
               {"batch_norm", "[N, C]", "[3]"});
  expect_error([&] { batch_norm(x, c2, c3, c3, c3, true); },
               {"batch_norm", "running_mean", "[3]", "[2]"});
  expect_error([&] { batch_norm(x, c3, c3, c2, c3, true); }, {"batch_norm", "weight", "[2]"});
  expect_error([&] { batch_norm(x, c3, c3, c3, zeros({3}, float64), true); },
               {"batch_norm", "bias", "float64", "float32"});
  expect_error(
      [&] {
        batch_norm(zeros({1, 3}), c3, c3, c3, c3, true);
      },
      {"batch_norm", "more than 1 value per channel", "[1,3]"});
  expect_error(
      [&] {
        batch_norm(zeros({1, 3, 1, 1}), Tensor(), Tensor(), c3, c3, true);
      },
      {"batch_norm", "more than 1 value per channel"});
  expect_error([&] { batch_norm(x, Tensor(), Tensor(), c3, c3, false); },
               {"batch_norm", "required in evaluation mode"});
  expect_error([&] { batch_norm(x, c3, Tensor(), c3, c3, true); }, {"batch_norm", "both"});
  Tensor rg = zeros({3}).requires_grad_();
  expect_error([&] { batch_norm(x, rg, ones({3}), c3, c3, true); },
               {"batch_norm", "buffers", "must not require grad"});
  expect_error(
      [&] {
        batch_norm(zeros({2, 3}, int64), Tensor(), Tensor(), Tensor(), Tensor(), true);
      },
      {"batch_norm", "int64"});
  // Evaluation with one sample is fine.
  expect_values(
      batch_norm(ones({1, 3}), zeros({3}), ones({3}), Tensor(), Tensor(), false, 0.1, 0.0), {1, 3},
      {1, 1, 1});
}

// ---- second derivatives (create_graph) against analytic values ------------------------------

// Training, no affine: the Hessian of Σ x̂² (squares_hessian) by create_graph. Exercises the
// recorded backward through the batch statistics (a large ε makes it sizeable).
BOOST_AUTO_TEST_CASE(hessian_through_batch_statistics) {
  const std::vector<double> xv{1.0, -2.0, 3.0, 0.0, -1.0, 4.0, 2.0, 1.0};  // [4, 2]
  const double eps = 0.5;
  const std::int64_t M = 4, C = 2, n = M * C;
  Tensor x = from_data(xv.data(), {M, C}).requires_grad_();
  Tensor y = batch_norm(x, Tensor(), Tensor(), Tensor(), Tensor(), true, 0.1, eps);
  Tensor g = grad({sum(mul(y, y))}, {x}, {}, std::nullopt, /*create_graph=*/true)[0];
  std::vector<double> got;
  for (std::int64_t j = 0; j < n; ++j) {
    Tensor e = zeros({M, C}, float64);
    e.data_ptr<double>()[j] = 1;
    const auto row = values_of(grad({g}, {x}, {e}, /*retain_graph=*/true)[0]);
    got.insert(got.end(), row.begin(), row.end());
  }
  const std::vector<double> want = squares_hessian(xv, M, C, eps);
  expect_values(from_data(got.data(), {n, n}), {n, n}, want, 1e-13);
}

// Forward-over-reverse without create_graph: the gradient of Σ x̂² computed inside a dual level
// carries the tangent H·u.
BOOST_AUTO_TEST_CASE(forward_over_reverse_through_batch_statistics) {
  namespace fw = autograd::forward_ad;
  const std::vector<double> xv{1.0, -2.0, 3.0, 0.0, -1.0, 4.0, 2.0, 1.0};  // [4, 2]
  const std::vector<double> uv{0.5, 1.0, -1.0, 2.0, 0.25, -0.5, 1.5, 0.0};
  const double eps = 0.5;
  Tensor x = from_data(xv.data(), {4, 2}).requires_grad_();
  fw::dual_level level;
  Tensor xd = fw::make_dual(x, from_data(uv.data(), {4, 2}));
  Tensor y = batch_norm(xd, Tensor(), Tensor(), Tensor(), Tensor(), true, 0.1, eps);
  Tensor g = grad({sum(mul(y, y))}, {x})[0];
  const std::vector<double> h = squares_hessian(xv, 4, 2, eps);
  std::vector<double> want(8, 0.0);
  for (std::size_t j = 0; j < 8; ++j)
    for (std::size_t k = 0; k < 8; ++k) want[j] += h[j * 8 + k] * uv[k];
  Tensor t = fw::unpack_dual(g).tangent;
  BOOST_REQUIRE(t.defined());
  expect_values(t, {4, 2}, want, 1e-13);
}

// Forward mode directly on batch_norm's inputs, evaluation: dy = dx·w·invstd + x̂·dw + db.
BOOST_AUTO_TEST_CASE(jvp_by_value) {
  namespace fw = autograd::forward_ad;
  const Tensor x = tensor({{1.0, -2.0}, {3.0, 0.5}}, float64);
  const Tensor rm = tensor({0.5, -1.0}, float64), rv = tensor({3.0, 0.0}, float64);
  const Tensor w = tensor({2.0, -1.0}, float64), b = tensor({0.1, 0.2}, float64);
  const Tensor u = tensor({{1.0, 2.0}, {-1.0, 0.5}}, float64);
  const Tensor uw = tensor({0.5, 1.5}, float64), ub = tensor({-2.0, 3.0}, float64);
  fw::dual_level level;
  Tensor y = batch_norm(fw::make_dual(x, u), rm, rv, fw::make_dual(w, uw), fw::make_dual(b, ub),
                        false, 0.1, 1.0);
  const double s0 = 1 / std::sqrt(4.0), s1 = 1.0;  // 1/√(rv + eps)
  expect_values(fw::unpack_dual(y).tangent, {2, 2},
                {1 * 2 * s0 + (1 - 0.5) * s0 * 0.5 - 2, 2 * -1 * s1 + (-2 + 1) * s1 * 1.5 + 3,
                 -1 * 2 * s0 + (3 - 0.5) * s0 * 0.5 - 2, 0.5 * -1 * s1 + (0.5 + 1) * s1 * 1.5 + 3},
                1e-14);
}

BOOST_AUTO_TEST_SUITE_END()

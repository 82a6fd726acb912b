// Losses: mse_loss, cross_entropy (logits [N,C] + int64 labels) and
// binary_cross_entropy_with_logits, each with Reduction::mean, sum and none. Values in float64
// and float32, gradcheck in float64, numerical stability for extreme logits, and the error
// messages of bad input.
#include <cmath>
#include <string>

#include "ops_golden.hpp"
#include "test_util.hpp"

using namespace xgrad;
using xgrad::testing::all_finite;
using xgrad::testing::expect_error;
using xgrad::testing::expect_error_exact;
using xgrad::testing::expect_golden;
using xgrad::testing::expect_gradcheck;
using xgrad::testing::expect_values;
using xgrad::testing::GoldenCase;
using xgrad::testing::kFloatDtypes;
using xgrad::testing::kNaN;
using xgrad::testing::leaf;
using xgrad::testing::make;
using xgrad::testing::ops_golden_tol;
using xgrad::testing::read_ops_golden;
using xgrad::testing::tol;
using xgrad::testing::values_of;

namespace {

const Reduction kReductions[] = {Reduction::mean, Reduction::sum, Reduction::none};

const char* reduction_name(Reduction r) {
  switch (r) {
    case Reduction::mean:
      return "mean";
    case Reduction::sum:
      return "sum";
    case Reduction::none:
      return "none";
  }
  return "?";
}

Tensor labels(std::initializer_list<double> v) {
  std::vector<std::int64_t> l(v.begin(), v.end());
  return from_data(l.data(), {static_cast<std::int64_t>(l.size())});
}

// Cross-entropy fixture: three rows, labels 0, 2, 1.
Tensor ce_logits(Dtype d) {
  return tensor({{1.0, 2.0, 3.0}, {1.0, 1.0, 1.0}, {0.5, -1.0, 2.0}}, d);
}
const std::vector<double> kCePerRow = {2.40760596444438, 1.0986122886681096, 3.241311296657157};

// The cross_entropy options of a golden case.
CrossEntropyOptions ce_options(const GoldenCase& c, Dtype d, Reduction r) {
  CrossEntropyOptions o;
  if (c.has("weight")) o.weight = c.at("weight").to(d);
  o.ignore_index = static_cast<std::int64_t>(c.scalar("ignore_index"));
  o.label_smoothing = c.scalar("label_smoothing");
  o.reduction = r;
  return o;
}

// The Hessian of the scalar f at x0 (float64) as an [n, n] tensor, n = x0.numel(): one backward
// with create_graph, then one backward of the gradient per row (row j = ∂(∂f/∂x_j)/∂x).
Tensor hessian(const std::function<Tensor(const Tensor&)>& f, const Tensor& x0) {
  Tensor x = x0.detach().clone().requires_grad_();
  Tensor g = grad({f(x)}, {x}, {}, std::nullopt, /*create_graph=*/true)[0];
  const std::int64_t n = x.numel();
  Tensor h = zeros({n, n}, float64);
  BOOST_REQUIRE(g.requires_grad());
  for (std::int64_t j = 0; j < n; ++j) {
    Tensor e = zeros(x.shape(), float64);
    e.data_ptr<double>()[j] = 1;
    Tensor r = grad({g}, {x}, {e}, /*retain_graph=*/true)[0].detach().contiguous();
    for (std::int64_t k = 0; k < n; ++k) h.data_ptr<double>()[j * n + k] = r.data_ptr<double>()[k];
  }
  return h;
}

// Block-diagonal cross-entropy Hessian: row i's block is scale_i·(diag(p_i) − p_i p_iᵀ), p_i
// the softmax of row i of x ([N, C], row-major values).
std::vector<double> ce_hessian(const std::vector<double>& x, std::int64_t n, std::int64_t c,
                               const std::vector<double>& scale) {
  const auto nc = static_cast<std::size_t>(n * c);
  std::vector<double> h(nc * nc, 0.0);
  for (std::int64_t i = 0; i < n; ++i) {
    std::vector<double> p(static_cast<std::size_t>(c));
    double z = 0;
    for (std::int64_t k = 0; k < c; ++k) z += std::exp(x[static_cast<std::size_t>(i * c + k)]);
    for (std::int64_t k = 0; k < c; ++k)
      p[static_cast<std::size_t>(k)] = std::exp(x[static_cast<std::size_t>(i * c + k)]) / z;
    for (std::int64_t a = 0; a < c; ++a)
      for (std::int64_t b = 0; b < c; ++b) {
        const double pa = p[static_cast<std::size_t>(a)], pb = p[static_cast<std::size_t>(b)];
        h[static_cast<std::size_t>(i * c + a) * nc + static_cast<std::size_t>(i * c + b)] =
            scale[static_cast<std::size_t>(i)] * ((a == b ? pa : 0.0) - pa * pb);
      }
  }
  return h;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(loss)

BOOST_AUTO_TEST_CASE(mse_loss_values) {
  for (Dtype d : kFloatDtypes) {
    Tensor x = tensor({{1.0, 2.0}, {3.0, 4.0}}, d);
    Tensor y = tensor({{1.5, 2.0}, {2.0, 6.0}}, d);
    // Squared differences: 0.25, 0, 1, 4.
    Tensor mean = mse_loss(x, y);
    BOOST_TEST((mean.dtype() == d));
    expect_values(mean, {}, {1.3125}, tol(d));
    expect_values(mse_loss(x, y, Reduction::mean), {}, {1.3125}, tol(d));
    expect_values(mse_loss(x, y, Reduction::sum), {}, {5.25}, tol(d));
    expect_values(mse_loss(x, y, Reduction::none), {2, 2}, {0.25, 0, 1, 4}, tol(d));
    // Non-contiguous operands.
    expect_values(mse_loss(x.t(), y.t(), Reduction::none), {2, 2}, {0.25, 1, 0, 4}, tol(d));
    Tensor xf = tensor({0.1, -0.7, 2.5}, d);
    Tensor yf = tensor({0.3, 0.2, 2.0}, d);
    expect_values(mse_loss(xf, yf, Reduction::sum), {}, {0.04 + 0.81 + 0.25}, tol(d));
  }
}

BOOST_AUTO_TEST_CASE(mse_loss_gradient) {
  for (Reduction r : kReductions) {
    BOOST_TEST_CONTEXT("reduction " << reduction_name(r)) {
      expect_gradcheck([r](const std::vector<Tensor>& in) { return mse_loss(in[0], in[1], r); },
                       {leaf({2, 3}, -1, 1, 1), leaf({2, 3}, -1, 1, 2)});
      // Target not requiring grad.
      expect_gradcheck([r](const std::vector<Tensor>& in) { return mse_loss(in[0], in[1], r); },
                       {leaf({4}, -1, 1, 3), leaf({4}, -1, 1, 4).detach()});
    }
  }
  // By value: d mean / dx = 2(x - y) / n, d / dy = -that.
  Tensor x = tensor({{1.0, 2.0}, {3.0, 4.0}}, float64).requires_grad_();
  Tensor y = tensor({{1.5, 2.0}, {2.0, 6.0}}, float64).requires_grad_();
  mse_loss(x, y).backward();
  expect_values(x.grad(), {2, 2}, {-0.25, 0, 0.5, -1});
  expect_values(y.grad(), {2, 2}, {0.25, 0, -0.5, 1});
  x.zero_grad();
  mse_loss(x, y, Reduction::sum).backward();
  expect_values(x.grad(), {2, 2}, {-1, 0, 2, -4});
  x.zero_grad();
  mse_loss(x, y, Reduction::none).backward(tensor({{1.0, 2.0}, {3.0, 4.0}}, float64));
  expect_values(x.grad(), {2, 2}, {-1, 0, 6, -16});
}

BOOST_AUTO_TEST_CASE(cross_entropy_values) {
  for (Dtype d : kFloatDtypes) {
    Tensor lab = labels({0, 2, 1});
    Tensor mean = cross_entropy(ce_logits(d), lab);
    BOOST_TEST((mean.dtype() == d));
    expect_values(mean, {}, {2.2491765165898823}, tol(d));
    expect_values(cross_entropy(ce_logits(d), lab, Reduction::sum), {}, {6.747529549769647},
                  tol(d));
    expect_values(cross_entropy(ce_logits(d), lab, Reduction::none), {3}, kCePerRow, tol(d));
    // Non-contiguous logits: the transpose of the transpose.
    Tensor lt = ce_logits(d).t().contiguous().t();
    BOOST_TEST(!lt.is_contiguous());
    expect_values(cross_entropy(lt, lab, Reduction::none), {3}, kCePerRow, tol(d));
    // Equals -log_softmax at the label.
    expect_values(cross_entropy(tensor({2.0, 1.0}, d).reshape({1, 2}), labels({1}), Reduction::sum),
                  {}, {1.3132616875182228}, tol(d));
  }
}

BOOST_AUTO_TEST_CASE(cross_entropy_gradient) {
  Tensor lab = labels({0, 2, 1});
  for (Reduction r : kReductions) {
    BOOST_TEST_CONTEXT("reduction " << reduction_name(r)) {
      expect_gradcheck(
          [r](const std::vector<Tensor>& in) { return cross_entropy(in[0], in[1], r); },
          {leaf({3, 4}, -2, 2), labels({3, 0, 1})});
    }
  }
  // By value (mean): (softmax - onehot) / N.
  Tensor x = ce_logits(float64).requires_grad_();
  cross_entropy(x, lab).backward();
  expect_values(x.grad(), {3, 3},
                {-0.30332314227653984, 0.08157615701826589, 0.22174698525827394, 0.1111111111111111,
                 0.1111111111111111, -0.22222222222222224, 0.05843013071334557, -0.3202958089097709,
                 0.2618656781964253});
  // none with a seed scales each row.
  Tensor z = ce_logits(float64).requires_grad_();
  cross_entropy(z, lab, Reduction::none).backward(tensor({0.0, 3.0, 0.0}, float64));
  expect_values(z.grad(), {3, 3}, {0, 0, 0, 1, 1, -2, 0, 0, 0});
}

BOOST_AUTO_TEST_CASE(cross_entropy_numerically_stable) {
  for (Dtype d : kFloatDtypes) {
    Tensor row = tensor({1000.0, -1000.0, 0.0}, d);
    Tensor x = stack({row, row, row}).detach().requires_grad_();
    Tensor per = cross_entropy(x, labels({0, 1, 2}), Reduction::none);
    BOOST_TEST(all_finite(per));
    expect_values(per, {3}, {0, 2000, 1000}, tol(d));
    Tensor total = cross_entropy(x, labels({0, 1, 2}), Reduction::sum);
    BOOST_TEST(all_finite(total));
    expect_values(total, {}, {3000}, tol(d));
    total.backward();
    // softmax(row) = [1, 0, 0]; minus the one-hot label of each row.
    BOOST_TEST(all_finite(x.grad()));
    expect_values(x.grad(), {3, 3}, {0, 0, 0, 1, -1, 0, 1, 0, -1}, tol(d));
  }
}

BOOST_AUTO_TEST_CASE(bce_with_logits_values) {
  for (Dtype d : kFloatDtypes) {
    Tensor x = tensor({0.5, -1.0, 2.0, -3.0}, d);
    Tensor y = tensor({1.0, 0.0, 0.25, 0.5}, d);
    Tensor mean = binary_cross_entropy_with_logits(x, y);
    BOOST_TEST((mean.dtype() == d));
    expect_values(mean, {}, {0.9907135085787611}, tol(d));
    expect_values(binary_cross_entropy_with_logits(x, y, Reduction::sum), {}, {3.9628540343150442},
                  tol(d));
    expect_values(binary_cross_entropy_with_logits(x, y, Reduction::none), {4},
                  {0.4740769841801067, 0.31326168751822286, 1.6269280110429725, 1.548587351573742},
                  tol(d));
    expect_values(binary_cross_entropy_with_logits(x.reshape({2, 2}).t(), y.reshape({2, 2}).t(),
                                                   Reduction::none),
                  {2, 2},
                  {0.4740769841801067, 1.6269280110429725, 0.31326168751822286, 1.548587351573742},
                  tol(d));
  }
}

BOOST_AUTO_TEST_CASE(bce_with_logits_gradient) {
  for (Reduction r : kReductions) {
    BOOST_TEST_CONTEXT("reduction " << reduction_name(r)) {
      expect_gradcheck(
          [r](const std::vector<Tensor>& in) {
            return binary_cross_entropy_with_logits(in[0], in[1], r);
          },
          {leaf({2, 3}, -3, 3, 1), leaf({2, 3}, 0, 1, 2)});
      expect_gradcheck(
          [r](const std::vector<Tensor>& in) {
            return binary_cross_entropy_with_logits(in[0], in[1], r);
          },
          {leaf({5}, -3, 3, 3), leaf({5}, 0, 1, 4).detach()});
    }
  }
  // By value (sum): d / dx = sigmoid(x) - y, d / dy = -x.
  Tensor x = tensor({0.5, -1.0, 2.0, -3.0}, float64).requires_grad_();
  Tensor y = tensor({1.0, 0.0, 0.25, 0.5}, float64).requires_grad_();
  binary_cross_entropy_with_logits(x, y, Reduction::sum).backward();
  expect_values(x.grad(), {4},
                {-0.3775406687981454, 0.2689414213699951, 0.6307970779778823, -0.4525741268224332});
  expect_values(y.grad(), {4}, {-0.5, 1, -2, 3});
}

BOOST_AUTO_TEST_CASE(bce_with_logits_numerically_stable) {
  for (Dtype d : kFloatDtypes) {
    Tensor x = tensor({100.0, -100.0, 100.0, 1000.0, -1000.0}, d).requires_grad_();
    Tensor y = tensor({0.0, 1.0, 1.0, 0.0, 0.0}, d);
    Tensor per = binary_cross_entropy_with_logits(x, y, Reduction::none);
    BOOST_TEST(all_finite(per));
    expect_values(per, {5}, {100, 100, 0, 1000, 0}, tol(d));
    Tensor one = binary_cross_entropy_with_logits(tensor({100.0}, d), tensor({0.0}, d));
    BOOST_TEST(one.item() == 100.0);
    binary_cross_entropy_with_logits(x, y, Reduction::sum).backward();
    BOOST_TEST(all_finite(x.grad()));
    expect_values(x.grad(), {5}, {1, -1, 0, 1, 0}, tol(d));
  }
}

BOOST_AUTO_TEST_CASE(loss_shape_mismatch_throws) {
  expect_error_exact(
      [] {
        mse_loss(zeros({64, 10}), zeros({64}));
      },
      "mse_loss: input [64,10] and target [64] must have the same shape");
  expect_error([] { mse_loss(zeros({3}), zeros({3, 1})); }, {"mse_loss", "[3]", "[3,1]"});
  expect_error(
      [] {
        binary_cross_entropy_with_logits(zeros({4, 1}), zeros({4}));
      },
      {"binary_cross_entropy_with_logits", "[4,1]", "[4]"});
  expect_error_exact(
      [] {
        cross_entropy(zeros({2, 3}), labels({0, 1, 2}));
      },
      "cross_entropy: logits [2,3] and labels [3] do not match (expected labels [2])");
  expect_error(
      [] {
        cross_entropy(zeros({2, 3}), tensor({0.0, 1.0}, int64).reshape({2, 1}));
      },
      {"cross_entropy", "[2,3]", "[2,1]"});
  expect_error([] { cross_entropy(zeros({3}), labels({0})); }, {"cross_entropy", "[N,C]", "[3]"});
  expect_error(
      [] {
        cross_entropy(zeros({2, 3, 4}), labels({0, 1}));
      },
      {"cross_entropy", "[2,3,4]"});
}

BOOST_AUTO_TEST_CASE(cross_entropy_bad_labels_throw) {
  expect_error_exact(
      [] {
        cross_entropy(zeros({3, 3}), labels({0, 5, 1}));
      },
      "cross_entropy: label 5 at position 1 is out of range for 3 classes");
  expect_error_exact(
      [] {
        cross_entropy(zeros({2, 4}), labels({2, -1}));
      },
      "cross_entropy: label -1 at position 1 is out of range for 4 classes");
  expect_error(
      [] {
        cross_entropy(zeros({2, 4}), labels({4, 0}));
      },
      {"cross_entropy", "label 4", "position 0"});
  expect_error_exact(
      [] {
        cross_entropy(zeros({2, 3}), zeros({2}, float32));
      },
      "cross_entropy: expected int64 class labels, got float32 [2]");
}

BOOST_AUTO_TEST_CASE(loss_mixed_dtypes_throw) {
  expect_error_exact(
      [] { mse_loss(zeros({2}, float32), zeros({2}, float64)); },
      "mse_loss: expected tensors of the same dtype, got float32 [2] and float64 [2]");
  expect_error([] { binary_cross_entropy_with_logits(zeros({2}, float64), zeros({2}, float32)); },
               {"binary_cross_entropy_with_logits", "float64 [2]", "float32 [2]"});
  expect_error([] { mse_loss(zeros({2}, int64), zeros({2}, int64)); }, {"mse_loss", "int64"});
  expect_error(
      [] {
        cross_entropy(zeros({2, 3}, int64), labels({0, 1}));
      },
      {"cross_entropy", "int64"});
}

// The cases: (max + log Σ exp(x − max)) − x[label] cancelled; the loss is now
// (max − x[label]) + log Σ exp(x − max). Expected values: torch's (and the exact ones).
BOOST_AUTO_TEST_CASE(cross_entropy_does_not_cancel) {
  // [[1e8, 1e8]], label 1: log 2 (float32 used to give 0).
  Tensor f32 = cross_entropy(tensor({{1e8, 1e8}}, float32), labels({1}));
  BOOST_TEST(f32.item() == static_cast<double>(static_cast<float>(std::log(2.0))));
  // float64 used to give 0.69314718246; now log 2 to the last bit.
  Tensor f64 = cross_entropy(tensor({{1e8, 1e8}}, float64), labels({1}));
  BOOST_TEST(std::abs(f64.item() - std::log(2.0)) <= 1e-16);
  // [[1e4, 1e4 + 1]], label 0: log(1 + e) = 1.3132616875182228 (float32 used to give 1.3134766).
  for (Dtype d : kFloatDtypes) {
    Tensor x = tensor({{1e4, 1e4 + 1}}, d).requires_grad_();
    Tensor loss = cross_entropy(x, labels({0}));
    expect_values(loss, {}, {1.3132616875182228}, d == float64 ? 1e-15 : 1e-7);
    loss.backward();
    // softmax − one_hot: [σ(−1) − 1, σ(1)].
    expect_values(x.grad(), {1, 2}, {0.2689414213699951 - 1, 0.7310585786300049}, tol(d));
    // The weighted / smoothed path computes the same way.
    CrossEntropyOptions o;
    o.label_smoothing = 0.5;
    // 0.5·l[0] + 0.25·(l[0] + l[1]) with l = [log(1 + e), log(1 + e^-1)].
    expect_values(cross_entropy(x, labels({0}), o), {},
                  {0.75 * 1.3132616875182228 + 0.25 * 0.31326168751822286}, tol(d));
  }
  // log_softmax has the same form ((x − max) − log Σ): −log 2 for both entries.
  expect_values(log_softmax(tensor({{1e8, 1e8}}, float32)), {1, 2},
                {-std::log(2.0), -std::log(2.0)}, 1e-7);
  expect_values(log_softmax(tensor({{1e4, 1e4 + 1}}, float32)), {1, 2},
                {-1.3132616875182228, -0.31326168751822286}, 1e-7);
}

// weight, ignore_index and label_smoothing, alone and combined, against torch 1.13.
BOOST_AUTO_TEST_CASE(cross_entropy_options_match_torch) {
  for (const GoldenCase& c : read_ops_golden("cross_entropy.txt")) {
    for (Dtype d : kFloatDtypes) {
      BOOST_TEST_CONTEXT("case " << c.name << ", " << dtype_name(d)) {
        const double t = ops_golden_tol(d);
        Tensor lab = c.int64("labels");
        Tensor x = c.at("logits").to(d).detach().requires_grad_();
        Tensor mean = cross_entropy(x, lab, ce_options(c, d, Reduction::mean));
        BOOST_TEST((mean.dtype() == d));
        expect_values(mean, {}, values_of(c.at("output_mean")), t);
        mean.backward();
        expect_golden(x.grad(), c.at("grad_mean"), t);
        expect_values(cross_entropy(x, lab, ce_options(c, d, Reduction::sum)), {},
                      values_of(c.at("output_sum")), t);
        x.zero_grad();
        Tensor none = cross_entropy(x, lab, ce_options(c, d, Reduction::none));
        expect_golden(none, c.at("output_none"), t);
        none.backward(c.at("grad_output").to(d));
        expect_golden(x.grad(), c.at("grad_none"), t);
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(cross_entropy_options_gradient) {
  Tensor lab = labels({3, 0, -100, 1});
  Tensor w = tensor({0.5, 2.0, 1.0, 0.25}, float64);
  for (Reduction r : kReductions) {
    for (double eps : {0.0, 0.3}) {
      BOOST_TEST_CONTEXT("reduction " << reduction_name(r) << ", label_smoothing " << eps) {
        CrossEntropyOptions o;
        o.reduction = r;
        o.label_smoothing = eps;
        expect_gradcheck(
            [&](const std::vector<Tensor>& in) { return cross_entropy(in[0], lab, o); },
            {leaf({4, 4}, -2, 2, 7)});
        o.weight = w;
        o.ignore_index = 0;  // row 1 ignored, and -100 is now out of range: relabel it
        Tensor lab2 = labels({3, 0, 2, 1});
        expect_gradcheck(
            [&](const std::vector<Tensor>& in) { return cross_entropy(in[0], lab2, o); },
            {leaf({4, 4}, -2, 2, 8)});
      }
    }
  }
}

// By hand: ignored rows add nothing and mean counts only the others; weights weigh the rows
// and mean divides by Σ weight[label].
BOOST_AUTO_TEST_CASE(cross_entropy_ignore_index_and_weight_by_value) {
  for (Dtype d : kFloatDtypes) {
    CrossEntropyOptions o;
    o.ignore_index = 2;
    o.reduction = Reduction::none;
    // Rows 0 and 2 of the fixture keep their losses; row 1 (label 2) is ignored.
    expect_values(cross_entropy(ce_logits(d), labels({0, 2, 1}), o), {3},
                  {kCePerRow[0], 0, kCePerRow[2]}, tol(d));
    o.reduction = Reduction::mean;
    expect_values(cross_entropy(ce_logits(d), labels({0, 2, 1}), o), {},
                  {(kCePerRow[0] + kCePerRow[2]) / 2}, tol(d));
    // With designated initializers, as the header shows.
    expect_values(cross_entropy(ce_logits(d), labels({0, 2, 1}),
                                {.ignore_index = 2, .reduction = Reduction::sum}),
                  {}, {kCePerRow[0] + kCePerRow[2]}, tol(d));
    // Default ignore_index -100: a label -100 is skipped, not out of range.
    CrossEntropyOptions def;
    expect_values(cross_entropy(ce_logits(d), labels({0, -100, 1}), def), {},
                  {(kCePerRow[0] + kCePerRow[2]) / 2}, tol(d));
    // Weights [2, 1, 0.5]: rows weigh 2, 0.5, 1; mean = Σ w·l / 3.5.
    CrossEntropyOptions ow;
    ow.weight = tensor({2.0, 1.0, 0.5}, d);
    expect_values(cross_entropy(ce_logits(d), labels({0, 2, 1}), ow), {},
                  {(2 * kCePerRow[0] + 0.5 * kCePerRow[1] + kCePerRow[2]) / 3.5}, tol(d));
    ow.reduction = Reduction::sum;
    expect_values(cross_entropy(ce_logits(d), labels({0, 2, 1}), ow), {},
                  {2 * kCePerRow[0] + 0.5 * kCePerRow[1] + kCePerRow[2]}, tol(d));
  }
  // Every row ignored: mean is 0/0 = NaN with gradient 0, as torch.
  Tensor x = ce_logits(float64).requires_grad_();
  Tensor loss = cross_entropy(x, labels({-100, -100, -100}), CrossEntropyOptions{});
  BOOST_TEST(std::isnan(loss.item()));
  loss.backward();
  expect_values(x.grad(), {3, 3}, std::vector<double>(9, 0.0));
}

BOOST_AUTO_TEST_CASE(cross_entropy_options_errors) {
  CrossEntropyOptions o;
  o.weight = tensor({1.0, 2.0}, float32);
  expect_error_exact(
      [&] {
        cross_entropy(zeros({2, 3}), labels({0, 1}), o);
      },
      "cross_entropy: expected a weight of shape [3] (one per class), got [2]");
  o.weight = tensor({1.0, 2.0, 3.0}, float64);
  expect_error(
      [&] {
        cross_entropy(zeros({2, 3}), labels({0, 1}), o);
      },
      {"cross_entropy", "float32 [2,3]", "float64 [3]"});
  CrossEntropyOptions s;
  s.label_smoothing = 1.5;
  expect_error_exact(
      [&] {
        cross_entropy(zeros({2, 3}), labels({0, 1}), s);
      },
      "cross_entropy: label_smoothing must be between 0.0 and 1.0, got 1.5");
  s.label_smoothing = -0.1;
  expect_error(
      [&] {
        cross_entropy(zeros({2, 3}), labels({0, 1}), s);
      },
      {"label_smoothing", "-0.1"});
  // A label that is neither in range nor ignore_index still throws.
  CrossEntropyOptions i;
  i.ignore_index = 7;
  expect_error_exact(
      [&] {
        cross_entropy(zeros({2, 3}), labels({7, -100}), i);
      },
      "cross_entropy: label -100 at position 1 is out of range for 3 classes");
}

BOOST_AUTO_TEST_CASE(binary_cross_entropy_matches_torch) {
  for (const GoldenCase& c : read_ops_golden("binary_cross_entropy.txt")) {
    for (Dtype d : kFloatDtypes) {
      BOOST_TEST_CONTEXT("case " << c.name << ", " << dtype_name(d)) {
        const double t = ops_golden_tol(d);
        Tensor w = c.has("weight") ? c.at("weight").to(d) : Tensor();
        // Inputs 0 and 1: the logs clamp at -100, so the loss is at most 100·w.
        Tensor edges = binary_cross_entropy(c.at("input_edges").to(d), c.at("target").to(d), w,
                                            Reduction::none);
        BOOST_TEST(all_finite(edges));
        expect_golden(edges, c.at("output_edges_none"), t);
        Tensor x = c.at("input").to(d).detach().requires_grad_();
        Tensor y = c.at("target").to(d).detach().requires_grad_();
        Tensor mean = binary_cross_entropy(x, y, w);
        expect_values(mean, {}, values_of(c.at("output_mean")), t);
        mean.backward();
        expect_golden(x.grad(), c.at("grad_input_mean"), t);
        expect_golden(y.grad(), c.at("grad_target_mean"), t);
        expect_values(binary_cross_entropy(x, y, w, Reduction::sum), {},
                      values_of(c.at("output_sum")), t);
        x.zero_grad();
        y.zero_grad();
        Tensor none = binary_cross_entropy(x, y, w, Reduction::none);
        expect_golden(none, c.at("output_none"), t);
        none.backward(c.at("grad_output").to(d));
        expect_golden(x.grad(), c.at("grad_input_none"), t);
        expect_golden(y.grad(), c.at("grad_target_none"), t);
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(binary_cross_entropy_values_and_gradient) {
  for (Dtype d : kFloatDtypes) {
    // −(y log x + (1 − y) log(1 − x)): x = 0.5 gives log 2 for any y; x = 0.25, y = 1 gives
    // log 4; x = 0 with y = 1 clamps at 100, x = 1 with y = 1 gives 0.
    Tensor x = tensor({0.5, 0.25, 0.0, 1.0}, d);
    Tensor y = tensor({0.3, 1.0, 1.0, 1.0}, d);
    expect_values(binary_cross_entropy(x, y, Reduction::none), {4},
                  {std::log(2.0), std::log(4.0), 100, 0}, tol(d));
    expect_values(binary_cross_entropy(x, y), {}, {(std::log(2.0) + std::log(4.0) + 100) / 4},
                  tol(d));
    // A weight [2] broadcasts over [2, 2].
    expect_values(binary_cross_entropy(x.reshape({2, 2}), y.reshape({2, 2}), tensor({2.0, 0.5}, d),
                                       Reduction::none),
                  {2, 2}, {2 * std::log(2.0), 0.5 * std::log(4.0), 200, 0}, tol(d));
  }
  for (Reduction r : kReductions) {
    BOOST_TEST_CONTEXT("reduction " << reduction_name(r)) {
      expect_gradcheck(
          [r](const std::vector<Tensor>& in) { return binary_cross_entropy(in[0], in[1], r); },
          {leaf({2, 3}, 0.05, 0.95, 1), leaf({2, 3}, 0, 1, 2)});
      Tensor w = leaf({3}, 0.5, 2, 3).detach();
      expect_gradcheck(
          [r, w](const std::vector<Tensor>& in) {
            return binary_cross_entropy(in[0], in[1], w, r);
          },
          {leaf({2, 3}, 0.05, 0.95, 4), leaf({2, 3}, 0, 1, 5).detach()});
    }
  }
}

BOOST_AUTO_TEST_CASE(binary_cross_entropy_errors) {
  expect_error_exact(
      [] {
        binary_cross_entropy(tensor({0.5, 1.5}, float32), tensor({0.0, 1.0}, float32));
      },
      "binary_cross_entropy: input 1.5 at position 1 of [2] is not a probability in [0, 1] (for "
      "logits use binary_cross_entropy_with_logits)");
  expect_error(
      [] {
        binary_cross_entropy(tensor({0.5, kNaN}, float64), tensor({0.0, 1.0}, float64));
      },
      {"binary_cross_entropy", "input nan", "position 1"});
  expect_error_exact(
      [] {
        binary_cross_entropy(tensor({0.5, 0.5}, float64), tensor({2.0, 1.0}, float64));
      },
      "binary_cross_entropy: target 2 at position 0 of [2] is not in [0, 1]");
  expect_error_exact(
      [] {
        binary_cross_entropy(zeros({2, 3}), zeros({3}));
      },
      "binary_cross_entropy: input [2,3] and target [3] must have the same shape");
  expect_error_exact(
      [] {
        binary_cross_entropy(zeros({2, 3}), zeros({2, 3}), zeros({2, 2}));
      },
      "binary_cross_entropy: shapes [2,2] and [2,3] cannot be broadcast");
  expect_error_exact(
      [] {
        binary_cross_entropy(zeros({3}), zeros({3}), zeros({2, 3}));
      },
      "binary_cross_entropy: weight [2,3] cannot be broadcast to the input's shape [3]");
  expect_error([] { binary_cross_entropy(zeros({3}), zeros({3}), zeros({3}, float64)); },
               {"binary_cross_entropy", "float32 [3]", "float64 [3]"});
}

// ---- second derivatives (create_graph) against analytic values ------------------------------

// cross_entropy's backward (softmax − onehot)/N, recorded and differentiated: the Hessian w.r.t.
// the logits is block-diagonal, (diag(p_i) − p_i p_iᵀ)/N per row for mean (1 per row for sum).
BOOST_AUTO_TEST_CASE(cross_entropy_hessian) {
  const std::vector<double> xv{1.0, 2.0, 3.0, 0.5, 1.0, 1.0, 1.0, -0.5, 0.5, -1.0, 2.0, 0.0};
  const Tensor x0 = make(xv, {3, 4});
  const Tensor lab = labels({0, 2, 1});
  expect_values(hessian([&](const Tensor& x) { return cross_entropy(x, lab); }, x0), {12, 12},
                ce_hessian(xv, 3, 4, {1.0 / 3, 1.0 / 3, 1.0 / 3}), 1e-14);
  expect_values(hessian([&](const Tensor& x) { return cross_entropy(x, lab, Reduction::sum); }, x0),
                {12, 12}, ce_hessian(xv, 3, 4, {1, 1, 1}), 1e-14);
  // With weights, label smoothing and an ignored row, row i's block is scaled by
  // a_i = (1 − ε)·w[y_i] + ε/C·Σw (0 for the ignored row), divided by Σ w[y_i] over the
  // counted rows for mean.
  CrossEntropyOptions o;
  o.weight = tensor({0.5, 2.0, 1.0, 0.25}, float64);
  o.ignore_index = 1;
  o.label_smoothing = 0.2;
  const Tensor lab2 = labels({0, 1, 3});
  const double w_all = 0.5 + 2.0 + 1.0 + 0.25, total = 0.5 + 0.25;
  const double a0 = 0.8 * 0.5 + 0.2 / 4 * w_all, a2 = 0.8 * 0.25 + 0.2 / 4 * w_all;
  expect_values(hessian([&](const Tensor& x) { return cross_entropy(x, lab2, o); }, x0), {12, 12},
                ce_hessian(xv, 3, 4, {a0 / total, 0.0, a2 / total}), 1e-14);
}

// mse: d²/dx² mean((x − c)²) = 2/N·I; bce_with_logits (sum): diag(σ(x)(1 − σ(x)));
// binary_cross_entropy (sum): diag(y/x² + (1 − y)/(1 − x)²).
BOOST_AUTO_TEST_CASE(elementwise_loss_hessians) {
  const std::vector<double> xv{0.2, 0.7, 0.45, 0.9};
  const Tensor x0 = make(xv, {4});
  const std::vector<double> yv{0.0, 1.0, 0.3, 0.6};
  const Tensor y = make(yv, {4});
  auto diag = [](const std::vector<double>& d) {
    std::vector<double> h(d.size() * d.size(), 0.0);
    for (std::size_t i = 0; i < d.size(); ++i) h[i * d.size() + i] = d[i];
    return h;
  };
  expect_values(hessian([&](const Tensor& x) { return mse_loss(x, y); }, x0), {4, 4},
                diag({0.5, 0.5, 0.5, 0.5}), 1e-14);
  const std::vector<double> lv{-3.0, 2.0, -0.5, 4.0};
  std::vector<double> want(4);
  for (std::size_t i = 0; i < 4; ++i) {
    const double s = 1 / (1 + std::exp(-lv[i]));
    want[i] = s * (1 - s);
  }
  const Tensor logits0 = make(lv, {4});
  expect_values(
      hessian(
          [&](const Tensor& x) { return binary_cross_entropy_with_logits(x, y, Reduction::sum); },
          logits0),
      {4, 4}, diag(want), 1e-14);
  for (std::size_t i = 0; i < 4; ++i)
    want[i] = yv[i] / (xv[i] * xv[i]) + (1 - yv[i]) / ((1 - xv[i]) * (1 - xv[i]));
  expect_values(
      hessian([&](const Tensor& x) { return binary_cross_entropy(x, y, Reduction::sum); }, x0),
      {4, 4}, diag(want), 1e-13);
}

// Forward mode directly on the logits: the tangent of cross_entropy (sum) is Σ (p − onehot)·u.
BOOST_AUTO_TEST_CASE(cross_entropy_jvp_by_value) {
  namespace fw = autograd::forward_ad;
  const Tensor x = tensor({1.0, 2.0, 3.0}, float64).reshape({1, 3});
  const Tensor u = tensor({1.0, -1.0, 2.0}, float64).reshape({1, 3});
  double z = std::exp(1.0) + std::exp(2.0) + std::exp(3.0);
  const double want = (std::exp(1.0) / z - 1) * 1 + std::exp(2.0) / z * -1 + std::exp(3.0) / z * 2;
  fw::dual_level level;
  Tensor t =
      fw::unpack_dual(cross_entropy(fw::make_dual(x, u), labels({0}), Reduction::sum)).tangent;
  expect_values(t, {}, {want}, 1e-14);
}

// Forward-over-reverse without create_graph: the gradient computed inside a dual level carries
// the tangent H·u, H = (diag(p) − ppᵀ) for one row (the backward is computed with ops there).
BOOST_AUTO_TEST_CASE(cross_entropy_forward_over_reverse) {
  namespace fw = autograd::forward_ad;
  const std::vector<double> xv{1.0, 2.0, 3.0}, uv{1.0, -1.0, 2.0};
  Tensor x = make(xv, {1, 3}).requires_grad_();
  fw::dual_level level;
  Tensor xd = fw::make_dual(x, make(uv, {1, 3}));
  Tensor g = grad({cross_entropy(xd, labels({0}), Reduction::sum)}, {x})[0];
  const auto h = ce_hessian(xv, 1, 3, {1.0});
  std::vector<double> want(3, 0.0);
  for (std::size_t i = 0; i < 3; ++i)
    for (std::size_t k = 0; k < 3; ++k) want[i] += h[i * 3 + k] * uv[k];
  Tensor t = fw::unpack_dual(g).tangent;
  BOOST_REQUIRE(t.defined());
  expect_values(t, {1, 3}, want, 1e-14);
}

BOOST_AUTO_TEST_SUITE_END()

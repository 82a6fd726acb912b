// Losses: mse_loss, cross_entropy (logits [N,C] + int64 labels) and
// binary_cross_entropy_with_logits, each with Reduction::mean, sum and none. Values in float64
// and float32, gradcheck in float64, numerical stability for extreme logits, and the error
// messages of bad input.
#include <cmath>
#include <string>

#include "test_util.hpp"

using namespace xgrad;
using xgrad::testing::all_finite;
using xgrad::testing::expect_error;
using xgrad::testing::expect_error_exact;
using xgrad::testing::expect_gradcheck;
using xgrad::testing::expect_values;
using xgrad::testing::kFloatDtypes;
using xgrad::testing::leaf;
using xgrad::testing::tol;

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

BOOST_AUTO_TEST_SUITE_END()

// func::vmap: every batching rule against the loop it replaces (f on each sample, stacked),
// in_dims / out_dims, nesting, composition with grad / jvp (per-sample gradients of an MLP
// against one grad call per sample), the fallback loop and its notice, and the errors.
#include <boost/test/unit_test.hpp>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <unistd.h>

#include "test_util.hpp"
#include "xgrad/autograd/batching.hpp"
#include "xgrad/autograd/engine.hpp"
#include "xgrad/func.hpp"
#include "xgrad/nn/mlp.hpp"
#include "xgrad/ops/activation.hpp"
#include "xgrad/ops/comparison.hpp"
#include "xgrad/ops/conv.hpp"
#include "xgrad/ops/elementwise.hpp"
#include "xgrad/ops/indexing.hpp"
#include "xgrad/ops/linalg.hpp"
#include "xgrad/ops/loss.hpp"
#include "xgrad/ops/pool.hpp"
#include "xgrad/ops/reduction.hpp"
#include "xgrad/ops/shape.hpp"
#include "xgrad/ops/tensor_index.hpp"
#include "xgrad/random.hpp"

using namespace xgrad;
using xgrad::testing::expect_error;
using xgrad::testing::values_of;
namespace xf = xgrad::func;

namespace {

Tensor randu(const Shape& s, std::uint64_t seed, Dtype d = float64) {
  manual_seed(seed);
  return uniform(s, -1.0, 1.0, d);
}

// What vmap replaces: f on each sample (inputs sliced along in_dims), stacked along dim 0.
std::vector<Tensor> loop(const xf::MultiFn& f, const std::vector<Tensor>& in,
                         const xf::InDims& dims_in) {
  xf::InDims dims = dims_in.empty() ? xf::InDims(in.size(), 0) : dims_in;
  std::int64_t B = 0;
  for (std::size_t i = 0; i < in.size(); ++i)
    if (dims[i]) B = in[i].size(*dims[i]);
  std::vector<std::vector<Tensor>> per;
  for (std::int64_t b = 0; b < B; ++b) {
    std::vector<Tensor> args;
    for (std::size_t i = 0; i < in.size(); ++i)
      args.push_back(dims[i] ? select(in[i], *dims[i], b) : in[i]);
    per.push_back(f(args));
  }
  std::vector<Tensor> out;
  for (std::size_t k = 0; k < per[0].size(); ++k) {
    std::vector<Tensor> col;
    for (auto& p : per) col.push_back(p[k]);
    out.push_back(stack(col, 0));
  }
  return out;
}

void expect_close(const Tensor& got, const Tensor& want, double tol, const std::string& what) {
  BOOST_REQUIRE_MESSAGE(got.shape() == want.shape(), what << ": shape " << got.shape()
                                                          << ", expected " << want.shape());
  BOOST_REQUIRE_MESSAGE(got.dtype() == want.dtype(), what << ": dtype differs");
  const auto g = values_of(got), w = values_of(want);
  double worst = 0;
  for (std::size_t i = 0; i < g.size(); ++i) worst = std::max(worst, std::abs(g[i] - w[i]));
  BOOST_CHECK_MESSAGE(worst <= tol, what << ": max |vmap − loop| = " << worst);
}

void expect_matches_loop(const std::string& what, const xf::MultiFn& f,
                         const std::vector<Tensor>& in, const xf::InDims& dims = {},
                         double tol = 1e-12) {
  const auto got = xf::vmap(f, dims)(in);
  const auto want = loop(f, in, dims);
  BOOST_REQUIRE_EQUAL(got.size(), want.size());
  for (std::size_t k = 0; k < got.size(); ++k) expect_close(got[k], want[k], tol, what);
}

xf::MultiFn one(std::function<Tensor(const std::vector<Tensor>&)> f) {
  return [f](const std::vector<Tensor>& a) { return std::vector<Tensor>{f(a)}; };
}

// Runs fn with stderr captured into a string.
std::string capture_stderr(const std::function<void()>& fn) {
  std::fflush(stderr);
  char path[] = "/tmp/xgrad_vmap_stderr_XXXXXX";
  const int fd = mkstemp(path);
  const int saved = dup(2);
  dup2(fd, 2);
  fn();
  std::fflush(stderr);
  dup2(saved, 2);
  close(saved);
  close(fd);
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::remove(path);
  return ss.str();
}

}  // namespace

BOOST_AUTO_TEST_SUITE(vmap)

// Each op's batching rule gives, in one pass, what the op gives on each sample.
BOOST_AUTO_TEST_CASE(elementwise_and_activations_match_the_loop) {
  const Tensor x = randu({5, 3, 4}, 1), y = randu({5, 3, 4}, 2), w = randu({4}, 3);
  const Tensor pos = add(mul(randu({5, 3, 4}, 4), x.detach()), 2.0);
  expect_matches_loop("add/mul/sub/div with a shared row",
                      one([&](auto& a) { return div(sub(mul(add(a[0], w), a[1]), w), add(a[1], 3.0)); }),
                      {x, y});
  expect_matches_loop("exp/log/sqrt/abs/neg/pow",
                      one([](auto& a) { return add(exp(neg(a[0])), mul(log(a[1]), sqrt(abs(a[0])))) + pow(a[0], 3.0); }),
                      {x, pos});
  expect_matches_loop("pow(tensor, tensor), maximum, minimum, clamp, sign",
                      one([](auto& a) { return add(pow(a[1], a[0]), maximum(a[0], minimum(clamp(a[0], -0.5, 0.5), sign(a[0])))); }),
                      {x, pos});
  expect_matches_loop("activations", one([](auto& a) {
                        const Tensor& t = a[0];
                        return relu(t) + leaky_relu(t, 0.1) + tanh(t) + sigmoid(t) + gelu(t) +
                               softplus(t, 2.0, 5.0) + elu(t, 0.7) + hardtanh(t, -0.3, 0.2) +
                               relu6(t) + hardswish(t);
                      }),
                      {x});
  expect_matches_loop("softmax / log_softmax on each axis", one([](auto& a) {
                        return softmax(a[0], 0) + softmax(a[0], -1) + log_softmax(a[0], 1);
                      }),
                      {x});
  expect_matches_loop("comparisons and where", one([](auto& a) {
                        return where(gt(a[0], a[1]), a[0], mul(a[1], 2.0)) +
                               where(le(a[0], 0.1), a[1], a[0]);
                      }),
                      {x, y});
  // A broadcast between samples of different ranks: [3,4] samples with [4] samples.
  expect_matches_loop("broadcast of batched operands of different ranks",
                      one([](auto& a) { return mul(a[0], a[1]); }), {x, randu({5, 4}, 7)});
}

BOOST_AUTO_TEST_CASE(reductions_match_the_loop) {
  const Tensor x = randu({4, 3, 5}, 11);
  expect_matches_loop("sum/mean (all, axis, axes)", one([](auto& a) {
                        return sum(a[0]) + unsqueeze(sum(a[0], 1), 0) * 0.5 +
                               sum(mean(a[0], Shape{0, 1}, true)) + mean(a[0]);
                      }),
                      {x});
  expect_matches_loop("max/min/amax/amin/logsumexp/norm", one([](auto& a) {
                        return max(a[0]) + min(a[0]) + sum(max(a[0], -1)) + sum(min(a[0], 0, true)) +
                               sum(amax(a[0], {1})) + sum(amin(a[0])) + sum(logsumexp(a[0], 1)) +
                               norm(a[0]) + sum(norm(a[0], 1.0, {0}));
                      }),
                      {x});
  expect_matches_loop("argmax/argmin", one([](auto& a) {
                        return add(argmax(a[0], 1), argmin(a[0], 0, true));
                      }),
                      {x});
}

BOOST_AUTO_TEST_CASE(shape_ops_match_the_loop) {
  const Tensor x = randu({3, 2, 3, 4}, 21), z = randu({3, 2, 3, 4}, 22);
  expect_matches_loop("reshape/view/transpose/permute/flatten", one([](auto& a) {
                        Tensor t = reshape(a[0], {6, 4});
                        t = add(t, reshape(transpose(a[0], 0, 1), {3, 8}).reshape({6, 4}));
                        t = add(t, view(a[0], {6, 4}));
                        t = add(t, reshape(permute(a[0], {2, 0, 1}), {6, 4}));
                        return add(flatten(t), flatten(a[0], 1));
                      }),
                      {x});
  expect_matches_loop("squeeze/unsqueeze/slice/expand/select", one([](auto& a) {
                        Tensor t = unsqueeze(a[0], -1);  // [2,3,4,1]
                        t = squeeze(t, 3);
                        t = add(slice(t, 2, 1, 3, 1), select(a[0], 2, 1).unsqueeze(2));  // [2,3,2]
                        return add(expand(unsqueeze(sum(t, 1), 0), {5, 2, 2}), squeeze(unsqueeze(t, 0)).sum(1));
                      }),
                      {x});
  expect_matches_loop("concat/stack with a shared tensor", one([&](auto& a) {
                        return add(concat({a[0], a[1], ones({2, 3, 4}, float64)}, 1).sum(),
                                   sum(stack({a[0], a[1]}, -1), Shape{0, 1}));
                      }),
                      {x, z});
  expect_matches_loop("contiguous/clone/to", one([](auto& a) {
                        return add(transpose(a[0], 0, 2).contiguous().clone(), 1.0).to(float32).to(float64);
                      }),
                      {x});
}

BOOST_AUTO_TEST_CASE(matmul_and_linear_in_every_rank_mix) {
  const Tensor A2 = randu({4, 3, 5}, 31), A1 = randu({4, 5}, 32), B2 = randu({4, 5, 2}, 33),
               B1 = randu({4, 5}, 34), S2 = randu({3, 5}, 35), T2 = randu({5, 2}, 36),
               S1 = randu({5}, 37), A3 = randu({4, 2, 3, 5}, 38);
  auto mm = one([](auto& a) { return matmul(a[0], a[1]); });
  const xf::InDims both{0, 0}, left{0, std::nullopt}, right{std::nullopt, 0};
  expect_matches_loop("[m,k]·[k,n] both mapped", mm, {A2, B2}, both);
  expect_matches_loop("[k]·[k,n] both mapped", mm, {A1, B2}, both);
  expect_matches_loop("[m,k]·[k] both mapped", mm, {A2, B1}, both);
  expect_matches_loop("[k]·[k] both mapped", mm, {A1, B1}, both);
  expect_matches_loop("[m,k] mapped · shared [k,n]", mm, {A2, T2}, left);
  expect_matches_loop("[b,m,k] mapped · shared [k,n]", mm, {A3, T2}, left);
  expect_matches_loop("[k] mapped · shared [k]", mm, {A1, S1}, left);
  expect_matches_loop("shared [m,k] · [k,n] mapped", mm, {S2, B2}, right);
  expect_matches_loop("shared [k] · [k,n] mapped", mm, {S1, B2}, right);
  expect_matches_loop("shared [m,k] · [k] mapped", mm, {S2, B1}, right);
  expect_matches_loop("shared [k] · [k] mapped", mm, {S1, B1}, right);
  expect_matches_loop("[b,m,k] · [k,n] both mapped (per-sample loop)", mm, {A3, B2}, both);
  const Tensor W = randu({4, 3, 5}, 39), b = randu({4, 3}, 40);
  auto lin = one([](auto& a) { return linear(a[0], a[1], a[2]); });
  expect_matches_loop("linear, shared weight", lin, {A2, S2, randu({3}, 41)},
                      {0, std::nullopt, std::nullopt});
  expect_matches_loop("linear, 1-D input", lin, {A1, S2, randu({3}, 41)},
                      {0, std::nullopt, std::nullopt});
  expect_matches_loop("linear, mapped weight and bias", lin, {A2, W, b}, {0, 0, 0});
}

BOOST_AUTO_TEST_CASE(losses_conv_pool_and_indexing_match_the_loop) {
  const Tensor logits = randu({6, 4, 5}, 51);
  const Tensor labels = tensor({{0, 4, 2, 1}, {3, 3, 0, 1}, {4, 1, 2, 0}, {1, 2, 3, 4},
                                {0, 0, 1, 1}, {2, 3, 4, 0}},
                               int64);
  const Tensor target = randu({6, 4, 5}, 52), prob = sigmoid(randu({6, 4, 5}, 53));
  for (Reduction r : {Reduction::mean, Reduction::sum, Reduction::none}) {
    expect_matches_loop("losses", one([r](auto& a) {
                          return add(cross_entropy(a[0], a[1], r),
                                     add(mse_loss(a[0], a[2], r),
                                         add(binary_cross_entropy(a[3], sigmoid(a[2]), r),
                                             binary_cross_entropy_with_logits(a[0], a[3], r))).sum(-1));
                        }),
                        {logits, labels, target, prob});
  }
  CrossEntropyOptions o;
  o.weight = tensor({1.0, 2.0, 0.5, 1.0, 3.0}, float64);
  o.label_smoothing = 0.1;
  expect_matches_loop("cross_entropy with class weights (per-sample loop)",
                      one([o](auto& a) { return cross_entropy(a[0], a[1], o); }), {logits, labels});

  const Tensor img = randu({3, 2, 2, 6, 6}, 54), w = randu({4, 2, 3, 3}, 55), bias = randu({4}, 56);
  expect_matches_loop("conv2d + pools on [N,C,H,W] samples", one([&](auto& a) {
                        Tensor y = conv2d(a[0], w, bias, 1, 1);
                        return add(sum(max_pool2d(y, 2), {1}), sum(avg_pool2d(y, 2), {1})) +
                               sum(adaptive_avg_pool2d(y, 3), Shape{1});
                      }),
                      {img});
  expect_matches_loop("conv2d on [C,H,W] samples with per-sample weights",
                      one([&](auto& a) { return conv2d(a[0], a[1], Tensor(), 1, 0); }),
                      {select(img, 1, 0), randu({3, 4, 2, 3, 3}, 57)});
  const Tensor table = randu({7, 3}, 58);
  const Tensor idx = tensor({{0, 6, 2}, {1, 1, 5}}, int64);
  expect_matches_loop("embedding, gather, index_select, index", one([&](auto& a) {
                        Tensor e = embedding(a[0], table).sum();
                        Tensor g = gather(table, 0, a[0]).sum();
                        Tensor s = index_select(table, 0, a[0]).sum();
                        return add(add(e, g), s);
                      }),
                      {idx});
}

// in_dims picks the mapped dimension (or none), out_dims where the batch goes.
BOOST_AUTO_TEST_CASE(in_dims_and_out_dims) {
  const Tensor x = randu({3, 5}, 61), s = randu({3}, 62);
  auto f = xf::vmap(xf::Fn([](const std::vector<Tensor>& a) { return mul(a[0], a[1]); }),
                    {1, std::nullopt}, 1);
  const Tensor got = f({x, s});  // each column times s, columns stay columns
  expect_close(got, mul(x, unsqueeze(s, 1)), 0, "in_dims 1, out_dims 1");
  auto g = xf::vmap(xf::UnaryFn([](const Tensor& t) { return sum(t); }), -1);
  expect_close(g(x), sum(x, 0), 1e-15, "in_dim -1");
  // A result that does not depend on the batch is expanded to it.
  auto h = xf::vmap(xf::UnaryFn([](const Tensor&) { return ones({2}, float64); }));
  expect_close(h(x), ones({3, 2}, float64), 0, "constant result");
}

BOOST_AUTO_TEST_CASE(nested_vmap_maps_two_dimensions) {
  const Tensor x = randu({4, 3, 5}, 71), w = randu({5, 2}, 72);
  auto inner = xf::Fn([&](const std::vector<Tensor>& a) { return softmax(matmul(a[0], w), 0); });
  auto twice = xf::vmap(xf::vmap(inner));
  Tensor want = softmax(matmul(x, w), -1);
  expect_close(twice({x}), want, 1e-14, "vmap(vmap(f))");
}

// The point of vmap for training: per-sample gradients of an MLP in one pass (DP-SGD,
// influence functions), equal to one grad call per sample.
BOOST_AUTO_TEST_CASE(per_sample_gradients_of_an_mlp_equal_one_grad_per_sample) {
  for (Dtype d : {float32, float64}) {
    manual_seed(5);
    nn::MLP model({20, 16, 10}, {.dtype = d});
    const auto named = model.named_parameters();
    std::vector<Tensor> params;
    for (auto& [n, p] : named) params.push_back(p.detach());
    const std::int64_t B = 64;
    manual_seed(6);
    const Tensor x = randn({B, 20}, d);
    std::vector<double> labels;
    for (std::int64_t b = 0; b < B; ++b) labels.push_back(static_cast<double>((b * 7) % 10));
    const Tensor y = xgrad::testing::make(labels, {B}, int64);
    const std::size_t P = params.size();
    auto loss_of_one = [&](const std::vector<Tensor>& a) {
      std::map<std::string, Tensor> m;
      for (std::size_t i = 0; i < P; ++i) m[named[i].first] = a[i];
      Tensor logits = xf::functional_call(model, m, unsqueeze(a[P], 0));
      return cross_entropy(logits, unsqueeze(a[P + 1], 0));
    };
    std::vector<std::int64_t> argnums;
    for (std::size_t i = 0; i < P; ++i) argnums.push_back(static_cast<std::int64_t>(i));
    xf::InDims dims(P, std::nullopt);
    dims.push_back(0);
    dims.push_back(0);
    std::vector<Tensor> args = params;
    args.push_back(x);
    args.push_back(y);
    const auto per_sample = xf::vmap(xf::grad(loss_of_one, argnums), dims)(args);
    BOOST_REQUIRE_EQUAL(per_sample.size(), P);
    const double tol = d == float32 ? 1e-6 : 1e-13;
    for (std::int64_t b = 0; b < B; b += 9) {
      std::vector<Tensor> one_args = params;
      one_args.push_back(select(x, 0, b));
      one_args.push_back(select(y, 0, b));
      const auto g = xf::grad(loss_of_one, argnums)(one_args);
      for (std::size_t i = 0; i < P; ++i)
        expect_close(select(per_sample[i], 0, b), g[i], tol, named[i].first);
    }
  }
}

// Backward of a loss computed with vmap, after vmap returned: the usual gradient (summed over
// the samples) in .grad(), as without vmap.
BOOST_AUTO_TEST_CASE(backward_after_vmap_sums_over_the_batch) {
  Tensor w = randu({5, 3}, 81).requires_grad_();
  const Tensor x = randu({8, 5}, 82);
  auto f = xf::vmap(xf::UnaryFn([&](const Tensor& xi) { return sum(tanh(matmul(xi, w))); }));
  f(x).sum().backward();
  const Tensor with_vmap = w.grad();
  w.zero_grad();
  sum(tanh(matmul(x, w))).backward();
  expect_close(with_vmap, w.grad(), 1e-14, "grad of w");
}

// vmap of forward mode: a batch of jvps (jacfwd's columns) in one pass.
BOOST_AUTO_TEST_CASE(vmap_of_jvp_and_of_jacrev) {
  const Tensor x = randu({6, 4}, 91), v = randu({6, 4}, 92);
  auto g = [](const Tensor& t) { return sum(mul(exp(t), tanh(t))); };
  auto jvp_one = xf::MultiFn([&](const std::vector<Tensor>& a) {
    auto [out, tan] = xf::jvp(xf::UnaryFn(g), a[0], a[1]);
    return std::vector<Tensor>{out, tan};
  });
  expect_matches_loop("vmap(jvp)", jvp_one, {x, v});
  auto jac_one = xf::MultiFn([&](const std::vector<Tensor>& a) {
    return std::vector<Tensor>{xf::jacrev(xf::UnaryFn([](const Tensor& t) { return softmax(t, 0); }))(a[0])};
  });
  expect_matches_loop("vmap(jacrev)", jac_one, {x});
}

BOOST_AUTO_TEST_CASE(an_op_without_a_rule_runs_per_sample_and_says_so_once) {
  const Tensor x = randu({3, 4}, 101);
  auto f = xf::vmap(xf::UnaryFn([](const Tensor& t) { return index(t, {indexing::Slice(1, 3)}); }));
  std::string err = capture_stderr([&] {
    expect_close(f(x), slice(x, 1, 1, 3), 0, "index per sample");
    (void)f(x);
  });
  BOOST_CHECK_MESSAGE(err.find("index has no batching rule") != std::string::npos, err);
  BOOST_CHECK_EQUAL(err.find("index has no batching rule"), err.rfind("index has no batching rule"));
}

BOOST_AUTO_TEST_CASE(bad_input_is_refused_with_the_reason) {
  const Tensor x = randu({3, 4}, 111), y = randu({5, 4}, 112);
  auto add2 = xf::vmap(xf::Fn([](const std::vector<Tensor>& a) { return add(a[0], a[1]); }));
  expect_error([&] { add2({x, y}); }, {"vmap", "different sizes", "3", "5"});
  expect_error([&] { xf::vmap(xf::UnaryFn([](const Tensor& t) { return t; }), 2)(x); },
               {"vmap", "in_dims[0] = 2", "[3,4]"});
  expect_error([&] { add2({x}); }, {"vmap", "in_dims has 2 entries"});
  expect_error(
      [&] {
        xf::vmap(xf::Fn([](const std::vector<Tensor>& a) { return a[0]; }), {std::nullopt})({x});
      },
      {"vmap", "no input is mapped"});
  expect_error([&] { xf::vmap(xf::UnaryFn([](const Tensor& t) { return scalar_tensor(t.item()); }))(x); },
               {"vmap", "batched tensor", "[4]"});
  Tensor w = randu({4}, 113).requires_grad_();
  expect_error(
      [&] {
        xf::vmap(xf::UnaryFn([&](const Tensor& t) {
          sum(mul(t, w)).backward();
          return t;
        }))(x);
      },
      {"vmap", "per-sample gradient", "[4]"});
}

BOOST_AUTO_TEST_SUITE_END()

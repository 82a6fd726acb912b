// MultiheadAttention, TransformerEncoderLayer (post- and pre-LayerNorm) and TransformerEncoder
// against torch 1.13 (tests/data/transformer_golden/modules/, tools/make_transformer_golden.py):
// outputs, attention weights, and the gradients of every input and parameter, within 1e-10 in
// float64 and 1e-5 in float32; a torch-trained layer's state_dict loads unchanged.
#include "xgrad/nn/transformer.hpp"

#include <functional>
#include <map>
#include <string>

#include "test_util.hpp"
#include "xgrad/io/module_io.hpp"
#include "xgrad/io/safetensors.hpp"
#include "xgrad/nn/activation.hpp"
#include "xgrad/nn/gpt.hpp"
#include "xgrad/nn/module_list.hpp"
#include "xgrad/ops/elementwise.hpp"
#include "xgrad/ops/reduction.hpp"
#include "xgrad/random.hpp"

using namespace xgrad;
using xgrad::testing::expect_error;
using xgrad::testing::expect_values;
using xgrad::testing::values_of;

namespace {

const std::string kDir = XGRAD_TEST_DATA_DIR "/transformer_golden/modules/";

using Golden = std::map<std::string, Tensor>;

Golden load_case(const std::string& name) {
  return io::load_safetensors(kDir + name + ".safetensors").tensors;
}

void expect_close(const Tensor& actual, const Tensor& expected, double tol,
                  const std::string& what) {
  BOOST_TEST_CONTEXT(what) {
    expect_values(actual, expected.shape(), values_of(expected), tol);
  }
}

double tol_of(Dtype d) {
  return d == float64 ? 1e-10 : 1e-5;
}

// Copies the case's "param.<name>" tensors into the module (strictly: every name must match).
void load_params(nn::Module& m, const Golden& g, Dtype d) {
  nn::NamedTensors sd;
  for (const auto& [k, t] : g)
    if (k.rfind("param.", 0) == 0) sd.emplace_back(k.substr(6), t.to(d));
  m.load_state_dict(sd);
}

// Runs `call` on the case's inputs (as leaves of dtype d), backward of sum(out * grad_output),
// and compares the output, the weights (when given) and every gradient with torch's.
void check_case(
    const std::string& name, nn::Module& m, Dtype d, const std::vector<std::string>& input_names,
    const std::function<std::pair<Tensor, Tensor>(std::map<std::string, Tensor>&)>& call) {
  const Golden g = load_case(name);
  load_params(m, g, d);
  std::map<std::string, Tensor> in;
  for (const auto& k : input_names) in[k] = g.at(k).to(d).requires_grad_();
  auto [out, weights] = call(in);
  const double tol = tol_of(d);
  expect_close(out, g.at("output"), tol, name + " output");
  if (g.count("weights")) expect_close(weights, g.at("weights"), tol, name + " weights");
  sum(out * g.at("grad_output").to(d)).backward();
  for (const auto& [k, t] : in) expect_close(t.grad(), g.at("grad." + k), tol, name + " grad." + k);
  std::size_t n_params = 0;
  for (const auto& [k, p] : m.named_parameters()) {
    expect_close(p.grad(), g.at("grad.param." + k), tol, name + " grad.param." + k);
    ++n_params;
  }
  BOOST_TEST(n_params > 0u);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(transformer)

BOOST_AUTO_TEST_CASE(multihead_attention_with_a_causal_mask_matches_torch) {
  for (Dtype d : {float64, float32}) {
    BOOST_TEST_CONTEXT("dtype " << d) {
      nn::MultiheadAttention mha(8, 2, {.batch_first = true, .dtype = d});
      const Tensor mask = load_case("mha_causal").at("attn_mask");
      check_case("mha_causal", mha, d, {"x"}, [&](auto& in) {
        auto r = mha.forward(in["x"], in["x"], in["x"], {.need_weights = true, .attn_mask = mask});
        return std::pair{r.output, r.weights};
      });
      // The weights respect the mask (pytorch#80494): zero above the diagonal.
      auto r = mha.forward(
          load_case("mha_causal").at("x").to(d), load_case("mha_causal").at("x").to(d),
          load_case("mha_causal").at("x").to(d), {.need_weights = true, .attn_mask = mask});
      BOOST_TEST(values_of(r.weights.index({0, 0}))[4] == 0.0);
      // The fused path (no weights) and is_causal give the same output.
      const Tensor x = load_case("mha_causal").at("x").to(d);
      const Tensor expected = load_case("mha_causal").at("output");
      expect_close(mha.forward(x, x, x, {.attn_mask = mask}).output, expected, tol_of(d), "fused");
      expect_close(mha.forward(x, x, x, {.is_causal = true}).output, expected, tol_of(d),
                   "is_causal");
      BOOST_TEST(!mha.forward(x, x, x, {.is_causal = true}).weights.defined());
    }
  }
}

BOOST_AUTO_TEST_CASE(multihead_attention_with_a_key_padding_mask_matches_torch) {
  for (Dtype d : {float64, float32}) {
    BOOST_TEST_CONTEXT("dtype " << d) {
      nn::MultiheadAttention mha(8, 2, {.dtype = d});  // sequence-first, torch's default
      const Tensor kpm = load_case("mha_key_padding").at("key_padding_mask");
      check_case("mha_key_padding", mha, d, {"query", "key", "value"}, [&](auto& in) {
        auto r = mha.forward(
            in["query"], in["key"], in["value"],
            {.key_padding_mask = kpm, .need_weights = true, .average_attn_weights = false});
        return std::pair{r.output, r.weights};
      });
    }
  }
}

BOOST_AUTO_TEST_CASE(encoder_layer_post_norm_with_padding_matches_torch) {
  for (Dtype d : {float64, float32}) {
    BOOST_TEST_CONTEXT("dtype " << d) {
      nn::TransformerEncoderLayer layer(
          8, 2, {.dim_feedforward = 16, .dropout = 0.0, .batch_first = true, .dtype = d});
      const Tensor kpm = load_case("encoder_post").at("key_padding_mask");
      check_case("encoder_post", layer, d, {"x"}, [&](auto& in) {
        return std::pair{layer.forward(in["x"], Tensor(), kpm), Tensor()};
      });
    }
  }
}

BOOST_AUTO_TEST_CASE(encoder_layer_pre_norm_gelu_causal_matches_torch) {
  for (Dtype d : {float64, float32}) {
    BOOST_TEST_CONTEXT("dtype " << d) {
      nn::TransformerEncoderLayer layer(8, 2,
                                        {.dim_feedforward = 16,
                                         .dropout = 0.0,
                                         .activation = "gelu",
                                         .batch_first = true,
                                         .norm_first = true,
                                         .dtype = d});
      const Tensor mask = load_case("encoder_pre").at("attn_mask");
      check_case("encoder_pre", layer, d, {"x"}, [&](auto& in) {
        return std::pair{layer.forward(in["x"], mask), Tensor()};
      });
      // The same through is_causal (the fused causal path).
      const Tensor x = load_case("encoder_pre").at("x").to(d);
      expect_close(layer.forward(x, Tensor(), Tensor(), true),
                   load_case("encoder_pre").at("output"), tol_of(d), "is_causal");
    }
  }
}

BOOST_AUTO_TEST_CASE(encoder_stack_matches_torch_and_names_its_layers_as_torch) {
  for (Dtype d : {float64, float32}) {
    BOOST_TEST_CONTEXT("dtype " << d) {
      nn::TransformerEncoder enc(8, 2, 2,
                                 {.dim_feedforward = 16,
                                  .dropout = 0.0,
                                  .batch_first = true,
                                  .norm_first = true,
                                  .dtype = d},
                                 /*final_norm=*/true);
      check_case("encoder_stack", enc, d, {"x"}, [&](auto& in) {
        return std::pair{enc(in["x"]), Tensor()};
      });
      const auto sd = enc.state_dict();
      BOOST_TEST(sd.front().first == "layers.0.self_attn.in_proj_weight");
      BOOST_TEST(sd.back().first == "norm.bias");
    }
  }
  // As torch's deep copies, every layer starts with the first one's parameters.
  nn::TransformerEncoder enc(8, 2, 3, {.dim_feedforward = 16});
  BOOST_TEST(values_of(enc.layer(2).linear1->weight) == values_of(enc.layer(0).linear1->weight));
}

BOOST_AUTO_TEST_CASE(torch_trained_encoder_layer_state_dict_loads_unchanged) {
  const Golden g = load_case("trained_encoder_layer");
  nn::TransformerEncoderLayer layer(16, 4,
                                    {.dim_feedforward = 32,
                                     .dropout = 0.1,
                                     .activation = "gelu",
                                     .batch_first = true,
                                     .norm_first = true,
                                     .dtype = float32});
  std::map<std::string, Tensor> sd;
  for (const auto& [k, t] : g)
    if (k.rfind("state.", 0) == 0) sd[k.substr(6)] = t;
  BOOST_TEST(sd.size() == layer.state_dict().size());
  BOOST_TEST(layer.load_state_dict(sd).empty());  // strict: same names, shapes and dtypes
  layer.eval();
  no_grad guard;
  expect_close(layer(g.at("x")), g.at("output"), 1e-5, "trained layer output");
}

BOOST_AUTO_TEST_CASE(parameter_names_and_initialisation_are_torch_s) {
  nn::TransformerEncoderLayer layer(8, 2, {.dim_feedforward = 16});
  std::vector<std::string> names;
  for (const auto& [k, t] : layer.state_dict()) names.push_back(k);
  const std::vector<std::string> expected = {"self_attn.in_proj_weight",
                                             "self_attn.in_proj_bias",
                                             "self_attn.out_proj.weight",
                                             "self_attn.out_proj.bias",
                                             "linear1.weight",
                                             "linear1.bias",
                                             "linear2.weight",
                                             "linear2.bias",
                                             "norm1.weight",
                                             "norm1.bias",
                                             "norm2.weight",
                                             "norm2.bias"};
  BOOST_TEST(names == expected, boost::test_tools::per_element());
  // torch's _reset_parameters: zero biases of the attention, Xavier-uniform in_proj_weight.
  BOOST_TEST(values_of(layer.self_attn->in_proj_bias) == std::vector<double>(24, 0.0));
  BOOST_TEST(values_of(layer.self_attn->out_proj->bias) == std::vector<double>(8, 0.0));
  const double bound = std::sqrt(6.0 / (8 + 24));
  for (double v : values_of(layer.self_attn->in_proj_weight)) BOOST_TEST(std::abs(v) <= bound);
  BOOST_TEST(values_of(layer.norm1->weight) == std::vector<double>(8, 1.0));
}

BOOST_AUTO_TEST_CASE(bad_arguments_are_refused_with_the_shapes) {
  expect_error([] { nn::MultiheadAttention(10, 3); },
               {"embed_dim 10", "not divisible", "num_heads 3"});
  expect_error([] { nn::TransformerEncoderLayer(8, 2, {.activation = "tanh"}); },
               {"relu or gelu", "'tanh'"});
  nn::MultiheadAttention mha(8, 2, {.batch_first = true});
  const Tensor x = randn({2, 5, 8});
  expect_error(
      [&] {
        mha.forward(x, x, x, {.attn_mask = ones({4, 5}, boolean)});
      },
      {"attn_mask of shape [4,5]", "[5,5]"});
  expect_error(
      [&] {
        mha.forward(x, x, x, {.key_padding_mask = ones({2, 4}, boolean)});
      },
      {"key_padding_mask of shape [2,4]", "[2,5]"});
  expect_error([&] { mha.forward(x, x, randn({2, 5, 6})); }, {"embed_dim is 8"});
  expect_error(
      [&] {
        mha.forward(x, x, x, {.attn_mask = ones({5, 5}, boolean), .is_causal = true});
      },
      {"either attn_mask or is_causal"});
  nn::ModuleList list;
  list.push_back(std::make_shared<nn::GELU>());
  expect_error([&] { list[1]; }, {"index 1", "1 module"});
  expect_error([&] { list(x); }, {"ModuleList has no forward"});
}

BOOST_AUTO_TEST_CASE(unbatched_input_equals_a_batch_of_one) {
  manual_seed(1);
  nn::MultiheadAttention mha(8, 4, {.dtype = float64});
  const Tensor x = randn({5, 8}, float64);
  const Tensor y = mha.forward(x, x, x, {.is_causal = true}).output;
  const Tensor y1 =
      mha.forward(x.unsqueeze(1), x.unsqueeze(1), x.unsqueeze(1), {.is_causal = true}).output;
  BOOST_TEST(y.shape() == (Shape{5, 8}));
  expect_values(y, {5, 8}, values_of(y1), 1e-12);
}

BOOST_AUTO_TEST_CASE(gpt_is_causal_and_names_its_parameters) {
  manual_seed(2);
  nn::GPT gpt({.vocab_size = 11,
               .block_size = 8,
               .n_layer = 2,
               .n_head = 2,
               .n_embd = 16,
               .dtype = float64});
  const Tensor idx = tensor({{1, 2, 3, 4, 5, 6}}, int64);
  const Tensor idx2 = tensor({{1, 2, 3, 9, 9, 9}}, int64);
  Tensor a, b;
  {
    no_grad guard;
    a = gpt(idx);
    b = gpt(idx2);
  }
  BOOST_TEST(a.shape() == (Shape{1, 6, 11}));
  // The first three positions cannot see the tokens after them.
  expect_values(a.index({0, indexing::Slice(0, 3)}), {3, 11},
                values_of(b.index({0, indexing::Slice(0, 3)})), 1e-12);
  BOOST_TEST(values_of(a.index({0, 3})) != values_of(b.index({0, 3})));
  const auto sd = gpt.state_dict();
  BOOST_TEST(sd.front().first == "token_embedding.weight");
  BOOST_TEST(sd[2].first == "blocks.0.self_attn.in_proj_weight");
  BOOST_TEST(sd.back().first == "head.bias");
  const Tensor gen = gpt.generate(tensor({{1}}, int64), 12, 0.8, 3);
  BOOST_TEST(gen.shape() == (Shape{1, 13}));  // more than block_size: the context is cropped
  for (double v : values_of(gen.to(float64))) BOOST_TEST((v >= 0 && v < 11));
  expect_error(
      [&] {
        gpt(tensor({{1, 2, 3, 4, 5, 6, 7, 8, 9}}, int64));
      },
      {"sequence length 9", "block_size = 8"});
  expect_error([&] { gpt.generate(tensor({{1}}, int64), 2, 0.0); }, {"temperature"});
}

BOOST_AUTO_TEST_SUITE_END()

// torch_gpt.cpp - the libtorch C++ twin of `xgrad-train --model gpt` for training speed: the
// same character-level GPT (token + position embeddings, n_layer pre-LayerNorm blocks of causal
// multi-head self-attention and a GELU MLP of 4·n_embd, a final LayerNorm, a linear head),
// AdamW (lr 1e-3, betas 0.9/0.99, weight decay 0.1), gradient norm clipped at 1.0, on random
// token batches (the speed does not depend on the text). Defaults: 4 layers, 4 heads, 128
// wide, block 64, batch 32, vocabulary 114 (the fortunes' distinct bytes).
//
//   torch_gpt [--threads N] [--blas-threads M] [--max-steps 60] [--warmup 5] [--seed 42]
//             [--batch-size 32] [--block-size 64] [--n-layer 4] [--n-head 4] [--n-embd 128]
//             [--vocab 114]
//
// libtorch's torch::nn::MultiheadAttention is sequence-first (no batch_first in C++), so the
// whole stack runs on [T, B, C]: the token ids are transposed once, and the logits come out
// [T, B, V] against the transposed targets. It has no norm_first TransformerEncoderLayer
// either, so the block is written out (x + attn(ln1(x)), x + mlp(ln2(x))), as
// torch.nn.TransformerEncoderLayer(norm_first=True) computes it in tools/torch_gpt.py.
//
// Threads: --threads N sets libtorch's intra-op pool; OpenBLAS (where Debian's libtorch does
// its GEMMs, a pool torch::set_num_threads does not reach) gets --blas-threads M, 1 unless
// asked (bench/torch_common.hpp, configure_threads).
//
// Prints one line: RESULT impl=libtorch model=gpt tokens_per_s=... wall_s=... peak_rss_mib=...
// final_loss=... (timing: the --max-steps steps after --warmup untimed ones; each step samples
// its batch, runs forward, backward, clipping and the AdamW step).
#include "torch_common.hpp"

namespace {

struct GptOptions {
  int threads = 1;
  int blas_threads = 1;
  long long max_steps = 60;
  long long warmup = 5;
  std::uint64_t seed = 42;
  std::int64_t batch = 32, block = 64, n_layer = 4, n_head = 4, n_embd = 128, vocab = 114;
};

GptOptions parse(int argc, char** argv) {
  GptOptions o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      std::printf(
          "usage: %s [--threads N] [--blas-threads M] [--max-steps N] [--warmup N] [--seed N]\n"
          "          [--batch-size N] [--block-size N] [--n-layer N] [--n-head N] [--n-embd N]\n"
          "          [--vocab N]\n",
          argv[0]);
      std::exit(0);
    }
    if (i + 1 >= argc) {
      std::fprintf(stderr, "error: unknown flag or missing value: %s\n", a.c_str());
      std::exit(2);
    }
    const long long v = bench::parse_int(a.c_str(), argv[++i]);
    if (a == "--threads") {
      o.threads = static_cast<int>(v);
    } else if (a == "--blas-threads") {
      o.blas_threads = static_cast<int>(v);
    } else if (a == "--max-steps") {
      o.max_steps = v;
    } else if (a == "--warmup") {
      o.warmup = v;
    } else if (a == "--seed") {
      o.seed = static_cast<std::uint64_t>(v);
    } else if (a == "--batch-size") {
      o.batch = v;
    } else if (a == "--block-size") {
      o.block = v;
    } else if (a == "--n-layer") {
      o.n_layer = v;
    } else if (a == "--n-head") {
      o.n_head = v;
    } else if (a == "--n-embd") {
      o.n_embd = v;
    } else if (a == "--vocab") {
      o.vocab = v;
    } else {
      std::fprintf(stderr, "error: unknown flag: %s\n", a.c_str());
      std::exit(2);
    }
  }
  if (o.threads < 1 || o.blas_threads < 1 || o.max_steps < 1 || o.warmup < 0 || o.batch < 1 ||
      o.block < 1 || o.n_layer < 1 || o.n_head < 1 || o.n_embd < 1 || o.vocab < 1 ||
      o.n_embd % o.n_head != 0) {
    std::fprintf(stderr,
                 "error: sizes, --threads, --blas-threads and --max-steps must be >= 1, "
                 "--warmup >= 0, and --n-embd divisible by --n-head\n");
    std::exit(2);
  }
  return o;
}

// One pre-LayerNorm block on [T, B, C].
struct BlockImpl : torch::nn::Module {
  BlockImpl(std::int64_t C, std::int64_t H)
      : self_attn(register_module("self_attn",
                                  torch::nn::MultiheadAttention(
                                      torch::nn::MultiheadAttentionOptions(C, H).dropout(0.0)))),
        linear1(register_module("linear1", torch::nn::Linear(C, 4 * C))),
        linear2(register_module("linear2", torch::nn::Linear(4 * C, C))),
        norm1(register_module("norm1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({C})))),
        norm2(register_module("norm2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({C})))) {}

  torch::Tensor forward(torch::Tensor x, const torch::Tensor& causal_mask) {
    torch::Tensor h = norm1->forward(x);
    x = x + std::get<0>(self_attn->forward(h, h, h, /*key_padding_mask=*/{},
                                           /*need_weights=*/false, causal_mask));
    return x + linear2->forward(torch::gelu(linear1->forward(norm2->forward(x))));
  }

  torch::nn::MultiheadAttention self_attn;
  torch::nn::Linear linear1, linear2;
  torch::nn::LayerNorm norm1, norm2;
};
TORCH_MODULE(Block);

struct GptImpl : torch::nn::Module {
  explicit GptImpl(const GptOptions& o)
      : token_embedding(
            register_module("token_embedding", torch::nn::Embedding(o.vocab, o.n_embd))),
        position_embedding(
            register_module("position_embedding", torch::nn::Embedding(o.block, o.n_embd))),
        blocks(register_module("blocks", torch::nn::ModuleList())),
        ln_f(
            register_module("ln_f", torch::nn::LayerNorm(torch::nn::LayerNormOptions({o.n_embd})))),
        head(register_module("head", torch::nn::Linear(o.n_embd, o.vocab))) {
    for (std::int64_t i = 0; i < o.n_layer; ++i) blocks->push_back(Block(o.n_embd, o.n_head));
    // GPT-2's initialisation, as tools/torch_gpt.py and nn::GPT.
    torch::NoGradGuard no_grad;
    const double std = 0.02, proj = 0.02 / std::sqrt(2.0 * static_cast<double>(o.n_layer));
    for (auto& item : named_parameters()) {
      const std::string& name = item.key();
      torch::Tensor& p = item.value();
      if (name.find("norm") != std::string::npos || name.rfind("ln_f", 0) == 0) continue;
      const bool is_bias = name.size() >= 4 && name.compare(name.size() - 4, 4, "bias") == 0;
      const bool is_proj = name.find("out_proj.weight") != std::string::npos ||
                           name.find("linear2.weight") != std::string::npos;
      if (is_bias)
        p.zero_();
      else
        p.normal_(0.0, is_proj ? proj : std);
    }
    mask = torch::full({o.block, o.block}, -std::numeric_limits<float>::infinity()).triu(1);
  }

  // idx [T, B] -> logits [T, B, V].
  torch::Tensor forward(const torch::Tensor& idx) {
    const std::int64_t T = idx.size(0);
    torch::Tensor h = token_embedding->forward(idx) +
                      position_embedding->forward(torch::arange(T, torch::kLong)).unsqueeze(1);
    const torch::Tensor m = mask.slice(0, 0, T).slice(1, 0, T);
    for (const auto& b : *blocks) h = b->as<BlockImpl>()->forward(h, m);
    return head->forward(ln_f->forward(h));
  }

  torch::nn::Embedding token_embedding, position_embedding;
  torch::nn::ModuleList blocks;
  torch::nn::LayerNorm ln_f;
  torch::nn::Linear head;
  torch::Tensor mask;
};
TORCH_MODULE(Gpt);

}  // namespace

int main(int argc, char** argv) {
  const GptOptions o = parse(argc, argv);
  bench::tune_malloc();
  const int blas = bench::configure_threads(o.threads, o.blas_threads);
  torch::manual_seed(static_cast<std::int64_t>(o.seed));
  Gpt model(o);
  std::int64_t n_params = 0;
  for (const auto& p : model->parameters()) n_params += p.numel();
  std::vector<torch::Tensor> params = model->parameters();
  torch::optim::AdamW opt(
      params, torch::optim::AdamWOptions(1e-3).betas(std::make_tuple(0.9, 0.99)).weight_decay(0.1));
  std::fprintf(stderr,
               "torch_gpt: %.2fM parameters, %lld layers, %lld heads, %lld wide, block %lld, "
               "batch %lld; threads %d (interop %d), openblas %s\n",
               static_cast<double>(n_params) / 1e6, static_cast<long long>(o.n_layer),
               static_cast<long long>(o.n_head), static_cast<long long>(o.n_embd),
               static_cast<long long>(o.block), static_cast<long long>(o.batch),
               at::get_num_threads(), at::get_num_interop_threads(),
               blas > 0 ? std::to_string(blas).c_str() : "default");

  double last_loss = 0;
  auto step = [&] {
    // Random ids: [T + 1, B], inputs the first T rows, targets the last T.
    const torch::Tensor ids = torch::randint(0, o.vocab, {o.block + 1, o.batch}, torch::kLong);
    const torch::Tensor x = ids.slice(0, 0, o.block), y = ids.slice(0, 1, o.block + 1);
    const torch::Tensor logits = model->forward(x);
    torch::Tensor loss =
        torch::nn::functional::cross_entropy(logits.reshape({-1, o.vocab}), y.reshape({-1}));
    opt.zero_grad();
    loss.backward();
    torch::nn::utils::clip_grad_norm_(params, 1.0);
    opt.step();
    last_loss = loss.item<double>();
  };
  for (long long i = 0; i < o.warmup; ++i) step();
  const auto t0 = std::chrono::steady_clock::now();
  for (long long i = 0; i < o.max_steps; ++i) step();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double tokens = static_cast<double>(o.max_steps * o.batch * o.block);
  std::printf(
      "RESULT impl=libtorch model=gpt threads=%d blas_threads=%d steps=%lld tokens_per_s=%.1f "
      "wall_s=%.3f peak_rss_mib=%.1f final_loss=%.4f\n",
      o.threads, o.blas_threads, o.max_steps, tokens / std::max(secs, 1e-9), secs,
      bench::peak_rss_mib(), last_loss);
  return 0;
}

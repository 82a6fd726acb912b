// xgrad_infer: inference speed of xgrad-train's models over the Fashion-MNIST test set, the
// xgrad side of `torch_mlp --infer-passes N` / `torch_cnn --infer-passes N` (torch_common.hpp).
//
//   build/bench/xgrad_infer [--model mlp|cnn] [--data DIR] [--threads T] [--passes N] [--seed S]
//
// The 10,000 test images are converted to one float32 tensor [10000, 784] once, outside the
// timed loop. Each pass runs the freshly initialised model (inference speed does not depend on
// the weights; flush-to-zero is on, as in xgrad-train) under no_grad and in eval mode on batches
// of 1,000 rows (views of that tensor), takes the argmax and counts the correct predictions,
// as xgrad-train's evaluate() and the libtorch twin do. One untimed warm-up pass, then N timed
// passes; prints the median pass as
//
//   RESULT impl=xgrad model=<mlp|cnn> infer_samples_per_s=<float> correct=<count>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <numeric>
#include <string>
#include <vector>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "bench_util.hpp"
#include "xgrad/xgrad.hpp"

using namespace xgrad;

int main(int argc, char** argv) {
  std::string model_name = "mlp", data = "/usr/share/datasets/fashion-mnist";
  int threads = 1, passes = 5;
  std::uint64_t seed = 42;
  for (int i = 1; i < argc; ++i) {
    const bool has = i + 1 < argc;
    if (std::strcmp(argv[i], "--model") == 0 && has) {
      model_name = argv[++i];
    } else if (std::strcmp(argv[i], "--data") == 0 && has) {
      data = argv[++i];
    } else if (std::strcmp(argv[i], "--threads") == 0 && has) {
      threads = std::atoi(argv[++i]);
    } else if (std::strcmp(argv[i], "--passes") == 0 && has) {
      passes = std::atoi(argv[++i]);
    } else if (std::strcmp(argv[i], "--seed") == 0 && has) {
      seed = std::strtoull(argv[++i], nullptr, 10);
    } else {
      std::fprintf(stderr,
                   "usage: xgrad_infer [--model mlp|cnn] [--data DIR] [--threads T] [--passes N] "
                   "[--seed S]\n");
      return 2;
    }
  }
  if ((model_name != "mlp" && model_name != "cnn") || threads < 1 || passes < 1) {
    std::fprintf(stderr, "xgrad_infer: --model must be mlp or cnn, --threads and --passes >= 1\n");
    return 2;
  }
#if defined(__GLIBC__)
  // The malloc thresholds xgrad-train pins (and the libtorch twin's tune_malloc): without them a
  // [1000, 256] activation is a fresh mmap, page-faulted in on every batch.
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 64 << 20);
#endif
  set_num_threads(threads);
  set_flush_denormal(true);
  manual_seed(seed);

  const data::MnistDataset test(data, data::Split::test);
  std::vector<std::int64_t> all(static_cast<std::size_t>(test.size()));
  std::iota(all.begin(), all.end(), 0);
  const data::Batch whole = test.get_batch(all);  // float32 [N, 784] and int64 [N], once
  const std::int64_t n = test.size();

  std::unique_ptr<nn::Module> model;
  if (model_name == "cnn")
    model = std::make_unique<nn::CNN>();
  else
    model = std::make_unique<nn::MLP>(std::vector<std::int64_t>{784, 256, 128, 10});
  model->eval();

  constexpr std::int64_t kBatch = 1000;
  std::vector<double> secs;
  std::int64_t correct = 0;
  for (int p = 0; p <= passes; ++p) {
    const double s = bench::seconds([&] {
      no_grad guard;
      correct = 0;
      for (std::int64_t b = 0; b < n; b += kBatch) {
        const std::int64_t e = std::min(n, b + kBatch);
        const Tensor logits = (*model)(whole.inputs.index({indexing::Slice(b, e)}));
        const Tensor pred = argmax(logits, 1);
        const std::int64_t* pp = pred.data_ptr<std::int64_t>();
        const std::int64_t* lp = whole.labels.data_ptr<std::int64_t>() + b;
        for (std::int64_t i = 0; i < e - b; ++i) correct += pp[i] == lp[i];
      }
    });
    if (p > 0) secs.push_back(s);  // pass 0 warms up
  }
  std::printf("RESULT impl=xgrad model=%s infer_samples_per_s=%.1f correct=%lld\n",
              model_name.c_str(), static_cast<double>(n) / bench::median(secs),
              static_cast<long long>(correct));
  return 0;
}

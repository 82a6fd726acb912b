// checkpoint_bench: one training step (forward, backward, Adam step) of a deep MLP, plain and
// with activation checkpointing (xgrad::checkpoint, Chen et al. 2016), side by side: checks
// that the gradients are bit-identical and prints the peak memory and the time of each.
//   checkpoint_bench [--layers 16] [--width 1024] [--batch 256] [--steps 3] [--segment 4]
// Variants: "plain"; "ckpt/1": every Linear+ReLU layer under checkpoint (what the issue asks);
// "ckpt/S": blocks of S layers under checkpoint (--segment, default 4 = √16, Chen et al.'s
// choice: √n stored inputs plus one block's activations at a time). All three start from the
// same weights and see the same batch, so their gradients and weights must stay bit-identical.
//
// Memory: the step's peak of xgrad::memory_allocated() (bytes held by tensor storages).
// "activations" = peak − what was held when the step began: the parameters, their gradients
// (zeroed in place, not freed, so that they are there all step long), Adam's two moment
// buffers and the batch — i.e. the activations, their gradients and temporaries. "total" =
// activations + parameters + gradients + Adam's state of that variant. Exit status 1 when a
// gradient or weight differs.
#include <malloc.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "xgrad/xgrad.hpp"

using namespace xgrad;

namespace {

struct Options {
  int layers = 16;
  std::int64_t width = 1024;
  std::int64_t batch = 256;
  int steps = 3;
  int segment = 4;
};

struct Variant {
  std::string name;
  int segment = 0;  // 0: no checkpoint; k: blocks of k layers under checkpoint
  std::vector<std::shared_ptr<nn::Linear>> layers;
  std::unique_ptr<optim::Adam> adam;
  std::vector<double> seconds;
  std::vector<std::int64_t> activation_bytes;

  Tensor run_layers(std::size_t begin, std::size_t end, const Tensor& x) {
    Tensor h = x;
    for (std::size_t i = begin; i < end; ++i) h = relu((*layers[i])(h));
    return h;
  }
  Tensor forward(const Tensor& x) {
    if (segment == 0) return run_layers(0, layers.size(), x);
    Tensor h = x;
    for (std::size_t b = 0; b < layers.size(); b += static_cast<std::size_t>(segment)) {
      const std::size_t e = std::min(layers.size(), b + static_cast<std::size_t>(segment));
      h = checkpoint(
          [this, b, e](const std::vector<Tensor>& xs) { return run_layers(b, e, xs[0]); }, {h});
    }
    return h;
  }
  std::vector<Tensor> parameters() const {
    std::vector<Tensor> ps;
    for (const auto& l : layers)
      for (const Tensor& p : l->parameters()) ps.push_back(p);
    return ps;
  }
};

bool same_bytes(const Tensor& a, const Tensor& b) {
  if (!a.defined() || !b.defined() || a.shape() != b.shape() || a.dtype() != b.dtype())
    return false;
  const Tensor ca = a.contiguous(), cb = b.contiguous();
  return std::memcmp(ca.raw_data(), cb.raw_data(),
                     static_cast<std::size_t>(ca.numel()) * element_size(ca.dtype())) == 0;
}

double mib(std::int64_t bytes) {
  return static_cast<double>(bytes) / (1024.0 * 1024.0);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// One step; records time and activation memory when `measure`.
void step(Variant& v, const Tensor& x, const Tensor& target, bool measure) {
  v.adam->zero_grad(/*set_to_none=*/false);
  const std::int64_t base = memory_allocated();
  reset_peak_memory_stats();
  const auto t0 = std::chrono::steady_clock::now();
  Tensor loss = mse_loss(v.forward(x), target);
  loss.backward();
  v.adam->step();
  const auto t1 = std::chrono::steady_clock::now();
  if (!measure) return;
  v.seconds.push_back(std::chrono::duration<double>(t1 - t0).count());
  v.activation_bytes.push_back(max_memory_allocated() - base);
}

int parse_int(const char* s, const char* flag) {
  char* end = nullptr;
  const long v = std::strtol(s, &end, 10);
  if (end == s || *end != '\0' || v <= 0) {
    std::fprintf(stderr, "checkpoint_bench: %s needs a positive integer, got %s\n", flag, s);
    std::exit(2);
  }
  return static_cast<int>(v);
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) {
      std::fprintf(stderr, "checkpoint_bench: %s needs a value\n", a.c_str());
      return 2;
    }
    const int v = parse_int(argv[++i], a.c_str());
    if (a == "--layers")
      o.layers = v;
    else if (a == "--width")
      o.width = v;
    else if (a == "--batch")
      o.batch = v;
    else if (a == "--steps")
      o.steps = v;
    else if (a == "--segment")
      o.segment = v;
    else {
      std::fprintf(stderr, "checkpoint_bench: unknown option %s\n", a.c_str());
      return 2;
    }
  }
  // As xgrad-train: fixed malloc thresholds, so that every variant's large buffers are reused
  // instead of mapped and faulted in again on each step (the times compare the compute).
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 64 << 20);

  std::vector<Variant> variants(3);
  variants[0].name = "plain";
  variants[1].name = "ckpt/1";
  variants[1].segment = 1;
  variants[2].name = "ckpt/" + std::to_string(o.segment);
  variants[2].segment = o.segment;
  for (Variant& v : variants) {
    manual_seed(42);  // the same weights in every variant
    for (int i = 0; i < o.layers; ++i)
      v.layers.push_back(std::make_shared<nn::Linear>(o.width, o.width));
    v.adam = std::make_unique<optim::Adam>(v.parameters(), optim::AdamOptions(1e-4));
  }
  std::int64_t param_bytes = 0;
  for (const Tensor& p : variants[0].parameters()) param_bytes += p.numel() * 4;
  const std::int64_t state_bytes = 4 * param_bytes;  // parameters, gradients, Adam's m and v

  std::printf(
      "checkpoint_bench: %d x (Linear %lld->%lld + ReLU), batch %lld, float32, MSE, Adam; "
      "%d measured steps after 1 warm-up, %d thread(s)\n",
      o.layers, static_cast<long long>(o.width), static_cast<long long>(o.width),
      static_cast<long long>(o.batch), o.steps, get_num_threads());
  std::printf("parameters %.1f MiB; parameters + gradients + Adam state %.1f MiB per variant\n",
              mib(param_bytes), mib(state_bytes));
  bool identical = true;
  for (int s = 0; s <= o.steps; ++s) {
    manual_seed(1000 + static_cast<std::uint64_t>(s));
    const Tensor x = randn({o.batch, o.width});
    const Tensor target = randn({o.batch, o.width});
    for (Variant& v : variants) step(v, x, target, s > 0);
    // Gradients of this step and the updated weights, against the plain run's.
    const auto ref = variants[0].parameters();
    for (std::size_t k = 1; k < variants.size(); ++k) {
      const auto ps = variants[k].parameters();
      for (std::size_t i = 0; i < ps.size(); ++i) {
        if (!same_bytes(ps[i].grad(), ref[i].grad()) || !same_bytes(ps[i], ref[i])) {
          if (identical)
            std::printf("MISMATCH: %s, step %d, parameter %zu differs from plain\n",
                        variants[k].name.c_str(), s, i);
          identical = false;
        }
      }
    }
  }
  std::printf("gradients and weights bit-identical to plain in every step: %s\n",
              identical ? "yes" : "NO");
  std::printf("%-8s %18s %14s %16s\n", "variant", "activations MiB", "total MiB",
              "step s (median)");
  for (const Variant& v : variants) {
    const std::int64_t act =
        *std::max_element(v.activation_bytes.begin(), v.activation_bytes.end());
    std::printf("%-8s %18.1f %14.1f %16.3f\n", v.name.c_str(), mib(act), mib(act + state_bytes),
                median(v.seconds));
  }
  const auto peak = [&](const Variant& v) {
    return static_cast<double>(
        *std::max_element(v.activation_bytes.begin(), v.activation_bytes.end()));
  };
  for (std::size_t k = 1; k < variants.size(); ++k) {
    const double act = 1.0 - peak(variants[k]) / peak(variants[0]);
    const double total =
        1.0 - (peak(variants[k]) + state_bytes) / (peak(variants[0]) + state_bytes);
    std::printf(
        "%s vs plain: activation peak %.1f %% lower (goal >= 40 %%), total peak %.1f %% lower, "
        "step time x%.2f\n",
        variants[k].name.c_str(), 100 * act, 100 * total,
        median(variants[k].seconds) / median(variants[0].seconds));
  }
  return identical ? 0 : 1;
}

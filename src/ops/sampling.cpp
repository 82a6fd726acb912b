// multinomial: inverse-CDF draws on the default generator.
#include "xgrad/ops/sampling.hpp"

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "xgrad/autograd/batching.hpp"
#include "xgrad/ops/shape.hpp"
#include "xgrad/random.hpp"

namespace xgrad {

namespace {

// The first index whose cumulative weight exceeds u (u in [0, total)); rounding at the end
// falls back to the last category of nonzero weight.
std::int64_t locate(const std::vector<double>& w, double u) {
  double cum = 0;
  std::int64_t last = -1;
  for (std::size_t i = 0; i < w.size(); ++i) {
    if (w[i] <= 0) continue;
    cum += w[i];
    last = static_cast<std::int64_t>(i);
    if (u < cum) return last;
  }
  return last;
}

}  // namespace

Tensor multinomial(const Tensor& probs, std::int64_t num_samples, bool replacement) {
  if (autograd::any_batched(probs))  // every row draws on its own: rows of all samples at once
    return autograd::vmap_op("multinomial", {probs}, [&](const autograd::BatchedArgs& p) {
      if (p.logical_dim(0) == 1) return multinomial(p[0], num_samples, replacement);
      const Shape s = p[0].shape();
      check(s.size() == 3, "multinomial: expected probabilities of shape [C] or [N, C]");
      return reshape(multinomial(reshape(p[0], {s[0] * s[1], s[2]}), num_samples, replacement),
                     {s[0], s[1], num_samples});
    });
  check(probs.defined(), "multinomial: undefined input");
  check(is_floating(probs.dtype()), "multinomial: expected a float32 or float64 tensor, got ",
        dtype_name(probs.dtype()), " of shape ", probs.shape());
  check(probs.dim() == 1 || probs.dim() == 2,
        "multinomial: expected probabilities of shape [C] or [N, C], got ", probs.shape());
  check(num_samples > 0, "multinomial: num_samples must be positive, got ", num_samples);
  const std::int64_t C = probs.shape().back();
  const std::int64_t N = probs.dim() == 2 ? probs.shape()[0] : 1;
  check(C > 0, "multinomial: no categories in probabilities of shape ", probs.shape());
  Tensor pd = probs.detach().to(Dtype::float64).contiguous();
  const double* pp = pd.data_ptr<double>();
  Tensor out = empty(probs.dim() == 2 ? Shape{N, num_samples} : Shape{num_samples}, Dtype::int64);
  std::int64_t* po = out.data_ptr<std::int64_t>();
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  auto& gen = default_generator();
  std::vector<double> w(static_cast<std::size_t>(C));
  for (std::int64_t r = 0; r < N; ++r) {
    double total = 0;
    std::int64_t nonzero = 0;
    for (std::int64_t c = 0; c < C; ++c) {
      const double v = pp[r * C + c];
      check(std::isfinite(v) && v >= 0,
            "multinomial: probabilities must be finite and "
            "non-negative, got ",
            v, " at row ", r, " of a tensor of shape ", probs.shape());
      w[static_cast<std::size_t>(c)] = v;
      total += v;
      nonzero += v > 0;
    }
    check(total > 0, "multinomial: row ", r, " of probabilities of shape ", probs.shape(),
          " sums to 0");
    check(replacement || num_samples <= nonzero, "multinomial: cannot draw ", num_samples,
          " samples without replacement from ", nonzero,
          " categories with nonzero probability (row ", r, " of shape ", probs.shape(), ")");
    for (std::int64_t s = 0; s < num_samples; ++s) {
      const std::int64_t c = locate(w, uniform(gen) * total);
      po[r * num_samples + s] = c;
      if (!replacement) {
        total -= w[static_cast<std::size_t>(c)];
        w[static_cast<std::size_t>(c)] = 0;
        // Recompute the total now and then so that repeated subtraction cannot drift.
        if (total <= 0 || s % 64 == 63) {
          total = 0;
          for (double v : w) total += v;
        }
      }
    }
  }
  return out;
}

}  // namespace xgrad

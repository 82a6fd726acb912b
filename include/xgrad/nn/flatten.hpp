// Flatten: merges a range of dimensions into one (torch.nn.Flatten).
#pragma once

#include "xgrad/nn/module.hpp"

namespace xgrad::nn {

/// forward(x) = flatten(x, start_dim, end_dim) (a view for contiguous x); the defaults keep
/// the batch dimension: [N, C, H, W] -> [N, C·H·W]. Negative dims count from the end. forward
/// throws xgrad::Error naming "flatten" and the shape when a dim is out of range.
class Flatten : public Module {
 public:
  explicit Flatten(std::int64_t start_dim = 1, std::int64_t end_dim = -1)
      : start_dim_(start_dim), end_dim_(end_dim) {}
  std::string type_name() const override { return "Flatten"; }

 protected:
  Tensor forward(const Tensor& x) override;

 private:
  std::int64_t start_dim_, end_dim_;
};

}  // namespace xgrad::nn

#include "xgrad/autograd/function.hpp"

namespace xgrad::autograd {

void FunctionCtx::save_for_backward(std::vector<Tensor> tensors) {
  saved_.clear();
  for (const Tensor& t : tensors) saved_.emplace_back(t);
}

std::vector<Tensor> FunctionCtx::saved_tensors() const {
  std::vector<Tensor> out;
  out.reserve(saved_.size());
  for (const auto& s : saved_) out.push_back(s.unpack(op_));
  return out;
}

}  // namespace xgrad::autograd

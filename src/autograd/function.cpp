#include "xgrad/autograd/function.hpp"

namespace xgrad::autograd {

void FunctionCtx::save_for_backward(std::vector<Tensor> tensors) {
  pending_ = std::move(tensors);
  handles_.clear();
}

void FunctionCtx::commit(Node& node) {
  handles_.clear();
  for (const Tensor& t : pending_) handles_.push_back(node.save(t));
  pending_.clear();  // the node's store holds them now (an output without its own node)
}

std::vector<Tensor> FunctionCtx::saved_tensors() const {
  if (!pending_.empty()) return pending_;  // not recorded (yet): jvp() during apply
  std::vector<Tensor> out;
  out.reserve(handles_.size());
  for (const Saved& s : handles_) out.push_back(node_->saved(s));
  return out;
}

}  // namespace xgrad::autograd

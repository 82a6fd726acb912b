// func::functional_call: a module's forward with substituted parameters and buffers.
#include "xgrad/func.hpp"

namespace xgrad::func {

namespace {
// Puts the module's own tensors back when the call ends, by return or by exception.
class Restore {
 public:
  Restore(nn::Module& m, nn::NamedTensors previous) : m_(m), previous_(std::move(previous)) {}
  ~Restore() { m_.swap_tensors(std::map<std::string, Tensor>(previous_.begin(), previous_.end())); }
  Restore(const Restore&) = delete;
  Restore& operator=(const Restore&) = delete;

 private:
  nn::Module& m_;
  nn::NamedTensors previous_;
};
}  // namespace

Tensor functional_call(nn::Module& module, const std::map<std::string, Tensor>& params_and_buffers,
                       const Tensor& inputs) {
  Restore restore(module, module.swap_tensors(params_and_buffers));
  return module(inputs);
}

}  // namespace xgrad::func

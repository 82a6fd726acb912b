// Grad mode: whether ops record graph nodes. Per thread, as in torch.
#pragma once

namespace xgrad {

/// True when ops record the graph on this thread (the default).
bool is_grad_enabled();
/// Turns recording on or off for this thread.
void set_grad_enabled(bool enabled);

/// RAII guard: no graph is recorded while it lives (torch.no_grad / torch::NoGradGuard).
/// Ops then cost what their kernels cost. Restores the previous mode on destruction.
class no_grad {
 public:
  no_grad() : prev_(is_grad_enabled()) { set_grad_enabled(false); }
  ~no_grad() { set_grad_enabled(prev_); }
  no_grad(const no_grad&) = delete;
  no_grad& operator=(const no_grad&) = delete;

 private:
  bool prev_;
};
using NoGradGuard = no_grad;

/// RAII guard that turns recording back on inside a no_grad region (torch.enable_grad).
class enable_grad {
 public:
  enable_grad() : prev_(is_grad_enabled()) { set_grad_enabled(true); }
  ~enable_grad() { set_grad_enabled(prev_); }
  enable_grad(const enable_grad&) = delete;
  enable_grad& operator=(const enable_grad&) = delete;

 private:
  bool prev_;
};

}  // namespace xgrad

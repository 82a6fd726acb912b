// Uses the user-defined swish op like a built-in one and proves its backward with gradcheck.
// Exit code 0 when gradcheck passes (CI runs this program).
#include <iostream>

#include "swish.hpp"

int main() {
  using namespace xgrad;
  manual_seed(0);
  Tensor x = randn({3, 4}, float64).requires_grad_();

  // Forward and backward like any op; the graph node is named "swish".
  Tensor y = swish(x, 1.5).sum();
  y.backward();
  std::cout << "swish(x).sum() = " << y.item() << "\n";
  std::cout << "grad node: " << y.grad_fn()->name() << " <- "
            << y.grad_fn()->next_edges()[0].fn->name() << "\n";

  // Finite differences agree with the hand-written backward (tight tolerances).
  GradcheckResult r = gradcheck([](const std::vector<Tensor>& in) { return swish(in[0], 1.5); },
                                {x}, 1e-6, 1e-7, 1e-5);
  std::cout << r.message << "\n";
  return r.ok ? 0 : 1;
}

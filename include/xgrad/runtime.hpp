// Process-wide numeric switches that torch has too.
#pragma once

namespace xgrad {

/// Turns flush-to-zero and denormals-are-zero on or off for the calling thread (x86 MXCSR;
/// torch.set_flush_denormal). Adam's moments of units that stop receiving gradient decay into
/// the subnormal range, where every operation costs ~100 cycles: training loops turn this on.
/// Returns false when the CPU has no such mode (then nothing changes).
bool set_flush_denormal(bool on);

}  // namespace xgrad

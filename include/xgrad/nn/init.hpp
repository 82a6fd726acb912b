// Parameter initialisers (torch.nn.init), in place under no_grad, drawing from the default
// generator that xgrad::manual_seed seeds. Each returns its argument. Fans are computed as
// torch does: for a [out, in, k...] tensor, fan_in = in·k..., fan_out = out·k....
#pragma once

#include <string>

#include "xgrad/tensor.hpp"

namespace xgrad::nn::init {

enum class FanMode { fan_in, fan_out };

/// Fills from N(mean, std²).
Tensor& normal_(Tensor& t, double mean = 0.0, double std = 1.0);
/// Fills from U(a, b).
Tensor& uniform_(Tensor& t, double a = 0.0, double b = 1.0);
Tensor& zeros_(Tensor& t);
Tensor& constant_(Tensor& t, double value);
/// Recommended gain of a nonlinearity: linear/sigmoid 1, tanh 5/3, relu √2,
/// leaky_relu √(2/(1+slope²)). Throws for an unknown name.
double calculate_gain(const std::string& nonlinearity, double param = 0.01);
/// Glorot & Bengio 2010: U(-a, a), a = gain·√(6/(fan_in+fan_out)).
Tensor& xavier_uniform_(Tensor& t, double gain = 1.0);
/// Glorot & Bengio 2010: N(0, std²), std = gain·√(2/(fan_in+fan_out)).
Tensor& xavier_normal_(Tensor& t, double gain = 1.0);
/// He et al. 2015: U(-b, b), b = gain·√(3/fan), gain = calculate_gain(nonlinearity, a).
Tensor& kaiming_uniform_(Tensor& t, double a = 0.0, FanMode mode = FanMode::fan_in,
                         const std::string& nonlinearity = "leaky_relu");
/// He et al. 2015: N(0, std²), std = gain/√fan.
Tensor& kaiming_normal_(Tensor& t, double a = 0.0, FanMode mode = FanMode::fan_in,
                        const std::string& nonlinearity = "leaky_relu");
/// (fan_in, fan_out) of a tensor with at least 2 dimensions; throws otherwise.
std::pair<double, double> fans(const Tensor& t);

}  // namespace xgrad::nn::init

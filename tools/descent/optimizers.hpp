// xgrad-descent's optimizer configurations: one --optim NAME with its options, its label
// ("adam(lr=0.01,amsgrad)", as tools/make_optim_golden.py writes them) and the optimizer it
// builds. Included by tools/xgrad-descent.cpp only.
#pragma once

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "xgrad/optim/adam.hpp"
#include "xgrad/optim/adamw.hpp"
#include "xgrad/optim/rmsprop.hpp"
#include "xgrad/optim/sgd.hpp"

namespace descent {

using xgrad::Tensor;

/// A usage error: reported on one line with "(see --help)", exit code 2.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

template <class... Parts>
[[noreturn]] void usage_error(const Parts&... parts) {
  std::ostringstream os;
  (os << ... << parts);
  throw UsageError(os.str());
}

/// The shortest "%.{p}g" (p = 1..17) that reads back as v, as tools/make_optim_golden.py's
/// fmt_number: 0.01, 0.001, 1e-08.
inline std::string format_number(double v) {
  char buf[64];
  for (int p = 1; p <= 17; ++p) {
    std::snprintf(buf, sizeof buf, "%.*g", p, v);
    if (std::strtod(buf, nullptr) == v) return buf;
  }
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

inline std::string format_value(double v) {
  if (std::isnan(v)) return "nan";  // as Python writes any NaN (printf may say "-nan")
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

/// Per optimizer: its options (as on the command line, betas as beta1/beta2, flags as 0/1)
/// with their defaults, in label order as make_optim_golden.py's DEFAULTS.
using Defaults = std::vector<std::pair<std::string, double>>;
inline const std::map<std::string, Defaults> kDefaults = {
    {"sgd",
     {{"lr", 1e-3}, {"momentum", 0}, {"dampening", 0}, {"nesterov", 0}, {"weight-decay", 0}}},
    {"rmsprop",
     {{"lr", 1e-2},
      {"alpha", 0.99},
      {"eps", 1e-8},
      {"weight-decay", 0},
      {"momentum", 0},
      {"centered", 0}}},
    {"adam",
     {{"lr", 1e-3},
      {"beta1", 0.9},
      {"beta2", 0.999},
      {"eps", 1e-8},
      {"weight-decay", 0},
      {"amsgrad", 0}}},
    {"adamw",
     {{"lr", 1e-3},
      {"beta1", 0.9},
      {"beta2", 0.999},
      {"eps", 1e-8},
      {"weight-decay", 1e-2},
      {"amsgrad", 0}}},
    // Newton's method (newton.hpp): a full step has lr 1; damping adds λ·I to the Hessian.
    {"newton", {{"lr", 1.0}, {"damping", 0}}}};
inline const std::set<std::string> kFlags = {"nesterov", "centered", "amsgrad"};

/// One --optim NAME with its options, defaults filled in.
struct OptimConfig {
  std::string name;
  std::map<std::string, double> values;

  explicit OptimConfig(const std::string& n) : name(n) {
    if (!kDefaults.count(n))
      usage_error("--optim: unknown optimizer '", n,
                  "' (choose sgd, rmsprop, adam, adamw or newton)");
    values.insert(kDefaults.at(n).begin(), kDefaults.at(n).end());
  }
  bool has(const std::string& option) const {
    return values.count(option == "betas" ? "beta1" : option);
  }
  std::string options_list() const {
    std::string s;
    for (auto& [k, v] : kDefaults.at(name))
      if (k != "beta2") s += (s.empty() ? "--" : " --") + (k == "beta1" ? std::string("betas") : k);
    return s;
  }
  /// The label: name(lr=...,<options that differ from the defaults>), torch's option names.
  std::string label() const {
    std::string body;
    auto add = [&](const std::string& part) { body += (body.empty() ? "" : ",") + part; };
    for (auto& [k, def] : kDefaults.at(name)) {
      const double v = values.at(k);
      if (k == "beta2" || (k != "lr" && k != "beta1" && v == def)) continue;
      if (k == "beta1") {
        if (v != def || values.at("beta2") != kDefaults.at(name)[2].second)
          add("betas=(" + format_number(v) + "," + format_number(values.at("beta2")) + ")");
      } else {
        const std::string key = k == "weight-decay" ? "weight_decay" : k;
        add(kFlags.count(k) ? key : key + "=" + format_number(v));
      }
    }
    return name + "(" + body + ")";
  }
  /// True for the second-order method, which xgrad-descent runs itself (no Optimizer).
  bool is_newton() const { return name == "newton"; }
  /// The optimizer over `p`; its constructor throws xgrad::Error for bad values. Newton has
  /// none: its values are checked here and it returns null.
  std::unique_ptr<xgrad::optim::Optimizer> make(const Tensor& p) const {
    auto v = [&](const char* k) { return values.at(k); };
    if (is_newton()) {
      if (!(v("lr") > 0) || !std::isfinite(v("lr")))
        usage_error("--optim newton: --lr must be positive and finite, got ",
                    format_number(v("lr")));
      if (!(v("damping") >= 0) || !std::isfinite(v("damping")))
        usage_error("--optim newton: --damping must be >= 0 and finite, got ",
                    format_number(v("damping")));
      return nullptr;
    }
    const std::vector<Tensor> ps{p};
    if (name == "sgd")
      return std::make_unique<xgrad::optim::SGD>(ps, xgrad::optim::SGDOptions(v("lr"))
                                                         .momentum(v("momentum"))
                                                         .dampening(v("dampening"))
                                                         .nesterov(v("nesterov") != 0)
                                                         .weight_decay(v("weight-decay")));
    if (name == "rmsprop")
      return std::make_unique<xgrad::optim::RMSprop>(ps, xgrad::optim::RMSpropOptions(v("lr"))
                                                             .alpha(v("alpha"))
                                                             .eps(v("eps"))
                                                             .weight_decay(v("weight-decay"))
                                                             .momentum(v("momentum"))
                                                             .centered(v("centered") != 0));
    if (name == "adam")
      return std::make_unique<xgrad::optim::Adam>(ps, xgrad::optim::AdamOptions(v("lr"))
                                                          .betas(v("beta1"), v("beta2"))
                                                          .eps(v("eps"))
                                                          .weight_decay(v("weight-decay"))
                                                          .amsgrad(v("amsgrad") != 0));
    return std::make_unique<xgrad::optim::AdamW>(ps, xgrad::optim::AdamWOptions(v("lr"))
                                                         .betas(v("beta1"), v("beta2"))
                                                         .eps(v("eps"))
                                                         .weight_decay(v("weight-decay"))
                                                         .amsgrad(v("amsgrad") != 0));
  }
};

}  // namespace descent

// xgrad's optimizers against torch.optim on the 2-D test functions, 200 steps each.
//
// The golden trajectories in tests/data/optim_golden were written by torch 1.13.1 (Debian's
// python3-torch) with tools/make_optim_golden.py, in float64, through torch's single-tensor
// path; that script's docstring describes the files. Two sets:
//
//  - <function>_analytic.csv.gz: the gradient is the closed form of test_functions.hpp,
//    computed in the same order on both sides and assigned to .grad. Same gradients in, so
//    xgrad must give torch's trajectory to the last bit: the largest |difference| over all
//    steps must be exactly 0, for every configuration. (`make_optim_golden.py --mutants`
//    checks that these files would catch any single rounding done differently.)
//  - <function>_autograd.csv.gz: torch's autograd of f against xgrad's; the two gradients may
//    differ in the last bit, so the trajectories must agree to 1e-6.
//
// One test case per optimizer family and gradient set; each prints the largest difference of
// every configuration.
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "test_util.hpp"
#include "xgrad/optim/adam.hpp"
#include "xgrad/optim/adamw.hpp"
#include "xgrad/optim/rmsprop.hpp"
#include "xgrad/optim/sgd.hpp"
#include "xgrad/optim/test_functions.hpp"

using namespace xgrad;
namespace tf = xgrad::optim::test_functions;

namespace {

struct Row {
  long step;
  double x, y, f;
};

/// One configuration's trajectory, in file order.
struct Trajectory {
  std::string label;
  std::vector<Row> rows;
};

std::string read_gzip(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  BOOST_REQUIRE_MESSAGE(f != nullptr, "cannot open " << path);
  std::string out;
  char buf[1 << 16];
  int n = 0;
  while ((n = gzread(f, buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(n));
  const bool ok = n == 0;
  gzclose(f);
  BOOST_REQUIRE_MESSAGE(ok, "cannot read " << path);
  return out;
}

/// The fields of one CSV line; the first may be quoted (labels hold commas).
std::vector<std::string> split_csv(const std::string& line) {
  std::vector<std::string> fields;
  std::size_t i = 0;
  while (i <= line.size()) {
    std::string field;
    if (i < line.size() && line[i] == '"') {
      ++i;
      while (i < line.size() && !(line[i] == '"' && (i + 1 >= line.size() || line[i + 1] != '"'))) {
        if (line[i] == '"') ++i;  // "" is a quote
        field += line[i++];
      }
      ++i;  // closing quote
    } else {
      while (i < line.size() && line[i] != ',') field += line[i++];
    }
    fields.push_back(field);
    ++i;  // the comma
  }
  return fields;
}

/// The trajectories of one golden file, in file order.
std::vector<Trajectory> read_golden(const std::string& function, const std::string& set) {
  const std::string path =
      std::string(XGRAD_TEST_DATA_DIR) + "/optim_golden/" + function + "_" + set + ".csv.gz";
  const std::string text = read_gzip(path);
  std::vector<Trajectory> out;
  std::size_t pos = 0;
  bool header = true;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(pos, end - pos);
    pos = end + 1;
    if (header) {
      BOOST_REQUIRE_MESSAGE(line == "optimizer,step,x,y,f", path << ": bad header " << line);
      header = false;
      continue;
    }
    const auto f = split_csv(line);
    BOOST_REQUIRE_MESSAGE(f.size() == 5, path << ": bad row " << line);
    if (out.empty() || out.back().label != f[0]) out.push_back({f[0], {}});
    out.back().rows.push_back({std::stol(f[1]), std::stod(f[2]), std::stod(f[3]), std::stod(f[4])});
  }
  return out;
}

/// "adam" from "adam(lr=0.01,amsgrad)".
std::string family(const std::string& label) {
  return label.substr(0, label.find('('));
}

/// The options of a label: "lr" -> 0.01, "amsgrad" -> 1, "betas" as "beta1"/"beta2".
std::map<std::string, double> label_options(const std::string& label) {
  const std::size_t open = label.find('(');
  BOOST_REQUIRE_MESSAGE(open != std::string::npos && label.back() == ')', "bad label " << label);
  const std::string body = label.substr(open + 1, label.size() - open - 2);
  std::map<std::string, double> out;
  std::size_t i = 0;
  while (i < body.size()) {
    // One option: up to the next comma outside parentheses.
    std::size_t j = i;
    int depth = 0;
    while (j < body.size() && !(body[j] == ',' && depth == 0)) {
      depth += body[j] == '(';
      depth -= body[j] == ')';
      ++j;
    }
    const std::string part = body.substr(i, j - i);
    const std::size_t eq = part.find('=');
    if (eq == std::string::npos) {
      out[part] = 1.0;
    } else if (part.substr(0, eq) == "betas") {
      const std::string b = part.substr(eq + 2, part.size() - eq - 3);  // inside "(...)"
      out["beta1"] = std::stod(b.substr(0, b.find(',')));
      out["beta2"] = std::stod(b.substr(b.find(',') + 1));
    } else {
      out[part.substr(0, eq)] = std::stod(part.substr(eq + 1));
    }
    i = j + 1;
  }
  return out;
}

/// The xgrad optimizer a label names, over p (defaults as torch's).
std::unique_ptr<optim::Optimizer> make_optimizer(const std::string& label, const Tensor& p) {
  const auto o = label_options(label);
  auto get = [&](const char* k, double d) {
    auto it = o.find(k);
    return it == o.end() ? d : it->second;
  };
  const std::string name = family(label);
  std::vector<Tensor> params{p};
  if (name == "sgd")
    return std::make_unique<optim::SGD>(params, optim::SGDOptions(get("lr", 1e-3))
                                                    .momentum(get("momentum", 0))
                                                    .dampening(get("dampening", 0))
                                                    .nesterov(get("nesterov", 0) != 0)
                                                    .weight_decay(get("weight_decay", 0)));
  if (name == "rmsprop")
    return std::make_unique<optim::RMSprop>(params, optim::RMSpropOptions(get("lr", 1e-2))
                                                        .alpha(get("alpha", 0.99))
                                                        .eps(get("eps", 1e-8))
                                                        .weight_decay(get("weight_decay", 0))
                                                        .momentum(get("momentum", 0))
                                                        .centered(get("centered", 0) != 0));
  if (name == "adam")
    return std::make_unique<optim::Adam>(params, optim::AdamOptions(get("lr", 1e-3))
                                                     .betas(get("beta1", 0.9), get("beta2", 0.999))
                                                     .eps(get("eps", 1e-8))
                                                     .weight_decay(get("weight_decay", 0))
                                                     .amsgrad(get("amsgrad", 0) != 0));
  BOOST_REQUIRE_MESSAGE(name == "adamw", "unknown optimizer in label " << label);
  return std::make_unique<optim::AdamW>(params, optim::AdamWOptions(get("lr", 1e-3))
                                                    .betas(get("beta1", 0.9), get("beta2", 0.999))
                                                    .eps(get("eps", 1e-8))
                                                    .weight_decay(get("weight_decay", 1e-2))
                                                    .amsgrad(get("amsgrad", 0) != 0));
}

double difference(double a, double b) {
  if (a == b || (std::isnan(a) && std::isnan(b))) return 0.0;
  return std::abs(a - b);  // NaN against a number: NaN, which fails every check below
}

/// Replays every configuration of `name` in the golden files of gradient set `set` with
/// xgrad, and checks that the largest |difference| of x, y and f over all steps is at most
/// `tolerance` (0: bit for bit). Prints each configuration's largest difference.
void check_family(const std::string& name, const std::string& set, double tolerance) {
  const std::map<std::string, std::array<double, 2>> starts = {
      {"rosenbrock", {-1.5, 2.0}}, {"beale", {1.0, 1.0}}, {"himmelblau", {0.0, 0.0}}};
  int configurations = 0;
  for (const auto& [function, start] : starts) {
    const tf::Function& fn = tf::get(function);
    for (const Trajectory& t : read_golden(function, set)) {
      if (family(t.label) != name) continue;
      ++configurations;
      BOOST_TEST_CONTEXT(function << " " << set << " " << t.label) {
        BOOST_REQUIRE_EQUAL(t.rows.size(), 201u);
        BOOST_REQUIRE(t.rows[0].step == 0 && t.rows[0].x == start[0] && t.rows[0].y == start[1]);
        Tensor p = tensor({start[0], start[1]}, float64).requires_grad_();
        auto opt = make_optimizer(t.label, p);
        const double* v = p.data_ptr<double>();
        double worst = 0;
        long first_step = -1;
        for (std::size_t s = 1; s < t.rows.size(); ++s) {
          if (set == "analytic") {
            const tf::Gradient g = fn.gradient(v[0], v[1]);
            p.set_grad(tensor({g[0], g[1]}, float64));
          } else {
            opt->zero_grad();
            fn.expression(p).backward();
          }
          opt->step();
          const Row& r = t.rows[s];
          BOOST_REQUIRE_EQUAL(r.step, static_cast<long>(s));
          const double d = std::max({difference(v[0], r.x), difference(v[1], r.y),
                                     difference(fn.value(v[0], v[1]), r.f)});
          if (d != 0 && first_step < 0) first_step = static_cast<long>(s);
          if (!(d <= worst)) worst = d;  // NaN sticks
          if (!(d <= tolerance)) {
            char msg[256];
            std::snprintf(msg, sizeof msg, "step %zu: xgrad (%.17g, %.17g), torch (%.17g, %.17g)",
                          s, v[0], v[1], r.x, r.y);
            BOOST_ERROR(msg);
            break;
          }
        }
        std::printf("  %-10s %-8s %-66s max |xgrad - torch| = %-9.3g %s\n", function.c_str(),
                    set.c_str(), t.label.c_str(), worst,
                    worst == 0
                        ? "(bit-exact)"
                        : ("(first differs at step " + std::to_string(first_step) + ")").c_str());
      }
    }
  }
  std::fflush(stdout);
  BOOST_CHECK_MESSAGE(configurations >= 3, "only " << configurations << " " << name
                                                   << " configurations in the " << set
                                                   << " golden files");
}

}  // namespace

BOOST_AUTO_TEST_SUITE(optim_golden)

BOOST_AUTO_TEST_CASE(sgd_matches_torch_bit_for_bit) {
  check_family("sgd", "analytic", 0.0);
}

BOOST_AUTO_TEST_CASE(rmsprop_matches_torch_bit_for_bit) {
  check_family("rmsprop", "analytic", 0.0);
}

BOOST_AUTO_TEST_CASE(adam_matches_torch_bit_for_bit) {
  check_family("adam", "analytic", 0.0);
}

BOOST_AUTO_TEST_CASE(adamw_matches_torch_bit_for_bit) {
  check_family("adamw", "analytic", 0.0);
}

BOOST_AUTO_TEST_CASE(sgd_with_autograd_agrees_with_torch) {
  check_family("sgd", "autograd", 1e-6);
}

BOOST_AUTO_TEST_CASE(rmsprop_with_autograd_agrees_with_torch) {
  check_family("rmsprop", "autograd", 1e-6);
}

BOOST_AUTO_TEST_CASE(adam_with_autograd_agrees_with_torch) {
  check_family("adam", "autograd", 1e-6);
}

BOOST_AUTO_TEST_CASE(adamw_with_autograd_agrees_with_torch) {
  check_family("adamw", "autograd", 1e-6);
}

BOOST_AUTO_TEST_CASE(closed_form_gradients_match_autograd) {
  // The closed forms of test_functions.hpp are the gradients of its expressions: xgrad's
  // autograd agrees to rounding at a few points of each function's usual view.
  for (const tf::Function& fn : tf::all()) {
    for (auto [x, y] : {std::array<double, 2>{-1.5, 2.0}, {0.3, -0.7}, {2.5, 1.25}, {1.0, 1.0}}) {
      Tensor p = tensor({x, y}, float64).requires_grad_();
      Tensor f = fn.expression(p);
      f.backward();
      const tf::Gradient g = fn.gradient(x, y);
      BOOST_TEST_CONTEXT(fn.name << " at (" << x << ", " << y << ")") {
        testing::expect_values(f, {}, {fn.value(x, y)}, 1e-14);
        testing::expect_values(p.grad(), {2}, {g[0], g[1]}, 1e-13);
      }
    }
    for (const auto& m : fn.minima) {  // minima to 6 decimals: small gradient, f near 0
      BOOST_TEST_CONTEXT(fn.name << " minimum (" << m[0] << ", " << m[1] << ")") {
        BOOST_TEST(fn.value(m[0], m[1]) < 1e-9);
      }
    }
  }
  testing::expect_error([] { tf::get("sphere"); }, {"unknown function 'sphere'", "rosenbrock"});
  testing::expect_error(
      [] {
        tf::rosenbrock(tensor({1.0, 2.0, 3.0}, float64));
      },
      {"rosenbrock", "[3]"});
}

BOOST_AUTO_TEST_SUITE_END()

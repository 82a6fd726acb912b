// xgrad-descent: runs optimizers on a 2-D test function in float64 and writes their
// trajectories (CSV) and a picture of them on the function's contour lines (SVG).
//
//   xgrad-descent [--function rosenbrock|himmelblau|beale|bowl] [--start X,Y] [--steps 200]
//                 [--grad autograd|analytic] [--csv FILE] [--out FILE.svg]
//                 [--window XMIN,XMAX,YMIN,YMAX]
//                 --optim NAME [OPTIONS] [--optim NAME [OPTIONS]] ...
//
// Each `--optim NAME` (sgd, rmsprop, adam, adamw, newton) starts an optimizer; the options after
// it, up to the next --optim, are its own (--lr, --momentum, --dampening, --nesterov, --alpha,
// --betas B1,B2, --eps, --weight-decay, --centered, --amsgrad), with torch's defaults (SGD's
// lr, which torch requires, defaults to xgrad's 1e-3). Global options may come anywhere.
// Negative numbers are values, never options: `--start -1.5,2` works.
//
// The CSV has the columns optimizer,step,x,y,f for steps 0 (the start) to N, numbers with 17
// significant digits; the optimizer column is a label naming the configuration, e.g.
// "adam(lr=0.01,amsgrad)" (the options that differ from the defaults; lr always). The golden
// files of tests/data/optim_golden use the same labels and format, so
// `--grad analytic --csv` reproduces their rows exactly. f is the closed-form value.
//
// Bad input prints one line on stderr and exits with code 2.
//
// The parts: descent/command_line.hpp (the line, on Boost.Program_options),
// descent/optimizers.hpp (the configurations and their labels), and the library's
// viz/contour.hpp for the picture.
#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "descent/command_line.hpp"
#include "descent/newton.hpp"
#include "descent/optimizers.hpp"
#include "xgrad/io/atomic_file.hpp"
#include "xgrad/optim/test_functions.hpp"
#include "xgrad/viz/contour.hpp"
#include "xgrad/viz/plot.hpp"
#include "xgrad/xgrad.hpp"

using namespace xgrad;
using namespace descent;  // NOLINT(google-build-using-namespace): the tool's own parts
namespace tf = xgrad::optim::test_functions;

namespace {

constexpr const char* kUsage = R"(xgrad-descent: gradient descent on a 2-D test function, in float64

usage: xgrad-descent [GLOBAL OPTIONS] --optim NAME [OPTIONS] [--optim NAME [OPTIONS]] ...

global options (anywhere on the line):
  --function NAME       rosenbrock (default) | himmelblau | beale | bowl
  --start X,Y           starting point (default: rosenbrock -1.5,2; himmelblau 0,0;
                        beale 1,1; bowl -3.5,1.5)
  --steps N             optimizer steps (default 200)
  --grad MODE           autograd (default: xgrad's autograd of f) | analytic (closed form)
  --csv FILE            write optimizer,step,x,y,f for steps 0..N (17 significant digits)
  --out FILE.svg        draw the contour lines of f and every optimizer's path (the
                        format from the name, as in xgrad-graph: SVG; --svg FILE is the
                        older name of this option)
  --window X0,X1,Y0,Y1  the region the SVG shows (default: the function's usual view,
                        widened to hold the paths)
  -h, --help            show this help

optimizers (each --optim starts one; the options after it are its own):
  --optim sgd           --lr (1e-3) --momentum (0) --dampening (0) --nesterov
                        --weight-decay (0)
  --optim rmsprop       --lr (1e-2) --alpha (0.99) --eps (1e-8) --weight-decay (0)
                        --momentum (0) --centered
  --optim adam          --lr (1e-3) --betas B1,B2 (0.9,0.999) --eps (1e-8)
                        --weight-decay (0, L2) --amsgrad
  --optim adamw         as adam, --weight-decay (1e-2, decoupled)
  --optim newton        --lr (1) --damping (0): p -= lr·(H + damping·I)⁻¹·∇f, the Hessian
                        H by double backward (stops where H + damping·I is singular)

example:
  xgrad-descent --function rosenbrock --start -1.5,2 --steps 500 --out rosenbrock.svg \
      --optim sgd --lr 1e-3 --momentum 0.9 --optim adam --lr 0.05
)";

// ---- running -------------------------------------------------------------------------------

/// An optimizer's label and its points (x, y, f) at steps 0..N.
using Trajectory = viz::ContourPath;

/// Newton's method (descent/newton.hpp): the gradient (closed form with --grad analytic) and
/// the Hessian (always by double backward) at each point; stops early where the damped Hessian
/// is singular.
Trajectory newton(const tf::Function& fn, const Config& c, const OptimConfig& oc) {
  Trajectory t{oc.label(), {}};
  Tensor p = tensor({c.start[0], c.start[1]}, float64).requires_grad_();
  double* v = p.data_ptr<double>();
  t.points.push_back({v[0], v[1], fn.value(v[0], v[1])});
  for (long long step = 1; step <= c.steps; ++step) {
    SecondOrder s = second_order(fn.expression, p);
    if (c.grad == "analytic") {
      const tf::Gradient g = fn.gradient(v[0], v[1]);
      s.g = {g[0], g[1]};
    }
    std::array<double, 2> d{};
    if (!newton_direction(s, oc.values.at("damping"), d)) break;
    const double lr = oc.values.at("lr");
    v[0] -= lr * d[0];  // no graph holds p between steps: a plain write is safe
    v[1] -= lr * d[1];
    t.points.push_back({v[0], v[1], fn.value(v[0], v[1])});
  }
  return t;
}

Trajectory descend(const tf::Function& fn, const Config& c, const OptimConfig& oc) {
  if (oc.is_newton()) return newton(fn, c, oc);
  Trajectory t{oc.label(), {}};
  Tensor p = tensor({c.start[0], c.start[1]}, float64).requires_grad_();
  std::unique_ptr<optim::Optimizer> opt = oc.make(p);  // throws xgrad::Error for bad values
  const double* v = p.data_ptr<double>();
  t.points.reserve(static_cast<std::size_t>(c.steps) + 1);
  t.points.push_back({v[0], v[1], fn.value(v[0], v[1])});
  for (long long step = 1; step <= c.steps; ++step) {
    if (c.grad == "analytic") {
      const tf::Gradient g = fn.gradient(v[0], v[1]);
      p.set_grad(tensor({g[0], g[1]}, float64));
    } else {
      opt->zero_grad();
      fn.expression(p).backward();
    }
    opt->step();
    t.points.push_back({v[0], v[1], fn.value(v[0], v[1])});
  }
  return t;
}

std::string csv_text(const std::vector<Trajectory>& ts) {
  std::string out = "optimizer,step,x,y,f\n";
  for (const Trajectory& t : ts) {
    std::string lab = t.label;
    if (lab.find_first_of(",\"\n") != std::string::npos) {  // quoted, "" for "
      lab = "\"";
      for (char ch : t.label) lab += ch == '"' ? std::string("\"\"") : std::string(1, ch);
      lab += "\"";
    }
    for (std::size_t s = 0; s < t.points.size(); ++s) {
      const auto& q = t.points[s];
      out += lab + "," + std::to_string(s) + "," + format_value(q[0]) + "," + format_value(q[1]) +
             "," + format_value(q[2]) + "\n";
    }
  }
  return out;
}

/// The SVG: the function's contours, every optimizer's path, the start and the minima.
viz::ContourPlot picture(const tf::Function& fn, const Config& c,
                         const std::vector<Trajectory>& ts) {
  viz::ContourPlot p;
  std::string name(fn.name);
  p.document_title = "xgrad-descent: " + name;
  name[0] = static_cast<char>(std::toupper(name[0]));
  p.heading = name + ": f(x, y) = " + std::string(fn.formula);
  p.subheading = "from (" + viz::label_number(c.start[0], 6) + ", " +
                 viz::label_number(c.start[1], 6) + "), " + std::to_string(c.steps) + " steps, " +
                 (c.grad == "analytic" ? "closed-form" : "autograd") + " gradients, float64";
  p.f = fn.value;
  p.window = c.window_given ? c.window : fn.window;
  p.fit_paths = !c.window_given;
  p.start = c.start;
  p.minima = fn.minima;
  p.minima_label = fn.minima.size() > 1 ? "global minima (f = 0)" : "global minimum (f = 0)";
  p.legend_title = "optimizer (end point, f)";
  p.paths = ts;
  return p;
}

int run(Config c) {
  const tf::Function& fn = tf::get(c.function);
  if (!c.start_given) c.start = fn.start;
  if (c.optims.empty())
    usage_error("no optimizer given (add --optim sgd|rmsprop|adam|adamw|newton)");
  std::set<std::string> labels;
  for (const OptimConfig& o : c.optims)
    if (!labels.insert(o.label()).second)
      usage_error("the optimizer ", o.label(), " is given twice");

  // Check every optimizer's values before running any (the constructors throw xgrad::Error).
  for (const OptimConfig& o : c.optims) o.make(zeros({2}, float64).requires_grad_());

  std::vector<Trajectory> ts;
  for (const OptimConfig& o : c.optims) ts.push_back(descend(fn, c, o));

  std::printf("xgrad-descent: %s from (%s, %s), %lld steps, %s gradients\n",
              std::string(fn.name).c_str(), format_number(c.start[0]).c_str(),
              format_number(c.start[1]).c_str(), c.steps, c.grad.c_str());
  std::size_t width = 0;
  for (const Trajectory& t : ts) width = std::max(width, t.label.size());
  for (const Trajectory& t : ts) {
    const auto& e = t.points.back();
    char f[64];
    std::snprintf(f, sizeof f, "%.3g", e[2]);
    std::printf("  %-*s  x %-23s y %-23s f %s\n", static_cast<int>(width), t.label.c_str(),
                format_value(e[0]).c_str(), format_value(e[1]).c_str(),
                std::isnan(e[2]) ? "nan" : f);
  }
  if (!c.csv.empty()) {
    io::write_file_atomically(c.csv, csv_text(ts));
    std::printf("trajectories written to %s\n", c.csv.c_str());
  }
  if (!c.svg.empty()) {
    viz::write_contour_plot(c.svg, picture(fn, c, ts));
    std::printf("picture written to %s\n", c.svg.c_str());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const Config c = parse_args(argc, argv);
    if (c.help) {
      std::cout << kUsage;
      return 0;
    }
    return run(c);
  } catch (const UsageError& e) {
    std::cerr << "xgrad-descent: " << e.what() << " (see --help)\n";
    return 2;
  } catch (const std::exception& e) {
    std::string msg = e.what();
    std::replace(msg.begin(), msg.end(), '\n', ' ');
    std::cerr << "xgrad-descent: " << msg << "\n";
    return 2;
  }
}

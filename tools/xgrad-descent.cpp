// xgrad-descent: runs optimizers on a 2-D test function in float64 and writes their
// trajectories (CSV) and a picture of them on the function's contour lines (SVG).
//
//   xgrad-descent [--function rosenbrock|himmelblau|beale|bowl] [--start X,Y] [--steps 200]
//                 [--grad autograd|analytic] [--csv FILE] [--svg FILE]
//                 [--window XMIN,XMAX,YMIN,YMAX]
//                 --optim NAME [OPTIONS] [--optim NAME [OPTIONS]] ...
//
// Each `--optim NAME` (sgd, rmsprop, adam, adamw) starts an optimizer; the options after it,
// up to the next --optim, are its own (--lr, --momentum, --dampening, --nesterov, --alpha,
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
#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "xgrad/io/atomic_file.hpp"
#include "xgrad/optim/adam.hpp"
#include "xgrad/optim/adamw.hpp"
#include "xgrad/optim/rmsprop.hpp"
#include "xgrad/optim/sgd.hpp"
#include "xgrad/optim/test_functions.hpp"
#include "xgrad/xgrad.hpp"

using namespace xgrad;
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
  --svg FILE            draw the contour lines of f and every optimizer's path
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

example:
  xgrad-descent --function rosenbrock --start -1.5,2 --steps 500 --svg rosenbrock.svg \
      --optim sgd --lr 1e-3 --momentum 0.9 --optim adam --lr 0.05
)";

// ---- parsing ---------------------------------------------------------------------------

/// A usage error: reported on one line, exit code 2.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

template <class... Parts>
[[noreturn]] void usage_error(const Parts&... parts) {
  std::ostringstream os;
  (os << ... << parts);
  throw UsageError(os.str());
}

double parse_number(std::string_view option, std::string_view text) {
  double v = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, v);
  if (text.empty() || ec != std::errc() || ptr != end || !std::isfinite(v))
    usage_error(option, ": expected a finite number, got '", text, "'");
  return v;
}

// A comma-separated list of `count` numbers. `--start -1.5, 2` reaches here as '-1.5,' with
// the word '2' after it: `shown` is then the words as typed ("-1.5, 2") and `joined` the value
// without the spaces ("-1.5,2") (both empty when the value was not cut), and the message says
// that a space split the value rather than "expected a finite number, got ''".
std::vector<double> parse_numbers(std::string_view option, std::string_view text, std::size_t count,
                                  std::string_view what, std::string_view shown = {},
                                  std::string_view joined = {}) {
  if (!shown.empty())
    usage_error(option, ": the value '", text, "' is cut at a space (the shell split '", shown,
                "' into several words): write ", what, " without spaces, e.g. ", option, " ",
                joined);
  std::vector<double> out;
  std::size_t begin = 0;
  while (true) {
    const std::size_t comma = text.find(',', begin);
    if (comma == begin || (comma == std::string_view::npos && begin == text.size() && begin > 0))
      usage_error(option, ": expected ", what, ", got '", text, "' (a number is missing)");
    out.push_back(parse_number(option, text.substr(begin, comma - begin)));
    if (comma == std::string_view::npos) break;
    begin = comma + 1;
  }
  if (out.size() != count) usage_error(option, ": expected ", what, ", got '", text, "'");
  return out;
}

bool parse_bool(std::string_view option, std::string_view text) {
  if (text == "true" || text == "1" || text == "yes") return true;
  if (text == "false" || text == "0" || text == "no") return false;
  usage_error(option, ": expected true or false, got '", text, "'");
}

/// The shortest "%.{p}g" (p = 1..17) that reads back as v, as tools/make_optim_golden.py's
/// fmt_number: 0.01, 0.001, 1e-08.
std::string format_number(double v) {
  char buf[64];
  for (int p = 1; p <= 17; ++p) {
    std::snprintf(buf, sizeof buf, "%.*g", p, v);
    if (std::strtod(buf, nullptr) == v) return buf;
  }
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

std::string format_value(double v) {
  if (std::isnan(v)) return "nan";  // as Python writes any NaN (printf may say "-nan")
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

// ---- optimizer configurations ------------------------------------------------------------

/// One --optim NAME with its options. Option names as on the command line, without "--".
struct OptimConfig {
  std::string name;
  std::map<std::string, double> values;  // every option of this optimizer, defaults filled in
  std::vector<std::string> order;        // label order

  static const std::map<std::string, std::vector<std::pair<std::string, double>>>& defaults() {
    // Option, default value; booleans as 0/1, betas as beta1/beta2. Order = label order, as in
    // make_optim_golden.py's DEFAULTS.
    static const std::map<std::string, std::vector<std::pair<std::string, double>>> d = {
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
    };
    return d;
  }
  static bool is_flag(const std::string& option) {
    return option == "nesterov" || option == "centered" || option == "amsgrad";
  }

  explicit OptimConfig(const std::string& n) : name(n) {
    auto it = defaults().find(n);
    if (it == defaults().end())
      usage_error("--optim: unknown optimizer '", n, "' (choose sgd, rmsprop, adam or adamw)");
    for (auto& [k, v] : it->second) {
      values[k] = v;
      order.push_back(k);
    }
  }

  bool has(const std::string& option) const {
    if (option == "betas") return values.count("beta1") > 0;
    return values.count(option) > 0;
  }

  std::string options_list() const {
    std::string s;
    for (auto& k : order) {
      if (k == "beta2") continue;
      s += (s.empty() ? "--" : " --") + (k == "beta1" ? std::string("betas") : k);
    }
    return s;
  }

  /// The label: name(lr=...,<options that differ from the defaults>).
  std::string label() const {
    std::string body;
    auto add = [&](const std::string& part) { body += (body.empty() ? "" : ",") + part; };
    const auto& defs = defaults().at(name);
    std::map<std::string, double> def(defs.begin(), defs.end());
    for (auto& k : order) {
      const double v = values.at(k);
      const std::string key = k == "weight-decay" ? "weight_decay" : k;  // torch's name
      if (k == "beta2") continue;
      if (k == "beta1") {
        if (v != def.at("beta1") || values.at("beta2") != def.at("beta2"))
          add("betas=(" + format_number(v) + "," + format_number(values.at("beta2")) + ")");
        continue;
      }
      if (k != "lr" && v == def.at(k)) continue;
      add(is_flag(k) ? key : key + "=" + format_number(v));
    }
    return name + "(" + body + ")";
  }

  std::unique_ptr<optim::Optimizer> make(const Tensor& p) const {
    auto v = [&](const char* k) { return values.at(k); };
    if (name == "sgd")
      return std::make_unique<optim::SGD>(std::vector<Tensor>{p},
                                          optim::SGDOptions(v("lr"))
                                              .momentum(v("momentum"))
                                              .dampening(v("dampening"))
                                              .nesterov(v("nesterov") != 0)
                                              .weight_decay(v("weight-decay")));
    if (name == "rmsprop")
      return std::make_unique<optim::RMSprop>(std::vector<Tensor>{p},
                                              optim::RMSpropOptions(v("lr"))
                                                  .alpha(v("alpha"))
                                                  .eps(v("eps"))
                                                  .weight_decay(v("weight-decay"))
                                                  .momentum(v("momentum"))
                                                  .centered(v("centered") != 0));
    if (name == "adam")
      return std::make_unique<optim::Adam>(std::vector<Tensor>{p},
                                           optim::AdamOptions(v("lr"))
                                               .betas(v("beta1"), v("beta2"))
                                               .eps(v("eps"))
                                               .weight_decay(v("weight-decay"))
                                               .amsgrad(v("amsgrad") != 0));
    return std::make_unique<optim::AdamW>(std::vector<Tensor>{p},
                                          optim::AdamWOptions(v("lr"))
                                              .betas(v("beta1"), v("beta2"))
                                              .eps(v("eps"))
                                              .weight_decay(v("weight-decay"))
                                              .amsgrad(v("amsgrad") != 0));
  }
};

struct Config {
  std::string function = "rosenbrock";
  std::array<double, 2> start{};
  bool start_given = false;
  long long steps = 200;
  std::string grad = "autograd";
  std::string csv, svg;
  std::array<double, 4> window{};
  bool window_given = false;
  bool help = false;
  std::vector<OptimConfig> optims;
};

Config parse_args(int argc, char** argv) {
  Config c;
  const std::set<std::string> global_valued = {"function", "start", "steps", "grad",
                                               "csv",      "svg",   "window"};
  const std::set<std::string> optim_valued = {"lr",  "momentum", "dampening",   "alpha",
                                              "eps", "betas",    "weight-decay"};
  const std::set<std::string> optim_flags = {"nesterov", "centered", "amsgrad"};
  std::set<std::string> seen_global;
  std::set<std::string> seen_optim;  // options given to the current --optim
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      c.help = true;
      continue;
    }
    if (arg.rfind("--", 0) != 0 || arg.size() == 2)
      usage_error("unexpected argument '", arg, "' (options start with --)");
    std::string key = arg.substr(2);
    std::string value;
    bool has_value = false;
    if (auto eq = key.find('='); eq != std::string::npos) {
      value = key.substr(eq + 1);
      key = key.substr(0, eq);
      has_value = true;
    }
    const std::string opt = "--" + key;
    const bool valued = key == "optim" || global_valued.count(key) || optim_valued.count(key);
    if (!valued && !optim_flags.count(key)) usage_error("unknown option '", opt, "'");
    if (valued && !has_value) {
      if (i + 1 >= argc) usage_error(opt, ": missing value");
      value = argv[++i];  // the next word, whatever it looks like: -1.5,2 is a value
      has_value = true;
    }
    // A list value cut by spaces (--start -1.5, 2 or --start -1.5 ,2): the words that continue
    // it, for parse_numbers' message. They are not consumed: the value is refused anyway.
    std::string shown, joined;
    if (valued && !value.empty()) {
      std::string cont = value;
      for (int j = i + 1; j < argc && std::string_view(argv[j]).rfind("--", 0) != 0 &&
                          argv[j][0] != '\0' && (cont.back() == ',' || argv[j][0] == ',');
           ++j) {
        cont += argv[j];
        shown += std::string(shown.empty() ? value : "") + " " + argv[j];
      }
      if (!shown.empty()) joined = cont;
    }

    if (key == "optim") {
      c.optims.emplace_back(value);
      seen_optim.clear();
      continue;
    }
    if (global_valued.count(key)) {
      if (!seen_global.insert(key).second) usage_error(opt, " given twice");
      if (key == "function") {
        c.function = value;
      } else if (key == "start") {
        auto v = parse_numbers(opt, value, 2, "X,Y", shown, joined);
        c.start = {v[0], v[1]};
        c.start_given = true;
      } else if (key == "steps") {
        long long n = -1;
        auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
        if (value.empty() || ec != std::errc() || ptr != value.data() + value.size() || n < 0 ||
            n > 1000000)
          usage_error(opt, ": expected a number of steps from 0 to 1000000, got '", value, "'");
        c.steps = n;
      } else if (key == "grad") {
        if (value != "autograd" && value != "analytic")
          usage_error(opt, ": expected autograd or analytic, got '", value, "'");
        c.grad = value;
      } else if (key == "csv") {
        if (value.empty()) usage_error(opt, ": empty file name");
        c.csv = value;
      } else if (key == "svg") {
        if (value.empty()) usage_error(opt, ": empty file name");
        c.svg = value;
      } else if (key == "window") {
        auto v = parse_numbers(opt, value, 4, "XMIN,XMAX,YMIN,YMAX", shown, joined);
        if (!(v[0] < v[1] && v[2] < v[3]))
          usage_error(opt, ": expected XMIN < XMAX and YMIN < YMAX, got '", value, "'");
        c.window = {v[0], v[1], v[2], v[3]};
        c.window_given = true;
      }
      continue;
    }
    // An optimizer option: belongs to the latest --optim.
    if (c.optims.empty()) usage_error(opt, " must follow an --optim NAME");
    OptimConfig& o = c.optims.back();
    if (!o.has(key))
      usage_error(opt, " does not apply to ", o.name, " (its options: ", o.options_list(), ")");
    if (!seen_optim.insert(key).second)
      usage_error(opt, " given twice for the same --optim ", o.name);
    if (optim_flags.count(key)) {
      o.values[key] = has_value ? (parse_bool(opt, value) ? 1.0 : 0.0) : 1.0;
    } else if (key == "betas") {
      auto v = parse_numbers(opt, value, 2, "B1,B2", shown, joined);
      o.values["beta1"] = v[0];
      o.values["beta2"] = v[1];
    } else {
      o.values[key] = parse_number(opt, value);
    }
  }
  return c;
}

// ---- running -------------------------------------------------------------------------------

struct Point {
  double x, y, f;
};

struct Trajectory {
  std::string label;
  std::vector<Point> points;  // steps 0..N
};

Trajectory descend(const tf::Function& fn, const Config& c, const OptimConfig& oc) {
  Trajectory t{oc.label(), {}};
  Tensor p = tensor({c.start[0], c.start[1]}, float64).requires_grad_();
  std::unique_ptr<optim::Optimizer> opt = oc.make(p);  // throws xgrad::Error for bad values
  const double* v = p.data_ptr<double>();
  t.points.reserve(static_cast<std::size_t>(c.steps) + 1);
  t.points.push_back({v[0], v[1], fn.value(v[0], v[1])});
  const bool analytic = c.grad == "analytic";
  for (long long step = 1; step <= c.steps; ++step) {
    if (analytic) {
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

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char ch : s) q += ch == '"' ? std::string("\"\"") : std::string(1, ch);
  return q + "\"";
}

std::string csv_text(const std::vector<Trajectory>& ts) {
  std::string out = "optimizer,step,x,y,f\n";
  for (const Trajectory& t : ts) {
    const std::string lab = csv_field(t.label);
    for (std::size_t s = 0; s < t.points.size(); ++s) {
      const Point& q = t.points[s];
      out += lab + "," + std::to_string(s) + "," + format_value(q.x) + "," + format_value(q.y) +
             "," + format_value(q.f) + "\n";
    }
  }
  return out;
}

// ---- SVG -------------------------------------------------------------------------------

std::string xml_escape(std::string_view s) {
  std::string out;
  for (char ch : s) {
    switch (ch) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        out += ch;
    }
  }
  return out;
}

std::string fixed(double v, int decimals = 1) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  std::string s = buf;
  if (s == "-0.0" || s == "-0" || s == "-0.00") s = s.substr(1);
  return s;
}

/// "%.3g" as plain ASCII (for attributes).
std::string short_number(double v) {
  if (std::isnan(v)) return "nan";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.3g", v);
  return buf;
}

/// "%.3g" with a real minus sign, for tick and legend labels.
std::string pretty(double v, int digits = 3) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*g", digits, v);
  std::string s = buf;
  if (s == "-0") s = "0";
  if (!s.empty() && s[0] == '-') s = "\u2212" + s.substr(1);
  return s;
}

/// Ticks at multiples of a "nice" step (1, 2 or 5 × 10^k), about `target` of them.
std::vector<double> nice_ticks(double lo, double hi, int target = 6) {
  const double raw = (hi - lo) / target;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (m * mag >= raw) {
      step = m * mag;
      break;
    }
  std::vector<double> ticks;
  for (double k = std::ceil(lo / step - 1e-9); k * step <= hi + 1e-9 * step; k += 1)
    ticks.push_back(std::abs(k * step) < 1e-12 * step ? 0.0 : k * step);
  return ticks;
}

/// Contour segments of a grid at one level (marching squares, linear interpolation, saddles
/// decided by the cell's mean), chained into polylines. The grid has nx × ny samples,
/// v[j * nx + i] at (x_i, y_j); points come back in grid coordinates (i, j) as doubles.
std::vector<std::vector<std::array<double, 2>>> contour_lines(const std::vector<double>& v, int nx,
                                                              int ny, double level) {
  // A crossing lives on a grid edge: id 2*(j*nx+i) is the edge (i,j)-(i+1,j), +1 the edge
  // (i,j)-(i,j+1). Both cells sharing an edge compute the same point, so chains join by id.
  std::unordered_map<long long, std::array<double, 2>> point;
  std::unordered_map<long long, std::vector<long long>> links;
  auto at = [&](int i, int j) { return v[static_cast<std::size_t>(j) * nx + i]; };
  auto crossing = [&](int i0, int j0, int i1, int j1) -> long long {
    const long long id = 2LL * (static_cast<long long>(j0) * nx + i0) + (j1 != j0 ? 1 : 0);
    if (!point.count(id)) {
      const double a = at(i0, j0), b = at(i1, j1);
      const double t = a == b ? 0.5 : std::clamp((level - a) / (b - a), 0.0, 1.0);
      point[id] = {i0 + t * (i1 - i0), j0 + t * (j1 - j0)};
    }
    return id;
  };
  auto link = [&](long long a, long long b) {
    links[a].push_back(b);
    links[b].push_back(a);
  };
  for (int j = 0; j + 1 < ny; ++j) {
    for (int i = 0; i + 1 < nx; ++i) {
      const double c00 = at(i, j), c10 = at(i + 1, j), c11 = at(i + 1, j + 1), c01 = at(i, j + 1);
      if (!std::isfinite(c00) || !std::isfinite(c10) || !std::isfinite(c11) || !std::isfinite(c01))
        continue;
      const int k = (c00 > level) | (c10 > level) << 1 | (c11 > level) << 2 | (c01 > level) << 3;
      if (k == 0 || k == 15) continue;
      // The four edges of the cell.
      auto bottom = [&] { return crossing(i, j, i + 1, j); };
      auto right = [&] { return crossing(i + 1, j, i + 1, j + 1); };
      auto top = [&] { return crossing(i, j + 1, i + 1, j + 1); };
      auto left = [&] { return crossing(i, j, i, j + 1); };
      const bool centre_above = (c00 + c10 + c11 + c01) / 4 > level;
      switch (k) {
        case 1:
        case 14:
          link(left(), bottom());
          break;
        case 2:
        case 13:
          link(bottom(), right());
          break;
        case 3:
        case 12:
          link(left(), right());
          break;
        case 4:
        case 11:
          link(right(), top());
          break;
        case 6:
        case 9:
          link(bottom(), top());
          break;
        case 7:
        case 8:
          link(left(), top());
          break;
        case 5:  // c00 and c11 above
          if (centre_above) {
            link(left(), top());
            link(bottom(), right());
          } else {
            link(left(), bottom());
            link(right(), top());
          }
          break;
        case 10:  // c10 and c01 above
          if (centre_above) {
            link(left(), bottom());
            link(right(), top());
          } else {
            link(left(), top());
            link(bottom(), right());
          }
          break;
        default:
          break;
      }
    }
  }
  // Walk the chains: open ones from their ends first, then closed loops.
  std::vector<std::vector<std::array<double, 2>>> lines;
  std::set<long long> done;
  auto walk = [&](long long start) {
    std::vector<std::array<double, 2>> line;
    long long prev = -1, cur = start;
    while (cur >= 0 && done.insert(cur).second) {
      line.push_back(point.at(cur));
      long long next = -1;
      for (long long n : links.at(cur))
        if (n != prev && !done.count(n)) {
          next = n;
          break;
        }
      if (next < 0)  // closing a loop: back to the start
        for (long long n : links.at(cur))
          if (n == start && n != prev && line.size() > 2) line.push_back(point.at(start));
      prev = cur;
      cur = next;
    }
    if (line.size() > 1) lines.push_back(std::move(line));
  };
  std::vector<long long> ids;
  for (auto& [id, n] : links) ids.push_back(id);
  std::sort(ids.begin(), ids.end());  // deterministic output
  for (long long id : ids)
    if (links.at(id).size() == 1 && !done.count(id)) walk(id);
  for (long long id : ids)
    if (!done.count(id)) walk(id);
  return lines;
}

/// Colour of contour level k of n: slate blue (low f, the valleys) to light grey (high f).
std::string level_colour(int k, int n) {
  const double t = n > 1 ? static_cast<double>(k) / (n - 1) : 0.0;
  const double lo[3] = {40, 70, 120}, hi[3] = {190, 196, 204};
  char buf[16];
  std::snprintf(buf, sizeof buf, "#%02x%02x%02x", static_cast<int>(lo[0] + t * (hi[0] - lo[0])),
                static_cast<int>(lo[1] + t * (hi[1] - lo[1])),
                static_cast<int>(lo[2] + t * (hi[2] - lo[2])));
  return buf;
}

std::string svg_text(const tf::Function& fn, const Config& c, const std::vector<Trajectory>& ts) {
  // The region shown: --window, or the function's usual view widened to hold the start and
  // every path; points more than one view width (or height) outside it are not zoomed out to,
  // their paths just leave the picture.
  std::array<double, 4> w = c.window_given ? c.window : fn.window;
  if (!c.window_given) {
    const std::array<double, 4> base = fn.window;
    const double bw = base[1] - base[0], bh = base[3] - base[2];
    auto widen = [&](double x, double y) {
      if (!std::isfinite(x) || !std::isfinite(y)) return;
      if (x < base[0] - bw || x > base[1] + bw || y < base[2] - bh || y > base[3] + bh) return;
      const double mx = 0.05 * bw, my = 0.05 * bh;
      w[0] = std::min(w[0], x - mx);
      w[1] = std::max(w[1], x + mx);
      w[2] = std::min(w[2], y - my);
      w[3] = std::max(w[3], y + my);
    };
    widen(c.start[0], c.start[1]);
    for (const Trajectory& t : ts)
      for (const Point& q : t.points) widen(q.x, q.y);
  }
  const double ww = w[1] - w[0], wh = w[3] - w[2];

  // Layout (pixels): title on top, square plot on the left, legend on the right.
  const double left = 64, top = 56, size = 560, legend_x = left + size + 28;
  const double legend_w = 330;
  const double width = legend_x + legend_w + 12;
  const double height = top + size + 56;
  auto px = [&](double x) { return left + (x - w[0]) / ww * size; };
  auto py = [&](double y) { return top + (w[3] - y) / wh * size; };

  std::ostringstream s;
  s << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << fixed(width, 0) << "\" height=\""
    << fixed(height, 0) << "\" viewBox=\"0 0 " << fixed(width, 0) << " " << fixed(height, 0)
    << "\" font-family=\"DejaVu Sans, Verdana, Arial, sans-serif\" font-size=\"12\">\n"
    << "<title>xgrad-descent: " << xml_escape(fn.name) << "</title>\n"
    << "<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n"
    << "<defs><clipPath id=\"plot\"><rect x=\"" << fixed(left) << "\" y=\"" << fixed(top)
    << "\" width=\"" << fixed(size) << "\" height=\"" << fixed(size) << "\"/></clipPath></defs>\n";

  // Title.
  std::string name(fn.name);
  name[0] = static_cast<char>(std::toupper(name[0]));
  s << "<text x=\"" << fixed(left) << "\" y=\"24\" font-size=\"16\" font-weight=\"bold\">"
    << xml_escape(name) << ": f(x, y) = " << xml_escape(fn.formula) << "</text>\n"
    << "<text x=\"" << fixed(left) << "\" y=\"43\" fill=\"#444444\">from (" << pretty(c.start[0], 6)
    << ", " << pretty(c.start[1], 6) << "), " << c.steps << " steps, "
    << (c.grad == "analytic" ? "closed-form" : "autograd") << " gradients, float64</text>\n";

  // Contours of f on a grid, at log-spaced heights above the grid's lowest value.
  const int n = 161;
  std::vector<double> grid(static_cast<std::size_t>(n) * n);
  double fmin = INFINITY, fmax = -INFINITY;
  for (int j = 0; j < n; ++j)
    for (int i = 0; i < n; ++i) {
      const double x = w[0] + ww * i / (n - 1), y = w[2] + wh * j / (n - 1);
      const double f = fn.value(x, y);
      grid[static_cast<std::size_t>(j) * n + i] = f;
      if (std::isfinite(f)) {
        fmin = std::min(fmin, f);
        fmax = std::max(fmax, f);
      }
    }
  // Log-spaced heights above the grid's lowest value, from its 0.2% to its 99% quantile: the
  // valleys get as many lines as the walls, and a few huge corners do not take them all.
  const int levels = 24;
  std::vector<double> heights;
  std::vector<double> above;
  for (double g : grid)
    if (std::isfinite(g) && g > fmin) above.push_back(g - fmin);
  if (above.size() > 10) {
    std::sort(above.begin(), above.end());
    auto quantile = [&](double q) {
      return above[static_cast<std::size_t>(q * static_cast<double>(above.size() - 1))];
    };
    const double a = std::log10(quantile(0.002)), b = std::log10(quantile(0.99));
    for (int k = 0; k < levels; ++k)
      heights.push_back(fmin + std::pow(10.0, a + (b - a) * k / (levels - 1)));
  }
  s << "<g clip-path=\"url(#plot)\" fill=\"none\" stroke-width=\"0.9\" "
       "stroke-linejoin=\"round\">\n";
  for (int k = 0; k < static_cast<int>(heights.size()); ++k) {
    const auto lines = contour_lines(grid, n, n, heights[static_cast<std::size_t>(k)]);
    if (lines.empty()) continue;
    // Pixel coordinates to 0.1 px ("12" for 12.0), repeated points dropped, and lines that
    // shrink to a point at that precision left out.
    std::string d;
    for (const auto& line : lines) {
      std::vector<std::string> pts;
      for (const auto& q : line) {
        std::string xs = fixed(left + q[0] / (n - 1) * size),
                    ys = fixed(top + size - q[1] / (n - 1) * size);
        for (std::string* t : {&xs, &ys})
          if (t->size() > 2 && t->compare(t->size() - 2, 2, ".0") == 0) t->resize(t->size() - 2);
        std::string pt = xs + "," + ys;
        if (pts.empty() || pts.back() != pt) pts.push_back(std::move(pt));
      }
      if (pts.size() < 2) continue;
      for (std::size_t q = 0; q < pts.size(); ++q)
        d += (q == 0 ? "M" : q == 1 ? "L" : " ") + pts[q];
    }
    if (d.empty()) continue;
    s << "<path stroke=\"" << level_colour(k, levels) << "\" data-level=\""
      << short_number(heights[static_cast<std::size_t>(k)]) << "\" d=\"" << d << "\"/>\n";
  }
  s << "</g>\n";

  // Frame and axis ticks.
  s << "<rect x=\"" << fixed(left) << "\" y=\"" << fixed(top) << "\" width=\"" << fixed(size)
    << "\" height=\"" << fixed(size) << "\" fill=\"none\" stroke=\"#222222\"/>\n";
  s << "<g stroke=\"#222222\">\n";
  const auto xt = nice_ticks(w[0], w[1]), yt = nice_ticks(w[2], w[3]);
  for (double t : xt)
    s << "<line x1=\"" << fixed(px(t)) << "\" y1=\"" << fixed(top + size) << "\" x2=\""
      << fixed(px(t)) << "\" y2=\"" << fixed(top + size + 5) << "\"/>\n";
  for (double t : yt)
    s << "<line x1=\"" << fixed(left - 5) << "\" y1=\"" << fixed(py(t)) << "\" x2=\"" << fixed(left)
      << "\" y2=\"" << fixed(py(t)) << "\"/>\n";
  s << "</g>\n<g fill=\"#222222\">\n";
  for (double t : xt)
    s << "<text x=\"" << fixed(px(t)) << "\" y=\"" << fixed(top + size + 19)
      << "\" text-anchor=\"middle\">" << pretty(t) << "</text>\n";
  for (double t : yt)
    s << "<text x=\"" << fixed(left - 8) << "\" y=\"" << fixed(py(t) + 4)
      << "\" text-anchor=\"end\">" << pretty(t) << "</text>\n";
  s << "<text x=\"" << fixed(left + size / 2) << "\" y=\"" << fixed(top + size + 40)
    << "\" text-anchor=\"middle\" font-style=\"italic\" font-size=\"14\">x</text>\n"
    << "<text x=\"" << fixed(left - 44) << "\" y=\"" << fixed(top + size / 2)
    << "\" text-anchor=\"middle\" font-style=\"italic\" font-size=\"14\">y</text>\n</g>\n";

  // Minima (black crosses), the paths, the start (white circle) and each end point.
  static const char* palette[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                  "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
  auto colour = [&](std::size_t k) { return palette[k % 10]; };
  const double far_x0 = w[0] - 10 * ww, far_x1 = w[1] + 10 * ww, far_y0 = w[2] - 10 * wh,
               far_y1 = w[3] + 10 * wh;
  auto drawable = [&](const Point& q) {
    return std::isfinite(q.x) && std::isfinite(q.y) && q.x > far_x0 && q.x < far_x1 &&
           q.y > far_y0 && q.y < far_y1;
  };
  auto inside = [&](const Point& q) {
    return std::isfinite(q.x) && std::isfinite(q.y) && q.x >= w[0] && q.x <= w[1] && q.y >= w[2] &&
           q.y <= w[3];
  };
  s << "<g clip-path=\"url(#plot)\">\n<g stroke=\"#000000\" stroke-width=\"2\">\n";
  for (const auto& m : fn.minima) {
    const double mx = px(m[0]), my = py(m[1]);
    s << "<path d=\"M" << fixed(mx - 5) << "," << fixed(my - 5) << "L" << fixed(mx + 5) << ","
      << fixed(my + 5) << "M" << fixed(mx - 5) << "," << fixed(my + 5) << "L" << fixed(mx + 5)
      << "," << fixed(my - 5) << "\"/>\n";
  }
  s << "</g>\n<g fill=\"none\" stroke-width=\"2\" stroke-linejoin=\"round\" "
       "stroke-linecap=\"round\" stroke-opacity=\"0.9\">\n";
  for (std::size_t k = 0; k < ts.size(); ++k) {
    std::string d;
    bool pen_down = false;
    for (const Point& q : ts[k].points) {
      if (!drawable(q)) {
        pen_down = false;
        continue;
      }
      d += (pen_down ? " " : "M") + fixed(px(q.x), 2) + "," + fixed(py(q.y), 2);
      if (!pen_down) d += "L";
      pen_down = true;
    }
    // A lone "M x,yL" (one point) is not a valid path: drop the dangling L.
    std::string clean;
    for (std::size_t i = 0; i < d.size(); ++i) {
      if (d[i] == 'L' && (i + 1 == d.size() || d[i + 1] == 'M')) continue;
      clean += d[i];
    }
    if (!clean.empty())
      s << "<path stroke=\"" << colour(k) << "\" d=\"" << clean << "\">"
        << "<title>" << xml_escape(ts[k].label) << "</title></path>\n";
  }
  s << "</g>\n";
  s << "<circle cx=\"" << fixed(px(c.start[0])) << "\" cy=\"" << fixed(py(c.start[1]))
    << "\" r=\"6\" fill=\"#ffffff\" stroke=\"#000000\" stroke-width=\"2\"/>\n";
  for (std::size_t k = 0; k < ts.size(); ++k) {
    const Point& e = ts[k].points.back();
    if (!inside(e)) continue;
    s << "<circle cx=\"" << fixed(px(e.x)) << "\" cy=\"" << fixed(py(e.y)) << "\" r=\"5\" fill=\""
      << colour(k) << "\" stroke=\"#ffffff\" stroke-width=\"1.5\"/>\n";
  }
  s << "</g>\n";

  // Legend: one line per optimizer with its colour, label and where it ended.
  double ly = top + 8;
  s << "<g font-size=\"12\">\n"
    << "<text x=\"" << fixed(legend_x) << "\" y=\"" << fixed(ly + 4)
    << "\" font-weight=\"bold\">optimizer (end point, f)</text>\n";
  ly += 24;
  for (std::size_t k = 0; k < ts.size(); ++k) {
    const Point& e = ts[k].points.back();
    s << "<line x1=\"" << fixed(legend_x) << "\" y1=\"" << fixed(ly) << "\" x2=\""
      << fixed(legend_x + 22) << "\" y2=\"" << fixed(ly) << "\" stroke=\"" << colour(k)
      << "\" stroke-width=\"3\"/>\n"
      << "<circle cx=\"" << fixed(legend_x + 22) << "\" cy=\"" << fixed(ly) << "\" r=\"4\" fill=\""
      << colour(k) << "\" stroke=\"#ffffff\"/>\n"
      << "<text x=\"" << fixed(legend_x + 32) << "\" y=\"" << fixed(ly + 4) << "\">"
      << xml_escape(ts[k].label) << "</text>\n";
    std::string where;
    if (!std::isfinite(e.x) || !std::isfinite(e.y) || !std::isfinite(e.f))
      where = "diverged (not finite)";
    else
      where = "(" + pretty(e.x, 4) + ", " + pretty(e.y, 4) + "), f = " + pretty(e.f, 3) +
              (inside(e) ? "" : ", outside the view");
    s << "<text x=\"" << fixed(legend_x + 32) << "\" y=\"" << fixed(ly + 19)
      << "\" fill=\"#555555\" font-size=\"11\">" << xml_escape(where) << "</text>\n";
    ly += 38;
  }
  ly += 6;
  s << "<circle cx=\"" << fixed(legend_x + 11) << "\" cy=\"" << fixed(ly)
    << "\" r=\"5\" fill=\"#ffffff\" stroke=\"#000000\" stroke-width=\"2\"/>\n"
    << "<text x=\"" << fixed(legend_x + 32) << "\" y=\"" << fixed(ly + 4) << "\">start</text>\n";
  ly += 22;
  s << "<path d=\"M" << fixed(legend_x + 7) << "," << fixed(ly - 4) << "L" << fixed(legend_x + 15)
    << "," << fixed(ly + 4) << "M" << fixed(legend_x + 7) << "," << fixed(ly + 4) << "L"
    << fixed(legend_x + 15) << "," << fixed(ly - 4)
    << "\" stroke=\"#000000\" stroke-width=\"2\"/>\n"
    << "<text x=\"" << fixed(legend_x + 32) << "\" y=\"" << fixed(ly + 4) << "\">"
    << (fn.minima.size() > 1 ? "global minima" : "global minimum") << " (f = 0)</text>\n";
  ly += 22;
  if (!heights.empty())
    s << "<text x=\"" << fixed(legend_x) << "\" y=\"" << fixed(ly + 4)
      << "\" fill=\"#555555\" font-size=\"11\">contours: " << heights.size()
      << " log-spaced levels of f, " << pretty(heights.front()) << " to " << pretty(heights.back())
      << "</text>\n";
  s << "</g>\n</svg>\n";
  return s.str();
}

int run(const Config& c) {
  const tf::Function& fn = tf::get(c.function);
  Config cfg = c;
  if (!cfg.start_given) cfg.start = fn.start;
  if (cfg.optims.empty()) usage_error("no optimizer given (add --optim sgd|rmsprop|adam|adamw)");
  std::set<std::string> labels;
  for (const OptimConfig& o : cfg.optims)
    if (!labels.insert(o.label()).second)
      usage_error("the optimizer ", o.label(), " is given twice");

  // Check every optimizer's values before running any (the constructors throw xgrad::Error).
  for (const OptimConfig& o : cfg.optims) o.make(zeros({2}, float64).requires_grad_());

  std::vector<Trajectory> ts;
  for (const OptimConfig& o : cfg.optims) ts.push_back(descend(fn, cfg, o));

  std::printf("xgrad-descent: %s from (%s, %s), %lld steps, %s gradients\n",
              std::string(fn.name).c_str(), format_number(cfg.start[0]).c_str(),
              format_number(cfg.start[1]).c_str(), cfg.steps, cfg.grad.c_str());
  std::size_t width = 0;
  for (const Trajectory& t : ts) width = std::max(width, t.label.size());
  for (const Trajectory& t : ts) {
    const Point& e = t.points.back();
    std::printf("  %-*s  x %-23s y %-23s f %s\n", static_cast<int>(width), t.label.c_str(),
                format_value(e.x).c_str(), format_value(e.y).c_str(), short_number(e.f).c_str());
  }
  if (!cfg.csv.empty()) {
    io::write_file_atomically(cfg.csv, csv_text(ts));
    std::printf("trajectories written to %s\n", cfg.csv.c_str());
  }
  if (!cfg.svg.empty()) {
    io::write_file_atomically(cfg.svg, svg_text(fn, cfg, ts));
    std::printf("picture written to %s\n", cfg.svg.c_str());
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

// xgrad-descent's command line on Boost.Program_options: the line is split at each
// --optim NAME and each slice parsed with its own options_description (the global options and
// that optimizer's), long options only (so "-1.5,2" is a value, never an option). Values come
// back as raw strings, checked here with the messages tests/tools/descent_cli_test.cpp expects.
// Included by tools/xgrad-descent.cpp only.
#pragma once

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cmath>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <boost/program_options.hpp>

#include "optimizers.hpp"  // beside this file

namespace descent {

namespace po = boost::program_options;

/// The parsed command line (defaults as in the usage text; `start` is filled in from the
/// function when not given).
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

// ---- values ------------------------------------------------------------------------------

/// The finite number `text`, the value of `option`.
inline double to_number(std::string_view option, std::string_view text) {
  double v = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, v);
  if (text.empty() || ec != std::errc() || ptr != end || !std::isfinite(v))
    usage_error(option, ": expected a finite number, got '", text, "'");
  return v;
}

// A comma-separated list of `count` numbers. `--start -1.5, 2` reaches here as '-1.5,' with
// the word '2' after it: `rest` holds the words that continue the value ("2"), and the message
// says that a space split the value rather than "expected a finite number, got ''".
inline std::vector<double> to_numbers(std::string_view option, const std::string& text,
                                      std::size_t count, std::string_view what,
                                      const std::vector<std::string>& rest) {
  if (!rest.empty()) {
    std::string shown = text, joined = text;
    for (const std::string& word : rest) shown += " " + word, joined += word;
    usage_error(option, ": the value '", text, "' is cut at a space (the shell split '", shown,
                "' into several words): write ", what, " without spaces, e.g. ", option, " ",
                joined);
  }
  std::vector<double> out;
  std::size_t begin = 0;
  while (true) {
    const std::size_t comma = text.find(',', begin);
    if (comma == begin || (comma == std::string::npos && begin == text.size() && begin > 0))
      usage_error(option, ": expected ", what, ", got '", text, "' (a number is missing)");
    out.push_back(to_number(option, std::string_view(text).substr(begin, comma - begin)));
    if (comma == std::string::npos) break;
    begin = comma + 1;
  }
  if (out.size() != count) usage_error(option, ": expected ", what, ", got '", text, "'");
  return out;
}

// ---- options ------------------------------------------------------------------------------

/// Sets a global option from its raw value.
inline void set_global(Config& c, const std::string& key, const std::string& value,
                       const std::vector<std::string>& rest) {
  const std::string opt = "--" + key;
  if (key == "function") {
    c.function = value;
  } else if (key == "start") {
    auto v = to_numbers(opt, value, 2, "X,Y", rest);
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
  } else if (key == "csv" || key == "svg" || key == "out") {
    if (value.empty()) usage_error(opt, ": empty file name");
    if (key == "csv") {
      c.csv = value;
      return;
    }
    // --out FILE, as in xgrad-graph: the format from the name. The picture is SVG text;
    // --svg is its older name.
    std::string ext = value.substr(std::min(value.size(), value.rfind('.')));
    for (char& ch : ext) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (ext != ".svg")
      usage_error(opt, ": cannot tell the format of '", value,
                  "': xgrad-descent draws SVG, name it .svg (rsvg-convert turns it into a PNG)");
    if (!c.svg.empty()) usage_error("--out and --svg name the same picture: give one of them");
    c.svg = value;
  } else if (key == "window") {
    auto v = to_numbers(opt, value, 4, "XMIN,XMAX,YMIN,YMAX", rest);
    if (!(v[0] < v[1] && v[2] < v[3]))
      usage_error(opt, ": expected XMIN < XMAX and YMIN < YMAX, got '", value, "'");
    c.window = {v[0], v[1], v[2], v[3]};
    c.window_given = true;
  }
}

/// Sets an option of the optimizer `o` from its raw value.
inline void set_optim(OptimConfig& o, const std::string& key, const std::string& value,
                      const std::vector<std::string>& rest) {
  const std::string opt = "--" + key;
  if (kFlags.count(key)) {
    if (value.empty() || value == "true" || value == "1" || value == "yes")
      o.values[key] = 1;
    else if (value == "false" || value == "0" || value == "no")
      o.values[key] = 0;
    else
      usage_error(opt, ": expected true or false, got '", value, "'");
  } else if (key == "betas") {
    auto v = to_numbers(opt, value, 2, "B1,B2", rest);
    o.values["beta1"] = v[0];
    o.values["beta2"] = v[1];
  } else {
    o.values[key] = to_number(opt, value);
  }
}

/// The global options, as on the command line without "--".
inline const std::set<std::string> kGlobal = {"function", "start", "steps", "grad",
                                              "csv",      "svg",   "out",   "window"};

/// The options of one slice, every value a raw string: the global ones and those of the
/// optimizer `name` ("" before the first --optim: none). A flag's value is optional (--amsgrad,
/// --amsgrad=false). Words that are not options land in "word".
inline const po::options_description& option_table(const std::string& name) {
  static std::map<std::string, po::options_description> tables;
  auto [it, added] = tables.try_emplace(name);
  if (!added) return it->second;
  po::options_description& d = it->second;
  for (const std::string& key : kGlobal) d.add_options()(key.c_str(), po::value<std::string>());
  if (!name.empty())
    for (const auto& [key, def] : kDefaults.at(name)) {
      if (key == "beta2") continue;
      const char* option = key == "beta1" ? "betas" : key.c_str();
      if (kFlags.count(key))
        d.add_options()(option, po::value<std::string>()->implicit_value(""));
      else
        d.add_options()(option, po::value<std::string>());
    }
  d.add_options()("help", "")("word", po::value<std::vector<std::string>>());
  return d;
}

/// The message for an option the slice's table lacks: an optimizer's option before any --optim
/// or under the wrong one, or no option at all.
[[noreturn]] inline void unknown_option(const OptimConfig* o, const std::string& option) {
  bool some_optimizer = false;
  for (const auto& [name, defaults] : kDefaults) {
    OptimConfig any(name);
    some_optimizer = some_optimizer || any.has(option.substr(2));
  }
  if (!some_optimizer) usage_error("unknown option '", option, "'");
  if (!o) usage_error(option, " must follow an --optim NAME");
  usage_error(option, " does not apply to ", o->name, " (its options: ", o->options_list(), ")");
}

/// Parses the words before the first --optim (`o` null) or after one (`o` that optimizer),
/// long options only so that "-1.5,2" is a value, never an option. Global options may come
/// anywhere; each may be given once, and each option of an optimizer once per --optim.
inline void parse_slice(const std::vector<std::string>& words, Config& c, OptimConfig* o,
                        std::set<std::string>& seen_global) {
  po::positional_options_description positional;
  positional.add("word", -1);
  po::parsed_options parsed(nullptr);
  try {
    namespace style = po::command_line_style;
    parsed = po::command_line_parser(words)
                 .options(option_table(o ? o->name : ""))
                 .positional(positional)
                 .style(style::allow_long | style::long_allow_adjacent | style::long_allow_next)
                 .run();
  } catch (const po::unknown_option& e) {
    const std::string name = e.get_option_name();  // "--x=3" for --x=3
    unknown_option(o, name.substr(0, name.find('=')));
  } catch (const po::invalid_command_line_syntax& e) {
    using syntax = po::invalid_command_line_syntax;
    if (e.kind() != syntax::missing_parameter && e.kind() != syntax::empty_adjacent_parameter)
      usage_error(e.what());
    usage_error(e.get_option_name(), ": missing value");
  } catch (const po::error& e) {
    usage_error(e.what());
  }
  std::set<std::string> seen_optim;
  const auto& opts = parsed.options;
  for (std::size_t i = 0; i < opts.size(); ++i) {
    const std::string& key = opts[i].string_key;
    const std::string value = opts[i].value.empty() ? "" : opts[i].value[0];
    // A flag's value comes after "=" only: Program_options gives it the next word too, which
    // is refused as an argument of its own.
    if (kFlags.count(key) && opts[i].original_tokens.size() > 1) {
      o->values[key] = 1;
      usage_error("unexpected argument '", value, "' (options start with --)");
    }
    const std::string opt = "--" + key;
    // The words that continue a list value across a space: '-1.5,' then '2'.
    std::vector<std::string> rest;
    for (std::size_t j = i + 1; j < opts.size() && opts[j].string_key == "word"; ++j) {
      const std::string& w = opts[j].value[0];
      const std::string& before = rest.empty() ? value : rest.back();
      if (w.empty() || before.empty() || (before.back() != ',' && w[0] != ',')) break;
      rest.push_back(w);
    }
    if (key == "help") {
      c.help = true;
    } else if (key == "word") {
      usage_error("unexpected argument '", value, "' (options start with --)");
    } else if (kGlobal.count(key)) {
      if (!seen_global.insert(key).second) usage_error(opt, " given twice");
      set_global(c, key, value, rest);
    } else {  // an option of this optimizer: Program_options knows no other here
      if (!seen_optim.insert(key).second)
        usage_error(opt, " given twice for the same --optim ", o->name);
      set_optim(*o, key, value, rest);
    }
  }
}

/// Splits the line at each --optim NAME and parses each slice.
inline Config parse_args(int argc, char** argv) {
  Config c;
  std::vector<std::vector<std::string>> slices(1);
  for (int i = 1; i < argc; ++i) {
    const std::string word = argv[i];
    if (word == "--optim" || word.rfind("--optim=", 0) == 0) {
      if (word == "--optim" && i + 1 >= argc) usage_error("--optim: missing value");
      c.optims.emplace_back(word == "--optim" ? argv[++i] : word.substr(8));
      slices.emplace_back();
    } else {
      // "--" would end Program_options' options; here it is a stray word as any other.
      if (word == "--") usage_error("unexpected argument '--' (options start with --)");
      slices.back().push_back(word == "-h" ? "--help" : word);
    }
  }
  std::set<std::string> seen_global;
  for (std::size_t k = 0; k < slices.size(); ++k)
    parse_slice(slices[k], c, k == 0 ? nullptr : &c.optims[k - 1], seen_global);
  return c;
}

}  // namespace descent

// xgrad-descent as a user runs it: its CSV is torch's golden trajectory to the last digit,
// negative numbers are values, bad input gives one line on stderr and exit code 2, and the
// SVG is well-formed XML (checked with xmllint when it is installed).
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "process_util.hpp"
#include "test_util.hpp"

namespace fs = std::filesystem;

#ifdef XGRAD_DESCENT_BIN
const std::string kBinary = XGRAD_DESCENT_BIN;
#else
// tests/CMakeLists.txt defines XGRAD_DESCENT_BIN (the built xgrad-descent); without it every
// case fails with this message instead of breaking the build.
const std::string kBinary;
#endif

namespace {

// Per-process names: ctest runs the cases of this suite in parallel processes.
fs::path temp(const std::string& name) {
  return fs::temp_directory_path() / ("xgrad_descent_" + std::to_string(::getpid()) + "_" + name);
}

using xgrad::testing::Run;
using xgrad::testing::slurp;

// Runs xgrad-descent with `args` (a shell word list), capturing stdout, stderr, exit code.
Run run_descent(const std::string& args) {
  BOOST_REQUIRE_MESSAGE(!kBinary.empty(),
                        "XGRAD_DESCENT_BIN is not defined: tests/CMakeLists.txt must set it to "
                        "$<TARGET_FILE:xgrad-descent> for descent_cli_test");
  return xgrad::testing::run_command(kBinary + " " + args);
}

std::string read_gzip(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  BOOST_REQUIRE_MESSAGE(f != nullptr, "cannot open " << path);
  std::string out;
  char buf[1 << 16];
  int n = 0;
  while ((n = gzread(f, buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(n));
  gzclose(f);
  BOOST_REQUIRE_MESSAGE(n == 0, "cannot read " << path);
  return out;
}

/// The golden CSV restricted to the given labels (in the given order), header included: what
/// xgrad-descent must write for those configurations.
std::string golden_csv(const std::string& file, const std::vector<std::string>& labels) {
  const std::string text =
      read_gzip(std::string(XGRAD_TEST_DATA_DIR) + "/optim_golden/" + file + ".csv.gz");
  std::string out = "optimizer,step,x,y,f\n";
  for (const std::string& label : labels) {
    const std::string field = label.find(',') == std::string::npos ? label : "\"" + label + "\"";
    std::size_t found = 0, pos = 0;
    while (pos < text.size()) {
      std::size_t end = text.find('\n', pos);
      const std::string line = text.substr(pos, end - pos);
      pos = end == std::string::npos ? text.size() : end + 1;
      if (line.rfind(field + ",", 0) == 0) {
        out += line + "\n";
        ++found;
      }
    }
    BOOST_REQUIRE_MESSAGE(found == 201, file << " has " << found << " rows of " << label);
  }
  return out;
}

int count_lines(const std::string& s) {
  int n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

void expect_usage_error(const std::string& args, const std::string& fragment) {
  Run r = run_descent(args);
  BOOST_CHECK_MESSAGE(r.code == 2, args << ": exit code " << r.code << ", expected 2");
  BOOST_CHECK_MESSAGE(count_lines(r.err) == 1,
                      args << ": stderr should be one line, got: " << r.err);
  BOOST_CHECK_MESSAGE(r.err.find(fragment) != std::string::npos,
                      args << ": stderr '" << r.err << "' lacks '" << fragment << "'");
}

// The whole of stderr, word for word, and exit code 2.
void expect_usage_message(const std::string& args, const std::string& message) {
  Run r = run_descent(args);
  BOOST_CHECK_MESSAGE(r.code == 2, args << ": exit code " << r.code << ", expected 2");
  BOOST_CHECK_MESSAGE(r.err == message + "\n",
                      args << ": stderr\n  '" << r.err << "'\nexpected\n  '" << message << "'");
}

/// Line `n` (0-based) of a text.
std::string line_at(const std::string& text, int n) {
  std::istringstream in(text);
  std::string line;
  for (int i = 0; i <= n && std::getline(in, line); ++i) {
  }
  return line;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(descent_cli)

BOOST_AUTO_TEST_CASE(csv_is_the_golden_trajectory_of_sgd_with_momentum) {
  // Rosenbrock from (−1.5, 2), the closed-form gradient: torch.optim.SGD's trajectory.
  const fs::path csv = temp("momentum.csv");
  Run r = run_descent("--function rosenbrock --start -1.5,2 --steps 200 --grad analytic --csv " +
                      csv.string() + " --optim sgd --lr 1e-3 --momentum 0.9");
  BOOST_REQUIRE_MESSAGE(r.code == 0, "exit code " << r.code << ": " << r.err);
  const std::string got = slurp(csv);
  fs::remove(csv);
  BOOST_TEST(got == golden_csv("rosenbrock_analytic", {"sgd(lr=0.001,momentum=0.9)"}));
}

BOOST_AUTO_TEST_CASE(csv_is_the_golden_trajectory_of_two_optimizers) {
  // Two optimizers in one run, each with its own options (and labels holding commas).
  const fs::path csv = temp("two.csv");
  Run r = run_descent(
      "--optim adam --lr 0.01 --amsgrad --function himmelblau --grad=analytic "
      "--optim rmsprop --centered --lr=0.01 --start 0,0 --csv " +
      csv.string());
  BOOST_REQUIRE_MESSAGE(r.code == 0, "exit code " << r.code << ": " << r.err);
  const std::string got = slurp(csv);
  fs::remove(csv);
  BOOST_TEST(got == golden_csv("himmelblau_analytic",
                               {"adam(lr=0.01,amsgrad)", "rmsprop(lr=0.01,centered)"}));
}

BOOST_AUTO_TEST_CASE(negative_numbers_are_values) {
  const fs::path csv = temp("negative.csv");
  for (const std::string start : {"--start -1.5,2", "--start=-2.5,-1", "--start -0.5,-1e-1"}) {
    Run r = run_descent(start + " --steps 1 --function bowl --csv " + csv.string() +
                        " --optim sgd --lr 0.1");
    BOOST_REQUIRE_MESSAGE(r.code == 0, start << ": exit code " << r.code << ": " << r.err);
    const std::string row = line_at(slurp(csv), 1);
    const std::string xy = start.substr(start.find_first_of(" =") + 1);
    const double x = std::stod(xy.substr(0, xy.find(','))),
                 y = std::stod(xy.substr(xy.find(',') + 1));
    char expected[128];
    std::snprintf(expected, sizeof expected, "sgd(lr=0.1),0,%.17g,%.17g,", x, y);
    BOOST_CHECK_MESSAGE(row.rfind(expected, 0) == 0, start << ": step 0 is '" << row << "'");
  }
  fs::remove(csv);
  // A negative value reaches the optimizer, which refuses it (rather than "unknown option").
  expect_usage_error("--optim adam --lr -0.1", "invalid lr -0.1");
}

// Newton's method with the Hessian by double backward: on the bowl ½(x² + 10y²) one full step
// lands exactly on the minimum (H = diag(1, 10) is constant, so the quadratic model is f);
// on Rosenbrock it reaches (1, 1) where first-order methods crawl along the valley; damping
// shortens the first step.
BOOST_AUTO_TEST_CASE(newton_uses_the_autograd_hessian) {
  const fs::path csv = temp("newton.csv");
  Run r = run_descent("--function bowl --start -3.5,1.5 --steps 1 --csv " + csv.string() +
                      " --optim newton");
  BOOST_REQUIRE_MESSAGE(r.code == 0, r.err);
  BOOST_TEST(line_at(slurp(csv), 2) == "newton(lr=1),1,0,0,0");
  r = run_descent("--function rosenbrock --start -1.5,2 --steps 20 --csv " + csv.string() +
                  " --optim newton");
  BOOST_REQUIRE_MESSAGE(r.code == 0, r.err);
  const std::string text = slurp(csv);
  const std::string last = line_at(text, 21);
  BOOST_TEST(last.rfind("newton(lr=1),20,1,1,0", 0) == 0, "last row: " << last);
  r = run_descent("--function bowl --start -3.5,1.5 --steps 1 --csv " + csv.string() +
                  " --optim newton --damping 1");
  BOOST_REQUIRE_MESSAGE(r.code == 0, r.err);
  // (H + I)⁻¹∇f = (x/2, 10y/11): the step ends at (−1.75, 1.5/11); the label has a comma, so
  // the CSV quotes it.
  char expected[128];
  std::snprintf(expected, sizeof expected, "\"newton(lr=1,damping=1)\",1,%.17g,%.17g,", -3.5 + 1.75,
                1.5 - 10 * 1.5 / 11);
  BOOST_TEST(line_at(slurp(csv), 2).rfind(expected, 0) == 0, "row: " << line_at(slurp(csv), 2));
  fs::remove(csv);
  expect_usage_error("--optim newton --lr 0", "--lr must be positive");
  expect_usage_error("--optim newton --damping -1", "--damping must be >= 0");
}

BOOST_AUTO_TEST_CASE(bad_input_exits_2_with_one_line) {
  expect_usage_error("--optim sgd --no-such-flag", "--no-such-flag");
  expect_usage_error("--optim lbfgs", "lbfgs");
  expect_usage_error("--function sphere --optim sgd", "sphere");
  expect_usage_error("--grad numeric --optim sgd", "numeric");
  expect_usage_error("--steps many --optim sgd", "--steps");
  expect_usage_error("--steps -3 --optim sgd", "--steps");
  expect_usage_error("--start 1 --optim sgd", "X,Y");
  expect_usage_error("--start 1,two --optim sgd", "two");
  expect_usage_error("--optim sgd --lr", "missing value");
  expect_usage_error("--lr 0.1 --optim sgd", "must follow an --optim");
  expect_usage_error("--optim sgd --betas 0.9,0.99", "does not apply to sgd");
  expect_usage_error("--optim adam --betas 0.9", "B1,B2");
  expect_usage_error("--optim adam --betas 1,0.999", "beta1");
  expect_usage_error("--optim sgd --nesterov", "nesterov");
  expect_usage_error("--optim sgd --lr 0.1 --lr 0.2", "given twice");
  expect_usage_error("--optim sgd --optim sgd", "given twice");
  expect_usage_error("--function bowl", "no optimizer");
  expect_usage_error("stray --optim sgd", "stray");
  expect_usage_error("--optim sgd --csv /nonexistent/folder/t.csv", "/nonexistent/folder");
}

BOOST_AUTO_TEST_CASE(help_and_default_gradient) {
  Run help = run_descent("--help");
  BOOST_CHECK_EQUAL(help.code, 0);
  BOOST_CHECK(help.out.find("--optim") != std::string::npos);
  Run r = run_descent("--steps 3 --optim adam");
  BOOST_CHECK_EQUAL(r.code, 0);
  BOOST_CHECK_MESSAGE(
      r.out.find("rosenbrock from (-1.5, 2), 3 steps, autograd gradients") != std::string::npos,
      r.out);
  BOOST_CHECK(r.out.find("adam(lr=0.001)") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(svg_is_well_formed_xml) {
  const fs::path svg = temp("path.svg");
  Run r = run_descent("--function rosenbrock --start -1.5,2 --steps 300 --svg " + svg.string() +
                      " --optim sgd --lr 1e-3 --momentum 0.9 --optim adam --lr 0.05"
                      " --optim rmsprop --lr 0.5");  // the last one leaves the view
  BOOST_REQUIRE_MESSAGE(r.code == 0, "exit code " << r.code << ": " << r.err);
  const std::string text = slurp(svg);
  BOOST_CHECK(text.rfind("<?xml", 0) == 0);
  BOOST_CHECK(text.find("</svg>") != std::string::npos);
  for (const char* label : {"sgd(lr=0.001,momentum=0.9)", "adam(lr=0.05)", "rmsprop(lr=0.5)"})
    BOOST_CHECK_MESSAGE(text.find(std::string("<title>") + label + "</title>") != std::string::npos,
                        "no path titled " << label);
  if (std::system("command -v xmllint >/dev/null 2>&1") != 0) {
    BOOST_TEST_MESSAGE("xmllint is not installed (Debian: libxml2-utils): skipping the XML check");
    std::printf("descent_cli: xmllint not found (install libxml2-utils); XML check skipped\n");
  } else {
    const fs::path err = temp("xmllint.txt");
    const int status =
        std::system(("xmllint --noout " + svg.string() + " 2>" + err.string()).c_str());
    BOOST_CHECK_MESSAGE(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                        "xmllint rejects the SVG: " << slurp(err));
    fs::remove(err);
  }
  fs::remove(svg);
}

// --out FILE, the option xgrad-graph has too: the format from the name (SVG here); --svg is its
// older name; a name of another format is refused with exit code 2 before any work.
BOOST_AUTO_TEST_CASE(out_takes_the_format_from_the_name) {
  const fs::path svg = temp("out_path.svg"), old = temp("old_path.svg");
  Run r = run_descent("--steps 20 --out " + svg.string() + " --optim adam --lr 0.05");
  BOOST_REQUIRE_MESSAGE(r.code == 0, "exit code " << r.code << ": " << r.err);
  Run o = run_descent("--steps 20 --svg " + old.string() + " --optim adam --lr 0.05");
  BOOST_REQUIRE_MESSAGE(o.code == 0, "exit code " << o.code << ": " << o.err);
  BOOST_CHECK(slurp(svg) == slurp(old));  // the same picture under either name
  BOOST_CHECK(slurp(svg).find("</svg>") != std::string::npos);
  expect_usage_error("--out path.png --optim sgd", "cannot tell the format of 'path.png'");
  expect_usage_error("--out path.dot --optim sgd", "name it .svg");
  expect_usage_error("--out path --optim sgd", "cannot tell the format");
  expect_usage_error("--out a.svg --svg b.svg --optim sgd", "give one of them");
  BOOST_CHECK(!fs::exists("path.png") && !fs::exists("path"));
  fs::remove(svg);
  fs::remove(old);
}

// `--start -1.5, 2` used to say "expected a finite number, got ''": the message now names the
// cause, a space that split the value. The messages below are checked word for word.
BOOST_AUTO_TEST_CASE(value_split_by_a_space_is_named) {
  expect_usage_message("--start -1.5, 2 --optim sgd",
                       "xgrad-descent: --start: the value '-1.5,' is cut at a space (the shell "
                       "split '-1.5, 2' into several words): write X,Y without spaces, e.g. "
                       "--start -1.5,2 (see --help)");
  expect_usage_message("--optim sgd --start -1.5 ,2",
                       "xgrad-descent: --start: the value '-1.5' is cut at a space (the shell "
                       "split '-1.5 ,2' into several words): write X,Y without spaces, e.g. "
                       "--start -1.5,2 (see --help)");
  expect_usage_message("--window -2, 2, -1, 3 --optim sgd",
                       "xgrad-descent: --window: the value '-2,' is cut at a space (the shell "
                       "split '-2, 2, -1, 3' into several words): write XMIN,XMAX,YMIN,YMAX "
                       "without spaces, e.g. --window -2,2,-1,3 (see --help)");
  expect_usage_message("--optim adam --betas 0.9, 0.99",
                       "xgrad-descent: --betas: the value '0.9,' is cut at a space (the shell "
                       "split '0.9, 0.99' into several words): write B1,B2 without spaces, e.g. "
                       "--betas 0.9,0.99 (see --help)");
  // A number missing without a space: said so, not "got ''".
  expect_usage_message("--start 1,,2 --optim sgd",
                       "xgrad-descent: --start: expected X,Y, got '1,,2' (a number is missing) "
                       "(see --help)");
  expect_usage_message("--optim sgd --start 1,",
                       "xgrad-descent: --start: expected X,Y, got '1,' (a number is missing) "
                       "(see --help)");
  // The next option is not taken for the rest of the value.
  expect_usage_message("--start 1, --optim sgd",
                       "xgrad-descent: --start: expected X,Y, got '1,' (a number is missing) "
                       "(see --help)");
  // Quoted, the spaces are inside one word: a plain number error.
  expect_usage_message("--start '-1.5, 2' --optim sgd",
                       "xgrad-descent: --start: expected a finite number, got ' 2' (see --help)");
}

// "(see --help)" once: messages used to end "(see --help) (see --help)".
BOOST_AUTO_TEST_CASE(see_help_appears_once) {
  expect_usage_message(
      "--function bowl",
      "xgrad-descent: no optimizer given (add --optim sgd|rmsprop|adam|adamw|newton) "
      "(see --help)");
  expect_usage_message("stray --optim sgd",
                       "xgrad-descent: unexpected argument 'stray' (options start with --) "
                       "(see --help)");
  expect_usage_message("--optim sgd --no-such-flag",
                       "xgrad-descent: unknown option '--no-such-flag' (see --help)");
}

// The line as Program_options sees it (long options only, split at each --optim): negative
// numbers in every list, "=" forms, flags that never take the next word, "--" and -h.
BOOST_AUTO_TEST_CASE(program_options_edge_cases) {
  Run r = run_descent(
      "--window -3,3,-2,4 --steps 2 --optim=adam --betas 0.8,0.9 --amsgrad=false "
      "--optim sgd --lr=0.01 --momentum 0.5 --weight-decay -0 --function=bowl");
  BOOST_CHECK_MESSAGE(r.code == 0, "exit code " << r.code << ": " << r.err);
  BOOST_CHECK(r.out.find("adam(lr=0.001,betas=(0.8,0.9))") != std::string::npos);
  BOOST_CHECK(r.out.find("sgd(lr=0.01,momentum=0.5)") != std::string::npos);
  expect_usage_message("--optim adam --amsgrad x",
                       "xgrad-descent: unexpected argument 'x' (options start with --) "
                       "(see --help)");
  expect_usage_message("--optim adam --amsgrad=maybe",
                       "xgrad-descent: --amsgrad: expected true or false, got 'maybe' "
                       "(see --help)");
  expect_usage_message("--optim sgd --no-such=3",
                       "xgrad-descent: unknown option '--no-such' (see --help)");
  expect_usage_message("-- --optim sgd",
                       "xgrad-descent: unexpected argument '--' (options start with --) "
                       "(see --help)");
  expect_usage_message("--optim", "xgrad-descent: --optim: missing value (see --help)");
  expect_usage_message("--function bowl --function=beale --optim sgd",
                       "xgrad-descent: --function given twice (see --help)");
  expect_usage_message("--optim sgd --csv --optim adam",
                       "xgrad-descent: --csv: missing value (see --help)");
  Run help = run_descent("-h");
  BOOST_CHECK_EQUAL(help.code, 0);
  BOOST_CHECK(help.out.find("usage: xgrad-descent") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()

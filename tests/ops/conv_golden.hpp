// The golden files of tests/data/conv_golden/ (written by tools/make_conv_golden.py with
// python3-torch) and how conv_test and pool_test compare against them.
//
// Format, one item per line: `case NAME`, `param KEY v...`, `tensor KEY NDIM d...` followed by
// a line of values, `end`; '#' starts a comment line.
#pragma once

#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "test_util.hpp"
#include "xgrad/ops/conv.hpp"

namespace xgrad::testing {

/// One case: its integer parameters and its tensors (all held as float64).
struct GoldenCase {
  std::string name;
  std::map<std::string, std::vector<std::int64_t>> params;
  std::map<std::string, Tensor> tensors;  // float64
  Size2 pair(const std::string& k) const {
    const auto& v = params.at(k);
    return {v.at(0), v.at(1)};
  }
};

/// Reads tests/data/conv_golden/`file`; fails the test when it is missing or malformed.
inline std::vector<GoldenCase> read_golden(const std::string& file) {
  const std::string path = std::string(XGRAD_TEST_DATA_DIR) + "/conv_golden/" + file;
  std::ifstream f(path);
  BOOST_REQUIRE_MESSAGE(f, "cannot open " << path);
  std::vector<GoldenCase> cases;
  std::string line;
  while (std::getline(f, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream in(line);
    std::string word;
    in >> word;
    if (word == "case") {
      cases.emplace_back();
      in >> cases.back().name;
    } else if (word == "param") {
      std::string key;
      in >> key;
      std::vector<std::int64_t> v;
      for (std::int64_t x; in >> x;) v.push_back(x);
      cases.back().params[key] = v;
    } else if (word == "tensor") {
      std::string key;
      std::int64_t nd = 0;
      in >> key >> nd;
      Shape shape(static_cast<std::size_t>(nd));
      for (auto& d : shape) in >> d;
      std::string values;
      BOOST_REQUIRE(std::getline(f, values));
      std::istringstream vin(values);
      // Inputs are float32 numbers written with 9 digits: parsing them as float gives them
      // back exactly (as double, the nearest double to the 9-digit decimal would differ).
      const bool is_f32 =
          key == "input" || key == "weight" || key == "bias" || key == "grad_output";
      std::vector<double> data;
      for (std::string tok; vin >> tok;)
        data.push_back(is_f32 ? static_cast<double>(std::strtof(tok.c_str(), nullptr))
                              : std::strtod(tok.c_str(), nullptr));
      BOOST_REQUIRE_EQUAL(static_cast<std::int64_t>(data.size()), shape_numel(shape));
      cases.back().tensors[key] = from_data<double>(data.data(), shape);
    } else {
      BOOST_REQUIRE_MESSAGE(word == "end", "bad line in " << path << ": " << line);
    }
  }
  BOOST_REQUIRE(!cases.empty());
  return cases;
}

// Asserts `actual` matches the float64 reference within tol·max(1, |ref|).
inline void expect_matches(const Tensor& actual, const Tensor& ref, double tol) {
  expect_values(actual, ref.shape(), values_of(ref), tol);
}

/// The tolerance of the golden comparisons: 1e-10 in float64, relative 1e-4 in float32.
inline double golden_tol(Dtype d) {
  return d == float64 ? 1e-10 : 1e-4;
}

}  // namespace xgrad::testing

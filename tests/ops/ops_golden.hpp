// The golden files of tests/data/ops_golden/ (written by tools/make_ops_golden.py with
// python3-torch): torch's values and gradients for the losses, norm, amax/amin and hardtanh.
//
// Format, one item per line: `case NAME`, `tensor KEY NDIM d...` followed by a line of values,
// `end`; '#' starts a comment line. Every tensor is read as float64 (labels too; see int64()).
#pragma once

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "test_util.hpp"

namespace xgrad::testing {

/// One case: its tensors (float64), by key.
struct OpsGoldenCase {
  std::string name;
  std::map<std::string, Tensor> tensors;
  bool has(const std::string& key) const { return tensors.count(key) > 0; }
  const Tensor& at(const std::string& key) const {
    auto it = tensors.find(key);
    BOOST_REQUIRE_MESSAGE(it != tensors.end(), "case " << name << " has no tensor " << key);
    return it->second;
  }
  /// The single value of a one-element tensor (a scalar parameter).
  double scalar(const std::string& key) const { return values_of(at(key)).at(0); }
  /// The tensor as int64 (labels, dims).
  Tensor int64(const std::string& key) const { return at(key).to(Dtype::int64); }
  /// The tensor as a Shape (dims).
  Shape shape_list(const std::string& key) const {
    Shape out;
    for (double v : values_of(at(key))) out.push_back(static_cast<std::int64_t>(v));
    return out;
  }
};

/// Reads tests/data/ops_golden/`file`; fails the test when it is missing or malformed.
inline std::vector<OpsGoldenCase> read_ops_golden(const std::string& file) {
  const std::string path = std::string(XGRAD_TEST_DATA_DIR) + "/ops_golden/" + file;
  std::ifstream f(path);
  BOOST_REQUIRE_MESSAGE(f, "cannot open " << path);
  std::vector<OpsGoldenCase> cases;
  std::string line;
  while (std::getline(f, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream in(line);
    std::string word;
    in >> word;
    if (word == "case") {
      cases.emplace_back();
      in >> cases.back().name;
    } else if (word == "tensor") {
      BOOST_REQUIRE(!cases.empty());
      std::string key;
      std::int64_t nd = 0;
      in >> key >> nd;
      Shape shape(static_cast<std::size_t>(nd));
      for (auto& d : shape) in >> d;
      std::string values;
      BOOST_REQUIRE(std::getline(f, values));
      std::istringstream vin(values);
      std::vector<double> data;
      for (std::string tok; vin >> tok;) data.push_back(std::strtod(tok.c_str(), nullptr));
      BOOST_REQUIRE_EQUAL(static_cast<std::int64_t>(data.size()), shape_numel(shape));
      cases.back().tensors[key] = from_data<double>(data.data(), shape);
    } else {
      BOOST_REQUIRE_MESSAGE(word == "end", "bad line in " << path << ": " << line);
    }
  }
  BOOST_REQUIRE(!cases.empty());
  return cases;
}

/// Asserts `actual` matches the float64 reference within tol·max(1, |ref|) (NaN matches NaN).
inline void expect_golden(const Tensor& actual, const Tensor& ref, double tol) {
  expect_values(actual, ref.shape(), values_of(ref), tol);
}

/// The tolerance of the golden comparisons: 1e-12 in float64, relative 1e-6 in float32 (the
/// inputs are float32 numbers, so only the float32 arithmetic differs).
inline double ops_golden_tol(Dtype d) {
  return d == float64 ? 1e-12 : 1e-6;
}

}  // namespace xgrad::testing

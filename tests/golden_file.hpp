// Golden files written by the torch scripts under tools/ (make_conv_golden.py,
// make_ops_golden.py): one reader for all of them, and the comparison the tests make.
//
// Format, one item per line: `case NAME`, `param KEY v...` (integers), `tensor KEY NDIM d...`
// followed by a line of values, `end`; '#' starts a comment line. Every tensor is held as
// float64 (labels and dims too: see GoldenCase::int64 and shape_list).
#pragma once

#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "test_util.hpp"
#include "xgrad/ops/conv.hpp"

namespace xgrad::testing {

/// One case: its integer parameters and its tensors (float64), by key.
struct GoldenCase {
  std::string name;
  std::map<std::string, std::vector<std::int64_t>> params;
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
  /// A two-integer parameter (stride, padding, ...).
  Size2 pair(const std::string& k) const {
    const auto& v = params.at(k);
    return {v.at(0), v.at(1)};
  }
};

/// Reads tests/data/`folder`/`file`; fails the test when it is missing or malformed. Tensors
/// named in `float32_keys` hold float32 numbers written with 9 digits: parsing them as float
/// gives them back exactly (as double, the nearest double to the 9-digit decimal would differ).
inline std::vector<GoldenCase> read_golden_file(const std::string& folder, const std::string& file,
                                                const std::set<std::string>& float32_keys = {}) {
  const std::string path = std::string(XGRAD_TEST_DATA_DIR) + "/" + folder + "/" + file;
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
      BOOST_REQUIRE(!cases.empty());
      std::string key;
      in >> key;
      std::vector<std::int64_t> v;
      for (std::int64_t x; in >> x;) v.push_back(x);
      cases.back().params[key] = v;
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
      const bool is_f32 = float32_keys.count(key) > 0;
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

/// Asserts `actual` matches the float64 reference within tol·max(1, |ref|) (NaN matches NaN).
inline void expect_golden(const Tensor& actual, const Tensor& ref, double tol) {
  expect_values(actual, ref.shape(), values_of(ref), tol);
}

}  // namespace xgrad::testing

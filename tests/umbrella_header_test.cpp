// xgrad/xgrad.hpp brings in every public header: a new header that is not added to it fails
// here, and the umbrella alone is enough to use each layer.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "test_util.hpp"
#include "xgrad/xgrad.hpp"

namespace fs = std::filesystem;

BOOST_AUTO_TEST_SUITE(umbrella_header)

BOOST_AUTO_TEST_CASE(includes_every_public_header) {
  const fs::path include = fs::path(XGRAD_TEST_DATA_DIR) / ".." / ".." / "include";
  std::ifstream f(include / "xgrad" / "xgrad.hpp");
  BOOST_REQUIRE(f);
  const std::string umbrella((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  std::vector<std::string> missing;
  std::size_t headers = 0;
  for (const auto& e : fs::recursive_directory_iterator(include / "xgrad")) {
    if (e.path().extension() != ".hpp" || e.path().filename() == "xgrad.hpp") continue;
    ++headers;
    const std::string rel = fs::relative(e.path(), include).generic_string();
    if (umbrella.find("#include \"" + rel + "\"") == std::string::npos) missing.push_back(rel);
  }
  BOOST_TEST(headers > 50u);
  std::sort(missing.begin(), missing.end());
  for (const auto& m : missing) BOOST_ERROR("xgrad/xgrad.hpp does not include " << m);
}

BOOST_AUTO_TEST_CASE(one_include_reaches_every_layer) {
  using namespace xgrad;
  nn::Linear fc(3, 2);
  optim::SGD opt(fc.parameters(), optim::SGDOptions().lr(0.1));
  Tensor loss = fc(ones({4, 3})).pow(2.0).sum();
  loss.backward();
  opt.step();
  BOOST_TEST(viz::to_dot({loss}).find("digraph") == 0u);
  BOOST_TEST(fc.state_dict().size() == 2u);
  BOOST_TEST(data::kMnistClasses == 10);
}

BOOST_AUTO_TEST_SUITE_END()

// xgrad::Shape, the small vector of sizes and strides: values as std::vector<std::int64_t> gives
// them, inline up to 6 entries and on the heap beyond, copies and moves of both kinds, the
// std::vector-like modifiers, comparisons and the conversions from and to std::vector.
#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <map>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "test_util.hpp"

using namespace xgrad;

namespace {

using Vec = std::vector<std::int64_t>;

// The entries of s as a std::vector, read through the iterators (not the conversion).
Vec values(const Shape& s) {
  Vec v;
  for (std::int64_t x : s) v.push_back(x);
  return v;
}

// 1, 2, ..., n.
Shape iota(std::int64_t n) {
  Shape s;
  for (std::int64_t i = 1; i <= n; ++i) s.push_back(i);
  return s;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(small_shape)

BOOST_AUTO_TEST_CASE(constructors_give_std_vector_values) {
  BOOST_TEST(Shape().empty());
  BOOST_TEST(Shape().size() == 0u);
  BOOST_TEST(values(Shape{2, 3, 4}) == (Vec{2, 3, 4}));
  BOOST_TEST(values(Shape(3)) == (Vec{0, 0, 0}));
  BOOST_TEST(values(Shape(2, 7)) == (Vec{7, 7}));
  const Vec src{5, 6, 7, 8, 9, 10, 11, 12};
  BOOST_TEST(values(Shape(src.begin() + 1, src.end() - 1)) == (Vec{6, 7, 8, 9, 10, 11}));
  BOOST_TEST(values(Shape(src)) == src);  // from a std::vector, 8 entries: spilled
  BOOST_TEST(Shape{4}.size() == 1u);      // a braced list, never a count
  BOOST_TEST(Shape{4}[0] == 4);
}

BOOST_AUTO_TEST_CASE(element_access_and_iterators) {
  Shape s{2, 3, 5};
  BOOST_TEST(s[1] == 3);
  BOOST_TEST(s.at(2) == 5);
  BOOST_TEST(s.front() == 2);
  BOOST_TEST(s.back() == 5);
  BOOST_TEST(*s.data() == 2);
  BOOST_TEST(s.end() - s.begin() == 3);
  BOOST_TEST(Vec(s.rbegin(), s.rend()) == (Vec{5, 3, 2}));
  s[0] = 9;
  s.back() = 1;
  BOOST_TEST(values(s) == (Vec{9, 3, 1}));
  BOOST_CHECK_THROW(s.at(3), std::out_of_range);
  const Shape& c = s;
  BOOST_CHECK_THROW(c.at(10), std::out_of_range);
}

BOOST_AUTO_TEST_CASE(stays_inline_up_to_six_entries_then_spills) {
  Shape s;
  BOOST_TEST(s.capacity() == Shape::inline_capacity);
  BOOST_TEST(Shape::inline_capacity == 6u);
  for (std::int64_t i = 1; i <= 6; ++i) {
    s.push_back(i * 10);
    BOOST_TEST(s.is_inline());
  }
  s.push_back(70);  // the 7th entry moves everything to the heap
  BOOST_TEST(!s.is_inline());
  BOOST_TEST(s.capacity() >= 7u);
  BOOST_TEST(values(s) == (Vec{10, 20, 30, 40, 50, 60, 70}));
  for (std::int64_t i = 8; i <= 40; ++i) s.push_back(i * 10);  // grows again, keeps values
  BOOST_TEST(s.size() == 40u);
  for (std::size_t i = 0; i < s.size(); ++i)
    BOOST_TEST(s[i] == static_cast<std::int64_t>(i + 1) * 10);
  s.resize(2);  // shrinking keeps the buffer
  BOOST_TEST(values(s) == (Vec{10, 20}));
  s.pop_back();
  BOOST_TEST(values(s) == (Vec{10}));
  s.clear();
  BOOST_TEST(s.empty());
  Shape r;
  r.reserve(20);
  BOOST_TEST(!r.is_inline());
  BOOST_TEST(r.capacity() >= 20u);
  BOOST_TEST(r.empty());
}

BOOST_AUTO_TEST_CASE(copies_and_moves_of_inline_and_spilled_shapes) {
  for (std::int64_t n : {0, 3, 6, 7, 13}) {
    const Shape src = iota(n);
    const Vec want = values(src);
    BOOST_TEST(src.is_inline() == (n <= 6));

    Shape copy(src);  // a copy is independent of its source
    BOOST_TEST(values(copy) == want);
    BOOST_TEST(copy.is_inline() == (n <= 6));
    if (n > 0) {
      copy[0] = -1;
      BOOST_TEST(src[0] == 1);
    }

    Shape assigned{99, 98, 97, 96, 95, 94, 93, 92};  // spilled, then assigned over
    assigned = src;
    BOOST_TEST(values(assigned) == want);
    Shape small{1};
    small = src;
    BOOST_TEST(values(small) == want);

    Shape from = src;
    Shape moved(std::move(from));  // moving takes the heap buffer or copies the inline entries
    BOOST_TEST(values(moved) == want);
    BOOST_TEST(from.empty());  // NOLINT(bugprone-use-after-move): a moved-from shape is empty
    BOOST_TEST(from.is_inline());
    from.push_back(4);  // and usable
    BOOST_TEST(values(from) == (Vec{4}));

    Shape target = iota(9);
    Shape from2 = src;
    target = std::move(from2);
    BOOST_TEST(values(target) == want);
    BOOST_TEST(from2.empty());  // NOLINT(bugprone-use-after-move)

    Shape self = src;
    const Shape& alias = self;
    self = alias;  // self-assignment keeps the values
    BOOST_TEST(values(self) == want);

    Shape a = src, b{7, 8};
    swap(a, b);
    BOOST_TEST(values(a) == (Vec{7, 8}));
    BOOST_TEST(values(b) == want);
  }
}

BOOST_AUTO_TEST_CASE(insert_erase_assign_resize) {
  Shape s{1, 2, 3};
  auto it = s.insert(s.begin() + 1, 9);
  BOOST_TEST(*it == 9);
  BOOST_TEST(values(s) == (Vec{1, 9, 2, 3}));
  s.insert(s.end(), 2, 5);
  BOOST_TEST(values(s) == (Vec{1, 9, 2, 3, 5, 5}));
  const Vec more{7, 8};
  s.insert(s.begin(), more.begin(), more.end());  // spills
  BOOST_TEST(values(s) == (Vec{7, 8, 1, 9, 2, 3, 5, 5}));
  s.insert(s.begin() + 2, s.begin(), s.begin() + 3);  // a range of its own entries
  BOOST_TEST(values(s) == (Vec{7, 8, 7, 8, 1, 1, 9, 2, 3, 5, 5}));
  it = s.erase(s.begin() + 2, s.begin() + 5);
  BOOST_TEST(*it == 1);
  BOOST_TEST(values(s) == (Vec{7, 8, 1, 9, 2, 3, 5, 5}));
  s.erase(s.begin());
  BOOST_TEST(values(s) == (Vec{8, 1, 9, 2, 3, 5, 5}));
  s.erase(s.end() - 1);
  BOOST_TEST(values(s) == (Vec{8, 1, 9, 2, 3, 5}));
  s.insert(s.begin() + 1, {4, 4});
  BOOST_TEST(values(s) == (Vec{8, 4, 4, 1, 9, 2, 3, 5}));

  s.assign(3, 6);
  BOOST_TEST(values(s) == (Vec{6, 6, 6}));
  s.assign({1, 2, 3, 4, 5, 6, 7, 8, 9});
  BOOST_TEST(values(s) == (Vec{1, 2, 3, 4, 5, 6, 7, 8, 9}));
  s.assign(s.begin() + 4, s.end());  // a range of its own entries
  BOOST_TEST(values(s) == (Vec{5, 6, 7, 8, 9}));
  s.resize(7, -1);
  BOOST_TEST(values(s) == (Vec{5, 6, 7, 8, 9, -1, -1}));
  s.resize(8);
  BOOST_TEST(s.back() == 0);
  s = {3, 2};
  BOOST_TEST(values(s) == (Vec{3, 2}));
  BOOST_TEST(s.emplace_back(1) == 1);
  BOOST_TEST(values(s) == (Vec{3, 2, 1}));
}

BOOST_AUTO_TEST_CASE(comparisons_are_std_vectors) {
  BOOST_TEST((Shape{2, 3} == Shape{2, 3}));
  BOOST_TEST((Shape{2, 3} != Shape{2, 3, 1}));
  BOOST_TEST((Shape{2, 3} != Shape{3, 2}));
  BOOST_TEST((Shape{} == Shape{}));
  BOOST_TEST((iota(9) == iota(9)));   // spilled
  BOOST_TEST((iota(9) != iota(10)));  // spilled, prefix
  BOOST_TEST((Shape{1, 2} < Shape{1, 3}));
  BOOST_TEST((Shape{1, 2} < Shape{1, 2, 0}));
  BOOST_TEST(!(Shape{2} < Shape{1, 9}));
  BOOST_TEST((Shape{2} > Shape{1, 9}));
  BOOST_TEST((Shape{2, 3} <= Shape{2, 3}));
  // against std::vector, both ways round
  BOOST_TEST((Shape{2, 3} == Vec{2, 3}));
  BOOST_TEST((Vec{2, 3} == Shape{2, 3}));
  BOOST_TEST((Vec{2, 4} != Shape{2, 3}));
  BOOST_TEST((Shape{2, 3} < Vec{2, 4}));
  // usable as an ordered key
  std::map<Shape, int> m{{Shape{2, 3}, 1}, {Shape{1}, 2}, {iota(8), 3}};
  BOOST_TEST(m.begin()->second == 2);
  BOOST_TEST(m.at(iota(8)) == 3);
}

BOOST_AUTO_TEST_CASE(converts_from_and_to_std_vector) {
  const Vec v{4, 5, 6};
  Shape s = v;  // implicit, as when the alias was std::vector
  BOOST_TEST(values(s) == v);
  Vec back = s;  // implicit the other way (copies)
  BOOST_TEST(back == v);
  BOOST_TEST(s.vec() == v);
  s = Vec{1, 2, 3, 4, 5, 6, 7};
  BOOST_TEST(values(s) == (Vec{1, 2, 3, 4, 5, 6, 7}));
  // a tensor's shape keeps working where user code expects a std::vector
  Tensor t = zeros({2, 3, 4});
  std::vector<std::int64_t> shape = t.shape();
  BOOST_TEST(shape == (Vec{2, 3, 4}));
  const std::vector<std::int64_t>& strides = t.strides();
  BOOST_TEST(strides == (Vec{12, 4, 1}));
  // and a 7-d tensor (spilled shape and strides) behaves as any other
  Tensor big = ones({1, 2, 1, 2, 1, 2, 3});
  BOOST_TEST(big.shape() == (Vec{1, 2, 1, 2, 1, 2, 3}));
  BOOST_TEST(big.numel() == 24);
  BOOST_TEST(big.sum().item() == 24.0);
  BOOST_TEST(big.reshape({24}).shape() == (Vec{24}));
}

BOOST_AUTO_TEST_CASE(prints_as_libtorch_sizes) {
  std::ostringstream os;
  os << Shape{2, 3} << " " << Shape{} << " " << iota(7);
  BOOST_TEST(os.str() == "[2, 3] [] [1, 2, 3, 4, 5, 6, 7]");
  BOOST_TEST(format_shape(Shape{64, 784}) == "[64,784]");
}

BOOST_AUTO_TEST_SUITE_END()

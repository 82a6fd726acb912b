// xgrad::Error, the one exception type the library throws for bad input.
#pragma once

#include <cstdint>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "xgrad/shape.hpp"

namespace xgrad {

/// The exception thrown for bad input: shape mismatches, axes out of range, wrong dtypes,
/// misuse of autograd. Its message starts with the op's name, e.g.
/// "matmul: shapes [64,784] and [256,784] cannot be multiplied".
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Formats a shape as torch prints it in messages: [64,784]; a 0-d shape is [].
std::string format_shape(const Shape& shape);

namespace detail {
inline void append(std::ostringstream&) {}
template <class T, class... R>
void append(std::ostringstream& os, const T& v, const R&... rest) {
  if constexpr (std::is_same_v<T, Shape> || std::is_same_v<T, std::vector<std::int64_t>>) {
    os << format_shape(v);
  } else {
    os << v;
  }
  append(os, rest...);
}
}  // namespace detail

/// Throws xgrad::Error with the concatenation of the parts (shapes are formatted as [a,b]).
template <class... Parts>
[[noreturn]] void fail(const Parts&... parts) {
  std::ostringstream os;
  detail::append(os, parts...);
  throw Error(os.str());
}

/// Throws xgrad::Error built from parts when cond is false.
template <class... Parts>
void check(bool cond, const Parts&... parts) {
  if (!cond) fail(parts...);
}

}  // namespace xgrad

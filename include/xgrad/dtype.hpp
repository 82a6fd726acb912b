// Element types a Tensor can hold.
#pragma once

#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <string_view>

namespace xgrad {

/// The element type of a Tensor. float32 and float64 carry gradients; int64 (labels, indices)
/// and boolean (masks, stored one byte per element) never do.
enum class Dtype : std::uint8_t { float32, float64, int64, boolean };

inline constexpr Dtype float32 = Dtype::float32;
inline constexpr Dtype float64 = Dtype::float64;
inline constexpr Dtype int64 = Dtype::int64;
inline constexpr Dtype boolean = Dtype::boolean;

/// Size of one element in bytes.
constexpr std::size_t element_size(Dtype d) {
  switch (d) {
    case Dtype::float32:
      return 4;
    case Dtype::float64:
      return 8;
    case Dtype::int64:
      return 8;
    case Dtype::boolean:
      return 1;
  }
  return 0;
}

/// True for the dtypes that can require grad (float32, float64).
constexpr bool is_floating(Dtype d) {
  return d == Dtype::float32 || d == Dtype::float64;
}

/// torch-style name: "float32", "float64", "int64", "bool".
constexpr std::string_view dtype_name(Dtype d) {
  switch (d) {
    case Dtype::float32:
      return "float32";
    case Dtype::float64:
      return "float64";
    case Dtype::int64:
      return "int64";
    case Dtype::boolean:
      return "bool";
  }
  return "?";
}

/// Prints dtype_name(d).
std::ostream& operator<<(std::ostream& os, Dtype d);

/// Maps a C++ element type to its Dtype: dtype_of<float> == float32, dtype_of<bool> == boolean.
template <class T>
struct dtype_of_t;
template <>
struct dtype_of_t<float> {
  static constexpr Dtype value = Dtype::float32;
};
template <>
struct dtype_of_t<double> {
  static constexpr Dtype value = Dtype::float64;
};
template <>
struct dtype_of_t<std::int64_t> {
  static constexpr Dtype value = Dtype::int64;
};
template <>
struct dtype_of_t<bool> {
  static constexpr Dtype value = Dtype::boolean;
};
template <class T>
inline constexpr Dtype dtype_of = dtype_of_t<T>::value;

/// The process-wide default dtype of factory functions (float32, as in torch).
Dtype default_dtype();
/// Sets the default dtype of factory functions; throws xgrad::Error for int64/bool.
void set_default_dtype(Dtype d);

}  // namespace xgrad

// The index types of Tensor::index / Tensor::index_put_, as torch::indexing spells them:
//
//   using namespace xgrad::indexing;
//   x.index({Slice(0, 2), 1, None, Ellipsis});   // Python: x[0:2, 1, None, ...]
//   x.index({Slice(None, None, 2), -1});         // Python: x[::2, -1]
//   x.index_put_({0, Slice(1, None)}, 5.0);      // Python: x[0, 1:] = 5
//
// Plain data: the indexing itself lives in ops/tensor_index.hpp (views with autograd).
// Integer and boolean *tensors* as indices (torch's advanced indexing) are not supported; use
// index_select, gather or where (ops/indexing.hpp) instead.
#pragma once

#include <concepts>
#include <cstdint>
#include <optional>
#include <string_view>

#include "xgrad/error.hpp"

namespace xgrad::indexing {

/// `None` inserts a dimension of size 1 (Python's None / np.newaxis), and leaves a Slice bound
/// open: Slice(None, 2) is Python's :2. The same object as torch::indexing::None.
inline constexpr std::nullopt_t None = std::nullopt;

/// The type of Ellipsis.
struct EllipsisIndexType {};
/// `Ellipsis` (or the string "...") stands for as many full slices as the dimensions the other
/// indices leave unnamed; at most one per index list.
inline constexpr EllipsisIndexType Ellipsis{};

/// Python's start:stop:step. An absent bound is the start / end of the dimension; bounds are
/// clamped to the dimension and negative bounds count from its end, as in Python, so a slice
/// never goes out of range (it may be empty). step must be positive (as in torch), default 1.
class Slice {
 public:
  Slice(std::optional<std::int64_t> start = std::nullopt,  // NOLINT(google-explicit-constructor)
        std::optional<std::int64_t> stop = std::nullopt,
        std::optional<std::int64_t> step = std::nullopt)
      : start_(start), stop_(stop), step_(step.value_or(1)) {}
  const std::optional<std::int64_t>& start() const { return start_; }
  const std::optional<std::int64_t>& stop() const { return stop_; }
  std::int64_t step() const { return step_; }

 private:
  std::optional<std::int64_t> start_, stop_;
  std::int64_t step_;
};

/// One entry of an index list: an integer (selects one position and removes the dimension;
/// negative counts from the end), a Slice (keeps the dimension), None (inserts a dimension of
/// size 1), Ellipsis / "..." (stands for the unnamed dimensions), or a bool (true inserts a
/// dimension of size 1, false one of size 0, as torch). Implicit from each, so braced lists
/// read like Python subscripts.
class TensorIndex {
 public:
  enum class Kind { none, ellipsis, integer, boolean, slice };

  TensorIndex(std::nullopt_t) : kind_(Kind::none) {}  // NOLINT(google-explicit-constructor)
  TensorIndex(EllipsisIndexType)                      // NOLINT(google-explicit-constructor)
      : kind_(Kind::ellipsis) {}
  /// Only "..." is accepted (as torch); any other string throws xgrad::Error.
  TensorIndex(const char* s)  // NOLINT(google-explicit-constructor)
      : kind_(Kind::ellipsis) {
    check(std::string_view(s) == "...", "index: expected \"...\" as a string index, got \"", s,
          "\"");
  }
  template <std::integral I>
  requires(!std::same_as<I, bool>) TensorIndex(I i)  // NOLINT(google-explicit-constructor)
      : kind_(Kind::integer), integer_(static_cast<std::int64_t>(i)) {}
  TensorIndex(bool b)  // NOLINT(google-explicit-constructor)
      : kind_(Kind::boolean), boolean_(b) {}
  /// A floating-point index is a compile-time error (it would otherwise convert to bool).
  template <std::floating_point F>
  TensorIndex(F) = delete;
  TensorIndex(Slice s)  // NOLINT(google-explicit-constructor)
      : kind_(Kind::slice), slice_(s) {}

  Kind kind() const { return kind_; }
  bool is_none() const { return kind_ == Kind::none; }
  bool is_ellipsis() const { return kind_ == Kind::ellipsis; }
  bool is_integer() const { return kind_ == Kind::integer; }
  bool is_boolean() const { return kind_ == Kind::boolean; }
  bool is_slice() const { return kind_ == Kind::slice; }
  std::int64_t integer() const { return integer_; }
  bool boolean() const { return boolean_; }
  const Slice& slice() const { return slice_; }

 private:
  Kind kind_;
  std::int64_t integer_ = 0;
  bool boolean_ = false;
  Slice slice_;
};

}  // namespace xgrad::indexing

// Shape: the sizes (or strides) of a tensor, a small vector of int64 that keeps up to 6 entries
// inline and goes to the heap only beyond that, so a tensor handle costs no allocation for its
// shape and strides.
#pragma once

#include <algorithm>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <iosfwd>
#include <iterator>
#include <stdexcept>
#include <vector>

namespace xgrad {

/// A tensor shape (or strides, in elements): one entry per dimension, outermost first.
///
/// A value type with the interface of std::vector<std::int64_t> that code uses (construction
/// from a braced list, an iterator range, a count and a value, or a std::vector; size, empty,
/// operator[], at, front, back, data, begin/end, rbegin/rend; push_back, emplace_back,
/// pop_back, insert, erase, resize, assign, clear, reserve, swap; ==, != and the lexicographic
/// <, <=, >, >=). The first `inline_capacity` (6) entries live inside the object: a shape of up
/// to 6 dimensions never touches the heap, a longer one spills to a heap buffer that grows by
/// doubling (the small-buffer optimisation of LLVM's SmallVector and c10's SmallVector, which
/// torch uses for sizes and strides). Iterators are plain pointers, invalidated, as
/// std::vector's, by any operation that changes the size or capacity, and by a move.
///
/// Converts implicitly from and to std::vector<std::int64_t>, so code written for the former
/// alias (`std::vector<std::int64_t> s = t.shape();`, a function taking a const
/// std::vector<std::int64_t>&) keeps compiling; the conversion to std::vector copies (and
/// allocates); vec() spells it out. Errors: at() throws std::out_of_range on an index past the
/// end; allocation beyond the inline room throws std::bad_alloc when memory runs out; front,
/// back, pop_back and operator[] on a wrong index are undefined behaviour, as for std::vector.
class Shape {
 public:
  using value_type = std::int64_t;
  using size_type = std::size_t;
  using difference_type = std::ptrdiff_t;
  using reference = value_type&;
  using const_reference = const value_type&;
  using pointer = value_type*;
  using const_pointer = const value_type*;
  using iterator = value_type*;
  using const_iterator = const value_type*;
  using reverse_iterator = std::reverse_iterator<iterator>;
  using const_reverse_iterator = std::reverse_iterator<const_iterator>;

  /// Entries held without a heap allocation.
  static constexpr size_type inline_capacity = 6;

  Shape() noexcept = default;
  /// n zeros (as std::vector's count constructor).
  explicit Shape(size_type n) { assign(n, 0); }
  /// n copies of v.
  Shape(size_type n, value_type v) { assign(n, v); }
  Shape(std::initializer_list<value_type> values) { assign(values.begin(), values.end()); }
  template <std::input_iterator It>
  Shape(It first, It last) {
    assign(first, last);
  }
  Shape(const std::vector<value_type>& v) {  // NOLINT(google-explicit-constructor)
    assign(v.begin(), v.end());
  }
  Shape(const Shape& other) { assign(other.begin(), other.end()); }
  Shape(Shape&& other) noexcept { steal(other); }
  ~Shape() { release(); }

  Shape& operator=(const Shape& other) {
    if (this != &other) assign(other.begin(), other.end());
    return *this;
  }
  Shape& operator=(Shape&& other) noexcept {
    if (this != &other) {
      release();
      steal(other);
    }
    return *this;
  }
  Shape& operator=(std::initializer_list<value_type> values) {
    assign(values.begin(), values.end());
    return *this;
  }

  /// A std::vector copy (allocates).
  operator std::vector<value_type>() const {  // NOLINT(google-explicit-constructor)
    return std::vector<value_type>(begin(), end());
  }
  std::vector<value_type> vec() const { return std::vector<value_type>(begin(), end()); }

  // ---- element access ----
  reference operator[](size_type i) { return data_[i]; }
  const_reference operator[](size_type i) const { return data_[i]; }
  reference at(size_type i) {
    if (i >= size_) throw_out_of_range();
    return data_[i];
  }
  const_reference at(size_type i) const {
    if (i >= size_) throw_out_of_range();
    return data_[i];
  }
  reference front() { return data_[0]; }
  const_reference front() const { return data_[0]; }
  reference back() { return data_[size_ - 1]; }
  const_reference back() const { return data_[size_ - 1]; }
  pointer data() noexcept { return data_; }
  const_pointer data() const noexcept { return data_; }

  // ---- iterators ----
  iterator begin() noexcept { return data_; }
  const_iterator begin() const noexcept { return data_; }
  const_iterator cbegin() const noexcept { return data_; }
  iterator end() noexcept { return data_ + size_; }
  const_iterator end() const noexcept { return data_ + size_; }
  const_iterator cend() const noexcept { return data_ + size_; }
  reverse_iterator rbegin() noexcept { return reverse_iterator(end()); }
  const_reverse_iterator rbegin() const noexcept { return const_reverse_iterator(end()); }
  const_reverse_iterator crbegin() const noexcept { return const_reverse_iterator(end()); }
  reverse_iterator rend() noexcept { return reverse_iterator(begin()); }
  const_reverse_iterator rend() const noexcept { return const_reverse_iterator(begin()); }
  const_reverse_iterator crend() const noexcept { return const_reverse_iterator(begin()); }

  // ---- capacity ----
  bool empty() const noexcept { return size_ == 0; }
  size_type size() const noexcept { return size_; }
  size_type capacity() const noexcept { return capacity_; }
  /// True while the entries live inside the object (no heap buffer).
  bool is_inline() const noexcept { return data_ == inline_; }
  void reserve(size_type n) {
    if (n > capacity_) grow_to(n);
  }

  // ---- modifiers ----
  void clear() noexcept { size_ = 0; }
  void push_back(value_type v) {
    if (size_ == capacity_) grow_to(size() + 1);
    data_[size_++] = v;
  }
  reference emplace_back(value_type v) {
    push_back(v);
    return back();
  }
  void pop_back() noexcept { --size_; }
  void resize(size_type n) { resize(n, 0); }
  void resize(size_type n, value_type v) {
    reserve(n);
    for (size_type i = size_; i < n; ++i) data_[i] = v;
    size_ = static_cast<std::uint32_t>(n);
  }
  void assign(size_type n, value_type v) {
    size_ = 0;
    reserve(n);
    std::fill(data_, data_ + n, v);
    size_ = static_cast<std::uint32_t>(n);
  }
  template <std::input_iterator It>
  void assign(It first, It last) {
    if constexpr (std::forward_iterator<It>) {
      const auto n = static_cast<size_type>(std::distance(first, last));
      if (n > capacity_) {
        // copy first: the range may be this shape's own entries
        Shape tmp;
        tmp.grow_to(n);
        std::copy(first, last, tmp.data_);
        tmp.size_ = static_cast<std::uint32_t>(n);
        *this = std::move(tmp);
        return;
      }
      // within capacity, element by element: a range of this shape's own entries (never
      // before the start) is read before it is overwritten
      for (size_type i = 0; i < n; ++i, ++first) data_[i] = *first;
      size_ = static_cast<std::uint32_t>(n);
    } else {
      size_ = 0;
      for (; first != last; ++first) push_back(*first);
    }
  }
  void assign(std::initializer_list<value_type> values) { assign(values.begin(), values.end()); }

  /// Inserts v before pos; returns an iterator to it.
  iterator insert(const_iterator pos, value_type v) { return insert(pos, size_type{1}, v); }
  /// Inserts n copies of v before pos; returns an iterator to the first one (pos when n == 0).
  iterator insert(const_iterator pos, size_type n, value_type v) {
    const size_type at = static_cast<size_type>(pos - data_);
    if (size_ + n > capacity_) grow_to(size() + n);
    std::memmove(data_ + at + n, data_ + at, (size_ - at) * sizeof(value_type));
    std::fill(data_ + at, data_ + at + n, v);
    size_ += static_cast<std::uint32_t>(n);
    return data_ + at;
  }
  /// Inserts [first, last) before pos (the range may be this shape's own entries).
  template <std::input_iterator It>
  iterator insert(const_iterator pos, It first, It last) {
    const size_type at = static_cast<size_type>(pos - data_);
    const Shape items(first, last);  // a copy, so that a range into *this stays valid
    const size_type n = items.size_;
    if (size_ + n > capacity_) grow_to(size() + n);
    std::memmove(data_ + at + n, data_ + at, (size_ - at) * sizeof(value_type));
    std::copy(items.begin(), items.end(), data_ + at);
    size_ += static_cast<std::uint32_t>(n);
    return data_ + at;
  }
  iterator insert(const_iterator pos, std::initializer_list<value_type> values) {
    return insert(pos, values.begin(), values.end());
  }
  /// Removes the entry at pos; returns an iterator to the one after it.
  iterator erase(const_iterator pos) { return erase(pos, pos + 1); }
  /// Removes [first, last); returns an iterator to the entry after them.
  iterator erase(const_iterator first, const_iterator last) {
    const size_type a = static_cast<size_type>(first - data_);
    const size_type b = static_cast<size_type>(last - data_);
    std::memmove(data_ + a, data_ + b, (size_ - b) * sizeof(value_type));
    size_ -= static_cast<std::uint32_t>(b - a);
    return data_ + a;
  }
  void swap(Shape& other) noexcept {
    Shape tmp(std::move(other));
    other = std::move(*this);
    *this = std::move(tmp);
  }
  friend void swap(Shape& a, Shape& b) noexcept { a.swap(b); }

  // ---- comparison ----
  friend bool operator==(const Shape& a, const Shape& b) noexcept {
    return a.size_ == b.size_ && std::equal(a.begin(), a.end(), b.begin());
  }
  friend std::strong_ordering operator<=>(const Shape& a, const Shape& b) noexcept {
    return std::lexicographical_compare_three_way(a.begin(), a.end(), b.begin(), b.end());
  }
  friend bool operator==(const Shape& a, const std::vector<value_type>& b) noexcept {
    return a.size_ == b.size() && std::equal(a.begin(), a.end(), b.begin());
  }
  friend std::strong_ordering operator<=>(const Shape& a,
                                          const std::vector<value_type>& b) noexcept {
    return std::lexicographical_compare_three_way(a.begin(), a.end(), b.begin(), b.end());
  }

 private:
  [[noreturn]] static void throw_out_of_range() { throw std::out_of_range("Shape::at: index"); }
  void release() noexcept {
    if (!is_inline()) delete[] data_;
  }
  // Takes other's entries (its heap buffer, or a copy of its inline ones); other becomes empty.
  void steal(Shape& other) noexcept {
    if (other.is_inline()) {
      std::memcpy(inline_, other.inline_, other.size_ * sizeof(value_type));
      data_ = inline_;
      capacity_ = inline_capacity;
    } else {
      data_ = other.data_;
      capacity_ = other.capacity_;
      other.data_ = other.inline_;
      other.capacity_ = inline_capacity;
    }
    size_ = other.size_;
    other.size_ = 0;
  }
  // Moves the entries to a heap buffer of at least n (and at least twice the old capacity).
  void grow_to(size_type n) {
    const size_type cap = std::max(n, 2 * capacity());
    auto* p = new value_type[cap];
    if (size_ != 0) std::memcpy(p, data_, size_ * sizeof(value_type));
    release();
    data_ = p;
    capacity_ = static_cast<std::uint32_t>(cap);
  }

  value_type* data_ = inline_;
  std::uint32_t size_ = 0;  // 32-bit counts: the object is 64 bytes, one pool size class
  std::uint32_t capacity_ = inline_capacity;
  value_type inline_[inline_capacity];
};

/// Prints a shape as libtorch prints sizes: [2, 3] ([] for 0-d); found by argument-dependent
/// lookup (`std::cout << t.shape()`). format_shape (error.hpp) gives the spelling of error
/// messages, [2,3]. Source: c10's operator<< for ArrayRef. Throws nothing beyond what the
/// stream throws.
std::ostream& operator<<(std::ostream& os, const Shape& shape);

}  // namespace xgrad

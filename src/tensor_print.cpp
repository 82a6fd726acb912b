// Printing of tensors and shapes: a port of torch 1.13's torch/_tensor_str.py with its default
// print options (see operator<< in tensor.hpp for the format and the differences).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <ostream>
#include <string>
#include <type_traits>
#include <vector>

#include "xgrad/autograd/node.hpp"
#include "xgrad/tensor.hpp"

namespace xgrad {

std::ostream& operator<<(std::ostream& os, const Shape& shape) {
  os << '[';
  for (std::size_t i = 0; i < shape.size(); ++i) os << (i ? ", " : "") << shape[i];
  return os << ']';
}

namespace {

// torch's PRINT_OPTS defaults.
constexpr int kPrecision = 4;
constexpr std::int64_t kThreshold = 1000;
constexpr std::int64_t kEdgeItems = 3;
constexpr std::int64_t kLineWidth = 80;

// One element, read as torch's tolist() would: floats as double, int64 exactly, bools.
struct Value {
  double f = 0;
  std::int64_t i = 0;
};

std::string printf_double(const char* fmt, int width, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, width, kPrecision, v);
  return buf;
}

std::string pad_left(std::string s, std::size_t width) {
  if (s.size() < width) s.insert(0, width - s.size(), ' ');
  return s;
}

// Python's str() of a float that is not finite.
std::string non_finite(double v) {
  if (std::isnan(v)) return "nan";
  return v > 0 ? "inf" : "-inf";
}

// torch's _Formatter: decides the notation and the column width from the values printed.
class Formatter {
 public:
  Formatter(Dtype dtype, const std::vector<Value>& values)
      : dtype_(dtype), floating_(is_floating(dtype)) {
    if (!floating_) {
      for (const Value& v : values) max_width_ = std::max(max_width_, plain(v).size());
      return;
    }
    std::vector<double> nz;  // the nonzero finite values
    for (const Value& v : values)
      if (std::isfinite(v.f) && v.f != 0) nz.push_back(v.f);
    if (nz.empty()) return;
    double mn = INFINITY, mx = 0;
    for (double x : nz) {
      mn = std::min(mn, std::abs(x));
      mx = std::max(mx, std::abs(x));
    }
    for (double x : nz) {
      if (x != std::ceil(x)) {
        int_mode_ = false;
        break;
      }
    }
    if (int_mode_) {
      sci_ = mx / mn > 1000.0 || mx > 1e8;
    } else {
      sci_ = mx / mn > 1000.0 || mx > 1e8 || mn < 1e-4;
    }
    for (double x : nz) {
      std::size_t w = sci_        ? printf_double("%*.*e", 0, x).size()
                      : int_mode_ ? printf_double("%*.*f", 0, x).size() - 4  // "{:.0f}" + "."
                                  : printf_double("%*.*f", 0, x).size();
      max_width_ = std::max(max_width_, w);
    }
  }

  std::size_t width() const { return max_width_; }

  std::string format(const Value& v) const {
    std::string s;
    if (!floating_) {
      s = plain(v);
    } else if (!std::isfinite(v.f)) {
      s = non_finite(v.f);
    } else if (sci_) {
      s = printf_double("%*.*e", 0, v.f);
    } else if (int_mode_) {
      s = printf_double("%*.*f", 0, v.f);
      s.erase(s.size() - kPrecision);  // "1.0000" -> "1."
    } else {
      s = printf_double("%*.*f", 0, v.f);
    }
    return pad_left(std::move(s), max_width_);
  }

 private:
  std::string plain(const Value& v) const {
    if (dtype_ == Dtype::boolean) return v.i ? "True" : "False";
    return std::to_string(v.i);
  }

  Dtype dtype_;
  bool floating_;
  bool int_mode_ = true;
  bool sci_ = false;
  std::size_t max_width_ = 1;
};

// Reads one element of a (possibly strided) tensor at an element offset from its first
// element, without copying the tensor: printing a summary touches only the elements shown.
class Reader {
 public:
  explicit Reader(const Tensor& t) : t_(t) {}
  Value operator()(std::int64_t off) const {
    Value v;
    dispatch_all(t_.dtype(), [&]<class T>() {
      const T x = t_.data_ptr<T>()[off];
      if constexpr (std::is_floating_point_v<T>) {
        v.f = static_cast<double>(x);
      } else {
        v.i = static_cast<std::int64_t>(x);
      }
    });
    return v;
  }

 private:
  const Tensor& t_;
};

// get_summarized_data: the elements the formatter looks at (all of them when not summarising).
void summarized_values(const Tensor& t, const Reader& read, bool summarize, std::size_t d,
                       std::int64_t base, std::vector<Value>& out) {
  if (d == t.shape().size()) {
    out.push_back(read(base));
    return;
  }
  const std::int64_t n = t.shape()[d];
  for (std::int64_t i = 0; i < n; ++i) {
    if (summarize && n > 2 * kEdgeItems && i == kEdgeItems) i = n - kEdgeItems;
    summarized_values(t, read, summarize, d + 1, base + i * t.strides()[d], out);
  }
}

// Lays out a tensor's elements as torch does, walking its strides.
struct Printer {
  const Shape& shape;
  const Shape& strides;
  const Reader& read;
  bool summarize;
  Formatter formatter;

  bool elided(std::size_t d) const { return summarize && shape[d] > 2 * kEdgeItems; }

  // _vector_str: one 1-d row starting at `base`, wrapped at the line width.
  std::string vector_str(std::int64_t base, std::size_t d, std::int64_t indent) const {
    const auto element_length = static_cast<std::int64_t>(formatter.width()) + 2;
    const std::int64_t per_line = std::max<std::int64_t>(1, (kLineWidth - indent) / element_length);
    std::vector<std::string> data;
    const std::int64_t n = shape[d];
    for (std::int64_t i = 0; i < n; ++i) {
      if (elided(d) && i == kEdgeItems) {
        data.emplace_back(" ...");
        i = n - kEdgeItems;
      }
      data.push_back(formatter.format(read(base + i * strides[d])));
    }
    std::string out = "[";
    for (std::size_t i = 0; i < data.size(); ++i) {
      if (i) {
        out += i % static_cast<std::size_t>(per_line) == 0
                   ? ",\n" + std::string(static_cast<std::size_t>(indent + 1), ' ')
                   : ", ";
      }
      out += data[i];
    }
    return out + "]";
  }

  // _tensor_str_with_formatter.
  std::string tensor_str(std::int64_t base, std::size_t d, std::int64_t indent) const {
    const std::size_t dims = shape.size() - d;
    if (dims == 0) return formatter.format(read(base));
    if (dims == 1) return vector_str(base, d, indent);
    std::vector<std::string> slices;
    const std::int64_t n = shape[d], step = strides[d];
    for (std::int64_t i = 0; i < n; ++i) {
      if (elided(d) && i == kEdgeItems) {
        slices.emplace_back("...");
        i = n - kEdgeItems;
      }
      slices.push_back(tensor_str(base + i * step, d + 1, indent + 1));
    }
    const std::string sep =
        "," + std::string(dims - 1, '\n') + std::string(static_cast<std::size_t>(indent + 1), ' ');
    std::string out = "[";
    for (std::size_t i = 0; i < slices.size(); ++i) out += (i ? sep : "") + slices[i];
    return out + "]";
  }
};

// _add_suffixes: ", suffix" on the last line, or on a new line when it would pass column 80.
std::string add_suffixes(const std::string& body, const std::vector<std::string>& suffixes,
                         std::int64_t indent) {
  std::string out = body;
  const auto nl = body.rfind('\n');
  auto last_line_len = static_cast<std::int64_t>(body.size()) -
                       (nl == std::string::npos ? -1 : static_cast<std::int64_t>(nl)) + 1;
  for (const auto& s : suffixes) {
    const auto len = static_cast<std::int64_t>(s.size());
    if (last_line_len + len + 2 > kLineWidth) {
      out += ",\n" + std::string(static_cast<std::size_t>(indent), ' ') + s;
      last_line_len = indent + len;
    } else {
      out += ", " + s;
      last_line_len += len + 2;
    }
  }
  return out + ")";
}

}  // namespace

std::ostream& operator<<(std::ostream& os, const Tensor& t) {
  if (!t.defined()) return os << "tensor(undefined)";
  const std::string prefix = "tensor(";
  const auto indent = static_cast<std::int64_t>(prefix.size());
  const Tensor c = t.detach();
  const Shape& shape = c.shape();
  std::vector<std::string> suffixes;
  std::string body;
  if (c.numel() == 0) {
    if (c.dim() != 1) {
      std::string size = "size=(";
      for (std::size_t i = 0; i < shape.size(); ++i)
        size += (i ? ", " : "") + std::to_string(shape[i]);
      suffixes.push_back(size + ")");
    }
    if (c.dtype() != default_dtype())
      suffixes.push_back("dtype=" + std::string(dtype_name(c.dtype())));
    body = "[]";
  } else {
    if (c.dtype() != default_dtype() && is_floating(c.dtype()))
      suffixes.push_back("dtype=" + std::string(dtype_name(c.dtype())));
    const bool summarize = c.numel() > kThreshold;
    const Reader read(c);
    std::vector<Value> shown;
    summarized_values(c, read, summarize, 0, 0, shown);
    Printer printer{shape, c.strides(), read, summarize, Formatter(c.dtype(), shown)};
    body = printer.tensor_str(0, 0, indent);
  }
  if (t.grad_fn()) {
    suffixes.push_back("grad_fn=<" + std::string(t.grad_fn()->name()) + ">");
  } else if (t.requires_grad()) {
    suffixes.push_back("requires_grad=True");
  }
  return os << add_suffixes(prefix + body, suffixes, indent);
}

}  // namespace xgrad

#pragma once
#include <cstddef>
#include <cstdint>
#include "xgrad/data/idx.hpp"
#include "xgrad/error.hpp"
namespace xgrad::fuzz {
inline void idx(const std::uint8_t*, std::size_t) {}
}

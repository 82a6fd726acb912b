// Matrix products, through OpenBLAS's cblas_sgemm / cblas_dgemm (never a hand-written GEMM).
// Transposed operands (views from transpose()/t()) go to BLAS as transpose flags, not copies.
#pragma once

#include "xgrad/runtime.hpp"  // set_num_threads
#include "xgrad/tensor.hpp"

namespace xgrad {

/// Matrix product. Shapes: [m,k]·[k,n] -> [m,n]; batched [B,m,k]·[B,k,n] -> [B,m,n]; a 3-D
/// operand with a 2-D one broadcasts the 2-D one over the batch ([B,m,k]·[k,n] -> [B,m,n],
/// [m,k]·[B,k,n] -> [B,m,n]); a 1-D operand is a vector ([k]·[k,n] -> [n], [m,k]·[k] -> [m],
/// [k]·[k] -> []). Gradients: d a = g·bᵀ, d b = aᵀ·g (summed over the batch for a broadcast 2-D
/// operand), computed with matmul itself, so differentiable to any order; forward mode:
/// da·b + a·db. Throws "matmul: shapes [64,784] and [256,784] cannot be multiplied".
Tensor matmul(const Tensor& a, const Tensor& b);

/// Fully connected layer y = x·wᵀ + b, fused (bias copied into the output, then one GEMM with
/// beta = 1, as torch's addmm). x: [..., in] (a 1-D x is one row), w: [out, in], b: [out] or
/// undefined -> [..., out]. Gradients: dx = g·w, dw = gᵀ·x, db = Σ_rows g (matmul and sum,
/// differentiable to any order); forward mode: linear(dx, w, db) + x·dwᵀ.
/// Throws "linear: input [64,100] does not match weight [256,784]".
Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b = Tensor());

namespace detail {
/// How many matmul/linear operands so far had to be copied into a contiguous buffer before
/// the GEMM because their strides fit neither row-major nor its transpose (e.g. a slice with
/// a step). Transposed views never count: they reach BLAS as transpose flags. For tests.
std::int64_t blas_operand_copies();
}  // namespace detail

}  // namespace xgrad

#!/usr/bin/python3
"""Writes torch's printed form of the tensors tests/tensor_print_test.cpp prints.

Runs torch 1.13 (Debian's python3-torch: use /usr/bin/python3, not a pyenv/venv python without
torch) with the default print options and records repr() of each case below in
tests/data/print_golden/torch_print.txt, as blocks

    === <case name>
    <torch's repr, one or more lines>

The C++ test builds the same values with the same arithmetic (the recipe is repeated next to
each case there; keep the two lists in step), prints them with xgrad's operator<< and compares
after the documented differences: dtype=torch.float64 -> dtype=float64 and grad_fn names
(MulBackward0 -> mul). Tests only read the file; this script is never run by them.

    /usr/bin/python3 tools/make_print_golden.py   # rewrites tests/data/print_golden/
"""
import os

import torch

torch.set_default_dtype(torch.float32)
f32, f64, i64 = torch.float32, torch.float64, torch.int64


def cases():
    yield "3x4", torch.arange(12, dtype=f64).reshape(3, 4) * 0.37 - 1.0
    yield "3x4_float32_whole", torch.arange(12, dtype=f32).reshape(3, 4) - 4.0
    yield "100x100", torch.arange(10000, dtype=f32).reshape(100, 100) / 10000.0 + 1.0
    yield "100x100_float64_sci", torch.arange(10000, dtype=f64).reshape(100, 100) * 0.5
    yield "20x20x20", torch.arange(8000, dtype=f32).reshape(20, 20, 20) / 8000.0
    yield "int64_2x1000", torch.arange(2000, dtype=i64).reshape(2, 1000) - 1000
    yield "bool_1100", torch.arange(1100, dtype=f32) > 549.5
    yield "wrap_30", torch.arange(30, dtype=f32) / 3.0
    leaf = torch.tensor([[0.5, 1.25, -2.0], [2.0, -0.75, 3.5]], dtype=f64, requires_grad=True)
    yield "leaf_requires_grad", leaf
    yield "nonleaf_grad_fn", leaf * 2.0
    x = (torch.arange(1, 9, dtype=f64) / 7.0).requires_grad_()
    yield "nonleaf_suffix_wrap", x * 3.0
    yield "nonleaf_sign", torch.tensor([-1.5, 0.0, 2.0], requires_grad=True).sign()
    yield "empty_2x0", torch.zeros(2, 0)
    yield "empty_int64", torch.zeros(0, dtype=i64)
    yield "scalar_whole", torch.tensor(3.0, dtype=f64)
    yield "mixed_nonfinite", torch.tensor([0.0, float("nan"), -float("inf"), 2.0])


def main():
    out_dir = os.path.join(os.path.dirname(__file__), "..", "tests", "data", "print_golden")
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "torch_print.txt"), "w") as f:
        for name, t in cases():
            f.write(f"=== {name}\n{t!r}\n")


if __name__ == "__main__":
    main()

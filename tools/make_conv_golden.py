#!/usr/bin/python3
"""Writes the reference data of xgrad's conv/pool tests (tests/data/conv_golden/) with torch.

    /usr/bin/python3 tools/make_conv_golden.py [OUT_DIR]

Needs Debian's python3-torch (1.13); run it with /usr/bin/python3 when another python3 comes
first on PATH. Inputs are random float32 numbers (seeded, so the files are reproducible),
stored widened to float64 so that the same inputs serve xgrad's float64 and float32 tests;
outputs and gradients are computed by torch in float64. Each gradient is that of
sum(output * grad_output) for a random grad_output, i.e. backward seeded with grad_output.

File format (one file per op: conv2d.txt, max_pool2d.txt, avg_pool2d.txt,
adaptive_avg_pool2d.txt), line based:

    # comment
    case NAME
    param NAME V1 V2          (conv2d: stride, padding, dilation, groups, bias;
                               pools: kernel, stride, padding, output_size)
    tensor NAME NDIM D1 .. Dn (followed by one line of the values, row-major: %.9g for the
                               float32 inputs, which gives them back exactly when parsed
                               as float (not as double), %.17g for the results)
    end

Tensors: input, weight, bias (conv2d, when param bias is 1), grad_output, output,
grad_input, grad_weight, grad_bias.
"""

import os
import sys

import torch
import torch.nn.functional as F

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "conv_golden")

gen = torch.Generator().manual_seed(20240601)


def rand(*shape):
    """Uniform in [-1, 1), rounded to float32, as float64."""
    return (torch.rand(*shape, generator=gen, dtype=torch.float32) * 2 - 1).double()


def ints(*shape, hi=3):
    """Small integers 0..hi-1 (many ties), as float64."""
    return torch.randint(0, hi, shape, generator=gen).double()


INPUTS = ("input", "weight", "bias", "grad_output")


def pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def fmt_tensor(name, t, exact32):
    t = t.detach().contiguous().double()
    dims = " ".join(str(d) for d in t.shape)
    # Inputs are float32 numbers: 9 significant digits round-trip them exactly.
    vals = " ".join((("%.9g" if exact32 else "%.17g") % v) for v in t.reshape(-1).tolist())
    return "tensor %s %d %s\n%s\n" % (name, t.dim(), dims, vals)


def write(path, header, cases):
    with open(path, "w") as f:
        f.write("# Written by tools/make_conv_golden.py with torch %s. Do not edit.\n" %
                torch.__version__)
        f.write("# %s\n" % header)
        for name, params, tensors in cases:
            f.write("case %s\n" % name)
            for k, v in params.items():
                f.write("param %s %s\n" % (k, " ".join(str(x) for x in v)))
            for k, t in tensors:
                f.write(fmt_tensor(k, t, k in INPUTS))
            f.write("end\n")


def conv_case(name, n, c, h, w, o, k, stride=1, padding=0, dilation=1, groups=1, bias=True):
    kh, kw = pair(k)
    x = rand(n, c, h, w).requires_grad_()
    wt = rand(o, c // groups, kh, kw).requires_grad_()
    b = rand(o).requires_grad_() if bias else None
    y = F.conv2d(x, wt, b, pair(stride), pair(padding), pair(dilation), groups)
    gy = rand(*y.shape)
    grads = torch.autograd.grad(y, [x, wt] + ([b] if bias else []), gy)
    params = {"stride": pair(stride), "padding": pair(padding), "dilation": pair(dilation),
              "groups": (groups,), "bias": (1 if bias else 0,)}
    tensors = [("input", x), ("weight", wt)]
    if bias:
        tensors.append(("bias", b))
    tensors += [("grad_output", gy), ("output", y), ("grad_input", grads[0]),
                ("grad_weight", grads[1])]
    if bias:
        tensors.append(("grad_bias", grads[2]))
    return name, params, tensors


def pool_case(op, name, x, kernel=None, stride=None, padding=0, output_size=None):
    x = x.clone().requires_grad_()
    if op == "max_pool2d":
        y = F.max_pool2d(x, pair(kernel), pair(stride if stride is not None else kernel),
                         pair(padding))
    elif op == "avg_pool2d":
        y = F.avg_pool2d(x, pair(kernel), pair(stride if stride is not None else kernel),
                         pair(padding), count_include_pad=True)
    else:
        y = F.adaptive_avg_pool2d(x, pair(output_size))
    gy = rand(*y.shape)
    (gx,) = torch.autograd.grad(y, [x], gy)
    if op == "adaptive_avg_pool2d":
        params = {"output_size": pair(output_size)}
    else:
        params = {"kernel": pair(kernel), "stride": pair(stride if stride is not None else kernel),
                  "padding": pair(padding)}
    return name, params, [("input", x), ("grad_output", gy), ("output", y), ("grad_input", gx)]


def main():
    os.makedirs(OUT, exist_ok=True)
    conv = [
        conv_case("basic_3x3", 2, 3, 6, 5, 4, 3),
        conv_case("same_3x3_pad1", 2, 2, 5, 5, 3, 3, padding=1),
        conv_case("same_dilated_pad2", 1, 2, 6, 5, 3, 3, padding=2, dilation=2),
        conv_case("stride2_pad1_rect_kernel", 1, 2, 8, 7, 3, (3, 2), stride=2, padding=1),
        conv_case("mixed_stride_pad_dilation_nobias", 2, 2, 7, 6, 2, (2, 3), stride=(2, 1),
                  padding=(1, 2), dilation=(2, 1), bias=False),
        conv_case("groups2_pad1", 1, 4, 5, 5, 6, 3, padding=1, groups=2),
        conv_case("depthwise_stride2_dil2", 1, 3, 8, 8, 6, 3, stride=2, padding=2, dilation=2,
                  groups=3),
        conv_case("pointwise_1x1", 2, 5, 4, 3, 3, 1),
        conv_case("pointwise_1x1_stride2_pad1", 1, 3, 5, 6, 2, 1, stride=2, padding=1),
        conv_case("kernel_fills_padded_input", 2, 2, 3, 4, 2, (5, 6), padding=1),
        conv_case("stride_larger_than_kernel", 1, 2, 8, 9, 3, 2, stride=3),
        conv_case("row_kernel_1x3", 1, 2, 4, 7, 2, (1, 3), padding=(0, 1)),
    ]
    write(os.path.join(OUT, "conv2d.txt"), "F.conv2d(input, weight, bias, stride, padding, "
          "dilation, groups)", conv)

    pools = {}
    for op in ("max_pool2d", "avg_pool2d"):
        pools[op] = [
            pool_case(op, "k2", rand(2, 2, 6, 8), 2),
            pool_case(op, "k2_odd_input", rand(1, 2, 7, 5), 2),
            pool_case(op, "k3_s2_p1", rand(1, 2, 7, 8), 3, 2, 1),
            pool_case(op, "k3_s1_p1_overlapping", rand(1, 2, 5, 6), 3, 1, 1),
            pool_case(op, "rect_k2x3_s1x2_p1", rand(2, 1, 6, 7), (2, 3), (1, 2), 1),
            pool_case(op, "global_k_equals_input", rand(2, 2, 4, 5), (4, 5)),
            pool_case(op, "ties_k2", ints(1, 2, 6, 6), 2),
            pool_case(op, "ties_k3_s1_p1", ints(1, 2, 5, 5), 3, 1, 1),
            pool_case(op, "ties_k3_s2_p1_all_equal", torch.zeros(1, 1, 5, 5, dtype=torch.float64) -
                      0.5, 3, 2, 1),
        ]
        write(os.path.join(OUT, op + ".txt"),
              "F.%s(input, kernel, stride, padding)%s" %
              (op, ", count_include_pad=True" if op == "avg_pool2d" else ""), pools[op])
    adaptive = [
        pool_case("adaptive_avg_pool2d", "out_3x2_from_7x5", rand(2, 2, 7, 5), output_size=(3, 2)),
        pool_case("adaptive_avg_pool2d", "global_1x1", rand(2, 2, 4, 6), output_size=1),
        pool_case("adaptive_avg_pool2d", "upsample_4x4_from_3x3", rand(1, 2, 3, 3), output_size=4),
        pool_case("adaptive_avg_pool2d", "out_5x3_from_10x7", rand(1, 2, 10, 7),
                  output_size=(5, 3)),
        pool_case("adaptive_avg_pool2d", "identity_6x5", rand(1, 1, 6, 5), output_size=(6, 5)),
    ]
    write(os.path.join(OUT, "adaptive_avg_pool2d.txt"),
          "F.adaptive_avg_pool2d(input, output_size)", adaptive)


if __name__ == "__main__":
    main()

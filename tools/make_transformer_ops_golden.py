#!/usr/bin/python3
"""Writes the reference data of xgrad's transformer ops (layer_norm, var/std, masked_fill,
triu/tril, topk, scaled dot-product attention) to tests/data/transformer_golden/ with torch.

    /usr/bin/python3 tools/make_transformer_ops_golden.py [OUT_DIR]

Needs Debian's python3-torch (1.13). Same file format, input convention (fixed float32
numbers, computed in float64) and gradient convention (of sum(output * grad_output)) as
tools/make_ops_golden.py, whose writer this script uses. torch 1.13 has no
scaled_dot_product_attention: attention is torch's composition softmax(q·kᵀ·scale + mask)·v
(torch 2.x's documented semantics: a bool mask keeps where true, a float mask is added,
is_causal keeps j <= i).
"""

import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_ops_golden as base  # noqa: E402

base.OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "transformer_golden")
grad_of, scalar = base.grad_of, base.scalar


def Writer(name, comment):
    w = base.Writer(name, comment)
    w.lines[-1] = w.lines[-1].replace("make_ops_golden.py", "make_transformer_ops_golden.py")
    return w

gen = torch.Generator().manual_seed(2020)


def rand(*shape, lo=-2.0, hi=2.0):
    t = torch.rand(*shape, generator=gen, dtype=torch.float32) * (hi - lo) + lo
    return t.to(torch.float64)


def ints(values):
    return torch.tensor([float(v) for v in values], dtype=torch.float64)


def layer_norm():
    w = Writer("layer_norm.txt", """
F.layer_norm(input, normalized_shape, weight, bias, eps): output and the gradients of input,
weight and bias (weight/bias absent: none).""")
    for name, shape, ns, affine, eps in [("last", (2, 3, 5), (5,), True, 1e-5),
                                         ("last2", (2, 3, 4), (3, 4), True, 1e-5),
                                         ("plain", (4, 6), (6,), False, 1e-3),
                                         ("whole", (3, 4), (3, 4), True, 1e-5)]:
        x = rand(*shape)
        gout = rand(*shape)
        if affine:
            wt, b = rand(*ns), rand(*ns)
            out, (gx, gw, gb) = grad_of(lambda a, c, d: F.layer_norm(a, ns, c, d, eps), [x, wt, b],
                                        gout)
            w.case(name, input=x, normalized_shape=ints(ns), eps=scalar(eps), weight=wt, bias=b,
                   grad_output=gout, output=out, grad_input=gx, grad_weight=gw, grad_bias=gb)
        else:
            out, (gx,) = grad_of(lambda a: F.layer_norm(a, ns, None, None, eps), [x], gout)
            w.case(name, input=x, normalized_shape=ints(ns), eps=scalar(eps), grad_output=gout,
                   output=out, grad_input=gx)
    w.close()


def variance():
    w = Writer("variance.txt", """
torch.var / torch.std(input, dim, correction=..., keepdim=...) (torch 1.13: unbiased=True is
correction 1, False is 0; correction 2 by the formula, computed here as var·(N−1)/(N−2)):
output and gradient. dim empty: all dimensions.""")
    x = rand(3, 4, 5)
    for op in ("var", "std"):
        for name, dim, corr, keep in [("all", (), 1, False), ("d1", (1,), 1, False),
                                      ("d02_keep", (0, 2), 0, True), ("dneg", (-1,), 2, False)]:
            d = list(dim) if dim else list(range(x.dim()))
            n = 1
            for a in d:
                n *= x.shape[a]

            def f(a):
                v = torch.var(a, dim=d, unbiased=False, keepdim=keep) * n / (n - corr)
                return v if op == "var" else torch.sqrt(v)
            gout = rand(*f(x).shape) if f(x).dim() > 0 else rand(1).reshape(())
            out, (gx,) = grad_of(f, [x], gout)
            w.case(op + "_" + name, input=x, dim=ints(dim), correction=scalar(corr),
                   keepdim=scalar(keep), grad_output=gout, output=out, grad_input=gx)
    w.close()


def masking():
    w = Writer("masking.txt", """
x.masked_fill(mask, value) (mask as 0/1), torch.triu / torch.tril(x, diagonal): output and
gradient.""")
    x = rand(2, 3, 4)
    mask = torch.rand(3, 4, generator=gen) < 0.4
    gout = rand(2, 3, 4)
    out, (gx,) = grad_of(lambda a: a.masked_fill(mask, -1.5), [x], gout)
    w.case("masked_fill", input=x, mask=mask.to(torch.float64), value=scalar(-1.5),
           grad_output=gout, output=out, grad_input=gx)
    for op, fn in (("triu", torch.triu), ("tril", torch.tril)):
        for dg in (-1, 0, 2):
            out, (gx,) = grad_of(lambda a: fn(a, dg), [x], gout)
            w.case("%s_%s" % (op, str(dg).replace("-", "m")), input=x, diagonal=scalar(dg),
                   grad_output=gout, output=out, grad_input=gx)
    w.close()


def topk():
    w = Writer("topk.txt", """
torch.topk(input, k, dim, largest, sorted=True): values, indices and the input's gradient.
The input has no ties (torch's tie order is unspecified).""")
    x = rand(3, 7)
    for name, k, dim, largest in [("largest_last", 3, -1, True), ("smallest_last", 2, 1, False),
                                  ("largest_dim0", 2, 0, True)]:
        vals, idx = torch.topk(x, k, dim, largest)
        gout = rand(*vals.shape)
        out, (gx,) = grad_of(lambda a: torch.topk(a, k, dim, largest)[0], [x], gout)
        w.case(name, input=x, k=scalar(k), dim=scalar(dim), largest=scalar(largest),
               grad_output=gout, values=out, indices=idx.to(torch.float64), grad_input=gx)
    w.close()


def attention_ref(q, k, v, mask, is_causal, scale):
    s = q @ k.transpose(-2, -1) * scale
    if is_causal:
        keep = torch.ones(q.shape[-2], k.shape[-2], dtype=torch.bool).tril()
        s = s.masked_fill(~keep, -math.inf)
    if mask is not None:
        s = s.masked_fill(~mask, -math.inf) if mask.dtype == torch.bool else s + mask
    return torch.softmax(s, -1) @ v


def attention():
    w = Writer("attention.txt", """
softmax(q·kᵀ·scale + mask)·v (torch 2.x scaled_dot_product_attention semantics, composed with
torch 1.13 ops): output and the gradients of q, k, v (and of a float mask). mask_bool holds
0/1 (keep where 1); mask_float is added; causal: is_causal. scale absent: 1/sqrt(E).""")
    B, H, L, S, E, Ev = 2, 2, 5, 7, 4, 3
    for name, causal, mk, scale in [("plain", False, None, None), ("causal", True, None, None),
                                    ("causal_square", True, None, 0.3),
                                    ("bool_mask", False, "bool", None),
                                    ("float_mask", False, "float", None)]:
        Lq = S if name == "causal_square" else L
        q, k, v = rand(B, H, Lq, E), rand(B, H, S, E), rand(B, H, S, Ev)
        gout = rand(B, H, Lq, Ev)
        sc = scale if scale is not None else 1 / math.sqrt(E)
        extra = {}
        if mk == "bool":
            m = torch.rand(B, 1, Lq, S, generator=gen) < 0.7
            m[..., 0] = True  # every row keeps a key
            out, grads = grad_of(lambda a, b, c: attention_ref(a, b, c, m, causal, sc), [q, k, v],
                                 gout)
            extra = dict(mask_bool=m.to(torch.float64))
        elif mk == "float":
            m = rand(Lq, S)
            out, grads = grad_of(lambda a, b, c, d: attention_ref(a, b, c, d, causal, sc),
                                 [q, k, v, m], gout)
            extra = dict(mask_float=m, grad_mask=grads[3])
        else:
            out, grads = grad_of(lambda a, b, c: attention_ref(a, b, c, None, causal, sc),
                                 [q, k, v], gout)
        if causal:
            extra["causal"] = scalar(1)
        if scale is not None:
            extra["scale"] = scalar(scale)
        w.case(name, q=q, k=k, v=v, grad_output=gout, output=out, grad_q=grads[0],
               grad_k=grads[1], grad_v=grads[2], **extra)
    w.close()


def main():
    os.makedirs(base.OUT, exist_ok=True)
    layer_norm()
    variance()
    masking()
    topk()
    attention()
    print("golden files written to", os.path.normpath(base.OUT))


if __name__ == "__main__":
    main()

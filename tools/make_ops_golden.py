#!/usr/bin/python3
"""Writes the reference data of xgrad's loss, reduction and activation tests
(tests/data/ops_golden/) with torch.

    /usr/bin/python3 tools/make_ops_golden.py [OUT_DIR]

Needs Debian's python3-torch (1.13); run it with /usr/bin/python3 when another python3 comes
first on PATH. Inputs are fixed float32 numbers (so the same inputs serve xgrad's float64 and
float32 tests exactly); outputs and gradients are computed by torch in float64. A gradient
`grad_X` is that of sum(output * grad_output) w.r.t. X (backward seeded with grad_output).

File format (one file per op family: cross_entropy.txt, binary_cross_entropy.txt, norm.txt,
amax.txt, hardtanh.txt), line based:

    # comment
    case NAME
    tensor KEY NDIM D1 .. Dn   (followed by one line of the values, row-major, %.17g)
    end

Integer tensors (labels) are written as numbers too; scalars (ignore_index, p, ...) are
tensors of one element.
"""

import math
import os
import sys

import torch
import torch.nn.functional as F

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "ops_golden")

gen = torch.Generator().manual_seed(20261207)


def rand(*shape, lo=-2.0, hi=2.0):
    """Random float32 numbers in [lo, hi), returned as float64 (exactly)."""
    t = torch.rand(*shape, generator=gen, dtype=torch.float32) * (hi - lo) + lo
    return t.to(torch.float64)


class Writer:
    def __init__(self, name, comment):
        self.path = os.path.join(OUT, name)
        self.lines = ["# " + line for line in comment.strip().split("\n")]
        self.lines.append("# written by tools/make_ops_golden.py with torch " + torch.__version__)

    def case(self, name, **tensors):
        self.lines.append("case " + name)
        for key, t in tensors.items():
            t = torch.as_tensor(t).detach().to(torch.float64).reshape(-1) if not isinstance(
                t, torch.Tensor) else t.detach()
            shape = list(t.shape)
            self.lines.append("tensor %s %d %s" % (key, len(shape), " ".join(map(str, shape))))
            self.lines.append(" ".join("%.17g" % v for v in t.to(torch.float64).reshape(-1).tolist()))
        self.lines.append("end")

    def close(self):
        with open(self.path, "w") as f:
            f.write("\n".join(self.lines) + "\n")


def grad_of(fn, inputs, gout):
    """Output of fn(*inputs) and the gradients of sum(output * gout) w.r.t. the inputs."""
    leaves = [x.clone().requires_grad_(True) for x in inputs]
    out = fn(*leaves)
    (out * gout).sum().backward()
    return out, [x.grad for x in leaves]


def scalar(v):
    return torch.tensor([float(v)], dtype=torch.float64)


def cross_entropy():
    w = Writer("cross_entropy.txt", """
F.cross_entropy(logits, labels, weight, ignore_index=..., reduction=..., label_smoothing=...)
for each reduction (output_mean, output_sum, output_none) and the gradient of the mean and of
sum(output_none * grad_output). weight absent: no weight.""")
    logits = rand(5, 4, lo=-3, hi=3)
    gout = rand(5, lo=-1, hi=1)
    configs = [
        ("ignore", dict(labels=[2, -100, 0, 3, -100], weight=None, ignore_index=-100, eps=0.0)),
        ("smoothing", dict(labels=[2, 1, 0, 3, 1], weight=None, ignore_index=-100, eps=0.2)),
        ("weight", dict(labels=[2, 1, 0, 3, 1], weight=[0.5, 2.0, 1.0, 0.25], ignore_index=-100,
                        eps=0.0)),
        ("weight_smoothing", dict(labels=[2, 1, 0, 3, 1], weight=[0.5, 2.0, 1.0, 0.25],
                                  ignore_index=-100, eps=0.3)),
        ("all", dict(labels=[2, 1, 0, 3, 1], weight=[0.5, 2.0, 1.0, 0.25], ignore_index=1,
                     eps=0.1)),
        ("ignore_smoothing", dict(labels=[2, 0, 0, 3, 0], weight=None, ignore_index=0, eps=0.4)),
        ("all_ignored", dict(labels=[-100] * 5, weight=None, ignore_index=-100, eps=0.1)),
    ]
    for name, c in configs:
        labels = torch.tensor(c["labels"], dtype=torch.int64)
        weight = None if c["weight"] is None else torch.tensor(c["weight"], dtype=torch.float64)

        def f(x, reduction):
            return F.cross_entropy(x, labels, weight=weight, ignore_index=c["ignore_index"],
                                   reduction=reduction, label_smoothing=c["eps"])

        out_mean, (g_mean,) = grad_of(lambda x: f(x, "mean"), [logits], torch.tensor(1.0, dtype=torch.float64))
        out_none, (g_none,) = grad_of(lambda x: f(x, "none"), [logits], gout)
        tensors = dict(logits=logits, labels=labels.to(torch.float64),
                       ignore_index=scalar(c["ignore_index"]), label_smoothing=scalar(c["eps"]))
        if weight is not None:
            tensors["weight"] = weight
        tensors.update(grad_output=gout, output_mean=out_mean.reshape(1),
                       output_sum=f(logits, "sum").reshape(1), output_none=out_none,
                       grad_mean=g_mean, grad_none=g_none)
        w.case(name, **tensors)
    w.close()


def binary_cross_entropy():
    w = Writer("binary_cross_entropy.txt", """
F.binary_cross_entropy(input, target, weight, reduction) for each reduction, the gradients
of the mean w.r.t. input and target, and those of sum(output_none * grad_output). input holds
0 and 1 (the logs clamp at -100).""")
    x = torch.tensor([[0.0, 0.25, 0.5], [0.9, 1.0, 0.125]], dtype=torch.float64)
    y = torch.tensor([[0.0, 1.0, 0.5], [0.75, 0.0, 1.0]], dtype=torch.float64)
    x[1, 1] = 1.0
    gout = rand(2, 3, lo=-1, hi=1)
    for name, weight in [("plain", None),
                         ("weight", torch.tensor([0.5, 2.0, 1.5], dtype=torch.float64))]:
        def f(a, b, reduction):
            return F.binary_cross_entropy(a, b, weight=weight, reduction=reduction)

        # Interior inputs for gradients: at x = 0 or 1 torch's target gradient is -logit(x) = inf.
        xi = torch.tensor([[0.0625, 0.25, 0.5], [0.9, 0.96875, 0.125]], dtype=torch.float64)
        out_mean, (gx_mean, gy_mean) = grad_of(lambda a, b: f(a, b, "mean"), [xi, y],
                                               torch.tensor(1.0, dtype=torch.float64))
        out_none, (gx_none, gy_none) = grad_of(lambda a, b: f(a, b, "none"), [xi, y], gout)
        tensors = dict(input_edges=x, output_edges_none=f(x, y, "none"), input=xi, target=y)
        if weight is not None:
            tensors["weight"] = weight
        tensors.update(grad_output=gout, output_mean=out_mean.reshape(1),
                       output_sum=f(xi, y, "sum").reshape(1), output_none=out_none,
                       grad_input_mean=gx_mean, grad_target_mean=gy_mean,
                       grad_input_none=gx_none, grad_target_none=gy_none)
        w.case(name, **tensors)
    w.close()


def norm():
    w = Writer("norm.txt", """
torch.norm(input, p, dim, keepdim) (torch.linalg.vector_norm for p = inf) and the gradient of
sum(output * grad_output). dim absent: all dimensions. input's row 1 is all zeros (gradient 0
there, as torch) and row 2 holds a tie of largest |x|.""")
    x = rand(3, 4)
    x[1] = 0.0
    x[2, 0], x[2, 3] = 1.5, -1.5
    x[2, 1], x[2, 2] = 0.5, -0.25
    for p in [1.0, 2.0, 3.0, math.inf]:
        for dim, keepdim in [(None, False), ((1,), False), ((1,), True), ((0,), False),
                             ((0, 1), True)]:
            def f(a):
                if dim is None:
                    return torch.linalg.vector_norm(a, ord=p)
                return torch.linalg.vector_norm(a, ord=p, dim=dim, keepdim=keepdim)

            out = f(x)
            gout = rand(*out.shape, lo=-1, hi=1) if out.dim() else torch.tensor(0.75, dtype=torch.float64)
            out, (g,) = grad_of(f, [x], gout)
            name = "p%s_dim%s%s" % ("inf" if math.isinf(p) else int(p),
                                    "all" if dim is None else "".join(map(str, dim)),
                                    "_keepdim" if keepdim else "")
            tensors = dict(input=x, p=scalar(p), keepdim=scalar(1 if keepdim else 0))
            if dim is not None:
                tensors["dim"] = torch.tensor(dim, dtype=torch.float64)
            tensors.update(grad_output=gout.reshape(out.shape), output=out, grad_input=g)
            w.case(name, **tensors)
    w.close()


def amax():
    w = Writer("amax.txt", """
torch.amax / torch.amin(input, dim, keepdim) and the gradient of sum(output * grad_output):
ties share the gradient evenly. dim absent: all dimensions.""")
    x = torch.tensor([[1.0, 3.0, 3.0, -2.0], [0.5, 0.5, 0.5, 0.5], [-1.0, 2.0, -4.0, -4.0]],
                     dtype=torch.float64)
    for op in ["amax", "amin"]:
        fn = getattr(torch, op)
        for dim, keepdim in [((1,), False), ((0,), True), ((0, 1), False), ((-1,), True)]:
            out = fn(x, dim=dim, keepdim=keepdim)
            gout = rand(*out.shape, lo=-1, hi=1) if out.dim() else torch.tensor(0.75, dtype=torch.float64)
            out, (g,) = grad_of(lambda a: fn(a, dim=dim, keepdim=keepdim), [x], gout)
            name = "%s_dim%s%s" % (op, "".join(str(d) for d in dim), "_keepdim" if keepdim else "")
            w.case(name, input=x, dim=torch.tensor(dim, dtype=torch.float64),
                   keepdim=scalar(1 if keepdim else 0), grad_output=gout.reshape(out.shape),
                   output=out, grad_input=g)
    w.close()


def hardtanh():
    w = Writer("hardtanh.txt", """
F.hardtanh(input, min_val, max_val) and F.relu6(input), with the gradient of
sum(output * grad_output). input holds the bounds themselves (gradient 0 there, as torch).""")
    x = torch.tensor([-3.0, -1.0, -0.5, 0.0, 0.25, 1.0, 2.5, 6.0, 7.0], dtype=torch.float64)
    gout = rand(9, lo=-1, hi=1)
    for name, fn, lo, hi in [("hardtanh", lambda a: F.hardtanh(a), -1.0, 1.0),
                             ("hardtanh_m05_25", lambda a: F.hardtanh(a, -0.5, 2.5), -0.5, 2.5),
                             ("relu6", lambda a: F.relu6(a), 0.0, 6.0)]:
        out, (g,) = grad_of(fn, [x], gout)
        w.case(name, input=x, min_val=scalar(lo), max_val=scalar(hi), grad_output=gout,
               output=out, grad_input=g)
    w.close()


def main():
    os.makedirs(OUT, exist_ok=True)
    cross_entropy()
    binary_cross_entropy()
    norm()
    amax()
    hardtanh()
    print("golden files written to", os.path.normpath(OUT))


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Writes the reference data of xgrad's func tests (tests/data/func_golden/) with torch's
function transforms.

    /usr/bin/python3 tools/torch_func.py [OUT_DIR]

Needs Debian's python3-torch (1.13), which ships torch.func's transforms as `functorch`
(jacrev, jacfwd, hessian, vjp, jvp), functional_call as torch.nn.utils.stateless and
torch.autograd.functional (hvp, vhp); run it with
/usr/bin/python3 when another python3 comes first on PATH.

The model: nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 3)) in float64, batch 2,
parameters drawn here (written to the file), and two functions of the parameters in
state_dict order (0.weight, 0.bias, 2.weight, 2.bias), both through functional_call:
    logits(params) = model(x)                     [2, 3]
    loss(params)   = cross_entropy(model(x), y)   0-d (mean over the batch)
Written (mlp.txt, one case "mlp"; format of tests/golden_file.hpp, values %.17g):
    x, y, p.<name>                         the inputs and the parameters
    v.<name>                               a direction in parameter space (jvp, hvp, vhp)
    ct                                     a cotangent of the logits' shape (vjp)
    loss                                   loss(params)
    jacrev_loss.<name>, jacfwd_loss.<name> the loss's Jacobian (= gradient), param's shape
    jacrev_logits.<name>, jacfwd_logits.<name>   [2, 3] ++ param's shape
    hessian.<a>.<b>                        param a's shape ++ param b's shape (by
                                           jacrev(jacrev): see below)
    hvp.<name>, vhp.<name>                 torch.autograd.functional.hvp / vhp of loss along v
    jvp_loss, jvp_logits                   functorch.jvp of loss / logits along v
    vjp_logits.<name>                      functorch.vjp of logits, with cotangent ct
"""

import os
import sys

import functorch
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.autograd.functional import hvp, vhp
from torch.nn.utils.stateless import functional_call  # torch.func.functional_call in torch 2

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "func_golden")

torch.manual_seed(20261207)
model = nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 3)).to(torch.float64)
names = [n for n, _ in model.named_parameters()]
params = tuple(torch.randn(p.shape, dtype=torch.float64) for _, p in model.named_parameters())
x = torch.randn(2, 4, dtype=torch.float64)
y = torch.tensor([2, 0])
v = tuple(torch.randn(p.shape, dtype=torch.float64) for p in params)
ct = torch.randn(2, 3, dtype=torch.float64)


def logits(*p):
    return functional_call(model, dict(zip(names, p)), (x,))


def loss(*p):
    return F.cross_entropy(logits(*p), y)


argnums = tuple(range(len(params)))
out = {"x": x, "y": y, "ct": ct, "loss": loss(*params)}
for n, p, d in zip(names, params, v):
    out["p." + n] = p
    out["v." + n] = d
for tag, fn in (("loss", loss), ("logits", logits)):
    for mode, jac in (("jacrev", functorch.jacrev), ("jacfwd", functorch.jacfwd)):
        for n, j in zip(names, jac(fn, argnums=argnums)(*params)):
            out["%s_%s.%s" % (mode, tag, n)] = j
# functorch.hessian is jacfwd(jacrev): torch 1.13 has no forward-mode rule for
# log_softmax's backward, so the reference is jacrev(jacrev) — the same matrix.
H = functorch.jacrev(functorch.jacrev(loss, argnums=argnums), argnums=argnums)(*params)
for a, row in zip(names, H):
    for b, h in zip(names, row):
        out["hessian.%s.%s" % (a, b)] = h
for tag, prod in (("hvp", hvp), ("vhp", vhp)):
    _, r = prod(loss, params, v)
    for n, t in zip(names, r):
        out["%s.%s" % (tag, n)] = t
out["jvp_loss"] = functorch.jvp(loss, params, v)[1]
out["jvp_logits"] = functorch.jvp(logits, params, v)[1]
_, vjp_fn = functorch.vjp(logits, *params)
for n, t in zip(names, vjp_fn(ct)):
    out["vjp_logits." + n] = t

os.makedirs(OUT, exist_ok=True)
lines = ["# written by tools/torch_func.py with torch " + torch.__version__, "case mlp"]
for key, t in out.items():
    t = t.detach().to(torch.float64)
    lines.append("tensor %s %d %s" % (key, t.dim(), " ".join(map(str, t.shape))))
    lines.append(" ".join("%.17g" % val for val in t.reshape(-1).tolist()))
lines.append("end")
with open(os.path.join(OUT, "mlp.txt"), "w") as f:
    f.write("\n".join(lines) + "\n")
print("wrote", os.path.join(OUT, "mlp.txt"), len(out), "tensors")

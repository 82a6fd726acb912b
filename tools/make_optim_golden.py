#!/usr/bin/python3
"""Writes torch.optim's trajectories on the 2-D test functions: the golden files of
tests/optim/golden_test.cpp and tests/tools/descent_cli_test.cpp.

    /usr/bin/python3 tools/make_optim_golden.py [--out tests/data/optim_golden] [--steps 200]

Needs torch (Debian's python3-torch 1.13.1; run it with /usr/bin/python3, which has it).
Everything is float64, on the CPU, through torch's single-tensor path (foreach=False).

Two sets, one gzip-compressed CSV per (function, set):

  <function>_analytic.csv.gz  the gradient is the closed form of
                              include/xgrad/optim/test_functions.hpp, computed here in
                              Python in the same order from p's current values and assigned
                              to p.grad: xgrad must reproduce these bit for bit;
  <function>_autograd.csv.gz  the gradient comes from torch's autograd of f (xgrad's own
                              autograd on the C++ side; agreement to 1e-6 expected).

Each file: header `optimizer,step,x,y,f`, then for every configuration the rows of steps 0
(the start) to N, numbers with 17 significant digits ("%.17g", as xgrad-descent writes
them). The optimizer column is the configuration's label, e.g. "adam(lr=0.01,amsgrad)"
(quoted by the csv module when it holds a comma): the same labels xgrad-descent writes, so
`xgrad-descent --grad analytic --csv` reproduces a golden file's rows exactly. f is the
closed-form value at (x, y), also in the header's order.

compare_descent.py imports this module for the functions, the labels and the torch runs.
"""

import argparse
import csv
import gzip
import io
import math
import os
import sys

# ---- the test functions (closed forms, in include/xgrad/optim/test_functions.hpp's order) --


def rosenbrock(x, y):
    a = 1 - x
    b = y - x * x
    return a * a + 100 * b * b


def rosenbrock_gradient(x, y):
    gx = -2 * (1 - x) - 400 * x * (y - x * x)
    gy = 200 * (y - x * x)
    return gx, gy


def rosenbrock_expr(x, y):  # torch tensors; mirrors the xgrad expression
    a = 1.0 - x
    b = y - x * x
    return a * a + 100.0 * b * b


def himmelblau(x, y):
    a = x * x + y - 11
    b = x + y * y - 7
    return a * a + b * b


def himmelblau_gradient(x, y):
    a = x * x + y - 11
    b = x + y * y - 7
    gx = 4 * x * a + 2 * b
    gy = 2 * a + 4 * y * b
    return gx, gy


def himmelblau_expr(x, y):
    a = x * x + y - 11.0
    b = x + y * y - 7.0
    return a * a + b * b


def beale(x, y):
    t1 = 1.5 - x + x * y
    t2 = 2.25 - x + x * y * y
    t3 = 2.625 - x + x * y * y * y
    return t1 * t1 + t2 * t2 + t3 * t3


def beale_gradient(x, y):
    t1 = 1.5 - x + x * y
    t2 = 2.25 - x + x * y * y
    t3 = 2.625 - x + x * y * y * y
    gx = 2 * t1 * (y - 1) + 2 * t2 * (y * y - 1) + 2 * t3 * (y * y * y - 1)
    gy = 2 * t1 * x + 4 * t2 * x * y + 6 * t3 * x * y * y
    return gx, gy


def beale_expr(x, y):
    t1 = 1.5 - x + x * y
    t2 = 2.25 - x + x * y * y
    t3 = 2.625 - x + x * y * y * y
    return t1 * t1 + t2 * t2 + t3 * t3


def bowl(x, y):
    return 0.5 * (x * x + 10 * y * y)


def bowl_gradient(x, y):
    return x, 10 * y


def bowl_expr(x, y):
    return 0.5 * (x * x + 10.0 * y * y)


FUNCTIONS = {
    "rosenbrock": (rosenbrock, rosenbrock_gradient, rosenbrock_expr),
    "himmelblau": (himmelblau, himmelblau_gradient, himmelblau_expr),
    "beale": (beale, beale_gradient, beale_expr),
    "bowl": (bowl, bowl_gradient, bowl_expr),
}

# ---- optimizer configurations and their labels ---------------------------------------------

# Per optimizer: its options in label order, with xgrad's (= torch's) defaults. SGD's lr has no
# default in torch; xgrad's SGDOptions uses 1e-3. Boolean options appear in a label as a bare
# word ("nesterov"), betas as "betas=(b1,b2)"; an option is listed only when it differs from
# the default, except lr, which is always listed.
DEFAULTS = {
    "sgd": [("lr", 1e-3), ("momentum", 0.0), ("dampening", 0.0), ("nesterov", False),
            ("weight_decay", 0.0)],
    "rmsprop": [("lr", 1e-2), ("alpha", 0.99), ("eps", 1e-8), ("weight_decay", 0.0),
                ("momentum", 0.0), ("centered", False)],
    "adam": [("lr", 1e-3), ("betas", (0.9, 0.999)), ("eps", 1e-8), ("weight_decay", 0.0),
             ("amsgrad", False)],
    "adamw": [("lr", 1e-3), ("betas", (0.9, 0.999)), ("eps", 1e-8), ("weight_decay", 1e-2),
              ("amsgrad", False)],
}


def fmt_number(v):
    """The shortest "%.{p}g" (p = 1..17) that reads back as v: 0.01, 0.001, 1e-08, 0.9.
    xgrad-descent formats label numbers the same way."""
    for p in range(1, 18):
        s = "%.*g" % (p, v)
        if float(s) == v:
            return s
    return "%.17g" % v


def fmt_value(v):
    return "%.17g" % v


def full_config(name, options):
    """options with every default filled in (a dict in label order)."""
    if name not in DEFAULTS:
        raise ValueError("unknown optimizer '%s' (choose sgd, rmsprop, adam or adamw)" % name)
    known = dict(DEFAULTS[name])
    for k in options:
        if k not in known:
            raise ValueError("%s has no option '%s'" % (name, k))
    return {k: options.get(k, d) for k, d in DEFAULTS[name]}


def label(name, options):
    cfg = full_config(name, options)
    parts = []
    for k, d in DEFAULTS[name]:
        v = cfg[k]
        if k != "lr" and v == d:
            continue
        if isinstance(d, bool):
            parts.append(k)
        elif k == "betas":
            parts.append("betas=(%s,%s)" % (fmt_number(v[0]), fmt_number(v[1])))
        else:
            parts.append("%s=%s" % (k, fmt_number(v)))
    return "%s(%s)" % (name, ",".join(parts))


def parse_label(text):
    """(name, options) from a label; the inverse of label()."""
    text = text.strip()
    if "(" not in text or not text.endswith(")"):
        raise ValueError("malformed optimizer label '%s'" % text)
    name, body = text[:-1].split("(", 1)
    if name not in DEFAULTS:
        raise ValueError("unknown optimizer '%s' in label '%s'" % (name, text))
    defaults = dict(DEFAULTS[name])
    parts, depth, cur = [], 0, ""
    for ch in body:
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        depth += ch == "("
        depth -= ch == ")"
        cur += ch
    if cur:
        parts.append(cur)
    options = {}
    for part in parts:
        if "=" not in part:
            if not isinstance(defaults.get(part), bool):
                raise ValueError("bad option '%s' in label '%s'" % (part, text))
            options[part] = True
            continue
        k, v = part.split("=", 1)
        if k not in defaults or isinstance(defaults[k], bool):
            raise ValueError("bad option '%s' in label '%s'" % (part, text))
        if k == "betas":
            b = v.strip("()").split(",")
            options[k] = (float(b[0]), float(b[1]))
        else:
            options[k] = float(v)
    return name, options


def make_optimizer(torch, name, options, params):
    cfg = full_config(name, options)
    if name == "sgd":
        return torch.optim.SGD(params, lr=cfg["lr"], momentum=cfg["momentum"],
                               dampening=cfg["dampening"], nesterov=cfg["nesterov"],
                               weight_decay=cfg["weight_decay"], foreach=False)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=cfg["lr"], alpha=cfg["alpha"], eps=cfg["eps"],
                                   weight_decay=cfg["weight_decay"], momentum=cfg["momentum"],
                                   centered=cfg["centered"], foreach=False)
    cls = torch.optim.Adam if name == "adam" else torch.optim.AdamW
    return cls(params, lr=cfg["lr"], betas=cfg["betas"], eps=cfg["eps"],
               weight_decay=cfg["weight_decay"], amsgrad=cfg["amsgrad"], foreach=False)


def run_torch(torch, function, start, steps, grad, name, options):
    """torch.optim's trajectory: [(step, x, y, f)] for steps 0..steps."""
    value, gradient, expr = FUNCTIONS[function]
    p = torch.tensor([float(start[0]), float(start[1])], dtype=torch.float64,
                     requires_grad=True)
    opt = make_optimizer(torch, name, options, [p])
    x, y = p.tolist()
    rows = [(0, x, y, value(x, y))]
    for step in range(1, steps + 1):
        if grad == "analytic":
            gx, gy = gradient(x, y)
            p.grad = torch.tensor([gx, gy], dtype=torch.float64)
        else:
            opt.zero_grad(set_to_none=True)
            expr(p[0], p[1]).backward()
        opt.step()
        x, y = p.tolist()
        rows.append((step, x, y, value(x, y)))
    return rows


def csv_text(trajectories):
    """The CSV for [(label, rows)]: header, then every row with 17 significant digits."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["optimizer", "step", "x", "y", "f"])
    for lab, rows in trajectories:
        for step, x, y, f in rows:
            w.writerow([lab, step, fmt_value(x), fmt_value(y), fmt_value(f)])
    return out.getvalue()


def read_csv(path):
    """{label: [(step, x, y, f)]} from a (possibly gzip-compressed) trajectory CSV."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", newline="") as f:
        r = csv.reader(f)
        header = next(r)
        if header != ["optimizer", "step", "x", "y", "f"]:
            raise ValueError("%s: expected the header optimizer,step,x,y,f" % path)
        out = {}
        for row in r:
            out.setdefault(row[0], []).append(
                (int(row[1]), float(row[2]), float(row[3]), float(row[4])))
    return out


# ---- the golden set ----------------------------------------------------------------------

# (name, options) of every configuration, on every function. Learning rates: SGD 1e-3,
# RMSprop and Adam(W) 1e-2, which keep every trajectory finite on all three functions from
# the starts below (checked by main(), which refuses to write a non-finite trajectory).
CONFIGS = [
    ("sgd", {"lr": 1e-3}),
    ("sgd", {"lr": 1e-3, "momentum": 0.9}),
    ("sgd", {"lr": 1e-3, "momentum": 0.9, "dampening": 0.5}),
    ("sgd", {"lr": 1e-3, "momentum": 0.9, "nesterov": True}),
    ("sgd", {"lr": 1e-3, "weight_decay": 1e-2}),
    ("rmsprop", {"lr": 1e-2}),
    ("rmsprop", {"lr": 1e-2, "centered": True}),
    ("rmsprop", {"lr": 1e-2, "momentum": 0.9}),
    ("rmsprop", {"lr": 1e-2, "weight_decay": 1e-2}),
    ("adam", {"lr": 1e-2}),
    ("adam", {"lr": 1e-2, "amsgrad": True}),
    ("adam", {"lr": 1e-2, "weight_decay": 1e-2}),
    ("adamw", {"lr": 1e-2, "weight_decay": 1e-2}),
]

# Analytic set only: configurations chosen so that every rounding in the update loops shows.
# With the configurations above some roundings cannot change a trajectory: 1 − τ = 0.5 and
# weight decay 0.5 would make the products exact, and weight decay 1e-2 is too small against
# these gradients for the rounding of λ·p to reach p. `--mutants` checks that every rounding
# site (each std::fma, each operation order) changes at least one golden trajectory.
SENSITIVE_CONFIGS = [
    ("sgd", {"lr": 1e-3, "momentum": 0.9, "dampening": 0.3, "weight_decay": 0.3}),
    ("rmsprop", {"lr": 1e-2, "alpha": 0.9, "weight_decay": 0.3, "momentum": 0.5,
                 "centered": True}),
    ("adam", {"lr": 1e-1, "betas": (0.8, 0.95), "weight_decay": 0.3}),
    ("adamw", {"lr": 1e-1, "betas": (0.8, 0.95), "weight_decay": 0.3}),
]

# function -> start
STARTS = {"rosenbrock": (-1.5, 2.0), "beale": (1.0, 1.0), "himmelblau": (0.0, 0.0)}


# ---- mutation check ----------------------------------------------------------------------
#
# A golden test is only as good as the roundings it can see. simulate() replays torch 1.13's
# single-tensor updates in pure Python (an exact fma through fractions), and `mutant` changes
# one rounding site: an fma computed as a·b + c rounded twice, or an operation done in another
# order. With no mutant it must reproduce every golden trajectory bit for bit; each mutant must
# change at least one of them, or the test would not notice that mistake in xgrad.

MUTANTS = {
    "sgd": {"wd": "d_p.add(param, alpha=wd) unfused",
            "buf": "buf.mul_(mu).add_(d_p, alpha=1-dampening) unfused",
            "first": "first momentum buffer dampened (torch copies d_p)",
            "nesterov": "d_p.add(buf, alpha=mu) unfused",
            "param": "param.add_(d_p, alpha=-lr) unfused"},
    "rmsprop": {"wd": "grad.add(param, alpha=wd) unfused",
                "square_avg": "addcmul_(grad, grad, value=1-alpha) unfused",
                "grad_avg": "grad_avg.add_(grad, alpha=1-alpha) unfused",
                "centered": "square_avg.addcmul(grad_avg, grad_avg, value=-1) unfused",
                "eps": "eps inside the square root",
                "buf": "buf.addcdiv_(grad, avg) as buf + grad*(1/avg)",
                "param": "param.add_(buf, alpha=-lr) unfused",
                "addcdiv": "param.addcdiv_(grad, avg, value=-lr) as value*(grad/avg)"},
    "adam": {"wd": "grad.add(param, alpha=wd) unfused",
             "exp_avg": "exp_avg.add_(grad, alpha=1-beta1) unfused",
             "exp_avg_sq": "exp_avg_sq.addcmul_(grad, grad, value=1-beta2) unfused",
             "bias": "textbook bias correction m/(1-b1^t) / (sqrt(v/(1-b2^t)) + eps)",
             "addcdiv": "param.addcdiv_(m, denom, value=-step) as value*(m/denom)"},
    "adamw": {"decay": "param.mul_(1-lr*wd) as param - (lr*wd)*param",
              "exp_avg": "exp_avg.add_(grad, alpha=1-beta1) unfused",
              "exp_avg_sq": "exp_avg_sq.addcmul_(grad, grad, value=1-beta2) unfused",
              "bias": "textbook bias correction m/(1-b1^t) / (sqrt(v/(1-b2^t)) + eps)",
              "addcdiv": "param.addcdiv_(m, denom, value=-step) as value*(m/denom)"},
}


def simulate(function, start, steps, name, options, mutant=None):
    """torch.optim's analytic-gradient trajectory [(x, y)], replayed in Python, with one
    rounding site changed when `mutant` names one (see MUTANTS)."""
    from fractions import Fraction

    def fma(a, b, c, site):
        if site == mutant:
            return a * b + c
        return float(Fraction(a) * Fraction(b) + Fraction(c))

    cfg = full_config(name, options)
    gradient = FUNCTIONS[function][1]
    p = [float(start[0]), float(start[1])]
    state = [{}, {}]
    out = [tuple(p)]
    for t in range(1, steps + 1):
        g = gradient(p[0], p[1])
        for i in range(2):
            d, x, st = g[i], p[i], state[i]
            if name == "sgd":
                lr, mu, wd = cfg["lr"], cfg["momentum"], cfg["weight_decay"]
                if wd != 0:
                    d = fma(wd, x, d, "wd")
                if mu != 0:
                    if "buf" not in st:
                        st["buf"] = (1 - cfg["dampening"]) * d if mutant == "first" else d
                    else:
                        st["buf"] = fma(1 - cfg["dampening"], d, st["buf"] * mu, "buf")
                    d = fma(mu, st["buf"], d, "nesterov") if cfg["nesterov"] else st["buf"]
                p[i] = fma(-lr, d, x, "param")
            elif name == "rmsprop":
                lr, alpha, eps = cfg["lr"], cfg["alpha"], cfg["eps"]
                mu, wd = cfg["momentum"], cfg["weight_decay"]
                if wd != 0:
                    d = fma(wd, x, d, "wd")
                st["v"] = fma((1 - alpha) * d, d, st.get("v", 0.0) * alpha, "square_avg")
                v = st["v"]
                if cfg["centered"]:
                    st["a"] = fma(1 - alpha, d, st.get("a", 0.0) * alpha, "grad_avg")
                    v = fma(-1 * st["a"], st["a"], v, "centered")
                avg = math.sqrt(v + eps * eps) if mutant == "eps" else math.sqrt(v) + eps
                if mu > 0:
                    b = st.get("b", 0.0) * mu
                    st["b"] = b + d * (1 / avg) if mutant == "buf" else b + (1 * d) / avg
                    p[i] = fma(-lr, st["b"], x, "param")
                else:
                    p[i] = x + (-lr) * (d / avg) if mutant == "addcdiv" else x + (-lr * d) / avg
            else:
                lr, (b1, b2), eps, wd = cfg["lr"], cfg["betas"], cfg["eps"], cfg["weight_decay"]
                if name == "adamw":
                    x = x - (lr * wd) * x if mutant == "decay" else x * (1 - lr * wd)
                elif wd != 0:
                    d = fma(wd, x, d, "wd")
                st["m"] = fma(1 - b1, d, st.get("m", 0.0) * b1, "exp_avg")
                st["v"] = fma((1 - b2) * d, d, st.get("v", 0.0) * b2, "exp_avg_sq")
                v = st["v"]
                if cfg["amsgrad"]:
                    st["vmax"] = max(st.get("vmax", 0.0), v)
                    v = st["vmax"]
                bc1, bc2 = 1 - b1 ** float(t), 1 - b2 ** float(t)
                step_size = lr / bc1
                denom = math.sqrt(v) / math.sqrt(bc2) + eps
                if mutant == "bias":
                    p[i] = x - lr * (st["m"] / bc1) / (math.sqrt(v / bc2) + eps)
                elif mutant == "addcdiv":
                    p[i] = x + (-step_size) * (st["m"] / denom)
                else:
                    p[i] = x + (-step_size * st["m"]) / denom
        out.append(tuple(p))
    return out


def check_mutants(folder):
    """Prints, for every rounding site, how many golden trajectories would catch a mistake
    there; returns False when one is caught by none (or the replay disagrees with a file)."""
    ok = True
    caught = {(n, m): 0 for n, sites in MUTANTS.items() for m in sites}
    for function, start in STARTS.items():
        path = os.path.join(folder, "%s_analytic.csv.gz" % function)
        for lab, rows in read_csv(path).items():
            name, options = parse_label(lab)
            gold = [(r[1], r[2]) for r in rows]
            if simulate(function, start, len(rows) - 1, name, options) != gold:
                print("%s: the replay of %s differs from the file" % (path, lab))
                ok = False
                continue
            for m in MUTANTS[name]:
                sim = simulate(function, start, len(rows) - 1, name, options, m)
                caught[(name, m)] += sim != gold
    for (name, m), n in caught.items():
        print("  %-8s %-11s caught by %2d trajectories   (%s)" % (name, m, n, MUTANTS[name][m]))
        ok = ok and n > 0
    print("every rounding site is covered" if ok else "SOME ROUNDING SITES ARE NOT COVERED")
    return ok


def gzip_bytes(text):
    # mtime 0 and no file name: the same trajectories always give the same bytes.
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as g:
        g.write(text.encode())
    return buf.getvalue()


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=os.path.join(here, "..", "tests", "data", "optim_golden"))
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--mutants", action="store_true",
                    help="do not write: check that the analytic golden files catch a change of "
                    "any rounding site (no torch needed)")
    args = ap.parse_args()
    if args.mutants:
        sys.exit(0 if check_mutants(args.out) else 1)

    import torch  # late, so that compare_descent.py can import this module's helpers first

    torch.set_num_threads(1)
    os.makedirs(args.out, exist_ok=True)
    total = 0
    for function, start in STARTS.items():
        for grad in ("analytic", "autograd"):
            trajectories = []
            configs = CONFIGS + (SENSITIVE_CONFIGS if grad == "analytic" else [])
            for name, options in configs:
                rows = run_torch(torch, function, start, args.steps, grad, name, options)
                if not all(math.isfinite(v) for r in rows for v in r[1:]):
                    sys.exit("%s on %s (%s) diverges: lower its lr" %
                             (label(name, options), function, grad))
                trajectories.append((label(name, options), rows))
            data = gzip_bytes(csv_text(trajectories))
            path = os.path.join(args.out, "%s_%s.csv.gz" % (function, grad))
            with open(path + ".tmp", "wb") as f:
                f.write(data)
            os.replace(path + ".tmp", path)
            total += len(data)
            print("%s: %d configurations, %d steps, %d bytes" %
                  (os.path.relpath(path), len(trajectories), args.steps, len(data)))
    print("torch %s, %d bytes in all" % (torch.__version__, total))


if __name__ == "__main__":
    main()

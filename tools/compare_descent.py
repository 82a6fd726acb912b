#!/usr/bin/python3
"""Reruns xgrad-descent's optimizers with torch.optim and prints, per optimizer, the largest
|difference| between xgrad's and torch's trajectories.

    /usr/bin/python3 tools/compare_descent.py [--bin PATH] [--tolerance T] XGRAD-DESCENT-ARGS...
    /usr/bin/python3 tools/compare_descent.py [--function F] [--grad MODE] [--tolerance T] FILE.csv

The first form runs xgrad-descent (PATH, else $XGRAD_DESCENT, else build/xgrad-descent) with
the given arguments and compares its CSV; the second compares a CSV xgrad-descent wrote before
(the function is recognised from the start row when --function is not given; --grad defaults
to autograd, as in xgrad-descent). torch runs each configuration, named by the CSV's labels,
from the same start for the same number of steps, in float64 through its single-tensor path,
with the gradient of the same kind: the closed form computed in Python (--grad analytic) or
torch's autograd of f. With --grad analytic every difference should be exactly 0.

Exit code: 0, or 1 when a difference exceeds --tolerance (if given), 2 for bad arguments.
Needs torch (Debian's python3-torch; /usr/bin/python3 has it).
"""

import math
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_optim_golden as golden  # noqa: E402


def die(msg):
    print("compare_descent: " + msg, file=sys.stderr)
    sys.exit(2)


def take_option(args, name):
    """Removes `--name V` or `--name=V` from args; returns V (the last one) or None."""
    value, out, i = None, [], 0
    while i < len(args):
        a = args[i]
        if a == "--" + name:
            if i + 1 >= len(args):
                die("--%s: missing value" % name)
            value = args[i + 1]
            i += 2
            continue
        if a.startswith("--" + name + "="):
            value = a.split("=", 1)[1]
            i += 1
            continue
        out.append(a)
        i += 1
    args[:] = out
    return value


def peek_option(args, name):
    copy = list(args)
    return take_option(copy, name)


def diff(a, b):
    if math.isnan(a) and math.isnan(b):
        return 0.0
    if a == b:  # also equal infinities
        return 0.0
    return abs(a - b) if math.isfinite(a) and math.isfinite(b) else math.inf


def main():
    args = sys.argv[1:]
    if not args or args[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    tolerance = take_option(args, "tolerance")
    tolerance = float(tolerance) if tolerance is not None else None
    binary = take_option(args, "bin")

    # A CSV to compare: an existing *.csv that is not the value of an option (--csv FILE).
    positional = [i for i, a in enumerate(args) if a.endswith(".csv") and os.path.isfile(a) and
                  (i == 0 or not args[i - 1].startswith("--") or "=" in args[i - 1])]
    if positional:
        path = args.pop(positional[0])
        function = take_option(args, "function")
        grad = take_option(args, "grad") or "autograd"
        if args:
            die("unexpected arguments after the CSV: %s" % " ".join(args))
        tmp = None
    else:
        function = peek_option(args, "function") or "rosenbrock"
        grad = peek_option(args, "grad") or "autograd"
        binary = binary or os.environ.get("XGRAD_DESCENT") or os.path.join(
            os.path.dirname(os.path.abspath(__file__)), "..", "build", "xgrad-descent")
        if not os.access(binary, os.X_OK):
            die("no xgrad-descent at %s (build it, or pass --bin PATH)" % binary)
        path = peek_option(args, "csv")
        tmp = None
        if path is None:
            tmp = tempfile.NamedTemporaryFile(suffix=".csv", delete=False)
            tmp.close()
            path = tmp.name
            args += ["--csv", path]
        r = subprocess.run([binary] + args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                           text=True)
        if r.returncode != 0:
            sys.stderr.write(r.stderr)
            sys.exit(r.returncode)
    if grad not in ("autograd", "analytic"):
        die("--grad: expected autograd or analytic, got '%s'" % grad)

    try:
        xgrad = golden.read_csv(path)
    finally:
        if tmp is not None:
            os.unlink(tmp.name)
    if not xgrad:
        die("%s holds no trajectories" % path)

    first = next(iter(xgrad.values()))
    _, x0, y0, f0 = first[0]
    if function is None:
        matches = [n for n, (value, _, _) in golden.FUNCTIONS.items() if value(x0, y0) == f0]
        if len(matches) != 1:
            die("cannot tell the function from the start row (matches: %s); pass --function" %
                (", ".join(matches) or "none"))
        function = matches[0]
    if function not in golden.FUNCTIONS:
        die("unknown function '%s'" % function)

    import torch

    torch.set_num_threads(1)
    steps = len(first) - 1
    print("%s from (%r, %r), %d steps, %s gradients; torch %s" %
          (function, x0, y0, steps, grad, torch.__version__))
    width = max(len(k) for k in xgrad)
    worst = 0.0
    for lab, rows in xgrad.items():
        name, options = golden.parse_label(lab)
        ref = golden.run_torch(torch, function, (rows[0][1], rows[0][2]), len(rows) - 1, grad,
                               name, options)
        d, first_step = 0.0, None
        for (s, x, y, _), (_, tx, ty, _) in zip(rows, ref):
            e = max(diff(x, tx), diff(y, ty))
            if e > 0 and first_step is None:
                first_step = s
            d = max(d, e)
        worst = max(worst, d)
        note = "bit-exact" if d == 0 else "first differs at step %d" % first_step
        print("  %-*s  max |xgrad - torch| = %-10.3g %s" % (width, lab, d, note))
    if tolerance is not None and worst > tolerance:
        print("largest difference %.3g exceeds the tolerance %.3g" % (worst, tolerance))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

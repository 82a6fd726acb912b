#!/usr/bin/python3
"""Writes the golden learning-rate table that tests/optim/lr_scheduler_test.cpp checks.

Runs torch.optim.lr_scheduler (torch 1.13.1, Debian's python3-torch: use /usr/bin/python3,
not a pyenv/venv python without torch) for every configuration below, over an SGD optimizer
with two parameter groups (lr 0.1 and 0.0375), and records each group's learning rate right
after construction (step 0) and after each of 30 scheduler steps, with 17 significant digits
(enough to read back the exact double). ReduceLROnPlateau steps on the fixed metric sequence
METRICS (or 1 - METRICS for mode "max"); the metric of each step is in the table too.

    /usr/bin/python3 tools/make_scheduler_golden.py   # rewrites tests/data/scheduler_golden/

The configuration names are the keys the C++ test uses to build the same schedulers; keep the
two lists in step.
"""
import os
import subprocess
import sys
import warnings

import torch
from torch.optim import lr_scheduler as S

STEPS = 30
LRS = (0.1, 0.0375)
# A loss that falls, stalls, wobbles and falls again: plateaus of every length up to 6.
METRICS = [1.0, 0.8, 0.7, 0.7, 0.69995, 0.71, 0.72, 0.65, 0.65, 0.66, 0.64, 0.64, 0.64, 0.64,
           0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.49999, 0.3, 0.3, 0.31, 0.32, 0.33, 0.29, 0.29, 0.29,
           0.29]
assert len(METRICS) == STEPS


def optimizer(resume_lrs=None):
    params = [torch.zeros(1, requires_grad=True) for _ in LRS]
    opt = torch.optim.SGD([{"params": [p], "lr": lr} for p, lr in zip(params, LRS)], lr=LRS[0])
    if resume_lrs is not None:  # continuing a schedule: initial_lr is the base, lr the current
        for group, lr in zip(opt.param_groups, resume_lrs):
            group["initial_lr"] = group["lr"]
            group["lr"] = lr
    return opt


def epoch_schedulers(make):
    """For schedulers stepped without a metric: make(opt) returns a list of schedulers."""
    def run():
        opt = optimizer()
        scheds = make(opt)
        return opt, lambda metric: [s.step() for s in scheds]
    return run


CONFIGS = {
    "StepLR step_size=3 gamma=0.5": epoch_schedulers(lambda o: [S.StepLR(o, 3, gamma=0.5)]),
    "StepLR step_size=7": epoch_schedulers(lambda o: [S.StepLR(o, 7)]),
    "MultiStepLR milestones=5,12,12,20 gamma=0.3":
        epoch_schedulers(lambda o: [S.MultiStepLR(o, [5, 12, 12, 20], gamma=0.3)]),
    "MultiStepLR milestones=2,9": epoch_schedulers(lambda o: [S.MultiStepLR(o, [2, 9])]),
    "ExponentialLR gamma=0.9": epoch_schedulers(lambda o: [S.ExponentialLR(o, 0.9)]),
    "ExponentialLR gamma=0.77": epoch_schedulers(lambda o: [S.ExponentialLR(o, 0.77)]),
    "CosineAnnealingLR T_max=10": epoch_schedulers(lambda o: [S.CosineAnnealingLR(o, 10)]),
    "CosineAnnealingLR T_max=7 eta_min=0.001":
        epoch_schedulers(lambda o: [S.CosineAnnealingLR(o, 7, eta_min=0.001)]),
    "LinearLR": epoch_schedulers(lambda o: [S.LinearLR(o)]),
    "LinearLR start_factor=0.25 end_factor=0.75 total_iters=10":
        epoch_schedulers(lambda o: [S.LinearLR(o, 0.25, 0.75, 10)]),
    "LinearLR start_factor=1 end_factor=0.1 total_iters=20":
        epoch_schedulers(lambda o: [S.LinearLR(o, 1.0, 0.1, 20)]),
    "chain LinearLR start_factor=0.5 total_iters=4 + ExponentialLR gamma=0.95":
        epoch_schedulers(lambda o: [S.LinearLR(o, 0.5, 1.0, 4), S.ExponentialLR(o, 0.95)]),
    "chain ExponentialLR gamma=0.9 + StepLR step_size=4 gamma=0.5":
        epoch_schedulers(lambda o: [S.ExponentialLR(o, 0.9), S.StepLR(o, 4, gamma=0.5)]),
}


def cosine_resumed():
    opt = optimizer(resume_lrs=(0.08, 0.03))
    s = S.CosineAnnealingLR(opt, 10, eta_min=0.001, last_epoch=4)
    return opt, lambda metric: s.step()


CONFIGS["CosineAnnealingLR T_max=10 eta_min=0.001 last_epoch=4"] = cosine_resumed


def plateau(**kw):
    def run():
        opt = optimizer()
        s = S.ReduceLROnPlateau(opt, **kw)
        return opt, lambda metric: s.step(metric)
    return run


CONFIGS["ReduceLROnPlateau factor=0.5 patience=2 cooldown=1 min_lr=0.01"] = plateau(
    factor=0.5, patience=2, cooldown=1, min_lr=0.01)
CONFIGS["ReduceLROnPlateau mode=max threshold_mode=abs threshold=0.01 patience=1 "
        "min_lr=0.001,0"] = plateau(mode="max", threshold_mode="abs", threshold=0.01,
                                    patience=1, min_lr=[0.001, 0.0])
CONFIGS["ReduceLROnPlateau"] = plateau()


def main():
    warnings.filterwarnings("ignore")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out_dir = os.path.join(root, "tests", "data", "scheduler_golden")
    os.makedirs(out_dir, exist_ok=True)
    try:
        deb = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "python3-torch"],
                             capture_output=True, text=True).stdout.strip()
    except OSError:
        deb = ""
    lines = [
        "# Learning rates of torch.optim.lr_scheduler, torch %s%s, written by "
        "tools/make_scheduler_golden.py." % (torch.__version__,
                                              " (python3-torch %s)" % deb if deb else ""),
        "# step 0: right after construction; step t: after the t-th scheduler step (each after an",
        "# optimizer.step()). metric: what ReduceLROnPlateau.step() got (empty for the others).",
        "config,step,metric,lr0,lr1",
    ]
    for name, make in CONFIGS.items():
        opt, step = make()
        maximize = "mode=max" in name
        lines.append('"%s",0,,%s' % (name, ",".join("%.17g" % g["lr"] for g in opt.param_groups)))
        for t in range(1, STEPS + 1):
            metric = (1.0 - METRICS[t - 1]) if maximize else METRICS[t - 1]
            opt.step()
            step(metric)
            shown = "%.17g" % metric if name.startswith("ReduceLROnPlateau") else ""
            lines.append('"%s",%d,%s,%s' % (name, t, shown,
                                            ",".join("%.17g" % g["lr"] for g in opt.param_groups)))
    path = os.path.join(out_dir, "lr_schedules.csv")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("wrote %s (%d configurations x %d steps)" % (path, len(CONFIGS), STEPS + 1),
          file=sys.stderr)


if __name__ == "__main__":
    main()

"""PyTorch golden values for the optimizer and learning-rate schedule tests (Tests/NNTests/OptimizerTests.swift,
ScheduleTests.swift). Complements scripts/make_golden.py (single-group SGD/Adam, 3 steps) with multi-group
optimizers whose learning rate changes every step, plain SGD, and the schedules.

Regenerate (from the repository root, with Debian's python3-torch 1.13, CPU):

    /usr/bin/python3 scripts/make_optim_schedule_golden.py

Writes Tests/NNTests/Golden/optim_schedule.json:
    "optimizers": {case: {"description", "groups": [{"lr", "weight_decay", "shapes"}], "lr_per_step",
                          "params0": [[float]], "steps": [{"grads": [[float]], "params": [[float]]}]}}
    "cosine":     [{"base_lr", "t_max", "eta_min", "lrs": [lr used in epoch e, e = 0..]}]   (CosineAnnealingLR)
    "multistep":  [{"base_lr", "milestones", "gamma", "lrs": [...]}]                           (MultiStepLR)
    "warmup_cosine": {"peak", "iters_per_epoch", "epochs", "warmup", "samples": [[it, lr]]}
float32 tensors are flattened row-major; every float is written with Python's repr, so it round-trips.
The warm-up cosine values come from the formula of the reference's Tiny-ImageNet scheduler
(reference-implementation.md section 4.3), evaluated in Python's operation order, not from torch.
"""

import json
import math
import os

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "Tests", "NNTests", "Golden", "optim_schedule.json")

torch.set_num_threads(1)


def flat(t):
    return t.detach().reshape(-1).tolist()


def optimizer_case(make, description, group_specs, lr_per_step, steps=5):
    """group_specs: [(lr, weight_decay, [shape, ...])]; lr_per_step: [[lr per group] per step] or None."""
    groups, params = [], []
    for lr, wd, shapes in group_specs:
        ps = [torch.nn.Parameter(torch.randn(*s)) for s in shapes]
        params.extend(ps)
        groups.append({"params": ps, "lr": lr, "weight_decay": wd})
    opt = make(groups)
    case = {
        "description": description,
        "groups": [{"lr": lr, "weight_decay": wd, "shapes": [list(s) for s in shapes]} for lr, wd, shapes in group_specs],
        "lr_per_step": lr_per_step,
        "params0": [flat(p) for p in params],
        "steps": [],
    }
    for step in range(steps):
        if lr_per_step is not None:
            for g, lr in zip(opt.param_groups, lr_per_step[step]):
                g["lr"] = lr
        grads = [torch.randn_like(p) for p in params]
        for p, g in zip(params, grads):
            p.grad = g.clone()
        opt.step()
        case["steps"].append({"grads": [flat(g) for g in grads], "params": [flat(p) for p in params]})
    return case


def make_optimizers():
    shapes_a = [(3, 4), (5,)]
    shapes_b = [(2, 2, 3)]
    varying = [[0.1 * (1 + math.cos(math.pi * s / 5)) / 2, 0.03 * (s + 1)] for s in range(5)]
    adam_varying = [[1e-3 * (1 + math.cos(math.pi * s / 8)) / 2, 5e-3] for s in range(8)]
    return {
        "sgd_plain": optimizer_case(
            lambda g: torch.optim.SGD(g, lr=0.1),
            "SGD(momentum 0): group0 lr 0.1 wd 1e-4, group1 lr 0.05 wd 0",
            [(0.1, 1e-4, shapes_a), (0.05, 0.0, shapes_b)], None),
        "sgd_momentum_groups": optimizer_case(
            lambda g: torch.optim.SGD(g, lr=0.1, momentum=0.9),
            "SGD(momentum 0.9): two groups (wd 5e-4, wd 0), lr changed before every step",
            [(0.1, 5e-4, shapes_a), (0.03, 0.0, shapes_b)], varying),
        "sgd_nesterov_groups": optimizer_case(
            lambda g: torch.optim.SGD(g, lr=0.1, momentum=0.9, nesterov=True),
            "SGD(momentum 0.9, nesterov): two groups (wd 5e-5, wd 0), lr changed before every step",
            [(0.1, 5e-5, shapes_a), (0.03, 0.0, shapes_b)], varying),
        "adam_groups": optimizer_case(
            lambda g: torch.optim.Adam(g, lr=1e-3),
            "Adam(betas (0.9, 0.999), eps 1e-8): group0 wd 5e-4 (coupled L2), group1 wd 0, lr changed every step",
            [(1e-3, 5e-4, shapes_a), (5e-3, 0.0, shapes_b)], adam_varying, steps=8),
    }


def scheduled_lrs(make_scheduler, base_lr, epochs):
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=base_lr)
    sched = make_scheduler(opt)
    lrs = []
    for _ in range(epochs + 1):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return lrs


def make_schedules():
    cosine = []
    for base_lr, t_max, eta_min in [(0.1, 400, 0.0), (0.001, 200, 0.0), (0.05, 7, 0.001), (0.01, 3, 0.0)]:
        lrs = scheduled_lrs(lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=t_max, eta_min=eta_min),
                            base_lr, t_max + 2)
        cosine.append({"base_lr": base_lr, "t_max": t_max, "eta_min": eta_min, "lrs": lrs})
    multistep = []
    for base_lr, milestones, gamma in [(0.1, [150, 300], 0.1), (0.1, [2, 2, 5], 0.5)]:
        lrs = scheduled_lrs(lambda o: torch.optim.lr_scheduler.MultiStepLR(o, milestones=milestones, gamma=gamma),
                            base_lr, 320 if milestones[-1] == 300 else 8)
        multistep.append({"base_lr": base_lr, "milestones": milestones, "gamma": gamma, "lrs": lrs})

    peak, ipe, epochs, warmup, base = 0.005, 1563, 100, 2500, 1e-4
    max_iter = ipe * epochs
    samples = []
    for it in [0, 1, 2, 3, 100, 1249, 1562, 1563, 2498, 2499, 2500, 2501, 3126, 50000, 78150, max_iter - 1, max_iter]:
        if it < warmup:
            target = (peak - base) / (warmup - 1) * (it - 1) + base
        else:
            ratio = (it - warmup) / (max_iter - warmup)
            target = 0.0 + (peak - 0.0) * (1 + math.cos(math.pi * ratio)) / 2
        samples.append([it, target / base * base])
    warmup_cosine = {"peak": peak, "iters_per_epoch": ipe, "epochs": epochs, "warmup": warmup, "start": base,
                     "samples": samples}
    return cosine, multistep, warmup_cosine


def main():
    torch.manual_seed(2024)
    optimizers = make_optimizers()
    cosine, multistep, warmup_cosine = make_schedules()
    with open(OUT, "w") as f:
        json.dump({"generator": "scripts/make_optim_schedule_golden.py, torch " + torch.__version__,
                   "optimizers": optimizers, "cosine": cosine, "multistep": multistep,
                   "warmup_cosine": warmup_cosine}, f, indent=1)
        f.write("\n")
    print(f"wrote {os.path.relpath(OUT, ROOT)}: {os.path.getsize(OUT)} bytes")


if __name__ == "__main__":
    main()

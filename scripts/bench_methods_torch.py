#!/usr/bin/python3
"""Step time of each distillation method relative to EWGS alone: the authors' PyTorch code on this CPU, and
with `--sqakd PATH` the same rows from our `sqakd bench` (issue 11: no method may cost us more, relative to our
EWGS-alone step, than it costs the authors' code relative to theirs).

Every PyTorch row is one iteration of kaiqi123/SQAKD `CIFAR/train_quant.py:372-444` for the EWGS W2A2
ResNet-20 student of `run_cifar10_resnet20_EWGS+KDs.sh` (scripts/reference_quant.py, reference_models.py;
Adam 1e-3 with L2 1e-4 on the model parameters and every auxiliary module, Adam 1e-5 on the quantizer's,
`:283-305`) on one synthetic batch (CIFAR-10 shapes, 10 classes), at the configuration `sqakd bench --quantizer
ewgs --bits 2 --distill M` runs (the same `--batch`, default 128, and threads):

    none     CE(student(x), y), no teacher (`:410,437`)
    others   student forward(is_feat=True) in train mode; the FP ResNet-20 teacher's under no_grad, eval mode
             (`:400-408`); γ·CE + α·KL_T + β·L_kd (`:415-422`; CKTF `:417-419` adds θ·Σ CRD), every term
             computed even at weight 0 as the authors do; KL_T at T = 4 (`distiller_zoo/KD.py:13-17`).

with (γ, α, β) of the Table 7 script (reference-implementation.md §5.2) and L_kd the authors' modules copied in
scripts/make_kd_golden.py, on the features of `utils_distill.py:153-239`:

    sqakd   --distill kd, (0, 1, 0): α·KL_T alone is what the loss depends on (the script's :31-46)
    kd      (1, 1, 0): no Table 7 row; `sqakd bench --distill kd`'s weights (TrainConfig kd: γ 1, α 1)
    at      Attention on f1..f3, β 1000           nst   NSTLoss on f1..f3, β 50
    sp      Similarity on f3, β 3000              rkd   RKDLoss (25, 50) on f4, β 1
    fitnet  HintLoss(ConvReg(f2)), hint_layer 2, β 100; ConvReg in the model Adam (`utils_distill.py:74-80`)
    cc      Correlation(LinearEmbed(f4), LinearEmbed(f4)), feat_dim 128, β 0.02; both embeddings in the Adam (`utils_distill.py:94-103`)
    vid     Σ VIDLoss(C, C, C) on f1..f3, β 1; regressors and log_scale in the Adam (`utils_distill.py:105-112`)
    fsp     the main stage (its 30-epoch FSP initialisation is not timed, as in `sqakd bench`): L_kd = 0
            (`utils_distill.py:207-209`), so γ·CE + 0·KL_T with the teacher's forward, which train_quant.py runs for every
            --distill (`:400-408`)
    ft      the main stage: FactorTransfer(Translator(f3), Paraphraser(f3_t, is_factor=True)), β 200; the
            Translator in train mode and in the Adam, the Paraphraser in eval mode and in no optimiser
            (`utils_distill.py:114-129,210-213`, train_quant.py:350-351), its initialisation stage not timed. The Paraphraser is
            not frozen (requires_grad stays True), so the authors' backward computes its unused gradients: so here.
    crd     CRDLoss(f4): feat_dim 128, K 16384, N `--data` (CIFAR's 50,000), τ 0.1, momentum 0.5 (train_quant.py:100-105),
            embeddings in the Adam (`utils_distill.py:40-51`), β 0.8
    cktf    --distill crdst, (1, 0, 1), θ 0.8, K 4096: CRD on f4 (β) + θ·[CRD(AvgPool2d(8)(f0)) + CRD on each group's
            last block, normalised over the batch then pooled] (`utils_distill.py:53-71,220-239`, ST.py:43-75 "Last")

The batch is samples 0 … B−1 of the training set (labels i mod 10), as in `sqakd bench`. crd and cktf draw each
step's contrast indices as the authors' dataset does (dataset/cifar10.py:92-101, "exact" mode: the sample, then K
other-class samples without replacement); the authors draw them in the loader's worker processes, so here they are
drawn before the timed steps and their time is reported apart (`sampling_ms`); `sqakd bench` draws them inside its
step, so our rows include it.

Left out on both sides: the loader and the per-step logging (`.item()`, TensorBoard, loss.txt, `:424-432,447`;
the EWGS discretizer's u statistics, models/custom_modules.py:52-59). Left out of the PyTorch rows only, so the
authors' real step is slightly slower than shown: the EWGS lambda_dict bookkeeping (`:388-397`, every row), and
in CKTF the normalisation of every teacher block of each group and their unused cosine similarities (ST.py:48-54;
make_kd_golden.st_pair keeps what the loss depends on).

Where `sqakd bench` differs from the authors' step (by design; it shows in the ratios): it drops terms of weight 0
(SQAKD's CE, the feature methods' KL_T), so its fsp main stage is CE alone, without the teacher's forward (no term
reads it), i.e. our EWGS-alone step; its ft computes no gradient for the Paraphraser.

Timing: this CPU's speed drifts by 10-20% over minutes and jumps between seconds, more than most of the
differences measured here, and two timings a minute apart disagreed even on the sign of the teacher's cost. So each
method is timed against its side's EWGS-alone step, the two alternating step by step (`--warmup` untimed calls of
each, then `--steps` timed pairs; ours with `sqakd bench --baseline`, the same alternation in one process), over
`--rounds` rounds; each round's ratio is median(M)/median(none), and a row reports the medians over rounds and the
range of the ratios. It also reports the floor ratio, min(M)/min(none) over every timed step: the host's interference
(on a shared VM it came in bursts that doubled single steps) only ever adds time, so the fastest steps estimate
what a step itself costs, where a median of 4 steps still moved a row by ±0.3. Run it with the machine otherwise
idle; `--json` keeps every timed step.

    /usr/bin/python3 scripts/bench_methods_torch.py --threads 2 --sqakd .build/release/sqakd --json .build/methods-bench.json

Prints a Markdown table (one row per method: ms/step and ratio to the EWGS-alone row on each side, and whether
ours ≤ theirs); `--json FILE` also writes the measurements there.
"""
import argparse
import itertools
import json
import math
import os
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_kd_golden import (  # noqa: E402
    Attention, ConvReg, Correlation, CRDLoss, FactorTransfer, HintLoss, LinearEmbed, NSTLoss, Paraphraser, RKDLoss,
    Similarity, Translator, VIDLoss, st_pair)
from reference_models import make  # noqa: E402
from reference_quant import initialize_quantizers, quantize_resnet, split_parameters  # noqa: E402
from torch_timing import cpu_name, step_seconds  # noqa: E402

METHODS = ["none", "sqakd", "kd", "at", "nst", "sp", "rkd", "fitnet", "cc", "vid", "fsp", "ft", "crd", "cktf"]
# (γ, α, β) of γ·CE + α·KL_T + β·L_kd (run_cifar10_resnet20_EWGS+KDs.sh, reference §5.2; kd: `sqakd bench`'s).
WEIGHTS = {
    "sqakd": (0.0, 1.0, 0.0), "kd": (1.0, 1.0, 0.0), "at": (1.0, 0.0, 1000.0), "nst": (1.0, 0.0, 50.0),
    "sp": (1.0, 0.0, 3000.0), "rkd": (1.0, 0.0, 1.0), "fitnet": (1.0, 0.0, 100.0), "cc": (1.0, 0.0, 0.02),
    "vid": (1.0, 0.0, 1.0), "fsp": (1.0, 0.0, 50.0), "ft": (1.0, 0.0, 200.0), "crd": (1.0, 0.0, 0.8), "cktf": (1.0, 0.0, 1.0),
}
THETA = 0.8  # cktf's --kd_theta
FEAT_DIM, NCE_T, NCE_M = 128, 0.1, 0.5  # train_quant.py:100-104
NCE_K = {"crd": 16384, "cktf": 4096}  # train_quant.py:102; the CKTF row's --nce_k
CLASSES = 10


def features(model, x, flat_group_out=False):
    """ResNet forward(is_feat=True) (custom_models_resnet.py:81-127): [f0, f1, f2, f3, f4], the groups' outputs
    (each group's last block.out, the ST pairs' input) and the logits; `flat_group_out` (crdst) pools f0 … f3 by
    AvgPool2d(8) and flattens them (`:111-119`)."""
    f0 = F.relu(model.bn1(model.conv1(x)))
    f1 = model.layer1(f0)
    f2 = model.layer2(f1)
    f3 = model.layer3(f2)
    f4 = F.avg_pool2d(f3, f3.size(3)).flatten(1)
    logits = model.linear(model.bn2(f4))
    feat = [f0, f1, f2, f3]
    if flat_group_out:
        feat = [nn.AvgPool2d(8)(f).flatten(1) for f in feat]
    return feat + [f4], [f1, f2, f3], logits


def distill_kl(logit_s, logit_t, T=4.0):
    """DistillKL (distiller_zoo/KD.py:13-17): KL(p_t ‖ p_s) at temperature T, summed, · T² / B."""
    p_s = F.log_softmax(logit_s / T, dim=1)
    p_t = F.softmax(logit_t / T, dim=1)
    return F.kl_div(p_s, p_t, reduction="sum") * (T ** 2) / logit_s.shape[0]


class ContrastSampler:
    """The authors' CIFAR10InstanceSample draw (dataset/cifar10.py:49-70 once, :92-101 per sample, "exact"):
    the sample's own index, then K indices drawn without replacement from the other classes' samples."""

    def __init__(self, n, k, seed=0):
        self.labels = np.arange(n) % CLASSES
        self.cls_negative = [np.nonzero(self.labels != c)[0] for c in range(CLASSES)]
        self.k = k
        self.rng = np.random.RandomState(seed)

    def __call__(self, samples):
        rows = []
        for i in samples:
            negatives = self.cls_negative[self.labels[i]]
            rows.append(np.hstack(([i], self.rng.choice(negatives, self.k, replace=self.k > len(negatives)))))
        return torch.from_numpy(np.stack(rows)).long()


def build_step(method, args):
    """The training step of `method` as a closure, the losses it returned (appended per call) and the seconds
    each pre-drawn batch of contrast indices took (crd, cktf)."""
    torch.manual_seed(0)
    teacher = make("resnet20", CLASSES).eval()
    for p in teacher.parameters():
        p.requires_grad_(False)  # utils.py:39-40 (load_teacher_model)
    student = make("resnet20", CLASSES)
    student.load_state_dict(teacher.state_dict())
    quantize_resnet(student, 2)
    x = torch.randn(args.batch, 3, 32, 32)
    y = torch.randint(0, CLASSES, (args.batch,))
    initialize_quantizers(student, x)
    model_params, quant_params = split_parameters(student)

    # Auxiliary modules sized from a probe forward of both networks on 2 images (utils_distill.py:26-30).
    with torch.no_grad():
        student.eval()
        feat_s, _, _ = features(student, torch.randn(2, 3, 32, 32), flat_group_out=method == "cktf")
        feat_t, _, _ = features(teacher, torch.randn(2, 3, 32, 32), flat_group_out=method == "cktf")
    trained = nn.ModuleList()  # module_list[1:]: put in train mode each epoch (train_quant.py:341-343)
    frozen = nn.ModuleList()  # the FT Paraphraser: eval mode (`:350-351`), no optimiser
    criterion = None
    if method == "at":
        criterion = Attention()
    elif method == "nst":
        criterion = NSTLoss()
    elif method == "sp":
        criterion = Similarity()
    elif method == "rkd":
        criterion = RKDLoss()
    elif method == "fitnet":
        criterion = HintLoss()
        trained.append(ConvReg(feat_s[2].shape, feat_t[2].shape))
    elif method == "cc":
        criterion = Correlation()
        trained.extend([LinearEmbed(feat_s[-1].shape[1], FEAT_DIM), LinearEmbed(feat_t[-1].shape[1], FEAT_DIM)])
    elif method == "vid":
        criterion = nn.ModuleList([VIDLoss(s.shape[1], t.shape[1], t.shape[1]) for s, t in zip(feat_s[1:-1], feat_t[1:-1])])
        trained.append(criterion)
    elif method == "ft":
        criterion = FactorTransfer()
        trained.append(Translator(feat_s[-2].shape, feat_t[-2].shape))
        frozen.append(Paraphraser(feat_t[-2].shape))
    elif method == "crd":
        criterion = CRDLoss(feat_s[-1].shape[1], feat_t[-1].shape[1], FEAT_DIM, args.data, NCE_K["crd"], NCE_T, NCE_M)
        trained.extend([criterion.embed_s, criterion.embed_t])
    elif method == "cktf":
        # criterion_kd.1 … .5 (utils_distill.py:57-71): f0, the three groups (teacher dims), f4.
        dims = [(t.shape[1] if i < len(feat_t) - 1 else s.shape[1], t.shape[1]) for i, (s, t) in enumerate(zip(feat_s, feat_t))]
        criterion = nn.ModuleList([CRDLoss(ds, dt, FEAT_DIM, args.data, NCE_K["cktf"], NCE_T, NCE_M) for ds, dt in dims])
        for c in criterion:
            trained.extend([c.embed_s, c.embed_t])
    model_params += list(trained.parameters())
    opt_m = torch.optim.Adam(model_params, lr=1e-3, weight_decay=1e-4)
    opt_q = torch.optim.Adam(quant_params, lr=1e-5)

    samples = list(range(args.batch))
    index = torch.tensor(samples, dtype=torch.int64)
    contrast, sampling = [], []
    if method in NCE_K:
        sampler = ContrastSampler(args.data, NCE_K[method])
        for _ in range(args.warmup + args.steps):
            t0 = time.perf_counter()
            contrast.append(sampler(samples))
            sampling.append(time.perf_counter() - t0)
    draws = itertools.cycle(contrast)
    gamma, alpha, beta = WEIGHTS.get(method, (1.0, 0.0, 0.0))
    avgpool = nn.AvgPool2d(8)  # ST.py:16-23, ResNet
    losses = []

    def kd_term(fs, groups_s, ft, groups_t):
        """β·L_kd (utils_distill.py:153-239); cktf: β·CRD(f4) + θ·Σ CRD(intermediates)."""
        if method in ("sqakd", "kd", "fsp"):
            return beta * 0
        if method in ("at", "nst"):
            return beta * sum(criterion(fs[1:-1], ft[1:-1]))
        if method == "sp":
            return beta * sum(criterion([fs[-2]], [ft[-2]]))
        if method == "rkd":
            return beta * criterion(fs[-1], ft[-1])
        if method == "fitnet":
            return beta * criterion(trained[0](fs[2]), ft[2])
        if method == "cc":
            return beta * criterion(trained[0](fs[-1]), trained[1](ft[-1]))
        if method == "vid":
            return beta * sum(c(f_s, f_t) for f_s, f_t, c in zip(fs[1:-1], ft[1:-1], criterion))
        if method == "ft":
            return beta * criterion(trained[0](fs[-2]), frozen[0](ft[-2], is_factor=True))
        cidx = next(draws)  # the pre-drawn batches in turn (every round reuses them)
        if method == "crd":
            return beta * criterion(fs[-1], ft[-1], index, cidx)
        pairs = [st_pair([s], [t], avgpool) for s, t in zip(groups_s, groups_t)]
        intermediate = criterion[0](fs[0], ft[0], index, cidx)
        for c, (s, t) in zip(criterion[1:-1], pairs):
            intermediate = intermediate + c(s, t, index, cidx)
        return beta * criterion[-1](fs[-1], ft[-1], index, cidx) + THETA * intermediate

    def step():
        opt_m.zero_grad()
        opt_q.zero_grad()
        if method == "none":
            loss = F.cross_entropy(student(x), y)
        else:
            fs, groups_s, logit_s = features(student, x, flat_group_out=method == "cktf")
            with torch.no_grad():
                ft, groups_t, logit_t = features(teacher, x, flat_group_out=method == "cktf")
                ft = [f.detach() for f in ft]
            loss = gamma * F.cross_entropy(logit_s, y) + alpha * distill_kl(logit_s, logit_t) + kd_term(fs, groups_s, ft, groups_t)
        loss.backward()
        opt_m.step()
        opt_q.step()
        losses.append(loss.detach())

    student.train()
    trained.train()
    frozen.eval()
    return step, losses, sampling


def check_losses(losses, method):
    bad = [float(v) for v in losses if not math.isfinite(float(v))]
    if bad:
        sys.exit(f"error: PyTorch {method}: non-finite loss {bad[0]}")


def pytorch_pair_ms(base, step, args):
    """ms of each timed EWGS-alone step and of the method's, `--warmup` untimed calls of each, then `--steps`
    timed ones alternating base, step, base, step, ..."""
    for _ in range(args.warmup):
        base()
        step()
    tb, ts = [], []
    for _ in range(args.steps):
        tb.append(step_seconds(base, 0, 1)[0])
        ts.append(step_seconds(step, 0, 1)[0])
    return [1000 * t for t in tb], [1000 * t for t in ts]


def ours_pair_ms(binary, method, args):
    """`sqakd bench --distill M --baseline`: the same alternation inside one process."""
    out = subprocess.run([binary, "bench", "--model", "resnet20", "--batch", str(args.batch), "--quantizer", "ewgs", "--bits", "2",
                          "--distill", method, "--baseline", "--threads", str(args.threads), "--warmup", str(args.warmup),
                          "--steps", str(args.steps), "--json"], check=True, capture_output=True, text=True).stdout
    r = json.loads(out.strip().splitlines()[-1])
    return [float(t) for t in r["baselineStepMilliseconds"]], [float(t) for t in r["trainStepMilliseconds"]]


def measure(methods, args):
    """Per method and round: PyTorch's EWGS-alone and method steps alternating step by step, then ours the same
    way (`sqakd bench --baseline`); each round's ratio M/none comes from steps interleaved a second apart, so
    the CPU's drift (10-20% over minutes on this machine) cancels. A row reports the medians over rounds of the
    ratios and of the step times, and the range of the ratios."""
    steps = {m: build_step(m, args) for m in ["none"] + methods}
    per = {m: {"pytorch_ms": [], "pytorch_none_ms": [], "ours_ms": [], "ours_none_ms": []} for m in methods}
    steps_ms = {m: {k: [] for k in per[m]} for m in methods}   # every timed step, all rounds
    for r in range(args.rounds):
        for m in methods:
            t = per[m]
            none_all, m_all = pytorch_pair_ms(steps["none"][0], steps[m][0], args)
            steps_ms[m]["pytorch_none_ms"] += none_all
            steps_ms[m]["pytorch_ms"] += m_all
            none_ms, m_ms = float(np.median(none_all)), float(np.median(m_all))
            check_losses(steps[m][1], m)
            t["pytorch_none_ms"].append(none_ms)
            t["pytorch_ms"].append(m_ms)
            line = f"round {r + 1}/{args.rounds} {m:7s} PyTorch {m_ms:7.1f} ms ({m_ms / none_ms:.2f}× none)"
            if args.sqakd:
                none_all, m_all = ours_pair_ms(args.sqakd, m, args)
                steps_ms[m]["ours_none_ms"] += none_all
                steps_ms[m]["ours_ms"] += m_all
                none_ms, m_ms = float(np.median(none_all)), float(np.median(m_all))
                t["ours_none_ms"].append(none_ms)
                t["ours_ms"].append(m_ms)
                line += f"   SQAKDBench {m_ms:7.1f} ms ({m_ms / none_ms:.2f}× none)"
            print(line, flush=True)
    rows = []
    for m in methods:
        t, sampling = per[m], steps[m][2]
        ratios = [a / b for a, b in zip(t["pytorch_ms"], t["pytorch_none_ms"])]
        row = {"method": m, "pytorch_ms": float(np.median(t["pytorch_ms"])), "pytorch_none_ms": float(np.median(t["pytorch_none_ms"])),
               "pytorch_ratio": float(np.median(ratios)), "pytorch_ratio_range": [min(ratios), max(ratios)],
               "pytorch_floor_ratio": min(steps_ms[m]["pytorch_ms"]) / min(steps_ms[m]["pytorch_none_ms"]),
               "pytorch_sampling_ms": 1000 * float(np.median(sampling)) if sampling else None, "rounds": t,
               "steps": steps_ms[m]}
        if args.sqakd:
            ours = [a / b for a, b in zip(t["ours_ms"], t["ours_none_ms"])]
            row.update({"ours_ms": float(np.median(t["ours_ms"])), "ours_none_ms": float(np.median(t["ours_none_ms"])),
                        "ours_ratio": float(np.median(ours)), "ours_ratio_range": [min(ours), max(ours)],
                        "ours_floor_ratio": min(steps_ms[m]["ours_ms"]) / min(steps_ms[m]["ours_none_ms"])})
            row["ours_not_costlier"] = row["ours_ratio"] <= row["pytorch_ratio"]
            row["ours_floor_not_costlier"] = row["ours_floor_ratio"] <= row["pytorch_floor_ratio"]
        rows.append(row)
    return rows


def table(rows, args):
    ours = args.sqakd is not None
    lines = [f"EWGS W2A2 ResNet-20 training step by distillation method, batch {args.batch}, N {args.data}, "
             f"{args.threads} threads, {cpu_name()}, torch {torch.__version__}; {args.rounds} rounds, in each every method's step "
             f"alternating with its side's EWGS-alone (`none`) step, {args.steps} timed pairs after {args.warmup} "
             "(`scripts/bench_methods_torch.py`). ×none: median(M)/median(none) per round, median over rounds [range]. "
             "floor: min(M)/min(none) over every timed step of all rounds (interference from the host only ever adds "
             "time, so the fastest step is the closest to the step's own cost).", ""]
    head = "| method | PyTorch ms/step | PyTorch ×none | PyTorch floor |"
    rule = "|---|---|---|---|"
    if ours:
        head += " SQAKDBench ms/step | SQAKDBench ×none | SQAKDBench floor | ours ≤ theirs (×none, floor) |"
        rule += "---|---|---|---|"
    lines += [head, rule]

    def ratio(r, side):
        lo, hi = r[f"{side}_ratio_range"]
        return f"{r[f'{side}_ratio']:.2f}× [{lo:.2f}–{hi:.2f}]"
    base = rows[0]
    line = f"| none | {base['pytorch_none_ms']:.1f} | 1 | 1 |"
    if ours:
        line += f" {base['ours_none_ms']:.1f} | 1 | 1 | |"
    lines.append(line)
    for r in rows:
        line = f"| {r['method']} | {r['pytorch_ms']:.1f} | {ratio(r, 'pytorch')} | {r['pytorch_floor_ratio']:.2f}× |"
        if ours:
            verdict = ", ".join("yes" if r[k] else "**no**" for k in ["ours_not_costlier", "ours_floor_not_costlier"])
            line += f" {r['ours_ms']:.1f} | {ratio(r, 'ours')} | {r['ours_floor_ratio']:.2f}× | {verdict} |"
        lines.append(line)
    notes = [f"{r['method']} {r['pytorch_sampling_ms']:.1f} ms" for r in rows if r["pytorch_sampling_ms"] is not None]
    if notes:
        lines += ["", "Not in the PyTorch rows: the authors' loader workers draw the contrast indices (numpy, per batch: "
                  + ", ".join(notes) + ")" + ("; our rows include that draw." if ours else ".")]
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=128, help="as `sqakd bench`'s default")
    ap.add_argument("--data", type=int, default=50000, help="training-set size N (memory-bank rows of crd, cktf)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--steps", type=int, default=5, help="timed steps of each side per round (alternating with none; medians)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds over the methods (medians over rounds)")
    ap.add_argument("--methods", nargs="+", default=METHODS, choices=METHODS, help="rows (each timed against none, the ratios' base)")
    ap.add_argument("--sqakd", help="path to the sqakd binary: also time `sqakd bench` for each method")
    ap.add_argument("--json", help="also write the measurements here")
    args = ap.parse_args()
    if args.batch < 2 or args.steps < 1 or args.rounds < 1 or args.warmup < 0 or args.data < args.batch:
        sys.exit("error: need --batch ≥ 2, --steps ≥ 1, --rounds ≥ 1, --warmup ≥ 0 and --data ≥ --batch")
    if args.sqakd and args.data != 50000:
        sys.exit(f"error: --data {args.data}: `sqakd bench` keeps crd's and cktf's memory banks at 50,000 rows; use the default with --sqakd")
    if args.sqakd and not os.path.exists(args.sqakd):
        sys.exit(f"error: {args.sqakd} not found; run `make build` (or `swift build -c release`) first")
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(False)  # make_kd_golden sets it for its golden files
    methods = [m for m in METHODS if m in args.methods and m != "none"]
    if not methods:
        sys.exit("error: name at least one method other than none (each is timed against none)")
    rows = measure(methods, args)
    text = table(rows, args)
    print("\n" + text)
    if args.json:
        config = {k: getattr(args, k) for k in ("batch", "data", "threads", "warmup", "steps", "rounds", "sqakd")}
        config.update({"torch": torch.__version__, "cpu": cpu_name()})
        with open(args.json, "w") as f:
            json.dump({"config": config, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()

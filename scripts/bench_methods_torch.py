#!/usr/bin/python3
"""Step time of EWGS + CRD and EWGS + CKTF relative to EWGS alone, the authors' PyTorch code on this CPU.

The EWGS W2A2 ResNet-20 step of train_quant.py (scripts/reference_quant.py; two Adams), with:
  ewgs  CE alone (no teacher);
  crd   the FP teacher's forward under no_grad, CE + 0.8·CRDLoss(f4) (the authors' CRDLoss, copied in
        scripts/make_kd_golden.py: K 16384, N 50,000, feat_dim 128, T 0.1), embeddings in the model Adam;
  cktf  CE + 1·CRD(f4) + 0.8·Σ CRD(f0 pooled, the three groups' outputs normalised over the batch and pooled),
        K 4096 (utils_distill.py:220-239, distiller_zoo/ST.py).
The contrast indices are drawn as the authors' dataset does (numpy, exact mode, per sample); the authors draw
them in the loader's worker processes, so that time is printed apart and not in the step. Median of
`--steps` steps after `--warmup`. With `--sqakd PATH`, the same three rows from `sqakd bench`.

    /usr/bin/python3 scripts/bench_crd_torch.py --threads 2 --sqakd .build/release/sqakd
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_kd_golden import CRDLoss  # noqa: E402
from reference_models import make  # noqa: E402
from reference_quant import initialize_quantizers, quantize_resnet, split_parameters  # noqa: E402


def features(model, x):
    """ResNet forward(is_feat=True): f0 … f4 and the logits (custom_models_resnet.py:81-127)."""
    f0 = F.relu(model.bn1(model.conv1(x)))
    f1 = model.layer1(f0)
    f2 = model.layer2(f1)
    f3 = model.layer3(f2)
    f4 = F.avg_pool2d(f3, f3.size(3)).flatten(1)
    return [f0, f1, f2, f3, f4], model.linear(model.bn2(f4))


def contrast_indices(labels, cls_negative, batch_idx, k, rng):
    rows = []
    for i in batch_idx:
        neg = rng.choice(cls_negative[labels[i]], k, replace=k > len(cls_negative[labels[i]]))
        rows.append(np.hstack(([i], neg)))
    return torch.from_numpy(np.stack(rows)).long()


def step_time(method, args):
    torch.manual_seed(0)
    teacher = make("resnet20", 10).eval()
    student = make("resnet20", 10)
    student.load_state_dict(teacher.state_dict())
    quantize_resnet(student, 2)
    x = torch.randn(args.batch, 3, 32, 32)
    y = torch.randint(0, 10, (args.batch,))
    initialize_quantizers(student, x)
    model_params, quant_params = split_parameters(student)
    n = args.data
    labels = np.arange(n) % 10
    cls_negative = [np.nonzero(labels != c)[0] for c in range(10)]
    idx = torch.arange(args.batch)
    pool = nn.AvgPool2d(8)
    criteria = []
    if method == "crd":
        criteria = [CRDLoss(64, 64, 128, n, 16384, 0.1, 0.5)]
    elif method == "cktf":
        dims = [256, 256, 128, 64, 64]
        criteria = [CRDLoss(d, d, 128, n, 4096, 0.1, 0.5) for d in dims]
    for c in criteria:
        model_params += list(c.embed_s.parameters()) + list(c.embed_t.parameters())
    opt_m = torch.optim.Adam(model_params, lr=1e-3, weight_decay=1e-4)
    opt_q = torch.optim.Adam(quant_params, lr=1e-5)
    rng = np.random.RandomState(0)
    k = 16384 if method == "crd" else 4096
    sample_times = []

    def flat(f):
        t = pool(f)
        return t.view(t.size(0), -1)

    def step():
        opt_m.zero_grad()
        opt_q.zero_grad()
        if method == "ewgs":
            loss = F.cross_entropy(student(x), y)
        else:
            t0 = time.perf_counter()
            cidx = contrast_indices(labels, cls_negative, range(args.batch), k, rng)
            sample_times.append(time.perf_counter() - t0)
            fs, logit_s = features(student, x)
            with torch.no_grad():
                ft, _ = features(teacher, x)
            loss = F.cross_entropy(logit_s, y)
            if method == "crd":
                loss = loss + 0.8 * criteria[0](fs[-1], ft[-1], idx, cidx)
            else:
                st = criteria[0](flat(fs[0]), flat(ft[0]), idx, cidx)
                for g in (1, 2, 3):
                    s = flat(F.normalize(fs[g], p=2, dim=0))
                    t = flat(F.normalize(ft[g], p=2, dim=0))
                    st = st + criteria[g](s, t, idx, cidx)
                loss = loss + 1.0 * criteria[4](fs[-1], ft[-1], idx, cidx) + 0.8 * st
        loss.backward()
        opt_m.step()
        opt_q.step()

    student.train()
    for _ in range(args.warmup):
        step()
    times = []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    sampling = statistics.median(sample_times) if sample_times else 0.0
    return statistics.median(times) - sampling, sampling


def sqakd_step_ms(binary, distill, args):
    out = subprocess.run([binary, "bench", "--model", "resnet20", "--batch", str(args.batch), "--quantizer", "ewgs", "--bits", "2",
                          "--distill", distill, "--threads", str(args.threads), "--warmup", str(args.warmup),
                          "--steps", str(args.steps), "--json"], check=True, capture_output=True, text=True).stdout
    return statistics.median(json.loads(out.strip().splitlines()[-1])["trainStepMilliseconds"])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--data", type=int, default=50000, help="training-set size N (memory rows)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--sqakd", help="path to the sqakd binary: also time `sqakd bench`")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(False)
    print(f"EWGS W2A2 ResNet-20 step, batch {args.batch}, N {args.data}, {args.threads} threads, torch {torch.__version__}")
    base = None
    for method in ("ewgs", "crd", "cktf"):
        t, sampling = step_time(method, args)
        base = base or t
        line = f"  PyTorch {method:5s} {1000 * t:8.1f} ms  ×{t / base:.2f}"
        if sampling:
            line += f"   (+ {1000 * sampling:.1f} ms numpy sampling of the contrast indices, in the authors' loader workers)"
        print(line, flush=True)
    if args.sqakd:
        ours = {m: sqakd_step_ms(args.sqakd, "none" if m == "ewgs" else m, args) for m in ("ewgs", "crd", "cktf")}
        for m, t in ours.items():
            print(f"  sqakd   {m:5s} {t:8.1f} ms  ×{t / ours['ewgs']:.2f}")


if __name__ == "__main__":
    main()

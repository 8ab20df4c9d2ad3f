#!/usr/bin/python3
"""Training-step throughput of the five Tiny-ImageNet models, SQAKDBench vs PyTorch/torchvision on this CPU.

For each model and image size: the same step on both sides, on a synthetic batch of the paper's batch size
(reference-implementation.md section 5.3: ResNet-18, MobileNet-V2, ShuffleNet-V2 and SqueezeNet 64, VGG-11 32),
200 classes: forward in train mode, mean cross-entropy, backward, SGD (lr 0.01, momentum 0.9, weight decay
1e-4) step; the median of `--steps` timed steps after `--warmup` untimed ones, `--threads` threads on both sides
(`--steps 64=20,224=5`: 20 steps at 64x64, whose steps last a fraction of a second, 5 at 224x224; a bare number
applies to every size). `--rounds 64=3,224=1` alternates the two sides that many times per model and reports the
medians and the range of the per-round ratios: this CPU's speed drifts by 10-20% over minutes.
PyTorch runs torchvision's resnet18, mobilenet_v2, shufflenet_v2_x0_5 and squeezenet1_0 and the authors'
vgg11_bn (scripts/make_imagenet_golden.py, pool3 removed) in float32 (its convolutions through its bundled
oneDNN). Ours is `sqakd bench --json`. Run it on a quiet machine.

    /usr/bin/python3 scripts/bench_imagenet_vs_torchvision.py --readme README.md

With --readme the table replaces the one between the `imagenet-speed` markers of that file.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys

import torch
import torch.nn.functional as F
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_imagenet_golden import vgg11_bn  # noqa: E402  (the authors' VGG-11-BN)
from torch_timing import cpu_name, median_step_seconds  # noqa: E402

CLASSES = 200
# model: (PyTorch builder, the paper's batch size, the speed-up the project aims at)
MODELS = {
    "resnet18": (lambda: torchvision.models.resnet18(num_classes=CLASSES), 64, 1.2),
    "vgg11_bn": (lambda: vgg11_bn(CLASSES), 32, 1.2),
    "mobilenetv2": (lambda: torchvision.models.mobilenet_v2(num_classes=CLASSES), 64, 1.5),
    "shufflenet_v2_x0_5": (lambda: torchvision.models.shufflenet_v2_x0_5(num_classes=CLASSES), 64, 1.5),
    "squeezenet1_0": (lambda: torchvision.models.squeezenet1_0(num_classes=CLASSES), 64, 1.5),
}
BEGIN, END = "<!-- imagenet-speed:begin -->", "<!-- imagenet-speed:end -->"


def pytorch_train_ips(name, size, threads, warmup, steps):
    build, batch, _ = MODELS[name]
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = build()
    model.train()
    x = torch.randn(batch, 3, size, size)
    y = torch.randint(0, CLASSES, (batch,))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)

    def step():
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()

    return batch / median_step_seconds(step, warmup, steps)


def ours_train_ips(sqakd, name, size, threads, warmup, steps):
    _, batch, _ = MODELS[name]
    out = subprocess.run([sqakd, "bench", "--model", name, "--image-size", str(size), "--batch", str(batch),
                          "--classes", str(CLASSES), "--threads", str(threads), "--warmup", str(warmup),
                          "--steps", str(steps), "--json"], check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])["trainImagesPerSecond"]


def per_size(flag, text, sizes):
    """`N` (every size) or `SIZE=N,SIZE=N` -> {size: N}; a one-line exit on a malformed value or a missing size."""
    try:
        if "=" in text:
            counts = {int(k): int(v) for k, v in (item.split("=") for item in text.split(","))}
        else:
            counts = {size: int(text) for size in sizes}
    except ValueError:
        sys.exit(f"error: {flag} {text!r}: expected N or SIZE=N,SIZE=N")
    if missing := [s for s in sizes if s not in counts]:
        sys.exit(f"error: {flag} {text!r} gives no count for size {missing[0]}")
    if any(n < 1 for n in counts.values()):
        sys.exit(f"error: {flag} {text!r}: counts must be at least 1")
    return counts


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    ap.add_argument("--sizes", nargs="+", type=int, default=[64, 224])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--steps", default="64=20,224=5", help="timed steps: N, or SIZE=N,SIZE=N (default %(default)s)")
    ap.add_argument("--rounds", default="64=3,224=1",
                    help="PyTorch/ours measurements alternated this many times, the median of each side and of the "
                         "per-round ratios reported: N, or SIZE=N,SIZE=N (default %(default)s)")
    ap.add_argument("--sqakd", default=".build/release/sqakd", help="path to the sqakd binary")
    ap.add_argument("--readme", help="write the table between the imagenet-speed markers of this file")
    ap.add_argument("--json", help="also write the measurements here")
    args = ap.parse_args()
    steps = per_size("--steps", args.steps, args.sizes)
    rounds = per_size("--rounds", args.rounds, args.sizes)
    if not os.path.exists(args.sqakd):
        sys.exit(f"error: {args.sqakd} not found; run `make build` (or `swift build -c release`) first")

    rows = []
    for size in args.sizes:
        for name in args.models:
            _, batch, target = MODELS[name]
            pts, ourss = [], []
            for _ in range(rounds[size]):
                pts.append(pytorch_train_ips(name, size, args.threads, args.warmup, steps[size]))
                ourss.append(ours_train_ips(args.sqakd, name, size, args.threads, args.warmup, steps[size]))
            ratios = [o / p for o, p in zip(ourss, pts)]
            pt, ours, ratio = statistics.median(pts), statistics.median(ourss), statistics.median(ratios)
            rows.append({"model": name, "size": size, "batch": batch, "pytorch": pt, "ours": ours, "ratio": ratio,
                         "ratio_min": min(ratios), "ratio_max": max(ratios), "rounds": rounds[size], "target": target})
            spread = f" (rounds {min(ratios):.2f}-{max(ratios):.2f}x)" if len(ratios) > 1 else ""
            print(f"{name:20s} {size:3d}x{size:<3d} batch {batch:3d}: PyTorch {pt:7.1f} img/s, SQAKDBench {ours:7.1f} img/s, "
                  f"{ratio:.2f}x{spread} (aim {target}x)", flush=True)

    step_text = ", ".join(f"{steps[s]} steps at {s}×{s} ({rounds[s]} round{'s' if rounds[s] > 1 else ''})" for s in args.sizes)
    table = [f"Training step, {args.threads} threads, {cpu_name()}, torch {torch.__version__}, torchvision "
             f"{torchvision.__version__}; median of {step_text} after {args.warmup} untimed; "
             "each round times PyTorch then ours, the table gives the medians over rounds and the range of the per-round ratios "
             "(`scripts/bench_imagenet_vs_torchvision.py`).",
             "", "| model | image | batch | PyTorch img/s | SQAKDBench img/s | ratio | rounds' range | aim |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        spread = f"{r['ratio_min']:.2f}–{r['ratio_max']:.2f}×" if r["rounds"] > 1 else "—"
        table.append(f"| {r['model']} | {r['size']}×{r['size']} | {r['batch']} | {r['pytorch']:.1f} | {r['ours']:.1f} | "
                     f"**{r['ratio']:.2f}×** | {spread} | ≥ {r['target']}× |")
    text = "\n".join(table)
    print("\n" + text)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    if args.readme:
        with open(args.readme) as f:
            readme = f.read()
        if BEGIN not in readme or END not in readme:
            sys.exit(f"error: {args.readme} has no {BEGIN} ... {END} markers")
        readme = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _: f"{BEGIN}\n{text}\n{END}", readme, flags=re.S)
        with open(args.readme + ".tmp", "w") as f:
            f.write(readme)
        os.replace(args.readme + ".tmp", args.readme)


if __name__ == "__main__":
    main()

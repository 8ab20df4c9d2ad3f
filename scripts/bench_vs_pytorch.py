#!/usr/bin/python3
"""Training-step throughput of SQAKDBench vs PyTorch on this machine, same model, batch and threads.

Both sides time the same step on the same synthetic batch: forward in train mode, mean cross-entropy,
backward, SGD(lr 0.01, momentum 0.9, weight decay 1e-4) step; the median of `--steps` timed steps after
`--warmup` untimed ones. PyTorch runs the reference architecture (scripts/reference_models.py) in float32
on the CPU (its convolutions go through its bundled oneDNN). Ours is `sqakd bench --json`.

    /usr/bin/python3 scripts/bench_vs_pytorch.py --model resnet20 --batch 128 --threads 2
"""
import argparse
import json
import os
import subprocess
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reference_models import make  # noqa: E402
from torch_timing import median_step_seconds  # noqa: E402


def pytorch_step_times(name, batch, classes, threads, warmup, steps):
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = make(name, classes)
    model.train()
    x = torch.randn(batch, 3, 32, 32)
    y = torch.randint(0, classes, (batch,))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)

    def step():
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()

    train = median_step_seconds(step, warmup, steps)
    model.eval()
    with torch.no_grad():
        infer = median_step_seconds(lambda: model(x), warmup, steps)
    return train, infer


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="resnet20")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--sqakd", default=".build/release/sqakd", help="path to the sqakd binary")
    args = ap.parse_args()

    if not os.path.exists(args.sqakd):
        sys.exit(f"error: {args.sqakd} not found; run `make build` (or `swift build -c release`) first")
    out = subprocess.run([args.sqakd, "bench", "--model", args.model, "--batch", str(args.batch),
                          "--classes", str(args.classes), "--threads", str(args.threads), "--warmup", str(args.warmup),
                          "--steps", str(args.steps), "--json"], check=True, capture_output=True, text=True).stdout
    ours = json.loads(out.strip().splitlines()[-1])
    pt_train, pt_infer = pytorch_step_times(args.model, args.batch, args.classes, args.threads, args.warmup, args.steps)
    pt_train_ips, pt_infer_ips = args.batch / pt_train, args.batch / pt_infer
    print(f"{args.model}, batch {args.batch}, {args.threads} threads, torch {torch.__version__}")
    print(f"  training step   PyTorch {pt_train_ips:8.1f} img/s   SQAKDBench {ours['trainImagesPerSecond']:8.1f} img/s"
          f"   ratio {ours['trainImagesPerSecond'] / pt_train_ips:.2f}x")
    print(f"  inference       PyTorch {pt_infer_ips:8.1f} img/s   SQAKDBench {ours['inferenceImagesPerSecond']:8.1f} img/s"
          f"   ratio {ours['inferenceImagesPerSecond'] / pt_infer_ips:.2f}x")


if __name__ == "__main__":
    main()
